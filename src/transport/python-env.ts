// The runtime's Python environment: where it lives, how it is built, how a process gets it.
//
// A managed environment is a venv in a per-user cache, keyed by the runtime version, the hash of
// the lock file and the torch variant (`~/.cache/ctsft/0.1.0-<lockhash>-cpu` on Linux), so every
// project on the machine shares one and `npm ci` does not delete it. It is built in a temporary
// sibling and renamed into place with a marker (`ctsft-env.json`) saying what was installed;
// a setup that finds the marker current returns at once, spawning nothing.
// The runtime package itself is never installed: `runtimeEnv` puts py_runtime/ on PYTHONPATH,
// so the runtime always matches this SDK. See docs/guide.md, "The Python environment".
// Beside it: the lock files (python-env-locks.ts), the overlays that the test tools and the
// optional extras such as Ray are installed into (python-env-extras.ts), and the process and
// folder steps every build uses (python-env-steps.ts).
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { writeFileAtomic } from "../internal/atomic.ts";
import { PACKAGE_ROOT, PY_RUNTIME_DIR } from "../internal/paths.ts";
import { EXTRAS, type Extra, installOverlay, type Overlay, overlayCurrent, overlayDir, overlayLib } from "./python-env-extras.ts";
import { constraintsOf, LOCK_FILE, lockHash } from "./python-env-locks.ts";
import { type Ctx, lock, MARKER, MARKER_SCHEMA, pip, publish, readJson, run, type SetupPhase, sweepLeftovers, tempSibling } from "./python-env-steps.ts";

export { EXTRAS, type Extra } from "./python-env-extras.ts";
export { constraintsOf, DEV_LOCK_FILE, LOCK_FILE, lockEntries, lockHash, RAY_LOCK_FILE } from "./python-env-locks.ts";
export { MARKER } from "./python-env-steps.ts";

/** The torch we install. Always pinned: an unpinned torch pulls a multi-GB CUDA build. */
export const TORCH_VERSION = "2.13.0";
export const TORCH_PIN = `torch==${TORCH_VERSION}`;
/** PyTorch's own index of CPU-only builds, tried first on machines without an NVIDIA GPU. */
export const TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu";
const PROBE_TIMEOUT_S = 3;

export type TorchVariant = "cpu" | "cuda";

/** One step of {@link setup}, as it happens. */
export interface SetupProgress {
  /** `check`: is the environment current; `wait`: another setup holds the lock; `venv`,
   * `deps`, `torch`, `dev`, `ray`, `compile`, `verify`: building; `ready`: done. */
  phase: SetupPhase;
  message: string;
  /** Milliseconds since setup started. */
  elapsedMs: number;
}

export interface SetupOptions {
  /** Progress lines (default: stderr, unless `onProgress` is given). */
  log?: (line: string) => void;
  /** Typed progress events. */
  onProgress?: (event: SetupProgress) => void;
  /** Cancels a build: the running pip is killed and the temporary environment removed. */
  signal?: AbortSignal;
  /** Rebuild even when the marker says the environment is current. */
  force?: boolean;
  /** Also install the repository's test tools (pytest, hypothesis, ruff) from the dev lock, into
   * a separate folder that only `runtimeEnv` with the result's `pythonPath` sees. */
  dev?: boolean;
  /** Optional extras, each installed from its own lock into a folder beside the environment
   * that only `runtimeEnv` with the result's `pythonPath` sees: `ray` (sweeps on a Ray cluster,
   * `executor: { kind: "ray" }`; py_runtime/requirements-ray.lock). The default path needs none. */
  with?: Extra[];
  /** Which torch build (default: `$CTSFT_TORCH`, else CUDA when `nvidia-smi` lists a GPU). */
  torch?: TorchVariant;
}

