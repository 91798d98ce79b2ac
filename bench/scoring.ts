/**
 * Scoring benchmark: wall time of `cdt` (both attention pattern rules), `ablation` and
 * `attribution` on the same model, data and heads, next to one plain forward pass over that
 * data, all in one run; and for each scorer the figures every run reports: cdt's stability
 * (max |rel| / max |true|) and the Spearman correlation with exact mean-ablation on the whole
 * set. The baseline μ is computed once and shared, so each time is the scorer alone (timed
 * inside the runtime; the faithfulness check is timed separately).
 *
 * Targets (issues 4, 9): cdt ≤ 2 × ablation; attribution ≤ 3 forward passes.
 */
import { Runtime } from "../src/index.ts";
import { tinySetup } from "./fixture.ts";
import type { BenchOptions, BenchResult } from "./main.ts";

export async function run(_: BenchOptions): Promise<BenchResult> {
  await using rt = await Runtime.start();
  const layers = Number(process.env.BENCH_LAYERS ?? 4);
  // Trained on the source language (4 epochs), so heads differ and faithfulness means something.
  const { files, model } = await tinySetup(rt, { layers, heads: 4, dModel: 64 });
  const data = { path: (files.src as Record<string, string>).valid as string }; // 96 examples, balanced
  const { body: base } = await rt.scoring.baseline({ model, data }).finalResult();

  // Plain forward: evaluate runs exactly one forward per batch (median of 3, after a warm-up).
  const forwards: number[] = [];
  for (let i = 0; i < 4; i++) {
    const t0 = performance.now();
    await rt.evaluate({ model, data: [data], batchSize: 32 }).finalResult();
    if (i > 0) forwards.push((performance.now() - t0) / 1000);
  }
  const forward = forwards.sort((a, b) => a - b)[1] as number;

  const seconds: Record<string, number> = {};
  const checks: Record<string, { spearman: number | null; seconds: number; maxRatio: number | null }> = {};
  const runs = [
    ["ablation", { method: "ablation" }],
    ["attribution", { method: "attribution" }],
    ["cdt", { method: "cdt", pattern: "decomposed" }],
    ["cdt_frozen", { method: "cdt", pattern: "frozen" }],
  ] as const;
  for (const [name, how] of runs) {
    process.stderr.write(`scoring with ${name}\n`);
    const { body } = await rt.scoring.score({ model, data, ...how, baseline: base.handle, batchSize: 32, faithfulness: { examples: base.n } }).finalResult();
    seconds[name] = body.seconds;
    if (body.faithfulness) checks[name] = { spearman: body.faithfulness.spearman, seconds: body.faithfulness.seconds, maxRatio: body.stability?.maxRatio ?? null };
  }
  const heads = layers * 4;
  return {
    model: `llama ${layers}x4 heads, d_model 64, trained 4 epochs on the synthetic source`,
    examples: base.n,
    heads,
    forward_s: forward,
    ablation_s: seconds.ablation,
    attribution_s: seconds.attribution,
    cdt_s: seconds.cdt,
    cdt_frozen_s: seconds.cdt_frozen,
    cdt_vs_ablation: (seconds.cdt as number) / (seconds.ablation as number),
    attribution_vs_forward: (seconds.attribution as number) / forward,
    faithfulness: checks,
    targets: { cdt_vs_ablation: "<= 2", attribution_vs_forward: "<= 3" },
  };
}
