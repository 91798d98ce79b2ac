import { type ChildProcess, spawn } from "node:child_process";
import { ensurePythonEnv, runtimeEnv } from "../transport/python-env.ts";

/** Options of {@link serveRuntime}. */
export interface ServeOptions {
  /** `tcp://HOST:PORT`; control listens on PORT+1 and heartbeats on PORT+2. */
  bind: string;
  /** Key directory from `ctsft keys`: the server's secret key and the authorized clients. */
  keys: string;
  device?: string;
  logLevel?: string;
  /** Every path a client names must lie inside this directory (default: the server's working directory). */
  root?: string;
}

/** Start a runtime that serves remote clients over tcp with CURVE authentication. The
 * runtime exits when this process does. */
export async function serveRuntime(options: ServeOptions): Promise<ChildProcess> {
  const python = await ensurePythonEnv();
  const args = ["-m", "ctsft_runtime", "--bind", options.bind, "--keys", options.keys, "--parent-pid", String(process.pid)];
  args.push("--device", options.device ?? "auto", "--log-level", options.logLevel ?? "INFO");
  if (options.root) args.push("--root", options.root);
  return spawn(python, args, { stdio: ["ignore", "inherit", "inherit"], env: runtimeEnv() });
}
