import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Command, Option } from "commander";
import { Runtime } from "../api/runtime.ts";
import { BadRequestError } from "../errors.ts";
import type { AdaptConfigInput } from "../schema/adapt.ts";
import type { DataRef } from "../schema/data.ts";
import { runAndPrint } from "./adapt.ts";
import { numberOption, usageError } from "./args.ts";

const MODEL = { family: "llama", layers: 4, heads: 4, dModel: 64 } as const;

/** The NLI demo's target languages (AmericasNLI folders). */
const NLI_TARGETS = ["aym", "gn"] as const;

interface DemoFlags {
  task: "sentiment" | "nli";
  data?: string;
  nusax?: string;
  out?: string;
  seeds: number;
  json: boolean;
}

/**
 * `ctsft demo`: the whole pipeline on the embedded default — the synthetic task with one easy
 * and one hard target language — or, with `--data DIR` (alias `--nusax DIR`), on NusaX-Senti
 * (proxy ind, targets jav and sun); with `--task nli --data DIR`, on a pair-input task:
 * IndoNLI (proxy ind) → AmericasNLI aym and gn. No GPU, no hub: the model is built from scratch.
 */
export function demoCommand(): Command {
  return new Command("demo")
    .summary("the whole CT-SFT pipeline on built-in synthetic languages (or NusaX-Senti, or --task nli: IndoNLI → AmericasNLI) with a report")
    .description(
      "The whole CT-SFT pipeline with every method and a report, on built-in synthetic languages (one easy and one hard target); " +
        "with --data DIR (or --nusax DIR), on NusaX-Senti (proxy ind, targets jav and sun); " +
        "with --task nli --data DIR, on natural language inference: IndoNLI (proxy ind) → AmericasNLI aym and gn, " +
        "DIR holding indonli/{train,valid,test}.jsonl and americasnli/{aym,gn}/{dev,test}.tsv. No GPU, no hub: the model is built from scratch.",
    )
    .usage("[--task sentiment|nli] [--data DIR | --nusax DIR] [--out DIR] [--seeds N] [--json]")
    .addOption(new Option("--task <TASK>", "sentiment (synthetic, or NusaX-Senti with --data) or nli (IndoNLI → AmericasNLI; needs --data)").choices(["sentiment", "nli"]).default("sentiment"))
    .option("--data <DIR>", "sentiment: the NusaX-Senti folder; nli: a folder holding indonli/ and americasnli/")
    .addOption(new Option("--nusax <DIR>", "run on NusaX-Senti from this folder (the same as --data DIR)").conflicts("data"))
    .option("--out <DIR>", "where to write the run and its report (default: a new temporary folder)")
    .addOption(numberOption("--seeds <N>", "training seeds per method", 3))
    .option("--json", "print the whole result as one JSON object on stdout", false)
    .action(async (f: DemoFlags, cmd: Command) => {
      if (f.task === "nli") {
        if (f.nusax !== undefined) usageError(cmd, "--nusax is NusaX-Senti (--task sentiment); for --task nli give --data DIR");
        if (f.data === undefined) usageError(cmd, "--task nli needs --data DIR: a folder holding indonli/ (IndoNLI) and americasnli/ (AmericasNLI)");
      }
      const data = f.data ?? f.nusax;
      if (f.task === "nli") checkNliData(resolve(data as string));
      const out = resolve(f.out ?? mkdtempSync(join(tmpdir(), "ctsft-demo-")));
      const seeds = Array.from({ length: f.seeds }, (_, i) => i);
      if (f.task === "nli") {
        const dir = resolve(data as string);
        await runAndPrint(nliConfig(dir, out, seeds), f.json, "auto", `ctsft demo — NLI: IndoNLI (ind) → AmericasNLI ${NLI_TARGETS.join(", ")}`);
        return;
      }
      const config = data ? nusaxConfig(resolve(data), out, seeds) : await syntheticConfig(out, seeds);
      const title = data ? "ctsft demo — NusaX-Senti: ind → jav, sun" : "ctsft demo — synthetic languages: easy and hard targets";
      await runAndPrint(config, f.json, "auto", title);
    });
}

