import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Command } from "commander";
import { Runtime } from "../api/runtime.ts";
import type { AdaptConfigInput } from "../schema/adapt.ts";
import type { DataRef } from "../schema/data.ts";
import { runAndPrint } from "./adapt.ts";
import { numberOption } from "./args.ts";

const MODEL = { family: "llama", layers: 4, heads: 4, dModel: 64 } as const;

/**
 * `ctsft demo`: the whole pipeline on the embedded default — the synthetic task with one easy
 * and one hard target language — or, with `--nusax DIR`, on NusaX-Senti (proxy ind, targets
 * jav and sun). No GPU, no hub: the model is built from scratch.
 */
export function demoCommand(): Command {
  return new Command("demo")
    .summary("the whole CT-SFT pipeline on built-in synthetic languages (or --nusax DIR) with a report")
    .description(
      "The whole CT-SFT pipeline with every method and a report, on built-in synthetic languages (one easy and one hard target) " +
        "or, with --nusax DIR, on NusaX-Senti (proxy ind, targets jav and sun). No GPU, no hub: the model is built from scratch.",
    )
    .usage("[--nusax DIR] [--out DIR] [--seeds N] [--json]")
    .option("--nusax <DIR>", "run on NusaX-Senti from this folder instead")
    .option("--out <DIR>", "where to write the run and its report (default: a new temporary folder)")
    .addOption(numberOption("--seeds <N>", "training seeds per method", 3))
    .option("--json", "print the whole result as one JSON object on stdout", false)
    .action(async (f: { nusax?: string; out?: string; seeds: number; json: boolean }) => {
      const out = resolve(f.out ?? mkdtempSync(join(tmpdir(), "ctsft-demo-")));
      const seeds = Array.from({ length: f.seeds }, (_, i) => i);
      const config = f.nusax ? nusaxConfig(resolve(f.nusax), out, seeds) : await syntheticConfig(out, seeds);
      const title = f.nusax ? "ctsft demo — NusaX-Senti: ind → jav, sun" : "ctsft demo — synthetic languages: easy and hard targets";
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
