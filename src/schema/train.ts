import { z } from "zod";
import { DataRef } from "./data.ts";

const Prompt = {
  /** Prompt template with one `{text}` slot (default: the checkpoint's, else "{text}\nSentiment:"). */
  template: z.string().optional(),
  /** Label name -> answer word (default: " " + label name). First tokens must differ. */
  verbalizer: z.record(z.string(), z.string()).optional(),
};

export const TrainRequest = z
  .object({
    model: z.string(),
    data: DataRef,
    valid: DataRef.optional(),
    ...Prompt,
    epochs: z.number().int().positive().default(3),
    lr: z.number().positive().default(5e-4),
    batchSize: z.number().int().positive().default(16),
    /** Micro-batches per optimizer step. */
    accumulate: z.number().int().positive().default(1),
    schedule: z.enum(["linear", "cosine", "constant"]).default("linear"),
    /** < 1: fraction of all steps; >= 1: number of steps. */
    warmup: z.number().min(0).default(0.06),
    weightDecay: z.number().min(0).default(0.01),
    /** Max gradient norm; 0 disables clipping. */
    clip: z.number().min(0).default(1.0),
    seed: z.number().int().default(0),
    maxLength: z.number().int().min(8).default(128),
    /** Cross-entropy over the class logits, or over the whole vocabulary on the label token. */
    loss: z.enum(["class", "vocab"]).default("class"),
  })
  .strict();

const Metrics = z.object({ accuracy: z.number(), macroF1: z.number(), n: z.number().int() });

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
});
export type TrainResult = z.infer<typeof TrainResult>;

export const EvaluateRequest = z
  .object({
    model: z.string(),
    data: z.array(DataRef).min(1),
    ...Prompt,
    batchSize: z.number().int().positive().default(64),
    maxLength: z.number().int().min(8).default(128),
    /** Include per-example predictions and class logits. */
    predictions: z.boolean().default(false),
    /** Mean-ablate these heads (z := μ of the `baseline` handle) while evaluating: circuit faithfulness. */
    ablate: z.object({ heads: z.array(z.tuple([z.number().int().min(0), z.number().int().min(0)])).min(1), baseline: z.string() }).strict().optional(),
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
});
export type EvaluationReport = z.infer<typeof EvaluationReport>;

export const EvaluateEvent = z.object({ type: z.literal("dataset"), index: z.number().int(), dataset: z.string(), accuracy: z.number() });
export const EvaluateResult = z.object({ results: z.array(EvaluationReport) });
