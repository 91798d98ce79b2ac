import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeFileAtomic } from "../internal/atomic.ts";
import { PACKAGE_ROOT, PY_RUNTIME_DIR } from "../internal/paths.ts";

/** The torch we install. Always pinned: an unpinned torch pulls a multi-GB CUDA build. */
export const TORCH_PIN = "torch==2.13.0";

/** Where the managed environment lives (`CTSFT_VENV` overrides). */
export function venvDir(): string {
  return process.env.CTSFT_VENV ?? join(PACKAGE_ROOT, ".venv");
}

/** The interpreter that runs the runtime: `CTSFT_PYTHON`, else the managed venv's. */
export function runtimePython(): string {
  return process.env.CTSFT_PYTHON ?? join(venvDir(), "bin", "python");
}

/** Environment for a runtime process: our sources first on PYTHONPATH. */
export function runtimeEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const path = [PY_RUNTIME_DIR, process.env.PYTHONPATH].filter(Boolean).join(":");
  // transformers draws tqdm bars on stderr for every load/save; ours are the ones users see.
  return { ...process.env, PYTHONPATH: path, PYTHONUNBUFFERED: "1", HF_HUB_DISABLE_PROGRESS_BARS: "1", TRANSFORMERS_VERBOSITY: "error", ...extra };
}

export interface SetupOptions {
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
  /** Redo every step even when the stamp says it is done. */
  force?: boolean;
}

/** Make sure the runtime's Python environment exists and is current; fast (no network) when
 * it already is. Returns the interpreter path. Safe to call from several processes at once. */
export async function ensurePythonEnv(opts: SetupOptions = {}): Promise<string> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`ctsft setup: ${l}\n`));
  const python = runtimePython();
  const user = process.env.CTSFT_PYTHON !== undefined;
  const stampDir = user ? join(PACKAGE_ROOT, ".ctsft") : venvDir();
  const stampFile = join(stampDir, user ? `stamp-${hash(python)}` : ".ctsft-stamp");
  const want = stamp(python, user);
  if (!opts.force && readOr(stampFile) === want) return python;

  mkdirSync(stampDir, { recursive: true });
  const release = await lock(`${stampDir}/.ctsft-setup.lock`, log);
  try {
    if (!opts.force && readOr(stampFile) === want) return python;
    if (user) {
      if (!existsSync(python)) throw new Error(`CTSFT_PYTHON=${python} does not exist`);
      const torch = spawnSync(python, ["-c", "import torch; print(torch.__version__.split('+')[0])"], { encoding: "utf8" });
      if (torch.status !== 0) {
        throw new Error(`CTSFT_PYTHON=${python} has no torch. Install one (e.g. \`${python} -m pip install ${TORCH_PIN}\`) or unset CTSFT_PYTHON to use a managed environment.`);
      }
      log(`using ${python} (torch ${torch.stdout.trim()}); installing the runtime's other requirements`);
      await pip(python, log, ["install", "-c", constraints(stampDir, `torch==${torch.stdout.trim()}`), "-e", `${PY_RUNTIME_DIR}[dev]`]);
    } else {
      if (!existsSync(python)) {
        const base = process.env.CTSFT_BASE_PYTHON ?? "python3";
        log(`creating ${venvDir()} with ${base}`);
        await run(base, ["-m", "venv", venvDir()], log);
      }
      log(`installing ${TORCH_PIN} (CPU build where available)`);
      await pip(python, log, ["install", TORCH_PIN]);
      log("installing transformers, safetensors, tokenizers, pyzmq, msgspec and ctsft_runtime");
      await pip(python, log, ["install", "-c", constraints(stampDir, TORCH_PIN), "-e", `${PY_RUNTIME_DIR}[dev]`]);
    }
    const check = spawnSync(python, ["-c", "import torch, transformers, zmq, msgspec, safetensors, tokenizers"], { encoding: "utf8", env: runtimeEnv() });
    if (check.status !== 0) throw new Error(`the runtime environment is incomplete after setup:\n${check.stderr}`);
    writeFileAtomic(stampFile, want);
    log("ready");
    return python;
  } finally {
    release();
  }
}

function stamp(python: string, user: boolean): string {
  const pyproject = readFileSync(join(PY_RUNTIME_DIR, "pyproject.toml"), "utf8");
  return hash(JSON.stringify({ python: resolve(python), user, pyproject, torch: TORCH_PIN }));
}

function hash(s: string): string {
  return createHash("sha256").update(s).digest("hex").slice(0, 16);
}

function readOr(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

// A constraints file keeps every later resolution from replacing the pinned torch.
function constraints(dir: string, pin: string): string {
  const file = join(dir, "ctsft-constraints.txt");
  writeFileSync(file, `${pin}\n`);
  return file;
}

function pip(python: string, log: (l: string) => void, args: string[]): Promise<void> {
  return run(python, ["-m", "pip", "--disable-pip-version-check", "-q", ...args], log);
}

function run(cmd: string, args: string[], log: (l: string) => void): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const keep = (d: Buffer) => {
      out = (out + d.toString()).slice(-8000);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.on("error", (e) => reject(new Error(`could not run ${cmd}: ${e.message}`)));
    child.on("exit", (code) => {
      if (code === 0) resolvePromise();
      else {
        log(out);
        reject(new Error(`\`${cmd} ${args.join(" ")}\` failed with exit code ${code}`));
      }
    });
  });
}

// Cross-process lock: mkdir is atomic; the holder's pid inside lets a later setup take over
// a lock whose holder died (a killed `npm test`), instead of waiting on it.
async function lock(dir: string, log: (l: string) => void): Promise<() => void> {
  let announced = false;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, "pid"), String(process.pid));
      return () => rmSync(dir, { recursive: true, force: true });
    } catch {
      if (holderGone(dir)) {
        rmSync(dir, { recursive: true, force: true });
        continue;
      }
      if (!announced) log("waiting for another setup to finish");
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
