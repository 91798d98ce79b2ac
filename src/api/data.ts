import type { DataRef, DatasetInfo } from "../schema/data.ts";
import type { OpRequest, OpResult } from "../schema/ops.ts";
import { type Caller, Handle } from "./handles.ts";
import type { CallOptions } from "./runtime.ts";

/** A labeled dataset held by the runtime. */
export class DatasetHandle extends Handle {
  constructor(
    caller: Caller,
    id: string,
    /** Size, labels and class counts. */
    readonly info: DatasetInfo,
  ) {
    super(caller, id);
  }
}

/** A dataset wherever an op takes one: a handle, or a reference the runtime resolves. */
export type DataInput = DatasetHandle | DataRef;

export function dataRef(d: DataInput): DataRef {
  return d instanceof DatasetHandle ? { handle: d.id } : d;
}

/** `runtime.data`: load datasets, write the synthetic task. */
export class Data {
  constructor(private readonly caller: Caller) {}

  /** Load a CSV/TSV/JSONL file or a NusaX split once, to reuse it by handle. */
  async load(data: DataRef, options?: CallOptions): Promise<DatasetHandle> {
    const { handle, info } = (await this.caller.call("data.load", { data }, options)).body;
    return new DatasetHandle(this.caller, handle, info);
  }

  /** Write the synthetic multilingual task (`<out>/<lang>/<split>.csv`). */
  async synthetic(request: OpRequest<"data.synthetic">, options?: CallOptions): Promise<OpResult<"data.synthetic">> {
    return (await this.caller.call("data.synthetic", request, options)).body;
  }
}
