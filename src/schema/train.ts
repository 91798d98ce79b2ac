import { z } from "zod";
import { DataRef } from "./data.ts";
import { ModelInfo } from "./models.ts";

const Prompt = {
  /** Prompt template with one `{text}` slot, or with `fields` one `{field}` slot each (default: the checkpoint's, else "{text}\nSentiment:"). */
  template: z.string().optional(),
  /** Label name -> answer word (default: " " + label name). First tokens must differ. */
  verbalizer: z.record(z.string(), z.string()).optional(),
};

const TrainCommon = {
  model: z.string(),
  data: DataRef,
  valid: DataRef.optional(),
  ...Prompt,
  /** @defaultValue `3` */
  epochs: z.number().int().positive().default(3),
  /** @defaultValue `5e-4` */
  lr: z.number().positive().default(5e-4),
  /** @defaultValue `16` */
  batchSize: z.number().int().positive().default(16),
  /**
   * Micro-batches per optimizer step.
   * @defaultValue `1`
   */
  accumulate: z.number().int().positive().default(1),
  /** @defaultValue `"linear"` */
  schedule: z.enum(["linear", "cosine", "constant"]).default("linear"),
  /**
   * < 1: fraction of all steps; >= 1: number of steps.
   * @defaultValue `0.06`
   */
  warmup: z.number().min(0).default(0.06),
  /**
   * Applies to full matrices only (full, lora); masked tensors and norms never decay.
   * @defaultValue `0.01`
   */
  weightDecay: z.number().min(0).default(0.01),
  /**
   * Max gradient norm; 0 disables clipping.
   * @defaultValue `1.0`
   */
  clip: z.number().min(0).default(1.0),
  /** @defaultValue `0` */
  seed: z.number().int().default(0),
  /** @defaultValue `128` */
  maxLength: z.number().int().min(8).default(128),
  /**
   * Cross-entropy over the class logits, or over the whole vocabulary on the label token.
   * @defaultValue `"class"`
   */
  loss: z.enum(["class", "vocab"]).default("class"),
};

/**
 * With several ranks (`Runtime.start({ ranks })`): `ddp` replicates the model and averages gradients;
 * `fsdp` shards gradients, optimizer state and the training copy's weights (FSDP2). One rank: ignored.
 * @defaultValue `"ddp"`
 */
const Sharded = { parallel: z.enum(["ddp", "fsdp"]).default("ddp") };
/**
 * With several ranks, norms and lora train data-parallel (`ddp`); `fsdp` is for `full` and `ctsft`.
 * @defaultValue `"ddp"`
 */
const Replicated = { parallel: z.literal("ddp").default("ddp") };

const HeadList = z.array(z.tuple([z.number().int().min(0), z.number().int().min(0)])).min(1);

/** `train` with `method: "full"` (or no method): every parameter (competence tuning, and the continued-full-FT baseline). */
export const FullTrainRequest = z.object({ method: z.literal("full").optional(), ...TrainCommon, ...Sharded }).strict();

/** `train` with `method: "ctsft"`: the circuit's head slices plus every norm. */
export const CtsftTrainRequest = z
  .object({
    method: z.literal("ctsft"),
    ...TrainCommon,
    ...Sharded,
    /** A circuit file from `circuits.select` (checked against this model's fingerprint)… */
    circuit: z.string().optional(),
    /** …or an explicit `[layer, head]` list. */
    heads: HeadList.optional(),
    /**
     * `hook`: gradient masks on full tensors; `delta`: per-slice parameters (optimizer state scales with the circuit).
     * @defaultValue `"hook"`
     */
    mask: z.enum(["hook", "delta"]).default("hook"),
    /**
     * GQA: `group` also trains the selected heads' shared K/V rows (the result lists the other heads that touches); `frozen` leaves K/V alone.
     * @defaultValue `"group"`
     */
    kv: z.enum(["group", "frozen"]).default("group"),
  })
  .strict();

/** `train` with `method: "norms"`: norm parameters only (LayerNorm/RMSNorm weights and biases). */
export const NormsTrainRequest = z
  .object({
    method: z.literal("norms"),
    ...TrainCommon,
    ...Replicated,
    /**
     * `hook`: gradient masks on full tensors; `delta`: per-slice parameters.
     * @defaultValue `"hook"`
     */
    mask: z.enum(["hook", "delta"]).default("hook"),
  })
  .strict();

/** LoRA settings of `method: "lora"`. */
export const LoraSettings = z
  .object({
    /** @defaultValue `8` */
    r: z.number().int().positive().default(8),
    /** @defaultValue `16` */
    alpha: z.number().positive().default(16),
    /** @defaultValue `0` */
    dropout: z.number().min(0).max(1).default(0),
    /** Module names to adapt (default: the attention projections). */
    targets: z.array(z.string()).min(1).optional(),
  })
  .strict();

/** `train` with `method: "lora"`: LoRA adapters through peft (attention projections by default). */
export const LoraTrainRequest = z
  .object({
    method: z.literal("lora"),
    ...TrainCommon,
    ...Replicated,
    /** @defaultValue `{ r: 8, alpha: 16, dropout: 0 }` */
    lora: LoraSettings.default({ r: 8, alpha: 16, dropout: 0 }),
  })
  .strict();

/** Per-method training options: a discriminated union on `method` (default `full`). */
export const TrainRequest = z.discriminatedUnion("method", [FullTrainRequest, CtsftTrainRequest, NormsTrainRequest, LoraTrainRequest]);

