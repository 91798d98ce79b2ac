/**
 * Grid benchmark (issue 13): one grid of 6 small runs (1 target × full, ctsft, norms × 2 seeds
 * on a tiny Llama θ1, through `compareMethods`), run twice in one process: serially on one
 * local runtime, then on 2 Ray workers (a local Ray cluster with 2 CPUs started here, 1 CPU per
 * worker). `grid_serial_s` / `grid_ray_s` are the grid's wall time on each executor (the Ray
 * one includes scheduling the actors and connecting to their runtimes, `grid_ray_start_s`);
 * scoring θ1 and choosing the circuit happen before either and are not counted. The runs'
 * losses are compared too (`grid_max_loss_diff`), so a fast but wrong executor shows.
 *
 * `BENCH_GRID_EPOCHS` (default 2) lengthens every run, to see where Ray's fixed start-up cost
 * stops mattering.
 *
 * `gridBench()` is what `npm run bench -- scale` prints (bench/scale.ts); `npx tsx bench/grid.ts`
 * runs it alone and prints the figures as one JSON line.
 */
import { loadavg } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { type CompareOptions, type CompareResult, compareMethods, Runtime } from "../src/index.ts";
import { startLocalRayCluster } from "../test/ts/helpers/ray-cluster.ts";
import { tinySetup } from "./fixture.ts";
import type { BenchOptions, BenchResult } from "./main.ts";

const EPOCHS = Number(process.env.BENCH_GRID_EPOCHS ?? 2);

export interface GridFigures {
  grid_runs: number;
  grid_epochs: number;
  grid_serial_s: number;
  grid_ray_s: number;
  grid_ray_start_s: number;
  /** grid_ray_s − grid_ray_start_s: the runs themselves, on workers that are up. */
  grid_ray_cells_s: number;
  grid_ray_workers: number;
  /** grid_serial_s / grid_ray_s. */
  grid_speedup: number;
  /** Largest |loss(ray) − loss(serial)| over every step of every run. */
  grid_max_loss_diff: number;
  ray_cluster_start_s: number;
  /** The machine's 1-minute load average when the bench started (other work skews both figures). */
  load_1m: number;
}

export async function gridBench(log: (line: string) => void = (l) => process.stderr.write(`grid: ${l}\n`)): Promise<GridFigures> {
  const load = loadavg()[0] as number;
  await using rt = await Runtime.start();
  const { dir, files, model } = await tinySetup(rt, { dModel: 64, nTrain: 300 });
  const theta1 = (await model.save(join(dir, "theta1"))).path;
  await model.release();
  const target = Object.keys(files).find((l) => l !== "src") as string;
  const f = (lang: string, split: string) => ({ path: files[lang]![split]! });
  const plan: CompareOptions = {
    model: theta1,
    discovery: { ...f("src", "valid"), perClass: 8 },
    sourceTest: f("src", "test"),
    targets: [{ name: target, train: { ...f(target, "train"), limit: 100 }, test: f(target, "test") }],
    methods: ["full", "ctsft", "norms"],
    seeds: [0, 1],
    workDir: dir,
    scorer: "attribution",
    epochs: EPOCHS,
    preservation: false,
  };
  log(`serial: 6 runs on one runtime`);
  const serial = await compareMethods(rt, { ...plan, workDir: join(dir, "serial") });
  const t0 = performance.now();
  const cluster = await startLocalRayCluster(2);
  const clusterStart = (performance.now() - t0) / 1000;
  let ray: CompareResult;
  try {
    log(`ray: 6 runs on 2 workers (cluster ${cluster.address}, up in ${clusterStart.toFixed(1)} s)`);
    ray = await compareMethods(rt, { ...plan, workDir: join(dir, "ray"), executor: { kind: "ray", address: cluster.address, resources: { numCpus: 1 }, workers: 2, root: dir }, log });
  } finally {
    await cluster.stop();
  }
  if (serial.failed.length || ray.failed.length) throw new Error(`runs failed: ${JSON.stringify([...serial.failed, ...ray.failed])}`);
  const diffs = serial.runs.flatMap((s, i) => s.losses.map((loss, j) => Math.abs((ray.runs[i]?.losses[j] ?? Number.NaN) - loss)));
  const round = (x: number) => +x.toFixed(2);
  return {
    grid_runs: serial.runs.length,
    grid_epochs: EPOCHS,
    grid_serial_s: round(serial.executor.seconds),
    grid_ray_s: round(ray.executor.seconds),
    grid_ray_start_s: round(ray.executor.startSeconds),
    grid_ray_cells_s: round(ray.executor.seconds - ray.executor.startSeconds),
    grid_ray_workers: ray.executor.workers.length,
    grid_speedup: round(serial.executor.seconds / ray.executor.seconds),
    grid_max_loss_diff: Math.max(...diffs),
    ray_cluster_start_s: round(clusterStart),
    load_1m: round(load),
  };
}

export async function run(_: BenchOptions): Promise<BenchResult> {
  return { ...(await gridBench()) };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(`${JSON.stringify(await gridBench())}\n`);
  process.exit(0);
}