export interface SetupResult {
  /** The interpreter that runs the runtime. Also the string form of the result. */
  python: string;
  /** The managed environment (undefined with `CTSFT_PYTHON`). */
  envDir?: string;
  /** Extra PYTHONPATH entries for `runtimeEnv` (the dev tools with `dev`, each extra of `with`). */
  pythonPath: string[];
  /** Whether this call built or installed anything (false: it was already current). */
  built: boolean;
  torch: { variant: TorchVariant; version: string; source: string };
  elapsedMs: number;
  toString(): string;
}

interface Marker {
  schema: number;
  runtimeVersion: string;
  lockHash: string;
  torch: { variant: TorchVariant; version: string; source: string };
  python: { base: string; version: string };
  packages: string[];
  createdAt: string;
}

/** The runtime package's version (py_runtime/pyproject.toml). */
export function runtimeVersion(): string {
  const m = /^version\s*=\s*"([^"]+)"/m.exec(readFileSync(join(PY_RUNTIME_DIR, "pyproject.toml"), "utf8"));
  if (!m) throw new Error("py_runtime/pyproject.toml has no version");
  return m[1]!;
}

/** Where managed environments live: `$CTSFT_HOME`, else the platform's per-user cache + `ctsft`
 * (`$XDG_CACHE_HOME` or `~/.cache` on Linux, `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on
 * Windows). */
export function ctsftHome(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform, home: string = homedir()): string {
  if (env.CTSFT_HOME) return resolve(env.CTSFT_HOME);
  if (platform === "darwin") return join(home, "Library", "Caches", "ctsft");
  if (platform === "win32") return join(env.LOCALAPPDATA ?? join(home, "AppData", "Local"), "ctsft");
  return join(env.XDG_CACHE_HOME || join(home, ".cache"), "ctsft");
}

/** The cache key of a managed environment: `<runtime version>-<lock hash>-<torch variant>`. */
export function envKey(variant: TorchVariant, lock: string = LOCK_FILE): string {
  return `${runtimeVersion()}-${lockHash(lock)}-${variant}`;
}

let detected: { variant: TorchVariant; reason: string } | undefined;

/** Which torch build fits this machine: `$CTSFT_TORCH` (`cpu` or `cuda`) if set, else CUDA when
 * `nvidia-smi -L` runs and lists a GPU, else CPU. */
export function detectTorchVariant(): { variant: TorchVariant; reason: string } {
  const forced = process.env.CTSFT_TORCH;
  if (forced) {
    if (forced !== "cpu" && forced !== "cuda") throw new Error(`CTSFT_TORCH must be cpu or cuda, not ${JSON.stringify(forced)}`);
    return { variant: forced, reason: `CTSFT_TORCH=${forced}` };
  }
  if (!detected) {
    const r = process.platform === "darwin" ? undefined : spawnSync("nvidia-smi", ["-L"], { encoding: "utf8", timeout: 10_000 });
    detected = r?.status === 0 && /^GPU \d+/m.test(r.stdout) ? { variant: "cuda", reason: `nvidia-smi: ${r.stdout.trim().split("\n")[0]}` } : { variant: "cpu", reason: "no NVIDIA GPU (nvidia-smi absent or lists none)" };
  }
  return detected;
}

/** The managed environment's folder: `$CTSFT_VENV`, else `<ctsftHome()>/<envKey()>`. */
export function venvDir(variant: TorchVariant = detectTorchVariant().variant): string {
  return process.env.CTSFT_VENV ? resolve(process.env.CTSFT_VENV) : join(ctsftHome(), envKey(variant));
}

function venvPython(dir: string): string {
  return process.platform === "win32" ? join(dir, "Scripts", "python.exe") : join(dir, "bin", "python");
}

/** The interpreter that runs the runtime: `CTSFT_PYTHON`, else the managed venv's. */
export function runtimePython(): string {
  return process.env.CTSFT_PYTHON ?? venvPython(venvDir());
}

/** Environment for a runtime process: our sources first on PYTHONPATH (the runtime package is
 * not installed anywhere), then `pythonPath` (a setup result's, for the dev tools). */
