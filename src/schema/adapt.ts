import { z } from "zod";
import { DataRef } from "./data.ts";
import { CreateModelRequest } from "./models.ts";
import { ScoreMethod } from "./scoring.ts";
import { Executor } from "./sweep.ts";

const Method = z.enum(["full", "ctsft", "ctsft-low", "random", "norms", "lora"]);

/** A model built from scratch (the demo's; also handy for quick experiments): `model.create`'s
 * geometry; its corpus is the config's proxy and target training files. */
export const NewModelSpec = CreateModelRequest.pick({ family: true, layers: true, heads: true, kvHeads: true, dModel: true, vocab: true, seed: true });

/** The `ctsft adapt` config: everything a run needs, validated field by field. */
export const AdaptConfig = z
  .object({
    /** Base model θ0: a checkpoint directory, a `.gguf` file, a cached hub id — or `{family, layers, …}` to build one. */
    model: z.union([z.string().min(1), NewModelSpec]),
    /** @defaultValue `"auto"` */
    dtype: z.enum(["auto", "float32", "bfloat16", "float16"]).default("auto"),
    /** @defaultValue `"auto"` */
    device: z.string().default("auto"),
    /** The high-resource proxy language: competence tuning, circuit discovery, forgetting (`name` defaults to `"proxy"`). */
    proxy: z.object({ name: z.string().default("proxy"), train: DataRef, valid: DataRef, test: DataRef }).strict(),
    /** Target languages: the few examples to adapt on, a test set, optionally a validation set (needed by strategy auto). */
    targets: z.array(z.object({ name: z.string().min(1), train: DataRef, test: DataRef, valid: DataRef.optional() }).strict()).min(1),
    template: z.string().optional(),
    verbalizer: z.record(z.string(), z.string()).optional(),
    /**
     * Related tasks in the proxy language (e.g. NLI beside sentiment), each with its own data, template and label words:
     * competence tuning trains θ0 on each one's `train` first (in order, then on the proxy), and every θ2 is evaluated on
     * each one's `test`, so forgetting of a task the circuit was not found for is measured too.
     * @defaultValue `[]`
     */
    related: z
      .array(z.object({ name: z.string().min(1), train: DataRef, valid: DataRef.optional(), test: DataRef, template: z.string().optional(), verbalizer: z.record(z.string(), z.string()).optional() }).strict())
      .default([]),
    /**
     * Also measure forgetting as the proxy-language LM loss (mean next-token NLL of the proxy test texts) before and after every run.
     * @defaultValue `true`
     */
    lmLoss: z.boolean().default(true),
    /** Full SFT of θ0 on the proxy first (θ0 → θ1); `false` when the model already is θ1. */
    competence: z
      .union([z.literal(false), z.object({ epochs: z.number().int().positive().default(3), lr: z.number().positive().default(1e-3), batchSize: z.number().int().positive().default(16) }).strict()])
      .default({ epochs: 3, lr: 1e-3, batchSize: 16 }),
    scorer: ScoreMethod.default("cdt"),
    /**
     * When the scorer's faithfulness check on θ1 (Spearman with exact mean-ablation) is below this, the circuits are
     * chosen from exact mean-ablation scores instead (and θ2s re-scored so), with a warning; `null` keeps the scorer's
     * circuit whatever the check says.
     * @defaultValue `0.7` (`ABLATION_BELOW`)
     */
    ablationBelow: z.number().min(-1).max(1).nullable().optional(),
    /**
     * Discovery set: `perClass` proxy validation examples per class.
     * @defaultValue `{ perClass: 24 }`
     */
    discovery: z.object({ perClass: z.number().int().positive().default(24) }).strict().default({ perClass: 24 }),
    /**
     * Circuit size (`topK` heads) and the editing-vs-preserving choice (`strategy`): `circuit` (highest relevance), `low` (near-zero heads), `auto` (per target, by validation accuracy).
     * @defaultValue `{ topK: 2, strategy: "circuit" }`
     */
    circuit: z.object({ topK: z.number().int().positive().default(2), strategy: z.enum(["circuit", "low", "auto"]).default("circuit") }).strict().default({ topK: 2, strategy: "circuit" }),
    /**
     * Re-score every θ2 on the discovery set and report how much of θ1's head relevance it kept (Spearman, top-k overlap); `false` skips the extra scoring pass per run.
     * @defaultValue `true`
     */
    preservation: z.boolean().default(true),
    /** @defaultValue `["full", "ctsft", "ctsft-low", "random", "norms", "lora"]` */
    methods: z.array(Method).min(1).default(["full", "ctsft", "ctsft-low", "random", "norms", "lora"]),
    /** @defaultValue `[0, 1, 2]` */
    seeds: z.array(z.number().int()).min(1).default([0, 1, 2]),
    /**
     * Data-efficiency curves: train every method on the first N examples of each target's training set for each N
     * (e.g. `[25, 50, 100, 200, 400]`; nested subsets, so a larger N adds examples), and report target accuracy and
     * forgetting against N (mean ± std over seeds, paired differences against `full` at each N). Each N must be at
     * most the size of every target's training set. Omitted: the whole training set, once.
     */
    targetSizes: z
      .array(z.number().int().positive())
      .min(1)
      .transform((xs) => [...xs].sort((a, b) => a - b))
      .optional(),
    training: z
      .object({
        /** @defaultValue `3` */
        epochs: z.number().int().positive().default(3),
        /** @defaultValue `16` */
        batchSize: z.number().int().positive().default(16),
        /** @defaultValue `{}` */
        lr: z.partialRecord(Method, z.number().positive()).default({}),
      })
      .strict()
      .default({ epochs: 3, batchSize: 16, lr: {} }),
    /** Output directory (relative to the config file). */
    out: z.string().min(1),
    /**
     * Where the grid's runs (targets × methods × seeds) execute: `{ kind: "serial" }` in turn on this runtime, or `{ kind: "ray", address, resources }` on a Ray cluster's workers (`ctsft setup --with ray`; docs/guide.md, "Sweeps on a Ray cluster").
     * @defaultValue `{ kind: "serial" }`
     */
    executor: Executor.default({ kind: "serial" }),
  })
  .strict()
  .superRefine((c, ctx) => {
    // Training a related task records its prompt as the model's task, which the proxy's training would then inherit.
    if (c.related.length && c.template === undefined) {
      ctx.addIssue({ code: "custom", path: ["template"], message: "with related tasks, give the proxy's template (their training changes the model's recorded one)" });
    }
    if (c.related.some((t) => t.verbalizer) && c.verbalizer === undefined) {
      ctx.addIssue({ code: "custom", path: ["verbalizer"], message: "a related task has a verbalizer: give the proxy's too (else it inherits the related task's)" });
    }
    if (c.circuit.strategy === "auto" && c.targets.some((t) => t.valid === undefined)) {
      ctx.addIssue({ code: "custom", path: ["circuit", "strategy"], message: "strategy auto picks by target validation accuracy: give every target a `valid` set" });
    }
  });
export type AdaptConfig = z.output<typeof AdaptConfig>;
export type AdaptConfigInput = z.input<typeof AdaptConfig>;