const Metrics = z.object({ accuracy: z.number(), macroF1: z.number(), n: z.number().int() });

/** Events of `train`: `start` (groups), `step` (loss, lr, throughput, eta), `epoch` (validation). */
export const TrainEvent = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("start"),
    totalSteps: z.number().int(),
    epochs: z.number().int(),
    examples: z.number().int(),
    groups: z.array(z.object({ name: z.string(), tensors: z.number().int(), params: z.number().int(), weightDecay: z.number() })),
  }),
  z.object({
    type: z.literal("step"),
    step: z.number().int(),
    totalSteps: z.number().int(),
    epoch: z.number().int(),
    loss: z.number(),
    lr: z.number(),
    gradNorm: z.number(),
    examplesPerS: z.number(),
    tokensPerS: z.number(),
    elapsed: z.number(),
    eta: z.number(),
  }),
  z.object({ type: z.literal("epoch"), epoch: z.number().int(), trainLoss: z.number(), valid: Metrics.optional() }),
]);
export type TrainEvent = z.infer<typeof TrainEvent>;

/** Result of `train`: steps, losses, validation, parameter counts, speed, peak memory, and what the method trained. */
export const TrainResult = z.object({
  method: z.string(),
  steps: z.number().int(),
  epochs: z.number().int(),
  trainLoss: z.number().nullable(),
  valid: Metrics.nullable(),
  history: z.array(z.object({ epoch: z.number().int(), trainLoss: z.number(), valid: Metrics.optional() })),
  paramsTrainable: z.number().int(),
  paramsTotal: z.number().int(),
  paramsFraction: z.number(),
  seconds: z.number(),
  examplesPerS: z.number(),
  tokensPerS: z.number(),
  peakMemory: z.object({ kind: z.enum(["cuda", "rss"]), bytes: z.number() }),
  /** ctsft/norms: what the head mask trained (heads, KV policy, touched heads, slices). */
  mask: z.looseObject({ mechanism: z.enum(["hook", "delta"]), kv: z.enum(["group", "frozen"]), heads: z.array(z.tuple([z.number(), z.number()])), touchedHeads: z.array(z.tuple([z.number(), z.number()])), trainableParams: z.number().int() }).optional(),
  lora: z.object({ r: z.number(), alpha: z.number(), targets: z.array(z.string()) }).optional(),
  /** With several ranks: how many trained, and how (`peakMemory` is rank 0's). */
  ranks: z.object({ world: z.number().int(), parallel: z.enum(["ddp", "fsdp"]) }).optional(),
  /** The model's info after training (its task is now the one it was trained for). */
  model: ModelInfo,
});
export type TrainResult = z.infer<typeof TrainResult>;

/** Request of `evaluate`: one or more datasets; optionally with heads mean-ablated. */
export const EvaluateRequest = z
  .object({
    model: z.string(),
    data: z.array(DataRef).min(1),
    ...Prompt,
    /** @defaultValue `64` */
    batchSize: z.number().int().positive().default(64),
    /** @defaultValue `128` */
    maxLength: z.number().int().min(8).default(128),
    /**
     * Include per-example predictions and class logits.
     * @defaultValue `false`
     */
    predictions: z.boolean().default(false),
    /** Mean-ablate these heads (z := μ of the `baseline` handle) while evaluating: circuit faithfulness. */
    ablate: z.object({ heads: z.array(z.tuple([z.number().int().min(0), z.number().int().min(0)])).min(1), baseline: z.string() }).strict().optional(),
    /**
     * Also report each dataset's language-model loss (`lmLoss`, `lmTokens`): the mean next-token
     * negative log-likelihood of its raw texts — no template, no label; a pair-input record's
     * fields joined by "\n" in field order — each with the tokenizer's BOS (where it adds one),
     * cut to its first `maxLength` tokens, token-weighted over the whole dataset. Computed under
     * `ablate` too. For forgetting measured beyond accuracy (proxy-language perplexity).
     * @defaultValue `false`
     */
    lmLoss: z.boolean().default(false),
  })
  .strict();

/** Metrics of one dataset. */
export const EvaluationReport = z.object({
  dataset: z.string(),
  labels: z.array(z.string()),
  n: z.number().int(),
  accuracy: z.number(),
  macroF1: z.number(),
  perClass: z.array(
    z.object({ label: z.string(), support: z.number().int(), predicted: z.number().int(), correct: z.number().int(), precision: z.number(), recall: z.number(), f1: z.number() }),
  ),
  /** `confusion[gold][predicted]`. */
  confusion: z.array(z.array(z.number().int())),
  predictions: z.array(z.object({ index: z.number().int(), gold: z.number().int(), pred: z.number().int(), logits: z.array(z.number()) })).optional(),
  /** With `lmLoss`: mean next-token NLL in nats per predicted token of the dataset's raw texts (total NLL / `lmTokens`); `exp(lmLoss)` is the perplexity. */
  lmLoss: z.number().optional(),
  /** With `lmLoss`: how many tokens were predicted (each text's token count after truncation, minus one). */
  lmTokens: z.number().int().optional(),
});
export type EvaluationReport = z.infer<typeof EvaluationReport>;

/** Progress of `evaluate`: one event per finished dataset. */
export const EvaluateEvent = z.object({ type: z.literal("dataset"), index: z.number().int(), dataset: z.string(), accuracy: z.number() });
/** Result of `evaluate`: one report per dataset. */
export const EvaluateResult = z.object({ results: z.array(EvaluationReport) });