export function runtimeEnv(extra: NodeJS.ProcessEnv = {}, opts: { pythonPath?: string[] } = {}): NodeJS.ProcessEnv {
  const path = [PY_RUNTIME_DIR, ...(opts.pythonPath ?? []), process.env.PYTHONPATH].filter(Boolean).join(delimiter);
  // transformers draws tqdm bars on stderr for every load/save; ours are the ones users see.
  // PYTHONSAFEPATH: `python -m` would put the user's working directory first on sys.path, and
  // a `csv.py` or `zmq.py` there would replace the module the runtime imports.
  return { ...process.env, PYTHONPATH: path, PYTHONSAFEPATH: "1", PYTHONUNBUFFERED: "1", HF_HUB_DISABLE_PROGRESS_BARS: "1", TRANSFORMERS_VERBOSITY: "error", ...extra };
}

/** Make sure the runtime's Python environment exists and is current, building it if not, and
 * return the interpreter path. Fast (no process spawned, no network) when it already is. */
export async function ensurePythonEnv(opts: SetupOptions = {}): Promise<string> {
  return (await setup(opts)).python;
}

/**
 * Create or update the runtime's Python environment (what `ctsft setup` does): idempotent, safe
 * to run from several processes at once (one builds, the others wait and reuse), cancellable.
 * With `CTSFT_PYTHON`, that interpreter (which must have torch) gets the locked requirements;
 * otherwise a venv in the per-user cache (or `CTSFT_VENV`) is built from the lock.
 */
export async function setup(opts: SetupOptions = {}): Promise<SetupResult> {
  const t0 = Date.now();
  const log = opts.log ?? (opts.onProgress ? undefined : (l: string) => process.stderr.write(`ctsft setup: ${l}\n`));
  const emit = (phase: SetupProgress["phase"], message: string, quiet = false) => {
    const ev = { phase, message, elapsedMs: Date.now() - t0 };
    opts.onProgress?.(ev);
    // An environment that is already current is not news on stderr (every Runtime.start asks).
    if (!quiet) log?.(message);
  };
  const ctx: Ctx = { emit, signal: opts.signal, t0 };
  opts.signal?.throwIfAborted();
  return process.env.CTSFT_PYTHON !== undefined ? userPython(process.env.CTSFT_PYTHON, opts, ctx) : managed(opts, ctx);
}

function result(ctx: Ctx, r: Omit<SetupResult, "elapsedMs" | "toString">): SetupResult {
  return { ...r, elapsedMs: Date.now() - ctx.t0, toString: () => r.python };
}

async function managed(opts: SetupOptions, ctx: Ctx): Promise<SetupResult> {
  const choice = opts.torch ? { variant: opts.torch, reason: "asked for" } : detectTorchVariant();
  const dir = venvDir(choice.variant);
  const python = venvPython(dir);
  const want = { runtimeVersion: runtimeVersion(), lockHash: lockHash(), variant: choice.variant };
  const current = () => {
    const m = readJson<Marker>(join(dir, MARKER));
    return m && m.schema === MARKER_SCHEMA && m.runtimeVersion === want.runtimeVersion && m.lockHash === want.lockHash && m.torch.variant === want.variant && existsSync(python) ? m : undefined;
  };
  const overlays = wantedOverlays(opts, dir);
  let marker = opts.force ? undefined : current();
  if (marker && overlays.every((o) => overlayCurrent(o.dir))) {
    if (opts.dev) linkRepoVenv(dir);
    ctx.emit("ready", `${dir} is current (torch ${marker.torch.version})`, true);
    return result(ctx, { python, envDir: dir, pythonPath: overlays.map((o) => overlayLib(o.dir)), built: false, torch: marker.torch });
  }

  mkdirSync(dirname(dir), { recursive: true });
  const release = await lock(`${dir}.lock`, ctx);
  try {
    sweepLeftovers(dir);
    let built = false;
    marker = opts.force ? undefined : current();
    if (!marker) {
      marker = await buildVenv(dir, choice, ctx);
      built = true;
    }
    built = (await installOverlays(python, overlays, opts, ctx)) || built;
    if (opts.dev) linkRepoVenv(dir);
    ctx.emit("ready", `ready: ${python} (torch ${marker.torch.version}, ${marker.torch.source})`);
    return result(ctx, { python, envDir: dir, pythonPath: overlays.map((o) => overlayLib(o.dir)), built, torch: marker.torch });
  } finally {
    release();
  }
}

