import { type ChildProcess, spawn } from "node:child_process";
import { ensurePythonEnv, runtimeEnv } from "../transport/python-env.ts";
import { checkRanks, runtimeCommand } from "../transport/ranks.ts";

/** Options of {@link serveRuntime}. Every limit is per client (per CURVE key). */
export interface ServeOptions {
  /** `tcp://HOST:PORT`; control listens on PORT+1 and heartbeats on PORT+2. */
  bind: string;
  /** Key directory from `ctsft keys`: the server's secret key and the authorized clients.
   * It must lie outside `root`. */
  keys: string;
  device?: string;
  logLevel?: string;
  /** Processes (torchrun ranks) on this host, e.g. one per GPU; rank 0 listens (default 1). */
  ranks?: number;
  /** Every path a client names must lie inside this directory (default: the server's
   * working directory). It must exist and must not contain `keys`. */
  root?: string;
  /** Client key names (`clients/NAME.key`) allowed to shut the server down; without one,
   * no client can. */
  admin?: string[];
  /** Seconds after which an idle client's handles and undelivered results are freed (default 600). */
  ttlSeconds?: number;
  /** Models one client may hold at once (default 4). */
  maxModels?: number;
  /** Queued or running jobs per client (default 16). */
  maxJobs?: number;
  /** Largest request message, in bytes (default 64 MiB); larger ones are refused as they are announced. */
  maxMessageBytes?: number;
  /** Bytes of each job's stream kept for re-attaching (default 64 MiB). */
  jobBufferBytes?: number;
  /** Let clients load checkpoints with `trustRemoteCode` (runs their Python on this host). */
  allowRemoteCode?: boolean;
  /** Let clients load models from the Hugging Face hub. */
  allowDownload?: boolean;
}

/** Start a runtime that serves remote clients over tcp with CURVE authentication. The
 * runtime exits when this process does. */
export async function serveRuntime(options: ServeOptions): Promise<ChildProcess> {
  const python = await ensurePythonEnv();
  const command = await runtimeCommand(checkRanks(options.ranks));
  return spawn(python, [...command.args, ...serveArgs(options)], { stdio: ["ignore", "inherit", "inherit"], env: runtimeEnv(command.env) });
}

/** The runtime's own arguments (after `-m ctsft_runtime`). Strings go in the `--flag=value`
 * form: a path or a key name may begin with "-", which argparse would take for an option. */
function serveArgs(o: ServeOptions): string[] {
  const args = [`--bind=${o.bind}`, `--keys=${o.keys}`, "--parent-pid", String(process.pid)];
  args.push(`--device=${o.device ?? "auto"}`, `--log-level=${o.logLevel ?? "INFO"}`);
  if (o.root !== undefined) args.push(`--root=${o.root}`);
  for (const name of o.admin ?? []) args.push(`--admin=${name}`);
  const numbers: [string, number | undefined][] = [
    ["--ttl", o.ttlSeconds],
    ["--max-models", o.maxModels],
    ["--max-jobs", o.maxJobs],
    ["--max-message", o.maxMessageBytes],
    ["--job-buffer", o.jobBufferBytes],
  ];
  for (const [flag, value] of numbers) if (value !== undefined) args.push(flag, String(value));
  if (o.allowRemoteCode) args.push("--allow-remote-code");
  if (o.allowDownload) args.push("--allow-download");
  return args;
}
