import { execFileSync, spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { BadRequestError } from "../errors.ts";
import { PACKAGE_ROOT, PY_RUNTIME_DIR } from "../internal/paths.ts";
import { Connection, type HeartbeatOptions } from "./connection.ts";
import { ipcEndpoints } from "./endpoints.ts";
import { makeIpcDir, removeIpcDir } from "./ipc-dir.ts";
import { ensurePythonEnv } from "./python-env.ts";

/** The embedded mode cannot work on this machine; the message says why and how to fix it. */
export class EmbeddedUnavailableError extends BadRequestError {}

export interface EmbeddedLaunchOptions {
  device: string;
  heartbeat?: Partial<HeartbeatOptions> | undefined;
}

export interface LaunchedEmbedded {
  connection: Connection;
  stop(): Promise<void>;
}

interface Interp {
  import(filename: string, allowReimport: boolean): Promise<unknown>;
  call(module: unknown, fn: string, ...args: unknown[]): Promise<unknown>;
  addImportPath(path: string): void;
}

const FIX = "Use mode \"process\" (the default), or reinstall node-calls-python against this Python: `npm rebuild node-calls-python` with the runtime's python3-config first on PATH.";

/**
 * Runs the runtime inside this Node process through node-calls-python, on a daemon Python
 * thread, and talks to it over the same ipc sockets as the process mode. Guards (DESIGN §4):
 * NODE_CALLS_PYTHON_IGNORE_SIGINT so Ctrl-C still stops Node; only daemon Python threads so
 * Node can exit; the embedded libpython must be the runtime venv's base Python (a mismatch
 * segfaults); only async calls, never callSync, and only to start the server.
 */
export async function launchEmbedded(opts: EmbeddedLaunchOptions): Promise<LaunchedEmbedded> {
  const python = await ensurePythonEnv();
  const probe = spawnSync(python, ["-c", "import sys, sysconfig, site; print(sys.base_prefix); print(sysconfig.get_config_var('LDVERSION')); print(site.getsitepackages()[0])"], { encoding: "utf8" });
  if (probe.status !== 0) throw new EmbeddedUnavailableError(`cannot inspect ${python}: ${probe.stderr}`);
  const [basePrefix = "", ldversion = "", sitePackages = ""] = probe.stdout.trim().split("\n");

  // Resolved from the package root (no import.meta, so the CommonJS build needs no variant).
  const require = createRequire(join(PACKAGE_ROOT, "package.json"));
  let addon: string;
  try {
    addon = join(dirname(require.resolve("node-calls-python")), "build", "Release", "nodecallspython.node");
  } catch {
    throw new EmbeddedUnavailableError(`node-calls-python is not installed (it is an optional dependency and its build needs Python headers and python3-config). ${FIX}`);
  }
  const linked = linkedLibpython(addon);
  if (linked !== undefined && !linked.startsWith(basePrefix)) {
    throw new EmbeddedUnavailableError(`node-calls-python is linked against ${linked}, but the runtime's Python is ${basePrefix} (python ${ldversion}); loading it would crash. ${FIX}`);
  }

  process.env.NODE_CALLS_PYTHON_IGNORE_SIGINT = "1";
  let py: Interp;
  try {
    py = ((await import("node-calls-python")) as unknown as { interpreter: Interp }).interpreter;
  } catch (e) {
    throw new EmbeddedUnavailableError(`node-calls-python failed to load: ${(e as Error).message}. ${FIX}`);
  }
  // The embedded interpreter must see the venv's packages and our sources.
  py.addImportPath(sitePackages);
  py.addImportPath(PY_RUNTIME_DIR);
  const dir = makeIpcDir("ctsft-emb-"); // removed on stop, on exit and on a fatal signal (ipc-dir.ts)
  try {
    // A dotted name (no slash) imports the submodule through the package, relative imports intact.
    const mod = await py.import("ctsft_runtime.embedded", false);
    await py.call(mod, "start", dir, opts.device);
  } catch (e) {
    removeIpcDir(dir);
    throw new EmbeddedUnavailableError(`the embedded runtime failed to start: ${(e as Error).message}`);
  }
  let connection: Connection;
  try {
    connection = await Connection.open({ endpoints: ipcEndpoints(dir), heartbeat: opts.heartbeat });
  } catch (e) {
    removeIpcDir(dir);
    throw e;
  }
  return {
    connection,
    async stop() {
      await Promise.race([connection.controlRequest("req", "shutdown", {}), new Promise((r) => setTimeout(r, 2000))]).catch(() => undefined);
      connection.close();
      removeIpcDir(dir);
    },
  };
}

function linkedLibpython(addon: string): string | undefined {
  try {
    const out = execFileSync("ldd", [addon], { encoding: "utf8" });
    return /libpython[^\s]*\s*=>\s*(\S+)/.exec(out)?.[1];
  } catch {
    return undefined; // no ldd (not Linux): nothing to compare against
  }
}
