import { z } from "zod";
import { DataRef, Example } from "./data.ts";

/**
 * Using an adapted model: named deltas on one base model (`deltas.load|unload|list`),
 * classification (`predict`) and text generation (`generate`). A named delta is kept beside
 * the base weights, never merged into them, so one batch may mix rows of several deltas.
 */

/** A named delta on a model: 1–64 characters, a letter or digit first, then letters, digits, `_`, `.`, `-`. */
export const DeltaName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "a delta name is 1-64 characters: a letter or digit, then letters, digits, '_', '.' or '-'");
export type DeltaName = z.infer<typeof DeltaName>;

/** Which delta each row uses: one name for every row, or one entry per row (`null`: the base
 * model). Absent: the base model for every row. */
export const DeltaChoice = z.union([DeltaName, z.array(DeltaName.nullable())]);
export type DeltaChoice = z.input<typeof DeltaChoice>;

/** Request of `deltas.load`: keep a sparse delta beside the model's weights under `name`. */
export const DeltaLoadRequest = z
  .object({
    model: z.string(),
    name: DeltaName,
    /** A `ctsft-delta` folder, or a checkpoint folder that keeps one (`ctsft-delta/`). Its base
     * fingerprint (config and weights) must be the model's. */
    delta: z.string().min(1),
    /**
     * Replace a delta already loaded under `name` (refused otherwise).
     * @defaultValue `false`
     */
    overwrite: z.boolean().default(false),
  })
  .strict();

/** A delta loaded under a name: where it came from, its size and its manifest's `meta`. */
export const DeltaInfo = z.object({
  name: z.string(),
  /** The delta folder it was read from. */
  path: z.string(),
  /** Slices (head rows/columns, norm vectors) it changes. */
  entries: z.number().int(),
  /** Parameters it changes. */
  params: z.number().int(),
  /** `params` as a fraction of the model's parameters. */
  fraction: z.number(),
  /** The delta manifest's `meta` (method, circuit, …). */
  meta: z.record(z.string(), z.unknown()),
});
export type DeltaInfo = z.infer<typeof DeltaInfo>;

/** Request of `deltas.unload`. */
export const DeltaUnloadRequest = z.object({ model: z.string(), name: DeltaName }).strict();
/** Result of `deltas.unload`: false when no delta of that name was loaded. */
export const DeltaUnloadResult = z.object({ unloaded: z.boolean() });
/** Request of `deltas.list`. */
export const DeltaListRequest = z.object({ model: z.string() }).strict();
/** Result of `deltas.list`: the model's named deltas, in loading order. */
export const DeltaListResult = z.object({ deltas: z.array(DeltaInfo) });

/** `delta` given as a per-row array must have one entry per row. */
function rowsMatch(delta: DeltaChoice | undefined, rows: number | undefined, ctx: z.RefinementCtx, what: string): void {
  if (rows === undefined || !Array.isArray(delta) || delta.length === rows) return;
  ctx.addIssue({ code: "custom", path: ["delta"], message: `delta has ${delta.length} entries for ${rows} ${what}: give one per row, or a single name for all` });
}

/** Request of `predict`: class probabilities of texts (or of a dataset's texts). */
export const PredictRequest = z
  .object({
    model: z.string(),
    /**
     * The texts to classify (may be empty: the result then has no predictions), or for a pair-input task records of its
     * fields (`{ premise, hypothesis }`), all alike. Give `texts` or `data`, not both.
     */
    texts: z.array(Example).optional(),
    /** A dataset whose texts to classify (its labels are not used). */
    data: DataRef.optional(),
    /** A delta name for every row, or one entry per row (`null`: the base model). */
    delta: DeltaChoice.optional(),
    /** Prompt template with one `{text}` slot, or one `{field}` slot per field of records (default: the model's task's). */
    template: z.string().optional(),
    /** Label name -> answer word (default: the model's task's, else " " + label name). */
    verbalizer: z.record(z.string(), z.string()).optional(),
    /** The label names, when the model has no task recorded in `ctsft.json` (default: the task's labels). */
    labels: z.array(z.string()).min(1).optional(),
    /** @defaultValue `32` */
    batchSize: z.number().int().min(1).default(32),
    /**
     * Tokens per prompt; a longer text is cut (the template kept) and flagged `truncated`.
     * @defaultValue `128`
     */
    maxLength: z.number().int().min(8).default(128),
  })
  .strict()
  .superRefine((r, ctx) => {
    if ((r.texts === undefined) === (r.data === undefined)) ctx.addIssue({ code: "custom", path: ["texts"], message: "give exactly one of texts and data" });
    rowsMatch(r.delta, r.texts?.length, ctx, "texts");
  });

