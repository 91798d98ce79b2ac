/**
 * ctsft: Circuit-Targeted Supervised Fine-Tuning for Hugging Face language models, typed
 * from TypeScript and run by a Python/PyTorch runtime over ZeroMQ.
 *
 * @packageDocumentation
 */
export { Runtime, type CallOptions, type ConnectOptions, type RuntimeMode, type StartOptions } from "./api/runtime.ts";
export { RunStream, type Reply } from "./api/stream.ts";
export {
  BadRequestError,
  CancelledError,
  CtsftError,
  InternalError,
  NotFoundError,
  OutOfMemoryError,
  RuntimeLostError,
  VersionMismatchError,
  type ErrorInfo,
} from "./errors.ts";
export { EmbeddedUnavailableError } from "./transport/launch-embedded.ts";
export * from "./schema/index.ts";
