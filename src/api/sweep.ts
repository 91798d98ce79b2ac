// Run a grid of cells on an executor: in turn on one runtime (serial, the default), or spread
// over the workers of a Ray cluster, each worker its own runtime in a Ray actor with the
// resources asked for. The cell code is the caller's and the same on both: it gets a Runtime
// and a cell. A cell that throws is reported with its error and the other cells go on.
import { hostname } from "node:os";
import { isAbsolute, resolve } from "node:path";
import { curveKeyPair } from "zeromq";
import { BadRequestError, CtsftError, RuntimeLostError } from "../errors.ts";
import { isInside } from "../internal/paths.ts";
import { Executor, type ExecutorInput, type RayExecutor } from "../schema/sweep.ts";
import { launchRay } from "../transport/launch-ray.ts";
import { Runtime } from "./runtime.ts";

/** Where a cell ran. */
export interface SweepWorker {
  /** `MODE:PID` for the serial executor (`process:PID`, `embedded:PID`, `remote:PID`: the runtime it was given) or `ray:NODE:PID` (a Ray actor). */
  id: string;
  node: string;
  pid: number;
  /** What Ray assigned the worker (`{ CPU: 1 }`); null for the serial executor. */
  resources: Record<string, number> | null;
}

/** Why a cell failed: the error's class name, its wire code when it came from a runtime, its message. */
export interface CellError {
  name: string;
  code: string | null;
  message: string;
}

/** One cell's outcome, in the order of the cells given. */
export type CellOutcome<C, R> = { index: number; cell: C; worker: string; seconds: number } & ({ ok: true; value: R } | { ok: false; error: CellError });

export interface SweepOptions<C, R> {
  /** Where the cells run (default `{ kind: "serial" }`). */
  executor?: ExecutorInput;
  /** The serial executor's runtime (default: one started for the sweep and closed after). */
  runtime?: Runtime;
  /** Called as each cell finishes, in the order they finish. */
  onCell?: (outcome: CellOutcome<C, R>) => void;
  log?: (line: string) => void;
  /** Stops handing out cells; running Ray workers are stopped and the sweep rejects with the reason. */
  signal?: AbortSignal;
}

export interface SweepResult<C, R> {
  executor: "serial" | "ray";
  /** One per cell, in the order of `cells`. */
  outcomes: CellOutcome<C, R>[];
  workers: SweepWorker[];
  /** Wall seconds of the whole sweep, start of the workers included. */
  seconds: number;
  /** Of those, seconds until the workers were ready for cells (Ray: the actors scheduled and
   * their runtimes connected; serial: 0, or the start of a runtime made for the sweep). */
  startSeconds: number;
}

/**
 * Run `run(runtime, cell)` for every cell on the executor. With `{ kind: "ray" }` the workers
 * are Ray actors on the cluster at `address`, each serving a runtime that the SDK connects to
 * (tcp with CURVE keys made for this sweep); idle workers take the next cell. Paths the cells
 * name must be visible to every worker at the same place (a shared filesystem) and lie inside
 * the executor's `root`.
 */
export async function sweep<C, R>(cells: readonly C[], run: (rt: Runtime, cell: C) => Promise<R>, options: SweepOptions<C, R> = {}): Promise<SweepResult<C, R>> {
  const executor = parseExecutor(options.executor);
  const started = performance.now();
  options.signal?.throwIfAborted();
  if (executor.kind === "ray") return rayGrid(cells, run, executor, options, started);
  const own = options.runtime ? undefined : await Runtime.start();
  const rt = (options.runtime ?? own) as Runtime;
  const startSeconds = (performance.now() - started) / 1000;
  try {
    const worker: SweepWorker = { id: `${rt.mode}:${rt.hello.pid}`, node: hostname(), pid: rt.hello.pid, resources: null };
    const outcomes: CellOutcome<C, R>[] = [];
    for (const [index, cell] of cells.entries()) {
      options.signal?.throwIfAborted();
      const outcome = await runOne(rt, worker.id, index, cell, run);
      // The one runtime is gone: no later cell could run, so this is the sweep's error.
      if (!outcome.ok && outcome.thrown instanceof RuntimeLostError) throw outcome.thrown;
      outcomes.push(outcome.result);
      options.onCell?.(outcome.result);
    }
    return { executor: "serial", outcomes, workers: [worker], seconds: (performance.now() - started) / 1000, startSeconds };
  } finally {
    await own?.close();
  }
}

