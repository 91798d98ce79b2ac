import { z } from "zod";

const DataOptions = {
  /** Column holding the text (default: text, sentence or content). */
  textColumn: z.string().optional(),
  /** Column holding the label (default: label, labels or category). */
  labelColumn: z.string().optional(),
  /** The label set and its order (default: read from the data, sorted). */
  labels: z.array(z.string()).min(1).optional(),
  format: z.enum(["csv", "tsv", "jsonl"]).optional(),
  /** Keep the first N rows. */
  limit: z.number().int().positive().optional(),
  /** Seeded label-balanced subsample: this many examples of each class. */
  perClass: z.number().int().positive().optional(),
  /**
   * Seed of `perClass` subsampling.
   * @defaultValue `0`
   */
  seed: z.number().int().default(0),
};

/** A dataset: a loaded handle, a CSV/TSV/JSONL file, or a NusaX-Senti language split. */
export const DataRef = z.union([
  z.object({ handle: z.string(), ...DataOptions }).strict(),
  z.object({ path: z.string().min(1), ...DataOptions }).strict(),
  z
    .object({
      nusax: z.object({ lang: z.string(), split: z.enum(["train", "valid", "test"]).default("train"), dir: z.string().optional() }).strict(),
      ...DataOptions,
    })
    .strict(),
]);
export type DataRef = z.input<typeof DataRef>;

/** Size, labels and class counts of a dataset. */
export const DatasetInfo = z.object({
  n: z.number().int(),
  labels: z.array(z.string()),
  classCounts: z.record(z.string(), z.number().int()),
  source: z.string(),
});
export type DatasetInfo = z.infer<typeof DatasetInfo>;

/** Request of `data.load`. */
export const DataLoadRequest = z.object({ data: DataRef }).strict();
/** Result of `data.load`: the handle and the dataset's size and labels. */
export const DataLoadResult = z.object({ handle: z.string(), info: DatasetInfo });

/** The synthetic multilingual task: a source language and targets at chosen distances. */
export const SyntheticRequest = z
  .object({
    out: z.string().min(1),
    /** @defaultValue `0` */
    seed: z.number().int().default(0),
    /** Language name -> distance from the source in [0, 1] (share of vocabulary replaced, affixes, word order); the
     * source itself is a language at distance 0. Default: `{src: 0, easy: 0.2, hard: 0.7}`. */
    languages: z.record(z.string(), z.number().min(0).max(1)).optional(),
    /** @defaultValue `300` */
    nTrain: z.number().int().positive().default(300),
    /** @defaultValue `100` */
    nValid: z.number().int().positive().default(100),
    /** @defaultValue `300` */
    nTest: z.number().int().positive().default(300),
  })
  .strict();
/** Result of `data.synthetic`: the CSV files per language and split. */
export const SyntheticResult = z.object({
  dir: z.string(),
  files: z.record(z.string(), z.record(z.string(), z.string())),
  labels: z.array(z.string()),
});
