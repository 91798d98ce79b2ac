// The Ray executor's driver: `python -m ctsft_runtime.sweep` in the runtime environment with
// the Ray extra on PYTHONPATH. It connects to the cluster and starts the workers (Ray actors,
// each serving a runtime over tcp + CURVE); this module reads what it reports on stdout and
// keeps it alive until the sweep is done: closing its stdin makes it stop the actors.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { BadRequestError } from "../errors.ts";
import type { RayExecutor } from "../schema/sweep.ts";
import { ensurePythonEnv, installedExtra, runtimeEnv } from "./python-env.ts";

/** The Ray executor was asked for but Ray is not installed beside the runtime environment. */
export class RayUnavailableError extends BadRequestError {}

/** One worker as Ray placed it. */
export interface RayWorker {
  index: number;
  /** `tcp://NODE_IP:PORT` of its runtime. */
  endpoint: string;
  /** Its runtime's CURVE public key (Z85), made for this sweep. */
  serverKey: string;
  node: string;
  pid: number;
  actorId: string;
  /** What Ray assigned it (`{ CPU: 1 }`, `{ CPU: 1, GPU: 0.5 }`). */
  resources: Record<string, number>;
  gpuIds: string[];
}

export interface RayLaunchOptions {
  executor: RayExecutor;
  /** The directory the workers confine paths to. */
  root: string;
  /** Never start more workers than this (the number of cells). */
  maxWorkers: number;
  /** The only client key the workers admit. */
  clientPublicKey: string;
  device?: string;
  log?: (line: string) => void;
}

export interface LaunchedRay {
  workers: RayWorker[];
  /** Workers that were asked for but did not come up, and why. */
  failed: { index: number; message: string }[];
  /** Stop the workers and the driver. Idempotent. */
  stop(): Promise<void>;
}

type DriverEvent =
  | { type: "cluster"; workers: number; perWorker: Record<string, number>; cluster: Record<string, number> }
  | ({ type: "worker" } & RayWorker)
  | { type: "worker_failed"; index: number; message: string }
  | { type: "ready"; workers: number }
  | { type: "error"; code: string; message: string };

const STOP_GRACE_MS = 20_000;

/** Start a sweep's workers on the Ray cluster; resolves once they are up. */
export async function launchRay(o: RayLaunchOptions): Promise<LaunchedRay> {
  const lib = installedExtra("ray");
  if (!lib) {
    throw new RayUnavailableError('the ray executor needs Ray, an optional extra of the runtime environment: run `ctsft setup --with ray` (or `setup({ with: ["ray"] })`) first', { path: "executor" });
  }
  const python = await ensurePythonEnv({ log: o.log });
  const args = ["-m", "ctsft_runtime.sweep", ...driverArgs(o)];
  const child = spawn(python, args, { stdio: ["pipe", "pipe", "pipe"], env: runtimeEnv({}, { pythonPath: [lib] }) });
  let stderrTail = "";
  child.stderr!.on("data", (d: Buffer) => {
    stderrTail = (stderrTail + d.toString()).slice(-6000);
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const stop = once(async () => {
    child.stdin!.end();
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  });
  const workers: RayWorker[] = [];
  const failed: { index: number; message: string }[] = [];
  try {
    for await (const line of createInterface({ input: child.stdout! })) {
      const ev = parseLine(line);
      if (!ev) continue;
      if (ev.type === "cluster") o.log?.(`ray: starting ${ev.workers} worker(s) with ${fmt(ev.perWorker)} each at ${o.executor.address} (cluster: ${fmt(ev.cluster)})`);
      else if (ev.type === "worker") {
        const { type: _, ...w } = ev;
        workers.push(w);
        o.log?.(`ray: worker ${w.index} up on ${w.node} (pid ${w.pid}, ${fmt(w.resources)})`);
      } else if (ev.type === "worker_failed") {
        failed.push({ index: ev.index, message: ev.message });
        o.log?.(`ray: worker ${ev.index} did not start: ${ev.message}`);
      } else if (ev.type === "error") throw driverError(ev);
      else if (ev.type === "ready") return { workers, failed, stop };
    }
    const code = await exited;
    throw new BadRequestError(`the Ray driver exited (code ${code}) before its workers were up${tail(stderrTail)}`, { path: "executor" });
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The driver's own arguments (after `-m ctsft_runtime.sweep`). Every value goes in the
 * `--flag=value` form: a Z85 key or a path may begin with "-", which argparse would otherwise
 * take for an option (a key that did failed one sweep in 85). */
export function driverArgs(o: RayLaunchOptions): string[] {
  const e = o.executor;
  const values: [string, string | number | undefined][] = [
    ["address", e.address],
    ["client-key", o.clientPublicKey],
    ["root", o.root],
    ["max-workers", o.maxWorkers],
    ["num-cpus", e.resources.numCpus],
    ["num-gpus", e.resources.numGpus],
    ["start-timeout", e.startTimeoutS],
    ["device", o.device ?? "auto"],
    ["workers", e.workers],
    ["memory", e.resources.memory],
  ];
  const args = values.filter(([, v]) => v !== undefined).map(([flag, v]) => `--${flag}=${v}`);
  for (const [name, amount] of Object.entries(e.resources.custom)) args.push(`--resource=${name}=${amount}`);
  return args;
}

function driverError(ev: { code: string; message: string }): Error {
  if (ev.code === "ray_missing") return new RayUnavailableError(`${ev.message}: run \`ctsft setup --with ray\``, { path: "executor" });
  if (ev.code === "no_cluster") return new BadRequestError(ev.message, { path: "executor.address" });
  return new BadRequestError(ev.message, { path: ev.code === "no_room" ? "executor.resources" : "executor" });
}

function parseLine(line: string): DriverEvent | undefined {
  // Ray may print its own lines on stdout; ours are JSON objects.
  if (!line.startsWith("{")) return undefined;
  try {
    return JSON.parse(line) as DriverEvent;
  } catch {
    return undefined;
  }
}

function fmt(resources: Record<string, number>): string {
  return Object.entries(resources)
    .filter(([k, v]) => v > 0 && !k.startsWith("node:") && k !== "object_store_memory")
    .map(([k, v]) => (k === "memory" ? `memory ${(v / 2 ** 30).toFixed(1)} GiB` : `${k} ${+v.toFixed(3)}`))
    .join(", ");
}

function tail(text: string): string {
  const t = text.trim();
  return t ? `; its last output:\n${t.split("\n").slice(-15).join("\n")}` : "";
}

function once(f: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= f());
}
