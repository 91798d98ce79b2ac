import type { z } from "zod";
import type { Example } from "../schema/data.ts";
import type { ModelInfo } from "../schema/models.ts";
import type { OpRequest, OpResult } from "../schema/ops.ts";
import type { DeltaInfo, GenerateEvent, GenerateRequest, GenerateResult, PredictEvent, PredictRequest, PredictResult } from "../schema/serving.ts";
import { type DataInput, dataRef } from "./data.ts";
import { type Caller, Handle, type HandleId } from "./handles.ts";
import type { CallOptions } from "./runtime.ts";
import type { RunStream } from "./stream.ts";

/** What {@link ModelHandle.predict} classifies: texts (possibly none), records of a pair-input task's fields
 * (`{ premise, hypothesis }`), or a dataset's examples (its labels are not used). */
export type PredictInput = readonly Example[] | DataInput;

/** Options of {@link ModelHandle.predict}: the `predict` op's settings (delta per row, batch
 * size, label set, prompt, token limit), plus an `AbortSignal`. */
export interface PredictOptions extends Pick<z.input<typeof PredictRequest>, "delta" | "batchSize" | "labels" | "template" | "verbalizer" | "maxLength"> {
  /** Cancels the prediction (between batches) when aborted; the call rejects with `CancelledError`. */
  signal?: AbortSignal;
}

/** Options of {@link ModelHandle.generate}: the `generate` op's settings (length, sampling,
 * stop strings, seed, delta per prompt), plus an `AbortSignal`. */
export interface GenerateOptions extends Omit<z.input<typeof GenerateRequest>, "model" | "prompts"> {
  /** Stops the generation within one token when aborted; the stream ends with `CancelledError`. */
  signal?: AbortSignal;
}

/** Options of {@link Deltas.load}. */
export interface DeltaLoadOptions {
  /** Replace a delta already loaded under the same name (refused otherwise). Default false. */
  overwrite?: boolean;
  signal?: AbortSignal;
}

/**
 * A model's named deltas (`model.deltas`): sparse CT-SFT deltas kept beside the base weights,
 * which never change, so `predict` and `generate` can give each row its own delta (or none).
 * Each is checked against the base model's fingerprint when it is loaded.
 */
export class Deltas {
  constructor(
    private readonly caller: Caller,
    private readonly model: HandleId,
  ) {}

  /** Load the delta in `dir` (a `ctsft-delta` folder, or a checkpoint that keeps one) as `name`.
   * A delta of another base is refused with a `BadRequestError` on `body.delta`; a name already
   * taken, on `body.name` (unless `overwrite`). */
  async load(name: string, dir: string, how: DeltaLoadOptions = {}): Promise<DeltaInfo> {
    const { signal, overwrite = false } = how;
    return (await this.caller.call("deltas.load", { model: this.model, name, delta: dir, overwrite }, { signal })).body;
  }

  /** Drop the delta named `name`; false when there was none. */
  async unload(name: string, options?: CallOptions): Promise<boolean> {
    return (await this.caller.call("deltas.unload", { model: this.model, name }, options)).body.unloaded;
  }

  /** The loaded deltas, in loading order. */
  async list(options?: CallOptions): Promise<DeltaInfo[]> {
    return (await this.caller.call("deltas.list", { model: this.model }, options)).body.deltas;
  }
}

/** A model held by the runtime. */
export class ModelHandle extends Handle {
  constructor(
    caller: Caller,
    id: string,
    /** Architecture, size, device and dtype, as of loading (see {@link ModelHandle.refresh}). */
    public info: ModelInfo,
  ) {
    super(caller, id);
    this.deltas = new Deltas(caller, this.id);
  }

  /** Named deltas on this model, for {@link ModelHandle.predict} and {@link ModelHandle.generate}. */
  readonly deltas: Deltas;

  /** Classify texts (or a dataset's texts): per text the most probable label, the class
   * probabilities and logits, in input order, over the model's task labels (or `labels`).
   * No texts give a result with no predictions. `delta` names a loaded delta for every row,
   * or gives one entry per row (`null`: the base model), so one call can mix languages.
   * For the `batch` progress events, use {@link ModelHandle.predictStream}. */
  async predict(input: PredictInput, options: PredictOptions = {}): Promise<PredictResult> {
    return (await this.predictStream(input, options).finalResult()).body;
  }

  /** {@link ModelHandle.predict} as a stream: a `batch` event after each batch, then `result`. */
  predictStream(input: PredictInput, options: PredictOptions = {}): RunStream<PredictEvent, PredictResult> {
    const { signal, ...settings } = options;
    const rows = isTexts(input) ? { texts: [...input] } : { data: dataRef(input) };
    return this.caller.stream("predict", { model: this.id, ...rows, ...settings }, { signal });
  }

  /** Continue a prompt (or several, as one batch) with transformers' own generation: a
   * `token` event per decoded piece of text (several tokens' text when they come faster than
   * one event per 50 ms), then `result` with each prompt's full output.
   * Greedy at `temperature` 0 (the default); sampled from `seed` otherwise. Leaving the
   * `for await` loop early (or aborting `signal`) stops the generation within one token. */
  generate(prompt: string | readonly string[], options: GenerateOptions = {}): RunStream<GenerateEvent, GenerateResult> {
    const { signal, ...settings } = options;
    const prompts = typeof prompt === "string" ? [prompt] : [...prompt];
    return this.caller.stream("generate", { model: this.id, prompts, ...settings }, { signal });
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

function isTexts(input: PredictInput): input is readonly Example[] {
  return Array.isArray(input);
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
