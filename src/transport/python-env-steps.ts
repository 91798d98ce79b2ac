// The building blocks every setup step uses: running pip and other tools cancellably, the
// cross-process setup lock, and publishing a finished folder atomically. Internal to
// python-env*.ts; nothing here knows what is being installed.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeFileAtomic } from "../internal/atomic.ts";

/** The file in a managed environment (and in each overlay folder) that records what was installed. */
export const MARKER = "ctsft-env.json";
export const MARKER_SCHEMA = 1;

/** Setup phases, as {@link SetupProgress} reports them. */
export type SetupPhase = "check" | "wait" | "venv" | "deps" | "torch" | "dev" | "ray" | "compile" | "verify" | "ready";

/** One setup call's progress sink and cancellation. */
export interface Ctx {
  emit: (phase: SetupPhase, message: string, quiet?: boolean) => void;
  signal?: AbortSignal | undefined;
  t0: number;
}

/** A sibling folder name for a build of `dir` that only this process uses. */
export function tempSibling(dir: string): string {
  return `${dir}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
}

// Under the lock no other build of `dir` runs, so its temporary and replaced siblings are
// leftovers of a build that was killed: remove them.
export function sweepLeftovers(dir: string): void {
  const name = dir.slice(dirname(dir).length + 1);
  for (const n of readdirSync(dirname(dir))) {
    if (n.startsWith(`${name}.tmp-`) || n.startsWith(`${name}.old-`)) rmSync(join(dirname(dir), n), { recursive: true, force: true });
  }
}

// Move a finished build into place. The old folder (an outdated build) is renamed away first,
// then removed: a reader sees the old environment or the new one, never half of either.
export function publish(tmp: string, dir: string): void {
  let old: string | undefined;
  if (existsSync(dir)) {
    old = `${dir}.old-${process.pid}-${randomBytes(4).toString("hex")}`;
    renameSync(dir, old);
  }
  renameSync(tmp, dir);
  if (old) rmSync(old, { recursive: true, force: true });
}

/** Write a folder's marker last: a folder without one is an unfinished build. */
export function writeMarker(dir: string, body: object): void {
  writeFileAtomic(join(dir, MARKER), `${JSON.stringify({ schema: MARKER_SCHEMA, ...body }, null, 2)}\n`);
}

export function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch {
    return undefined;
  }
}

function readOr(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

export function pip(python: string, ctx: Ctx, args: string[]): Promise<void> {
  return run(python, ["-m", "pip", "--disable-pip-version-check", "-q", ...args], ctx);
}

export function run(cmd: string, args: string[], ctx: Ctx, tolerant = false): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], signal: ctx.signal });
    let out = "";
    const keep = (d: Buffer) => {
      out = (out + d.toString()).slice(-8000);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.on("error", (e) => reject(e.name === "AbortError" ? (ctx.signal?.reason ?? e) : new Error(`could not run ${cmd}: ${e.message}`)));
    child.on("exit", (code) => {
      if (ctx.signal?.aborted) reject(ctx.signal.reason);
      // compileall exits 1 when some file does not compile (test data, py2 leftovers in wheels).
      else if (code === 0 || (tolerant && code === 1)) resolvePromise();
      else reject(new Error(`\`${cmd} ${args.join(" ")}\` failed with exit code ${code}:\n${out}`));
    });
  });
}

// Cross-process lock: mkdir is atomic; the holder's pid inside lets a later setup take over
// a lock whose holder died (a killed `npm test`), instead of waiting on it.
export async function lock(dir: string, ctx: Ctx): Promise<() => void> {
  let announced = false;
  for (;;) {
    ctx.signal?.throwIfAborted();
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, "pid"), String(process.pid));
      return () => rmSync(dir, { recursive: true, force: true });
    } catch {
      if (holderGone(dir)) {
        rmSync(dir, { recursive: true, force: true });
        continue;
      }
      if (!announced) ctx.emit("wait", "waiting for another setup to finish");
      announced = true;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

function holderGone(dir: string): boolean {
  const pid = Number(readOr(join(dir, "pid")));
  if (!pid) {
    // Just created (pid not written yet), or written by a crashed process long ago.
    try {
      return Date.now() - statSync(dir).mtimeMs > 60_000;
    } catch {
      return true;
    }
  }
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ESRCH";
  }
}
