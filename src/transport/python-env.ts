// The runtime's Python environment: where it lives, how it is built, how a process gets it.
//
// A managed environment is a venv in a per-user cache, keyed by the runtime version, the hash of
// the lock file and the torch variant (`~/.cache/ctsft/0.1.0-<lockhash>-cpu` on Linux), so every
// project on the machine shares one and `npm ci` does not delete it. It is built in a temporary
// sibling and renamed into place with a marker (`ctsft-env.json`) saying what was installed;
// a setup that finds the marker current returns at once, spawning nothing.
// The runtime package itself is never installed: `runtimeEnv` puts py_runtime/ on PYTHONPATH,
// so the runtime always matches this SDK. See docs/guide.md, "The Python environment".
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { writeFileAtomic } from "../internal/atomic.ts";
import { PACKAGE_ROOT, PY_RUNTIME_DIR } from "../internal/paths.ts";

/** The torch we install. Always pinned: an unpinned torch pulls a multi-GB CUDA build. */
export const TORCH_VERSION = "2.13.0";
export const TORCH_PIN = `torch==${TORCH_VERSION}`;
/** PyTorch's own index of CPU-only builds, tried first on machines without an NVIDIA GPU. */
export const TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu";
/** Every runtime dependency but torch, exact versions and hashes (py_runtime/lock.sh writes it). */
export const LOCK_FILE = join(PY_RUNTIME_DIR, "requirements.lock");
/** The repository's test tools, locked against {@link LOCK_FILE}; never installed for users. */
export const DEV_LOCK_FILE = join(PY_RUNTIME_DIR, "requirements-dev.lock");
/** The file in a managed environment that records what was installed. */
export const MARKER = "ctsft-env.json";
const MARKER_SCHEMA = 1;
const PROBE_TIMEOUT_S = 3;

export type TorchVariant = "cpu" | "cuda";

/** One step of {@link setup}, as it happens. */
export interface SetupProgress {
  /** `check`: is the environment current; `wait`: another setup holds the lock; `venv`,
   * `deps`, `torch`, `dev`, `compile`, `verify`: building; `ready`: done. */
  phase: "check" | "wait" | "venv" | "deps" | "torch" | "dev" | "compile" | "verify" | "ready";
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
  /** Which torch build (default: `$CTSFT_TORCH`, else CUDA when `nvidia-smi` lists a GPU). */
  torch?: TorchVariant;
}

export interface SetupResult {
  /** The interpreter that runs the runtime. Also the string form of the result. */
  python: string;
  /** The managed environment (undefined with `CTSFT_PYTHON`). */
  envDir?: string;
  /** Extra PYTHONPATH entries for `runtimeEnv` (the dev tools, with `dev`). */
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

/** sha256 of a lock file's bytes, first 12 hex digits: the cache key's lock part. */
export function lockHash(file: string = LOCK_FILE): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex").slice(0, 12);
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
  return { ...process.env, PYTHONPATH: path, PYTHONUNBUFFERED: "1", HF_HUB_DISABLE_PROGRESS_BARS: "1", TRANSFORMERS_VERBOSITY: "error", ...extra };
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

interface Ctx {
  emit: (phase: SetupProgress["phase"], message: string, quiet?: boolean) => void;
  signal?: AbortSignal;
  t0: number;
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
  const devDir = opts.dev ? join(dir, `dev-${lockHash(DEV_LOCK_FILE)}`) : undefined;
  const devCurrent = () => !devDir || existsSync(join(devDir, MARKER));
  let marker = opts.force ? undefined : current();
  if (marker && devCurrent()) {
    if (opts.dev) linkRepoVenv(dir);
    ctx.emit("ready", `${dir} is current (torch ${marker.torch.version})`, true);
    return result(ctx, { python, envDir: dir, pythonPath: devDir ? [join(devDir, "lib")] : [], built: false, torch: marker.torch });
  }

