/**
 * The paper's comparison on real data (issue 5): a tiny Llama trained from scratch on NusaX
 * ind (θ1), transferred to jav with 100 target examples by every method, 3 seeds: target
 * accuracy, ind accuracy before/after (forgetting), parameter fraction, paired differences
 * against full fine-tuning. Needs CTSFT_NUSAX_DIR. Tunes nothing: fixed, documented settings.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compareMethods } from "../src/api/compare.ts";
import { Runtime } from "../src/index.ts";
import { nusaxTheta1 } from "./fixture.ts";
import type { BenchOptions, BenchResult } from "./main.ts";

export async function run(_: BenchOptions): Promise<BenchResult> {
  const nusax = process.env.CTSFT_NUSAX_DIR;
  if (!nusax) throw new Error("set CTSFT_NUSAX_DIR to the NusaX-Senti directory");
  const target = process.env.BENCH_TARGET ?? "jav";
  const dir = mkdtempSync(join(tmpdir(), "ctsft-transfer-"));
  await using rt = await Runtime.start();
  const theta1 = await nusaxTheta1(rt, nusax, dir, { epochs: 3 });
  const nx = (lang: string, split: "train" | "valid" | "test") => ({ nusax: { lang, split, dir: nusax } });
  await theta1.save(join(dir, "theta1"));
  const result = await compareMethods(rt, {
    model: join(dir, "theta1"),
    discovery: { ...nx("ind", "valid"), perClass: 24 },
    sourceTest: nx("ind", "test"),
    // 100 target examples: the first 100 rows of jav train (NusaX is parallel, so these are
    // translations of ind training sentences θ1 has seen in Indonesian).
    targets: [{ name: target, train: { ...nx(target, "train"), limit: 100 }, test: nx(target, "test") }],
    methods: ["full", "ctsft", "ctsft-low", "random", "norms", "lora"],
    seeds: [0, 1, 2],
    workDir: dir,
    topK: 2,
    epochs: 3,
    log: (l) => process.stderr.write(`${l}\n`),
  });
  return { model: "llama 4x4 heads, d_model 64, θ1 = 3 epochs on NusaX ind", target, ...result };
}