/** Validate an executor as the config does (a `BadRequestError` naming the field). */
export function parseExecutor(input: ExecutorInput | undefined): Executor {
  const r = Executor.safeParse(input ?? { kind: "serial" });
  if (!r.success) {
    const issue = r.error.issues[0];
    const path = ["executor", ...(issue?.path ?? [])].join(".");
    throw new BadRequestError(`${path}: ${issue?.message}`, { path });
  }
  return r.data;
}

/** The directory a Ray executor's workers confine paths to. */
export function rayRoot(executor: RayExecutor): string {
  return resolve(executor.root ?? process.cwd());
}

/** Refuse, before any work, absolute paths a Ray executor's workers would refuse one by one. */
export function checkInsideRoot(executor: Executor, paths: (string | undefined)[]): void {
  if (executor.kind !== "ray") return;
  const root = rayRoot(executor);
  for (const p of paths) {
    if (p === undefined || !isAbsolute(p)) continue;
    if (!isInside(root, p)) {
      throw new BadRequestError(`${p} lies outside the Ray workers' root ${root}; set executor.root to a directory that holds the data, the model and the output, and that every node sees at the same path`, {
        path: "executor.root",
      });
    }
  }
}

async function rayGrid<C, R>(cells: readonly C[], run: (rt: Runtime, cell: C) => Promise<R>, executor: RayExecutor, options: SweepOptions<C, R>, started: number): Promise<SweepResult<C, R>> {
  const keys = curveKeyPair();
  const launched = await launchRay({ executor, root: rayRoot(executor), maxWorkers: Math.max(1, cells.length), clientPublicKey: keys.publicKey, log: options.log });
  const runtimes: Runtime[] = [];
  const stopAll = async () => {
    await Promise.all(runtimes.map((rt) => rt.close()));
    await launched.stop();
  };
  const onAbort = () => void stopAll();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const workers: SweepWorker[] = launched.workers.map((w) => ({ id: `ray:${w.node}:${w.pid}`, node: w.node, pid: w.pid, resources: w.resources }));
    for (const w of launched.workers) runtimes.push(await Runtime.connect(w.endpoint, { serverKey: w.serverKey, clientKeys: keys }));
    const startSeconds = (performance.now() - started) / 1000;
    const outcomes: (CellOutcome<C, R> | undefined)[] = cells.map(() => undefined);
    let next = 0;
    let lastLoss: unknown;
    await Promise.all(
      runtimes.map(async (rt, k) => {
        while (next < cells.length && !options.signal?.aborted) {
          const index = next++;
          const outcome = await runOne(rt, workers[k]!.id, index, cells[index] as C, run);
          if (options.signal?.aborted) return;
          outcomes[index] = outcome.result;
          options.onCell?.(outcome.result);
          if (!outcome.ok && outcome.thrown instanceof RuntimeLostError) {
            // This worker's runtime (its actor or its node) is gone; the others go on.
            lastLoss = outcome.thrown;
            options.log?.(`ray: worker ${workers[k]!.id} lost (${outcome.result.ok ? "" : outcome.result.error.message}); its remaining share goes to the others`);
            return;
          }
        }
      }),
    );
    options.signal?.throwIfAborted();
    const left = outcomes.flatMap((o, index): CellOutcome<C, R>[] =>
      o ? [] : [{ index, cell: cells[index] as C, worker: "none", seconds: 0, ok: false, error: { name: "RuntimeLostError", code: "runtime_lost", message: `no Ray worker left to run it (the last one lost: ${(lastLoss as Error | undefined)?.message ?? "unknown"})` } }],
    );
    for (const o of left) {
      outcomes[o.index] = o;
      options.onCell?.(o);
    }
    return { executor: "ray", outcomes: outcomes as CellOutcome<C, R>[], workers, seconds: (performance.now() - started) / 1000, startSeconds };
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    await stopAll();
  }
}

async function runOne<C, R>(rt: Runtime, worker: string, index: number, cell: C, run: (rt: Runtime, cell: C) => Promise<R>): Promise<{ ok: boolean; thrown?: unknown; result: CellOutcome<C, R> }> {
  const t0 = performance.now();
  try {
    const value = await run(rt, cell);
    return { ok: true, result: { index, cell, worker, seconds: (performance.now() - t0) / 1000, ok: true, value } };
  } catch (e) {
    const error: CellError = { name: e instanceof Error ? e.name : "Error", code: e instanceof CtsftError ? e.code : null, message: e instanceof Error ? e.message : String(e) };
    return { ok: false, thrown: e, result: { index, cell, worker, seconds: (performance.now() - t0) / 1000, ok: false, error } };
  }
}
