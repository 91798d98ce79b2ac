/**
 * Scaling benchmark (issue 13), on this machine's CPUs, in one run:
 *
 * - `step_ms_1rank` vs `step_ms_2ranks`: the median optimizer-step time of `full` training on
 *   the same model with the same per-rank batch (8 rows), one runtime process vs 2 gloo ranks
 *   under torchrun (`Runtime.start({ ranks: 2 })`, global batch 16), DDP and FSDP2. Every
 *   process gets one thread (OMP_NUM_THREADS=1), so two ranks use two cores where one rank
 *   uses one: `scaling_efficiency` = step_ms_1rank / step_ms_2ranks (1.0 is perfect: twice the
 *   examples per second). The step time is read from the runtime's own `step` events
 *   (`elapsed`), the first 3 steps skipped as warm-up.
 * - `grid_serial_s` vs `grid_ray_s`: the grid of 6 small runs from bench/grid.ts (serial vs 2
 *   Ray workers), when that benchmark is present.
 */
import { join } from "node:path";
import { Runtime } from "../src/index.ts";
import { tinySetup } from "./fixture.ts";
import type { BenchOptions, BenchResult } from "./main.ts";

const PER_RANK_BATCH = 8;
const WARMUP_STEPS = 3;

function log(line: string): void {
  process.stderr.write(`scale: ${line}\n`);
}

/** Median step time (ms) of one `full` training run on `ranks` ranks. */
async function stepMs(ranks: number, checkpoint: string, train: string, parallel: "ddp" | "fsdp" = "ddp"): Promise<number> {
  await using rt = await Runtime.start({ ranks, device: "cpu" });
  await using model = await rt.models.load({ source: checkpoint });
  // Same number of optimizer steps on each layout: ranks × the rows per epoch.
  const run = rt.train({ model, data: { path: train }, epochs: ranks, batchSize: PER_RANK_BATCH * ranks, lr: 1e-3, parallel });
  const elapsed: number[] = [];
  for await (const event of run) if (event.type === "step") elapsed.push(event.elapsed);
  const steps = elapsed.slice(WARMUP_STEPS).map((t, i) => t - (elapsed[i + WARMUP_STEPS - 1] as number));
  steps.sort((a, b) => a - b);
  const ms = (steps[Math.floor(steps.length / 2)] as number) * 1000;
  log(`${ranks} rank(s) ${ranks > 1 ? parallel : ""}: ${elapsed.length} steps, median ${ms.toFixed(1)} ms/step`);
  return ms;
}

export async function run(options: BenchOptions): Promise<BenchResult> {
  // One thread per process on both layouts (see the module doc); the runtime env inherits it.
  process.env.OMP_NUM_THREADS = "1";
  let checkpoint: string;
  let train: string;
  {
    await using rt = await Runtime.start({ device: "cpu" });
    const { dir, files, model } = await tinySetup(rt, { layers: 4, dModel: 128, nTrain: 320, train: false });
    checkpoint = (await model.save(join(dir, "theta0"))).path;
    train = files.src?.train as string;
  }
  const one = await stepMs(1, checkpoint, train);
  const ddp = await stepMs(2, checkpoint, train, "ddp");
  const fsdp = await stepMs(2, checkpoint, train, "fsdp");
  const result: BenchResult = {
    model: "llama 4 layers x 4 heads, d_model 128 (full fine-tuning, fp32, CPU)",
    per_rank_batch: PER_RANK_BATCH,
    threads_per_rank: 1,
    step_ms_1rank: Number(one.toFixed(1)),
    step_ms_2ranks: Number(ddp.toFixed(1)),
    step_ms_2ranks_fsdp: Number(fsdp.toFixed(1)),
    scaling_efficiency: Number((one / ddp).toFixed(3)),
    scaling_efficiency_fsdp: Number((one / fsdp).toFixed(3)),
  };
  delete process.env.OMP_NUM_THREADS;
  // ---- grid: serial vs Ray executor (bench/grid.ts, written with the Ray sweeps) --------------
  if (options.flags.has("--skip-grid")) return { ...result, grid: "skipped (--skip-grid)" };
  const grid = (await import("./grid.ts").catch((e: unknown) => {
    log(`grid part skipped: bench/grid.ts could not be loaded (${String(e)})`);
    return undefined;
  })) as { gridBench?: () => Promise<Record<string, unknown>> } | undefined;
  if (grid?.gridBench) Object.assign(result, await grid.gridBench());
  else result.grid = "skipped: bench/grid.ts (gridBench) not available";
  return result;
}
