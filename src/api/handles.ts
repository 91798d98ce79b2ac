import type { OpEvent, OpName, OpRequest, OpResult, StreamingOp } from "../schema/ops.ts";
import type { CallOptions } from "./runtime.ts";
import type { Reply, RunStream } from "./stream.ts";

/** What resources need from the runtime: typed calls and streams. Keeps resources free of transport. */
export interface Caller {
  call<O extends OpName>(op: O, request: OpRequest<O>, options?: CallOptions): Promise<Reply<OpResult<O>>>;
  stream<O extends StreamingOp>(op: O, request: OpRequest<O>, options?: CallOptions): RunStream<OpEvent<O>, OpResult<O>>;
}

declare const HANDLE_ID: unique symbol;

/**
 * The runtime's id of a loaded object (`m3`, `d1`, …), as {@link Handle.id} returns it. It is
 * a branded string so that a plain string, such as a checkpoint path given where a loaded
 * model is expected, is a compile-time error rather than a `NotFoundError` at run time.
 * An id obtained elsewhere (a log, another process) can be asserted with {@link handleId}.
 */
export type HandleId = string & { readonly [HANDLE_ID]: true };

/** Treat `id` as a runtime handle id (for ids from logs or another process). */
export function handleId(id: string): HandleId {
  return id as HandleId;
}

/** A runtime object (model, dataset) held by id. Release it with `release()` or `await using`. */
export abstract class Handle implements AsyncDisposable {
  private released = false;
  /** The runtime's id for this object. */
  readonly id: HandleId;

  constructor(
    protected readonly caller: Caller,
    id: string,
  ) {
    this.id = handleId(id);
  }

  /** Free the object in the runtime. Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.caller.call("release", { handle: this.id });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release().catch(() => undefined);
  }
}

/** A handle or its (branded) id: never a plain string. */
export type HandleLike = Handle | HandleId;

export function idOf(h: HandleLike): string {
  return typeof h === "string" ? h : h.id;
}