async function syntheticConfig(out: string, seeds: number[]): Promise<AdaptConfigInput> {
  // The task files are written by the runtime's generator (seeded): a source language and
  // two targets at distance 0.2 (easy: most words shared) and 0.7 (hard).
  const files = await (async () => {
    await using rt = await Runtime.start();
    return (await rt.data.synthetic({ out: join(out, "data"), languages: { src: 0, easy: 0.2, hard: 0.7 }, nTrain: 300, nValid: 96, nTest: 300 })).files;
  })();
  const f = (lang: string, split: string): DataRef => ({ path: (files[lang] as Record<string, string>)[split] as string });
  return {
    model: { ...MODEL, vocab: 800 },
    proxy: { name: "src", train: f("src", "train"), valid: f("src", "valid"), test: f("src", "test") },
    targets: ["easy", "hard"].map((t) => ({ name: t, train: { ...f(t, "train"), limit: 100 }, valid: f(t, "valid"), test: f(t, "test") })),
    competence: { epochs: 4, lr: 3e-3 },
    seeds,
    circuit: { topK: 2, strategy: "auto" },
    out,
  };
}

function nusaxConfig(dir: string, out: string, seeds: number[]): AdaptConfigInput {
  const nx = (lang: string, split: "train" | "valid" | "test"): DataRef => ({ nusax: { lang, split, dir } });
  return {
    model: { ...MODEL, vocab: 2000 },
    proxy: { name: "ind", train: nx("ind", "train"), valid: nx("ind", "valid"), test: nx("ind", "test") },
    targets: ["jav", "sun"].map((t) => ({ name: t, train: { ...nx(t, "train"), limit: 100 }, valid: nx(t, "valid"), test: nx(t, "test") })),
    competence: { epochs: 3, lr: 1e-3 },
    seeds,
    circuit: { topK: 2, strategy: "auto" },
    out,
  };
}

const nliFile = {
  ind: (dir: string) => (split: string) => join(dir, "indonli", `${split}.jsonl`),
  anli: (dir: string) => (lang: string, split: string) => join(dir, "americasnli", lang, `${split}.tsv`),
};

/** Refuse, before any work, a --data folder that lacks a file the NLI demo reads (naming every missing one). */
function checkNliData(dir: string): void {
  const [ind, anli] = [nliFile.ind(dir), nliFile.anli(dir)];
  const files = [...["train", "valid", "test"].map(ind), ...NLI_TARGETS.flatMap((t) => [anli(t, "dev"), anli(t, "test")])];
  const missing = files.filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new BadRequestError(
      `--data ${dir} is not an NLI data folder: missing ${missing.join(", ")} (it needs indonli/{train,valid,test}.jsonl and americasnli/{${NLI_TARGETS.join(",")}}/{dev,test}.tsv)`,
      { path: "--data" },
    );
  }
}

/**
 * The NLI demo, after examples/nli-adapt.yaml: premise/hypothesis pairs (one `fields` map for
 * every file, so the tokenizer of the model built from scratch reads both columns), IndoNLI's
 * e/n/c renamed to AmericasNLI's label names. AmericasNLI has no training split: each target
 * trains on the first rows of its dev file and validates on the rest (dev rows come in
 * threes, one hypothesis per label, so a cut at a multiple of 3 keeps the labels balanced).
 */
function nliConfig(dir: string, out: string, seeds: number[]): AdaptConfigInput {
  const [ind, anli] = [nliFile.ind(dir), nliFile.anli(dir)];
  const fields = { premise: "premise", hypothesis: "hypothesis" };
  const labelMap = { e: "entailment", n: "neutral", c: "contradiction" };
  const proxy = (split: string, limit: number): DataRef => ({ path: ind(split), fields, labelMap, limit });
  return {
    model: { ...MODEL, vocab: 4000 },
    template: "{premise}\nQuestion: {hypothesis}\nAnswer:",
    proxy: { name: "ind", train: proxy("train", 3000), valid: proxy("valid", 600), test: proxy("test", 600) },
    targets: NLI_TARGETS.map((t) => ({
      name: t,
      train: { path: anli(t, "dev"), fields, limit: 150 },
      valid: { path: anli(t, "dev"), fields, skip: 150 },
      test: { path: anli(t, "test"), fields },
    })),
    competence: { epochs: 3, lr: 1e-3 },
    seeds,
    circuit: { topK: 2, strategy: "auto" },
    out,
  };
}
