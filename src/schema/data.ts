import { z } from "zod";

/** A field of a pair-input example, and the template slot that takes it: `premise` fills `{premise}`. */
export const FieldName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "a field name is an identifier (letters, digits, _; no leading digit)");

/** One example to classify: a text, or for a template with named slots a record of its fields (`{ premise, hypothesis }`). */
export const Example = z.union([z.string(), z.record(FieldName, z.string())]);
export type Example = z.infer<typeof Example>;

const DataOptions = {
  /** Column holding the text (default: text, sentence or content). Not with `fields`. */
  textColumn: z.string().optional(),
  /** Column holding the label (default: label, labels or category). */
  labelColumn: z.string().optional(),
  /**
   * Pair-input tasks: field name → column (`{ premise: "sentence1", hypothesis: "sentence2" }`); each example is then a
   * record of these fields, for a template with one `{field}` slot per field. Files only. Default: the model's task's
   * fields (recorded in `ctsft.json` by training), else one text.
   */
  fields: z.record(FieldName, z.string().min(1)).optional(),
  /** Label as spelled in the file → label name (`{ e: "entailment" }`), so sets that spell labels differently align; every label in the file must be a key. Files only. */
  labelMap: z.record(z.string().min(1), z.string().min(1)).optional(),
  /** The label set and its order, in label names after `labelMap` (default: read from the data, sorted). */
  labels: z.array(z.string()).min(1).optional(),
  format: z.enum(["csv", "tsv", "jsonl"]).optional(),
  /** Drop the first N rows (before `limit`): `{ limit: 300 }` and `{ skip: 300 }` split one file into disjoint parts. */
  skip: z.number().int().nonnegative().optional(),
  /** Keep the first N rows (after `skip`). */
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
  /** The examples' field names (null: single texts). */
  fields: z.array(z.string()).nullable(),
});
export type DatasetInfo = z.infer<typeof DatasetInfo>;

/** Request of `data.load`. */
export const DataLoadRequest = z.object({ data: DataRef }).strict();
/** Result of `data.load`: the handle and the dataset's size and labels. */
export const DataLoadResult = z.object({ handle: z.string(), info: DatasetInfo });

/** The synthetic multilingual task: a source language and targets at chosen distances. */
export const SyntheticRequest = z
  .object({
    /** The folder to write (`<out>/<language>/{train,valid,test}.csv`). */
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
    /** Replace a non-empty `out` that ctsft did not write, those files included (`out` is written whole, as every
     * save: absent, empty or a folder ctsft wrote otherwise). Never the working directory, a remote path root, home,
     * or a parent of them.
     * @defaultValue `false`
     */
    overwrite: z.boolean().default(false),
  })
  .strict();
/** Result of `data.synthetic`: the CSV files per language and split. */
export const SyntheticResult = z.object({
  dir: z.string(),
  files: z.record(z.string(), z.record(z.string(), z.string())),
  labels: z.array(z.string()),
});
