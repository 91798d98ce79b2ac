import { type ChildProcess, spawn } from "node:child_process";
import { RuntimeLostError } from "../errors.ts";
import { Connection, type HeartbeatOptions } from "./connection.ts";
import { ipcEndpoints } from "./endpoints.ts";
import { makeIpcDir, removeIpcDir } from "./ipc-dir.ts";
import { ensurePythonEnv, runtimeEnv } from "./python-env.ts";
import { runtimeCommand } from "./ranks.ts";

export interface ProcessLaunchOptions {
  device: string;
  heartbeat?: Partial<HeartbeatOptions> | undefined;
  /** Forward the runtime's stderr (logs) to ours instead of keeping only its tail. */
  inheritStderr?: boolean | undefined;
  logLevel?: string | undefined;
  /** Processes (torchrun ranks) on this host; 1 (default) is a single `python -m ctsft_runtime`. */
  ranks?: number | undefined;
}

/** A runtime in a child process, spoken to over ipc:// sockets in a private directory (removed
 * when the child exits, and when Node exits or is killed by a signal: see ipc-dir.ts). */
export interface LaunchedProcess {
  connection: Connection;
  child: ChildProcess;
  /** Ask the runtime to stop, wait for it (then kill it), and clean up. */
  stop(graceMs?: number): Promise<void>;
}

export async function launchProcess(opts: ProcessLaunchOptions): Promise<LaunchedProcess> {
  const python = await ensurePythonEnv();
  const command = await runtimeCommand(opts.ranks ?? 1);
  const dir = makeIpcDir("ctsft-");
  // With ranks the child is torchrun's agent: it exits when any rank does (and then stops the
  // others), so the exit handling below covers a dead rank too.
  const args = [...command.args, "--ipc-dir", dir, "--parent-pid", String(process.pid), "--device", opts.device];
  if (opts.logLevel) args.push("--log-level", opts.logLevel);
  let child: ChildProcess;
  try {
    child = spawn(python, args, {
      stdio: ["ignore", "ignore", opts.inheritStderr ? "inherit" : "pipe"],
      env: runtimeEnv(command.env),
    });
  } catch (e) {
    removeIpcDir(dir);
    throw e;
  }
  let stderrTail = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderrTail = (stderrTail + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let connection: Connection | undefined;
  let stopping = false;
  const describeExit = (code: number | null, signal: NodeJS.Signals | null) => {
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const tail = stderrTail.trim() ? `; its last output:\n${stderrTail.trim().split("\n").slice(-15).join("\n")}` : "";
    return `the runtime process (pid ${child.pid}) ${how}${tail}`;
  };
  let exitReason: string | undefined;
  child.once("exit", (code, signal) => {
    exitReason = describeExit(code, signal);
    removeIpcDir(dir);
    // The child's exit is the fastest liveness signal there is: fail everything pending now.
    if (!stopping) connection?.lose(exitReason);
  });
  try {
    connection = await Promise.race([
      Connection.open({ endpoints: ipcEndpoints(dir), heartbeat: opts.heartbeat }),
      exited.then(() => Promise.reject(new RuntimeLostError(exitReason ?? "the runtime process exited"))),
    ]);
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  }
  const conn = connection;
  return {
    connection: conn,
    child,
    async stop(graceMs = 5000) {
      stopping = true;
      if (child.exitCode === null && child.signalCode === null) {
        await Promise.race([conn.controlRequest("req", "shutdown", {}), new Promise((r) => setTimeout(r, 1000))]).catch(() => undefined);
        const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
        await exited;
        clearTimeout(timer);
      }
      conn.close();
    },
  };
}