/** Progress of `predict`: after each batch. */
export const PredictEvent = z.object({ type: z.literal("batch"), done: z.number().int(), total: z.number().int() });
export type PredictEvent = z.infer<typeof PredictEvent>;

/** The class prediction of one text. */
export const Prediction = z.object({
  /** The most probable label's name. */
  label: z.string(),
  /** Its class index in `labels`. */
  index: z.number().int(),
  /** Softmax of `logits`, in label order. */
  probs: z.array(z.number()),
  /** Class logits, in label order. */
  logits: z.array(z.number()),
  /** The text was cut to fit `maxLength`. */
  truncated: z.boolean(),
});
export type Prediction = z.infer<typeof Prediction>;

/** Result of `predict`: the label names and one prediction per text, in input order. */
export const PredictResult = z.object({ labels: z.array(z.string()), predictions: z.array(Prediction), seconds: z.number() });
export type PredictResult = z.infer<typeof PredictResult>;

/** Request of `generate`: continue each prompt with transformers' own generation. */
export const GenerateRequest = z
  .object({
    model: z.string(),
    /** One or more prompts, generated as one batch. */
    prompts: z.array(z.string()).min(1),
    /** @defaultValue `64` */
    maxNewTokens: z.number().int().min(1).max(4096).default(64),
    /**
     * Sampling temperature; 0 is greedy decoding.
     * @defaultValue `0`
     */
    temperature: z.number().min(0).default(0),
    /**
     * Nucleus sampling: keep the smallest set of tokens whose probability reaches `topP`.
     * @defaultValue `1`
     */
    topP: z.number().gt(0).max(1).default(1),
    /** Sample among the `topK` most probable tokens only. */
    topK: z.number().int().min(1).optional(),
    /** Stop a prompt's generation when its text ends with one of these (transformers `stop_strings`). */
    stop: z.array(z.string().min(1)).min(1).optional(),
    /** Seed of sampling (same seed, same settings: same text); 0 to 2³² − 1, as numpy's, which transformers seeds with it. */
    seed: z.number().int().min(0).max(2 ** 32 - 1).optional(),
    /** A delta name for every prompt, or one entry per prompt (`null`: the base model). */
    delta: DeltaChoice.optional(),
  })
  .strict()
  .superRefine((r, ctx) => rowsMatch(r.delta, r.prompts.length, ctx, "prompts"));

/** A piece of generated text, as soon as it decodes: one token's text, or several tokens'
 * when they decode faster than one event per 50 ms (the runtime joins them, so that a fast
 * model does not spend its time on messages); a prompt's pieces join to its output. */
export const GenerateEvent = z.object({
  type: z.literal("token"),
  /** Which prompt it continues. */
  index: z.number().int(),
  /** The newly decoded text. */
  text: z.string(),
  /** Tokens generated so far for that prompt. */
  tokens: z.number().int(),
});
export type GenerateEvent = z.infer<typeof GenerateEvent>;

/** What one prompt generated. */
export const GenerateOutput = z.object({
  /** The generated text only (the prompt excluded). */
  text: z.string(),
  /** Tokens generated. */
  tokens: z.number().int(),
  /** `length`: `maxNewTokens` reached; `stop`: a stop string; `eos`: the model's end token. */
  finishReason: z.enum(["length", "stop", "eos"]),
});
export type GenerateOutput = z.infer<typeof GenerateOutput>;

/** Result of `generate`: one output per prompt, in prompt order. */
export const GenerateResult = z.object({ outputs: z.array(GenerateOutput), seconds: z.number() });
export type GenerateResult = z.infer<typeof GenerateResult>;
