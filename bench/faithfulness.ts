/**
 * Faithfulness study on real data: a tiny Llama trained on NusaX ind, heads scored with `cdt`
 * and `ablation` on a balanced validation set; Spearman correlation between the two; then
 * ind test accuracy with the top-k `cdt` circuit mean-ablated, against random circuits of the
 * same size. Needs CTSFT_NUSAX_DIR. Figures are recorded in docs/method.md.
 */
import { join } from "node:path";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { rankHeads, Runtime, spearman } from "../src/index.ts";
import { nusaxTheta1 } from "./fixture.ts";
import type { BenchOptions, BenchResult } from "./main.ts";

export async function run(_: BenchOptions): Promise<BenchResult> {
  const nusax = process.env.CTSFT_NUSAX_DIR;
  if (!nusax) throw new Error("set CTSFT_NUSAX_DIR to the NusaX-Senti directory");
  const k = Number(process.env.BENCH_K ?? 3);
  const dir = mkdtempSync(join(tmpdir(), "ctsft-faith-"));
  await using rt = await Runtime.start();
  const model = await nusaxTheta1(rt, nusax, dir, { epochs: 4 });
  const discovery = { nusax: { lang: "ind", split: "valid" as const, dir: nusax }, perClass: 24 };
  const test = { nusax: { lang: "ind", split: "test" as const, dir: nusax } };
  const { body: base } = await rt.scoring.baseline({ model, data: discovery }).finalResult();
  const scored: Record<string, number[]> = {};
  const paths: Record<string, string> = {};
  const variants = [
    ["cdt", { method: "cdt" }],
    ["cdt_frozen", { method: "cdt", pattern: "frozen" }],
    ["ablation", { method: "ablation" }],
    ["attribution", { method: "attribution" }],
  ] as const;
  for (const [name, how] of variants) {
    const out = join(dir, `${name}.json`);
    const { body } = await rt.scoring.score({ model, data: discovery, ...how, baseline: base.handle, out }).finalResult();
    scored[name] = body.scores.flat().map((x) => x ?? Number.NaN);
    paths[name] = out;
  }
  const accuracy = async (heads?: [number, number][]) =>
    (await rt.evaluate({ model, data: [test], ablate: heads && { heads, baseline: base.handle } }).finalResult()).body.results[0]?.accuracy as number;
  const full = await accuracy();
  const circuit = await rt.circuits.select({ scores: paths.cdt as string, topK: k });
  const circuitAcc = await accuracy(circuit.heads);
  const byAblation = await rt.circuits.select({ scores: paths.ablation as string, topK: k });
  const ablationCircuitAcc = await accuracy(byAblation.heads);
  const randomAcc: number[] = [];
  for (let seed = 0; seed < 10; seed++) {
    const r = await rt.circuits.select({ scores: paths.cdt as string, strategy: "random", topK: k, seed });
    randomAcc.push(await accuracy(r.heads));
  }
  const mean = randomAcc.reduce((a, b) => a + b, 0) / randomAcc.length;
  const std = Math.sqrt(randomAcc.reduce((a, b) => a + (b - mean) ** 2, 0) / (randomAcc.length - 1));
  return {
    model: "llama 4x4 heads, d_model 64, trained 4 epochs on NusaX ind",
    discovery: base.n,
    spearman_cdt_ablation: spearman(scored.cdt as number[], scored.ablation as number[]),
    spearman_cdt_frozen_ablation: spearman(scored.cdt_frozen as number[], scored.ablation as number[]),
    spearman_attribution_ablation: spearman(scored.attribution as number[], scored.ablation as number[]),
    top_cdt: rankHeads(circuit.scores).slice(0, k).map((h) => `L${h.layer}H${h.head}`),
    k,
    test_accuracy_full: full,
    test_accuracy_circuit_ablated: circuitAcc,
    test_accuracy_ablation_circuit_ablated: ablationCircuitAcc,
    test_accuracy_random_ablated_mean: mean,
    test_accuracy_random_ablated_std: std,
    drop_circuit: full - circuitAcc,
    drop_random: full - mean,
  };
}
