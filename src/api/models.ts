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

  /** Save as a plain Hugging Face checkpoint directory (safetensors, tokenizer, ctsft.json,
   * and the `ctsft-artifact.json` marker), atomically; after CT-SFT its sparse delta
   * (`ctsft-delta/`), after LoRA its peft adapter (`lora-adapter/`) are written beside the weights.
   *
   * `out` must be absent, empty, or a checkpoint ctsft wrote; anything else is refused with a
   * `BadRequestError` on `body.out` unless `overwrite` (which then replaces the whole folder). The
   * runtime's working directory, its path root, home and their parents are never replaced.
   * `dryRun` only checks that rule (e.g. before a long training run) and writes nothing. */
  async save(out: string, how: { overwrite?: boolean; dryRun?: boolean } = {}, options?: CallOptions): Promise<OpResult<"model.save">> {
    return (await this.caller.call("model.save", { handle: this.id, out, overwrite: how.overwrite ?? false, dryRun: how.dryRun ?? false }, options)).body;
  }

  /** θ1 → θ2: apply a sparse delta (a `ctsft-delta` directory, or a checkpoint holding one).
   * Refused unless this model's weights are exactly the delta's base. With `keep` (default)
   * the delta stays with the model, so `save` writes it beside the weights. */
  async applyDelta(delta: string, how: { keep?: boolean } = {}, options?: CallOptions): Promise<OpResult<"delta.apply">> {
    return (await this.caller.call("delta.apply", { model: this.id, delta, keep: how.keep ?? true }, options)).body;
  }

  /** θ2 → θ1 bit-exactly: restore the base values the delta recorded. */
  async revertDelta(delta: string, options?: CallOptions): Promise<OpResult<"delta.revert">> {
    return (await this.caller.call("delta.revert", { model: this.id, delta, keep: false }, options)).body;
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
