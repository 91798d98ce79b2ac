import type { OpName, OpRequest, OpResult } from "../schema/ops.ts";
import type { CallOptions } from "./runtime.ts";
import type { Reply } from "./stream.ts";

/** What resources need from the runtime: typed calls. Keeps resources free of transport. */
export interface Caller {
  call<O extends OpName>(op: O, request: OpRequest<O>, options?: CallOptions): Promise<Reply<OpResult<O>>>;
}

/** A runtime object (model, dataset) held by id. Release it with `release()` or `await using`. */
export abstract class Handle implements AsyncDisposable {
  private released = false;

  constructor(
    protected readonly caller: Caller,
    /** The runtime's id for this object. */
    readonly id: string,
  ) {}

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

/** A handle or its id. */
export type HandleLike = Handle | string;

export function idOf(h: HandleLike): string {
  return typeof h === "string" ? h : h.id;
}
