import type { OpRequest, OpResult } from "../schema/ops.ts";
import type { ModelInfo } from "../schema/models.ts";
import { type Caller, Handle } from "./handles.ts";
import type { CallOptions } from "./runtime.ts";

/** A model held by the runtime. */
export class ModelHandle extends Handle {
  constructor(
    caller: Caller,
    id: string,
    /** Architecture, size, device and dtype, as of loading (see {@link ModelHandle.refresh}). */
    public info: ModelInfo,
  ) {
    super(caller, id);
  }

  /** Re-read the model's info (e.g. the task recorded by training). */
  async refresh(): Promise<ModelInfo> {
    this.info = (await this.caller.call("model.info", { handle: this.id })).body;
    return this.info;
  }

  /** Save as a plain Hugging Face checkpoint directory (safetensors, tokenizer, ctsft.json), atomically. */
  async save(out: string, options?: CallOptions): Promise<string> {
    return (await this.caller.call("model.save", { handle: this.id, out }, options)).body.path;
  }
}

/** `runtime.models`: load and create models. */
export class Models {
  constructor(private readonly caller: Caller) {}

  /** Load a checkpoint directory, a `.gguf` file, or a cached hub id. */
  async load(request: OpRequest<"model.load">, options?: CallOptions): Promise<ModelHandle> {
    const { handle, info } = (await this.caller.call("model.load", request, options)).body;
    return new ModelHandle(this.caller, handle, info);
  }

  /** Build a real HF checkpoint from scratch (config of a family, random weights, BPE tokenizer trained on the corpus). */
  async create(request: OpRequest<"model.create">, options?: CallOptions): Promise<OpResult<"model.create">> {
    return (await this.caller.call("model.create", request, options)).body;
  }
}
