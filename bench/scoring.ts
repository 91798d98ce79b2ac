/**
 * Scoring benchmark: wall time of `cdt`, `ablation` and `attribution` on the same model, data
 * and heads, next to one plain forward pass over that data, all in one run. The baseline μ is
 * computed once and shared, so each figure is the scorer alone (timed inside the runtime).
 *
 * Targets (issue 4): cdt ≤ 2 × ablation; attribution ≤ 3 forward passes.
 */
import { Runtime } from "../src/index.ts";
import { tinySetup } from "./fixture.ts";
import type { BenchOptions, BenchResult } from "./main.ts";

export async function run(_: BenchOptions): Promise<BenchResult> {
  await using rt = await Runtime.start();
  const layers = Number(process.env.BENCH_LAYERS ?? 4);
  const { files, model } = await tinySetup(rt, { layers, heads: 4, dModel: 64, train: false });
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
  for (const method of ["ablation", "attribution", "cdt"] as const) {
    process.stderr.write(`scoring with ${method}\n`);
    const { body } = await rt.scoring.score({ model, data, method, baseline: base.handle, batchSize: 32 }).finalResult();
    seconds[method] = body.seconds;
  }
  const heads = layers * 4;
  return {
    model: `llama ${layers}x4 heads, d_model 64`,
    examples: base.n,
    heads,
    forward_s: forward,
    ablation_s: seconds.ablation,
    attribution_s: seconds.attribution,
    cdt_s: seconds.cdt,
    cdt_vs_ablation: (seconds.cdt as number) / (seconds.ablation as number),
    attribution_vs_forward: (seconds.attribution as number) / forward,
    targets: { cdt_vs_ablation: "<= 2", attribution_vs_forward: "<= 3" },
  };
}
