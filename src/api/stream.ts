import type { z } from "zod";
import { CancelledError, InternalError } from "../errors.ts";
import type { Tensors } from "../schema/tensor.ts";
import type { Call, Connection } from "../transport/index.ts";

/** A result body with the tensors that came with it. */
export interface Reply<R> {
  body: R;
  tensors: Tensors;
  /** Id of the request, for logs and bug reports. */
  requestId: string;
}

/**
 * A streamed operation: iterate it with `for await` to receive typed events; `result`
 * resolves with the final reply once the stream ends. Leaving the loop early (break, throw)
 * cancels the operation in the runtime; so does the `AbortSignal` given at call time.
 * A stream can be iterated once.
 */
export class RunStream<E, R> implements AsyncIterable<E> {
  /** The final reply; rejects with the operation's typed error. */
  readonly result: Promise<Reply<R>>;
  private resolveResult!: (r: Reply<R>) => void;
  private rejectResult!: (e: unknown) => void;
  private iterated = false;
  private finished = false;

  constructor(
    private readonly conn: Connection,
    private readonly call: Call,
    private readonly schemas: { event: z.ZodType<E>; result: z.ZodType<R> },
    signal?: AbortSignal,
    /** Runs on the parsed result before `result` resolves (e.g. to refresh a handle). */
    private readonly onResult?: (body: R) => void,
  ) {
    this.result = new Promise((res, rej) => {
      this.resolveResult = res;
      this.rejectResult = rej;
    });
    // Callers that only iterate must not see an unhandled rejection for `result`.
    this.result.catch(() => undefined);
    if (signal !== undefined) {
      const onAbort = () => this.cancel(signal.reason);
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
      this.result.finally(() => signal.removeEventListener("abort", onAbort)).catch(() => undefined);
    }
  }

  /** The request id. */
  get id(): string {
    return this.call.id;
  }

  /** Cancel the operation; the stream ends with `CancelledError`. */
  cancel(reason?: unknown): void {
    if (this.finished) return;
    this.conn.cancel(this.call.id);
    const why = reason instanceof Error ? reason.message : reason === undefined ? "cancelled by the caller" : String(reason);
    // Fail locally at once: the runtime's own `cancelled` reply may lag by one step.
    this.call.fail(new CancelledError(`${this.call.op}: ${why}`, { requestId: this.call.id }));
  }

  async *[Symbol.asyncIterator](): AsyncIterator<E> {
    if (this.iterated) throw new TypeError("a RunStream can be iterated only once; use `result` for the reply");
    this.iterated = true;
    try {
      for (;;) {
        const msg = await this.call.next();
        if (msg.header.kind === "result") {
          this.finish();
          const body = parse(this.schemas.result, msg.header.body, this.call.id);
          this.onResult?.(body);
          this.resolveResult({ body, tensors: msg.tensors, requestId: this.call.id });
          return;
        }
        yield this.parseEvent(msg.header.body);
      }
    } catch (e) {
      this.finish();
      this.rejectResult(e);
      throw e;
    } finally {
      if (!this.finished) {
        // Left the loop early: the caller is no longer interested.
        this.cancel("the consumer stopped iterating");
        this.finish();
        this.rejectResult(new CancelledError(`${this.call.op}: the consumer stopped iterating`, { requestId: this.call.id }));
      }
    }
  }

  /** Drain the events (discarding them) and return the final reply. */
  async finalResult(): Promise<Reply<R>> {
    if (!this.iterated) for await (const _ of this) void _;
    return this.result;
  }

  /** An event the SDK cannot read ends the call: the runtime is told to stop too, so it
   * does not keep computing (and streaming) for a caller that has given up. A result that
   * fails to parse needs no cancel: the runtime has already finished the call. */
  private parseEvent(body: unknown): E {
    try {
      return parse(this.schemas.event, body, this.call.id);
    } catch (e) {
      this.conn.cancel(this.call.id);
      throw new InternalError(`${this.call.op}: ${(e as Error).message}; the call was cancelled in the runtime`, { requestId: this.call.id, cause: e });
    }
  }

  private finish(): void {
    this.finished = true;
    this.conn.release(this.call);
  }
}

/** Parse what the runtime sent; a mismatch is a runtime bug, reported as such. */
export function parse<T>(schema: z.ZodType<T>, value: unknown, requestId: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new InternalError(`runtime reply does not match the SDK's schema: ${issue?.message} at ${issue?.path.join(".")}`, { requestId });
}