async function buildVenv(dir: string, choice: { variant: TorchVariant; reason: string }, ctx: Ctx): Promise<Marker> {
  if (existsSync(dir) && !existsSync(join(dir, "pyvenv.cfg")) && readdirSync(dir).length > 0) {
    throw new Error(`${dir} exists and is not a Python environment; refusing to replace it (move it, or point CTSFT_VENV elsewhere)`);
  }
  const tmp = tempSibling(dir);
  try {
    const base = process.env.CTSFT_BASE_PYTHON ?? (process.platform === "win32" ? "python" : "python3");
    ctx.emit("venv", `creating ${dir} with ${base}`);
    await run(base, ["-m", "venv", tmp], ctx);
    const py = venvPython(tmp);
    ctx.emit("deps", `installing the locked requirements (${LOCK_FILE}, --require-hashes)`);
    await pip(py, ctx, ["install", "--require-hashes", "--no-deps", "--no-compile", "-r", LOCK_FILE]);

    const source = await torchSource(py, choice.variant, ctx);
    ctx.emit("torch", `installing ${TORCH_PIN}, ${choice.variant === "cuda" ? "CUDA" : "CPU"} build (${choice.reason}), from ${source.label}`);
    const cons = join(tmp, "ctsft-constraints.txt");
    writeFileSync(cons, constraintsOf(readFileSync(LOCK_FILE, "utf8")));
    await pip(py, ctx, ["install", "--no-compile", "-c", cons, ...source.args, TORCH_PIN]);

    ctx.emit("compile", "compiling bytecode");
    // Compiled for the final path, so tracebacks name the files where they will be.
    const lib = join(tmp, process.platform === "win32" ? "Lib" : "lib");
    await run(py, ["-m", "compileall", "-q", "-j", "0", "-s", tmp, "-p", dir, lib], ctx, true);
    relocate(tmp, dir);

    ctx.emit("verify", "checking that the runtime imports");
    const info = verify(py);
    if (choice.variant === "cpu" && info.cuda) ctx.emit("torch", `note: ${source.label} gave a CUDA build of torch (${info.torch}); it runs on the CPU here`);
    const marker: Marker = {
      schema: MARKER_SCHEMA,
      runtimeVersion: runtimeVersion(),
      lockHash: lockHash(),
      torch: { variant: choice.variant, version: info.torch, source: source.label },
      python: { base, version: info.python },
      packages: info.packages,
      createdAt: new Date().toISOString(),
    };
    writeFileAtomic(join(tmp, MARKER), `${JSON.stringify(marker, null, 2)}\n`);
    publish(tmp, dir);
    return marker;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

// A venv names its own path in its scripts' shebangs, activate scripts and pyvenv.cfg: point
// them at the final folder before the rename (we run everything as `python -m`, but users may not).
function relocate(tmp: string, dir: string): void {
  const bin = join(tmp, process.platform === "win32" ? "Scripts" : "bin");
  for (const f of [...readdirSync(bin).map((n) => join(bin, n)), join(tmp, "pyvenv.cfg")]) {
    try {
      const st = lstatSync(f);
      if (!st.isFile() || st.size > 1 << 20) continue;
      const text = readFileSync(f);
      if (text.includes(0) || !text.includes(tmp)) continue;
      writeFileSync(f, text.toString("utf8").split(tmp).join(dir));
    } catch {
      // A script we cannot rewrite still runs as `python -m`.
    }
  }
}

/** Where to get torch: CUDA from the plain index (on Linux its torch is the CUDA build);
 * CPU from PyTorch's CPU index when it answers within a few seconds, else the plain index.
 * `$CTSFT_TORCH_INDEX` overrides both. */
async function torchSource(py: string, variant: TorchVariant, ctx: Ctx): Promise<{ args: string[]; label: string }> {
  const forced = process.env.CTSFT_TORCH_INDEX;
  if (forced) return { args: ["--index-url", forced], label: `${forced} (CTSFT_TORCH_INDEX)` };
  if (variant === "cuda") return { args: [], label: "the default index" };
  // Python's urllib, not fetch: it honours the same proxy variables pip does.
  const probe = spawnSync(py, ["-c", `import urllib.request; urllib.request.urlopen(${JSON.stringify(`${TORCH_CPU_INDEX}/torch/`)}, timeout=${PROBE_TIMEOUT_S})`], { encoding: "utf8", timeout: (PROBE_TIMEOUT_S + 5) * 1000 });
  ctx.signal?.throwIfAborted();
  if (probe.status === 0) return { args: ["--index-url", TORCH_CPU_INDEX], label: TORCH_CPU_INDEX };
  const why = (probe.stderr ?? "").trim().split("\n").pop() || "timed out";
  ctx.emit("torch", `${TORCH_CPU_INDEX} is unreachable (${why}); using the default index`);
  return { args: [], label: "the default index (PyTorch's CPU index unreachable)" };
}

function verify(py: string): { torch: string; cuda: boolean; python: string; packages: string[] } {
  const code = [
    "import json, sys, importlib.metadata as md",
    "import torch, transformers, tokenizers, safetensors, zmq, msgspec, numpy, huggingface_hub, accelerate, peft, gguf, ctsft_runtime",
    "print(json.dumps({'torch': torch.__version__, 'cuda': torch.version.cuda is not None, 'python': sys.version.split()[0],",
    "  'packages': sorted(f\"{d.metadata['Name']}=={d.version}\" for d in md.distributions() if d.metadata['Name'] != 'ctsft-runtime')}))",
  ].join("\n");
  const r = spawnSync(py, ["-c", code], { encoding: "utf8", env: runtimeEnv() });
  if (r.status !== 0) throw new Error(`the runtime environment is incomplete after setup:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

// A checkout's `.venv` (docs and examples name `.venv/bin/python`) points at the cached
// environment: created when absent, updated when it is our own link to an older one.
function linkRepoVenv(dir: string): void {
  const link = join(PACKAGE_ROOT, ".venv");
  if (!existsSync(join(PACKAGE_ROOT, ".git")) || process.platform === "win32") return;
  try {
    const st = lstatSync(link, { throwIfNoEntry: false });
    if (st && !(st.isSymbolicLink() && readlinkSync(link) !== dir)) return;
    if (st) unlinkSync(link);
    symlinkSync(dir, link);
  } catch {
    // Another setup made it meanwhile, or the checkout is read-only: the link is a convenience.
  }
}

async function userPython(python: string, opts: SetupOptions, ctx: Ctx): Promise<SetupResult> {
  const stateDir = userPythonState(python);
  const stampFile = join(stateDir, MARKER);
  const want = { runtimeVersion: runtimeVersion(), lockHash: lockHash() };
  const overlays = wantedOverlays(opts, stateDir);
  type Stamp = typeof want & { python: string; torch: SetupResult["torch"] };
  const current = () => {
    const s = readJson<Stamp>(stampFile);
    return s && s.runtimeVersion === want.runtimeVersion && s.lockHash === want.lockHash && s.python === resolve(python) && existsSync(python) ? s : undefined;
  };
  let stamp = opts.force ? undefined : current();
  if (stamp && overlays.every((o) => overlayCurrent(o.dir))) {
    ctx.emit("ready", `${python} is current (torch ${stamp.torch.version})`, true);
    return result(ctx, { python, pythonPath: overlays.map((o) => overlayLib(o.dir)), built: false, torch: stamp.torch });
  }
  mkdirSync(stateDir, { recursive: true });
  const release = await lock(join(stateDir, "setup.lock"), ctx);
  try {
    let built = false;
    stamp = opts.force ? undefined : current();
    if (!stamp) {
      if (!existsSync(python)) throw new Error(`CTSFT_PYTHON=${python} does not exist`);
      const torch = spawnSync(python, ["-c", "import torch; print(torch.__version__, torch.version.cuda is not None)"], { encoding: "utf8" });
      if (torch.status !== 0) {
        throw new Error(`CTSFT_PYTHON=${python} has no torch. Install one (e.g. \`${python} -m pip install ${TORCH_PIN}\`) or unset CTSFT_PYTHON to use a managed environment.`);
      }
      const [version, cuda] = torch.stdout.trim().split(" ");
      ctx.emit("deps", `using ${python} (torch ${version}); installing the runtime's locked requirements into it`);
      await pip(python, ctx, ["install", "--require-hashes", "--no-deps", "-r", LOCK_FILE]);
      ctx.emit("verify", "checking that the runtime imports");
      verify(python);
      stamp = { ...want, python: resolve(python), torch: { variant: cuda === "True" ? "cuda" : "cpu", version: version!, source: "CTSFT_PYTHON" } };
      writeFileAtomic(stampFile, `${JSON.stringify(stamp, null, 2)}\n`);
      built = true;
    }
    built = (await installOverlays(python, overlays, opts, ctx)) || built;
    ctx.emit("ready", `ready: ${python} (torch ${stamp.torch.version})`);
    return result(ctx, { python, pythonPath: overlays.map((o) => overlayLib(o.dir)), built, torch: stamp.torch });
  } finally {
    release();
  }
}