  mkdirSync(dirname(dir), { recursive: true });
  const release = await lock(`${dir}.lock`, ctx);
  try {
    sweep(dir);
    let built = false;
    marker = opts.force ? undefined : current();
    if (!marker) {
      marker = await buildVenv(dir, choice, ctx);
      built = true;
    }
    if (devDir && (opts.force || !devCurrent())) {
      await installDev(python, devDir, ctx);
      built = true;
    }
    if (opts.dev) linkRepoVenv(dir);
    ctx.emit("ready", `ready: ${python} (torch ${marker.torch.version}, ${marker.torch.source})`);
    return result(ctx, { python, envDir: dir, pythonPath: devDir ? [join(devDir, "lib")] : [], built, torch: marker.torch });
  } finally {
    release();
  }
}

async function buildVenv(dir: string, choice: { variant: TorchVariant; reason: string }, ctx: Ctx): Promise<Marker> {
  if (existsSync(dir) && !existsSync(join(dir, "pyvenv.cfg")) && readdirSync(dir).length > 0) {
    throw new Error(`${dir} exists and is not a Python environment; refusing to replace it (move it, or point CTSFT_VENV elsewhere)`);
  }
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
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

// Under the lock no other build of `dir` runs, so its temporary and replaced siblings are
// leftovers of a build that was killed: remove them.
function sweep(dir: string): void {
  const name = dir.slice(dirname(dir).length + 1);
  for (const n of readdirSync(dirname(dir))) {
    if (n.startsWith(`${name}.tmp-`) || n.startsWith(`${name}.old-`)) rmSync(join(dirname(dir), n), { recursive: true, force: true });
  }
}

// Move a finished build into place. The old folder (an outdated build) is renamed away first,
// then removed: a reader sees the old environment or the new one, never half of either.
function publish(tmp: string, dir: string): void {
  let old: string | undefined;
  if (existsSync(dir)) {
    old = `${dir}.old-${process.pid}-${randomBytes(4).toString("hex")}`;
    renameSync(dir, old);
  }
  renameSync(tmp, dir);
  if (old) rmSync(old, { recursive: true, force: true });
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

// The repository's test tools go into their own folder (pip --target), put on PYTHONPATH only
// by the repository's scripts: the environment users share never sees them.
async function installDev(py: string, devDir: string, ctx: Ctx): Promise<void> {
  const tmp = `${devDir}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    mkdirSync(tmp, { recursive: true });
    // What the runtime lock already installs (same pin, same marker) stays out; the dev lock is
    // consistent with it, so anything else is at most the same version twice.
    const have = new Set(lockEntries(readFileSync(LOCK_FILE, "utf8")).map((e) => e.pin));
    const req = join(tmp, "requirements-dev.txt");
    writeFileSync(req, lockEntries(readFileSync(DEV_LOCK_FILE, "utf8")).filter((e) => !have.has(e.pin)).map((e) => e.text).join("\n") + "\n");
    ctx.emit("dev", `installing the test tools (${DEV_LOCK_FILE}) into ${devDir}`);
    await pip(py, ctx, ["install", "--require-hashes", "--no-deps", "--target", join(tmp, "lib"), "-r", req]);
    rmSync(req);
    writeFileAtomic(join(tmp, MARKER), `${JSON.stringify({ schema: MARKER_SCHEMA, devLockHash: lockHash(DEV_LOCK_FILE), createdAt: new Date().toISOString() })}\n`);
    publish(tmp, devDir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
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

/** A lock file's requirements: name, `name==version ; marker` (no hashes), and the full text. */
export function lockEntries(lock: string): { name: string; pin: string; text: string }[] {
  const out: { name: string; pin: string; text: string }[] = [];
  let cur: string[] = [];
  const flush = () => {
    if (!cur.length) return;
    const text = cur.join("\n").replace(/\s*\\\s*$/, "");
    const pin = cur[0]!.replace(/\s*\\\s*$/, "").trim();
    out.push({ name: pin.split(/[=<>!~; ]/)[0]!.toLowerCase().replace(/[-_.]+/g, "-"), pin, text });
    cur = [];
  };
  for (const line of lock.split(/\r?\n/)) {
    if (/^[A-Za-z0-9]/.test(line)) {
      flush();
      cur.push(line);
    } else if (cur.length && /^\s+--hash=/.test(line)) cur.push(line);
    else if (!/^\s+--hash=/.test(line)) flush();
  }
  flush();
  return out;
}

/** A constraints file from a lock: the same pins, without hashes (pip's constraints take none). */
export function constraintsOf(lock: string): string {
  return lockEntries(lock).map((e) => e.pin).join("\n") + "\n";
}

async function userPython(python: string, opts: SetupOptions, ctx: Ctx): Promise<SetupResult> {
  const stateDir = join(ctsftHome(), `python-${createHash("sha256").update(resolve(python)).digest("hex").slice(0, 12)}`);
  const stampFile = join(stateDir, MARKER);
  const want = { runtimeVersion: runtimeVersion(), lockHash: lockHash() };
  const devDir = opts.dev ? join(stateDir, `dev-${lockHash(DEV_LOCK_FILE)}`) : undefined;
  type Stamp = typeof want & { python: string; torch: SetupResult["torch"] };
  const current = () => {
    const s = readJson<Stamp>(stampFile);
    return s && s.runtimeVersion === want.runtimeVersion && s.lockHash === want.lockHash && s.python === resolve(python) && existsSync(python) ? s : undefined;
  };
  const devCurrent = () => !devDir || existsSync(join(devDir, MARKER));
  let stamp = opts.force ? undefined : current();
  if (stamp && devCurrent()) {
    ctx.emit("ready", `${python} is current (torch ${stamp.torch.version})`, true);
    return result(ctx, { python, pythonPath: devDir ? [join(devDir, "lib")] : [], built: false, torch: stamp.torch });
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
    if (devDir && (opts.force || !devCurrent())) {
      await installDev(python, devDir, ctx);
      built = true;
    }
    ctx.emit("ready", `ready: ${python} (torch ${stamp.torch.version})`);
    return result(ctx, { python, pythonPath: devDir ? [join(devDir, "lib")] : [], built, torch: stamp.torch });
  } finally {
    release();
  }
}

function readJson<T>(path: string): T | undefined {
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

function pip(python: string, ctx: Ctx, args: string[]): Promise<void> {
  return run(python, ["-m", "pip", "--disable-pip-version-check", "-q", ...args], ctx);
}

function run(cmd: string, args: string[], ctx: Ctx, tolerant = false): Promise<void> {
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
async function lock(dir: string, ctx: Ctx): Promise<() => void> {
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
