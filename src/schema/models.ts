import { z } from "zod";
import { FieldName } from "./data.ts";

/** What the runtime knows about a loaded model. */
export const ModelInfo = z.object({
  source: z.string(),
  family: z.string(),
  layers: z.number().int(),
  heads: z.number().int(),
  kvHeads: z.number().int(),
  headDim: z.number().int(),
  dModel: z.number().int(),
  vocabSize: z.number().int(),
  params: z.number().int(),
  device: z.string(),
  dtype: z.enum(["float32", "bfloat16", "float16"]),
  /** The task the checkpoint was trained for (template, verbalizer, labels; for pair-input tasks the fields, each with the column it was read from), if recorded. */
  task: z
    .object({ template: z.string(), verbalizer: z.record(z.string(), z.string()).nullable(), labels: z.array(z.string()), fields: z.record(z.string(), z.string()).nullable() })
    .nullable(),
  loadSeconds: z.number(),
});
export type ModelInfo = z.infer<typeof ModelInfo>;

/** Request of `model.load`. */
export const LoadModelRequest = z
  .object({
    /** A checkpoint directory, a `.gguf` file, or a hub id present in the local cache. */
    source: z.string().min(1),
    /** @defaultValue `"auto"` */
    dtype: z.enum(["auto", "float32", "bfloat16", "float16"]).default("auto"),
    /** Default: the runtime's device. */
    device: z.string().optional(),
    /**
     * Off by default: running code shipped with a checkpoint is a security decision.
     * @defaultValue `false`
     */
    trustRemoteCode: z.boolean().default(false),
    /**
     * Let transformers download from the hub (off: most hosts have no hub access).
     * @defaultValue `false`
     */
    allowDownload: z.boolean().default(false),
  })
  .strict();
/** Result of `model.load`: the handle and what the runtime knows about the model. */
export const LoadModelResult = z.object({ handle: z.string(), info: ModelInfo });

/** A request naming one runtime object by handle. */
export const HandleRequest = z.object({ handle: z.string() }).strict();
/** Request of `model.save`: where to write the checkpoint. `out` must be absent, empty, or a
 * folder ctsft wrote (it holds `ctsft-artifact.json` and nothing else beside what that lists). */
export const SaveModelRequest = z
  .object({
    handle: z.string(),
    out: z.string().min(1),
    /** Replace a non-empty `out` that ctsft did not write, those files included. Never the
     * runtime's working directory, its path root, home, or a parent of them.
     * @defaultValue `false`
     */
    overwrite: z.boolean().default(false),
    /**
     * Only check that `out` may be written, by the same rule; write nothing.
     * @defaultValue `false`
     */
    dryRun: z.boolean().default(false),
  })
  .strict();
/** Where `model.save` wrote: the checkpoint, plus a CT-SFT run's sparse delta or a LoRA run's adapter beside it. */
export const SaveResult = z.object({ path: z.string(), delta: z.string().nullable(), adapter: z.string().nullable() });
/** Request of `delta.apply` / `delta.revert`. */
export const DeltaRequest = z.object({ model: z.string(), delta: z.string().min(1), keep: z.boolean().default(true) }).strict();
/** Result of `delta.apply` / `delta.revert`: what was written, and the delta's manifest. */
export const DeltaResult = z.object({ entries: z.number().int(), params: z.number().int(), manifest: z.record(z.string(), z.unknown()) });
/** Result of `release`: whether the handle existed. */
export const ReleaseResult = z.object({ released: z.boolean() });

/** Model families ctsft knows the attention layout of. */
export const Family = z.enum(["gpt2", "llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gpt_neox", "phi3", "opt", "bloom"]);
export type Family = z.infer<typeof Family>;

/** Request of `model.create`: a real HF checkpoint from scratch. */
export const CreateModelRequest = z
  .object({
    family: Family,
    layers: z.number().int().positive(),
    heads: z.number().int().positive(),
    kvHeads: z.number().int().positive().optional(),
    dModel: z.number().int().positive(),
    dFf: z.number().int().positive().optional(),
    /** Text files (one text per line) or labeled data files (their text column, or with `fields` every field's column). */
    corpus: z.array(z.string()).min(1),
    textColumn: z.string().optional(),
    /** Pair-input files: field name → column, as in a dataset reference; the text of every field trains the tokenizer. */
    fields: z.record(FieldName, z.string().min(1)).optional(),
    /** @defaultValue `2000` */
    vocab: z.number().int().positive().default(2000),
    out: z.string().min(1),
    /** @defaultValue `0` */
    seed: z.number().int().default(0),
    /** Replace a non-empty `out` that ctsft did not write (refused otherwise: it may hold a real
     * model). A checkpoint ctsft wrote is replaced without it; the same rule as `model.save`.
     * @defaultValue `false`
     */
    overwrite: z.boolean().default(false),
  })
  .strict();
/** Result of `model.create`: the checkpoint's path and geometry. */
export const CreateModelResult = z.looseObject({
  path: z.string(),
  family: z.string(),
  params: z.number().int(),
  vocabSize: z.number().int(),
  layers: z.number().int(),
  heads: z.number().int(),
  kvHeads: z.number().int(),
  headDim: z.number().int(),
  dModel: z.number().int(),
});