// A CTSFT_PYTHON is not ours to change beyond the locked requirements: what setup records about
// it, and its overlays, live in a folder of our cache named by the interpreter's path.
function userPythonState(python: string): string {
  return join(ctsftHome(), `python-${createHash("sha256").update(resolve(python)).digest("hex").slice(0, 12)}`);
}

/** The overlays a setup call asks for, each with its folder under `base`. */
function wantedOverlays(opts: SetupOptions, base: string): { name: Overlay; dir: string }[] {
  for (const name of opts.with ?? []) {
    if (!(EXTRAS as readonly string[]).includes(name)) throw new Error(`unknown extra ${JSON.stringify(name)}: setup knows ${EXTRAS.join(", ")}`);
  }
  const names: Overlay[] = [...(opts.dev ? ["dev" as const] : []), ...new Set(opts.with ?? [])];
  return names.map((name) => ({ name, dir: overlayDir(base, name) }));
}

/** Install the overlays that are missing (all of them with `force`); whether any was. */
async function installOverlays(python: string, overlays: { name: Overlay; dir: string }[], opts: SetupOptions, ctx: Ctx): Promise<boolean> {
  let built = false;
  for (const o of overlays) {
    if (!opts.force && overlayCurrent(o.dir)) continue;
    await installOverlay(python, o.name, o.dir, ctx);
    built = true;
  }
  return built;
}

/**
 * The PYTHONPATH entry of an installed extra, without installing anything (undefined when
 * `ctsft setup --with NAME` has not installed it for the current environment). For callers that
 * must not reach the network on their own, such as the Ray executor.
 */
export function installedExtra(name: Extra): string | undefined {
  const base = process.env.CTSFT_PYTHON !== undefined ? userPythonState(process.env.CTSFT_PYTHON) : venvDir();
  const dir = overlayDir(base, name);
  return overlayCurrent(dir) ? overlayLib(dir) : undefined;
}
