import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Dealer } from "zeromq";
import { ensurePythonEnv, runtimeEnv } from "../../../src/transport/python-env.ts";

/** A real runtime process plus a bare DEALER on its request socket: for sending bytes that
 * the SDK would never produce. */
export interface RawRuntime {
  child: ChildProcess;
  dir: string;
  dealer: Dealer;
  /** Send frames and wait for the next reply (throws on timeout). */
  exchange(frames: Buffer[], timeoutMs?: number): Promise<Buffer[]>;
  stop(): Promise<void>;
}

export async function startRawRuntime(): Promise<RawRuntime> {
  const python = await ensurePythonEnv();
  const dir = mkdtempSync(join(tmpdir(), "ctsft-raw-"));
  const child = spawn(python, ["-m", "ctsft_runtime", "--ipc-dir", dir, "--parent-pid", String(process.pid)], { env: runtimeEnv(), stdio: "ignore" });
  const dealer = new Dealer({ linger: 0, receiveTimeout: 5000 });
  dealer.connect(`ipc://${dir}/main`);
  return {
    child,
    dir,
    dealer,
    async exchange(frames, timeoutMs = 5000) {
      dealer.receiveTimeout = timeoutMs;
      await dealer.send(frames);
      return (await dealer.receive()) as Buffer[];
    },
    async stop() {
      dealer.close();
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
