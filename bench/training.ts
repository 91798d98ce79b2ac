/**
 * Training-step benchmark: step time and trainable + gradient + optimizer memory of `full`,
 * `ctsft/hook`, `ctsft/delta` and `lora` on the same model and batch (bench/training_step.py,
 * run by the runtime's Python). Targets (issue 5): ctsft/delta step ≤ 0.8 × full; its
 * gradient + optimizer memory ≤ 5% of full's.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { ensurePythonEnv, runtimeEnv } from "../src/transport/python-env.ts";
import type { BenchOptions, BenchResult } from "./main.ts";

export async function run(_: BenchOptions): Promise<BenchResult> {
  const python = await ensurePythonEnv();
  const script = fileURLToPath(new URL("./training_step.py", import.meta.url));
  const r = spawnSync(python, [script], { env: runtimeEnv(), encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  if (r.status !== 0) throw new Error(`training_step.py failed with ${r.status}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1) as string) as BenchResult;
}
