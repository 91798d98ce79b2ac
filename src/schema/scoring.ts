import { z } from "zod";
import { DataRef } from "./data.ts";
import { ModelInfo } from "./models.ts";

/** Relevance scorers: `cdt` (directional contextual decomposition), `ablation` (exact
 * mean-ablation effect), `attribution` (first order), `cdt-unsigned` (‖rel‖/‖irrel‖). */
export const ScoreMethod = z.enum(["cdt", "ablation", "attribution", "cdt-unsigned"]);
export type ScoreMethod = z.infer<typeof ScoreMethod>;

const Head = z.tuple([z.number().int().min(0), z.number().int().min(0)]);

const Discovery = {
  model: z.string(),
  /** The discovery set: label-balanced (use `perClass`), every class present. */
  data: DataRef,
  template: z.string().optional(),
  verbalizer: z.record(z.string(), z.string()).optional(),
  /** @defaultValue `32` */
  batchSize: z.number().int().positive().default(32),
  /** @defaultValue `128` */
  maxLength: z.number().int().min(8).default(128),
};

/** Request of the `baseline` op: the mean of every head's z over a discovery set. */
export const BaselineRequest = z.object(Discovery).strict();
/** Result of `baseline`: a handle to μ kept in the runtime (tensor `mean` travels with it). */
export const BaselineResult = z.object({ handle: z.string(), n: z.number().int(), classCounts: z.record(z.string(), z.number().int()) });

/** Request of the `score` op: relevance of heads by one scorer. */
export const ScoreRequest = z
  .object({
    ...Discovery,
    method: ScoreMethod.default("cdt"),
    /** A handle from `baseline` (computed on this model); default: computed from `data`. */
    baseline: z.string().optional(),
    /** Score only these `[layer, head]` pairs (default: all). */
    heads: z.array(Head).min(1).optional(),
    /** cdt: how attention patterns in later layers split. `decomposed` (CD-T): P_rel =
     * softmax(q_rel k_relᵀ); `frozen`: the true pattern carries both parts (z_rel = P v_rel).
     * Measured equally faithful to ablation (docs/method.md); decomposed is the reference's.
     * @defaultValue `"decomposed"`
     */
    pattern: z.enum(["decomposed", "frozen"]).default("decomposed"),
    /** Check the scorer against exact mean-ablation on a label-balanced subsample of the
     * discovery set (`examples` rows, default 64) and report the Spearman correlation
     * (`faithfulness` in the result); `false` skips it. Ignored for `ablation` itself.
     * @defaultValue `true` (64 rows)
     */
    faithfulness: z.union([z.boolean(), z.object({ examples: z.number().int().min(2).default(64) }).strict()]).default(true),
    /**
     * Source heads decomposed together (cdt).
     * @defaultValue `16`
     */
    chunk: z.number().int().positive().default(16),
    /** Also write the scores file here (atomic). */
    out: z.string().optional(),
  })
  .strict();

/** Progress of `baseline` and `score` (`faithfulness`: the ablation check after scoring). */
export const ScoreEvent = z.object({ type: z.literal("progress"), phase: z.enum(["baseline", "scoring", "faithfulness"]), done: z.number().int(), total: z.number().int() });

/** cdt only: max |rel| / max |true| over layers, source heads and examples (per row: max
 * over positions and features), and where it was reached. Above `threshold` the relevant
 * and irrelevant parts cancel each other and `warning` says so. */
export const Stability = z.object({
  maxRatio: z.number(),
  layer: z.number().int(),
  head: Head.nullable(),
  example: z.number().int(),
  threshold: z.number(),
  warning: z.string().nullable(),
});
export type Stability = z.infer<typeof Stability>;

/** Spearman correlation, over the scored heads, of the chosen scorer with exact
 * mean-ablation on the same label-balanced subsample (`examples` rows) of the discovery
 * set; `spearman` is null when it is undefined (fewer than 3 heads, or a constant side). */
export const Faithfulness = z.object({
  reference: z.literal("ablation"),
  spearman: z.number().nullable(),
  examples: z.number().int(),
  heads: z.number().int(),
  seconds: z.number(),
});
export type Faithfulness = z.infer<typeof Faithfulness>;

const Grid = z.array(z.array(z.number().nullable()));
const ModelRecord = ModelInfo.pick({ source: true, family: true, layers: true, heads: true, kvHeads: true, headDim: true, dModel: true }).extend({
  fingerprint: z.object({ config: z.string(), weights: z.string() }),
  params: z.object({ total: z.number().int(), norms: z.number().int(), perHead: z.array(z.array(z.number().int())) }),
});
const Stamp = { version: z.number().int(), ctsftRuntime: z.string(), created: z.string() };

/** The scores file (`kind: "scores"`): R per head (null = not scored), per class, and the model. */
export const ScoresFile = z.object({
  kind: z.literal("scores"),
  ...Stamp,
  method: ScoreMethod,
  settings: z.record(z.string(), z.unknown()),
  n: z.number().int(),
  labels: z.array(z.string()),
  dataset: z.string(),
  seconds: z.number(),
  scores: Grid,
  perClass: z.array(Grid),
  /** cdt runs; null for other scorers (absent in files written before it existed). */
  stability: Stability.nullable().optional(),
  /** null for `ablation` itself or when switched off. */
  faithfulness: Faithfulness.nullable().optional(),
  model: ModelRecord,
  path: z.string().optional(),
});
export type ScoresFile = z.infer<typeof ScoresFile>;

/** How heads are ranked for a circuit. */
export const CircuitStrategy = z.enum(["circuit", "low", "random", "explicit"]);

/** Request of `circuit.select`: a rule (topK, budget or threshold) under a strategy. */
export const SelectRequest = z
  .object({
    /** Path of a scores file. */
    scores: z.string().min(1),
    strategy: CircuitStrategy.default("circuit"),
    topK: z.number().int().positive().optional(),
    /** Fraction of the model's parameters that the heads plus all norms may touch. */
    budget: z.number().positive().max(1).optional(),
    threshold: z.number().optional(),
    /** Heads for `explicit`. */
    heads: z.array(Head).optional(),
    /** @defaultValue `0` */
    seed: z.number().int().default(0),
    out: z.string().optional(),
  })
  .strict();

/** A circuit artifact (`kind: "circuit"`): the selected heads and everything about how. */
export const Circuit = z.object({
  kind: z.literal("circuit"),
  ...Stamp,
  heads: z.array(Head),
  strategy: CircuitStrategy,
  rule: z.object({ topK: z.number().optional(), budget: z.number().optional(), threshold: z.number().optional() }),
  seed: z.number().int(),
  scorer: z.object({ method: ScoreMethod, settings: z.record(z.string(), z.unknown()), n: z.number().int(), labels: z.array(z.string()), dataset: z.string() }),
  scores: Grid,
  params: z.object({ heads: z.number().int(), norms: z.number().int(), trainable: z.number().int(), total: z.number().int(), fraction: z.number() }),
  model: ModelRecord,
  path: z.string().optional(),
});
export type Circuit = z.infer<typeof Circuit>;
