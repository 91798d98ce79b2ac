import type { ErrorBody, ErrorCode } from "./schema/wire.ts";

/** Fields every ctsft error carries besides its message. */
export interface ErrorInfo {
  /** Longer explanation (e.g. both versions on a mismatch). */
  detail?: string | undefined;
  /** The Python traceback, when the error was raised in the runtime. */
  traceback?: string | undefined;
  /** Path of the offending field for bad input, e.g. `body.count`. */
  path?: string | undefined;
  /** Id of the request that failed. */
  requestId?: string | undefined;
  cause?: unknown;
}

/** Root of every error thrown by ctsft. `code` is the wire error code. */
export class CtsftError extends Error {
  readonly code: ErrorCode;
  readonly detail: string | undefined;
  readonly traceback: string | undefined;
  readonly path: string | undefined;
  readonly requestId: string | undefined;

  constructor(code: ErrorCode, message: string, info: ErrorInfo = {}) {
    super(message, info.cause === undefined ? undefined : { cause: info.cause });
    this.name = new.target.name;
    this.code = code;
    this.detail = info.detail;
    this.traceback = info.traceback;
    this.path = info.path;
    this.requestId = info.requestId;
  }
}

/** Invalid input, caught by zod in the SDK or by the runtime's own checks. */
export class BadRequestError extends CtsftError {
  constructor(message: string, info?: ErrorInfo) {
    super("bad_request", message, info);
  }
}
/** An op, handle or resource that does not exist. */
export class NotFoundError extends CtsftError {
  constructor(message: string, info?: ErrorInfo) {
    super("not_found", message, info);
  }
}
/** The operation was cancelled (AbortSignal, `cancel()`, or leaving a stream early). */
export class CancelledError extends CtsftError {
  constructor(message: string, info?: ErrorInfo) {
    super("cancelled", message, info);
  }
}
/** The runtime died, stopped answering heartbeats, or the connection was closed. */
export class RuntimeLostError extends CtsftError {
  constructor(message: string, info?: ErrorInfo) {
    super("runtime_lost", message, info);
  }
}
/** SDK and runtime speak different protocol versions. */
export class VersionMismatchError extends CtsftError {
  constructor(message: string, info?: ErrorInfo) {
    super("version_mismatch", message, info);
  }
}
/**
 * Training produced a non-finite loss or gradient norm: the message names the step and says
 * what became of the weights: rolled back to before the run (`ctsft`, `norms`, `lora`), or,
 * after full fine-tuning, invalid (the runtime then refuses to train, evaluate or score that
 * model until it is loaded again; do not save it). Also raised by `evaluate` when a model
 * gives non-finite logits. Usually the learning rate is too high.
 */
export class NonFiniteError extends CtsftError {
  constructor(message: string, info?: ErrorInfo) {
    super("non_finite", message, info);
  }
}
/** The server's policy does not allow this client that: a remote client asking to run a
 * checkpoint's code (`trustRemoteCode`), to download, or to shut the server down without an
 * admin key. The message names the server flag that would allow it. */
export class ForbiddenError extends CtsftError {
  constructor(message: string, info?: ErrorInfo) {
    super("forbidden", message, info);
  }
}
/** A bug or unexpected failure inside the runtime (see `traceback`). */
export class InternalError extends CtsftError {
  constructor(message: string, info?: ErrorInfo) {
    super("internal", message, info);
  }
}
/** The device (GPU or host) ran out of memory. */
export class OutOfMemoryError extends CtsftError {
  constructor(message: string, info?: ErrorInfo) {
    super("out_of_memory", message, info);
  }
}

const CLASSES: Record<ErrorCode, new (message: string, info?: ErrorInfo) => CtsftError> = {
  bad_request: BadRequestError,
  not_found: NotFoundError,
  cancelled: CancelledError,
  runtime_lost: RuntimeLostError,
  version_mismatch: VersionMismatchError,
  internal: InternalError,
  out_of_memory: OutOfMemoryError,
  non_finite: NonFiniteError,
  forbidden: ForbiddenError,
};

/** The one place that maps a wire error code to its class. */
export function errorFromWire(body: ErrorBody, requestId?: string): CtsftError {
  return new CLASSES[body.code](body.message, {
    detail: body.detail,
    traceback: body.traceback,
    path: body.path,
    requestId,
  });
}
