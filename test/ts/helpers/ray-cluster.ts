// A real local Ray cluster for the Ray executor's tests and bench: `ray start --head` on
// 127.0.0.1 with a fixed number of CPUs, from the runtime environment with the Ray extra (which
// the repository's own setup installs), in its own temp dir and process group so stopping it
// ends exactly the processes it started (`ray stop` would end every Ray on the machine).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runtimeEnv, setup } from "../../../src/transport/python-env.ts";
import { freePort } from "./runtimes.ts";

export interface LocalRayCluster {
  /** `127.0.0.1:PORT`, for `executor.address`. */
  address: string;
  /** Stop every process of the cluster. Idempotent. */
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 120_000;
const DRAIN_MS = 3_000;

export async function startLocalRayCluster(cpus = 2): Promise<LocalRayCluster> {
  const env = await setup({ with: ["ray"], onProgress: () => {} });
  const port = await freePort();
  // Ray's socket paths must stay short (AF_UNIX's ~107 bytes): a short temp dir.
  const temp = mkdtempSync(join(tmpdir(), "ctsft-ray-"));
  const args = ["-m", "ray.scripts.scripts", "start", "--head", "--node-ip-address", "127.0.0.1", "--port", String(port), "--num-cpus", String(cpus)];
  args.push("--disable-usage-stats", "--include-dashboard=false", "--temp-dir", temp, "--block");
  const child = spawn(env.python, args, { detached: true, stdio: ["ignore", "pipe", "pipe"], env: runtimeEnv({}, { pythonPath: env.pythonPath }) });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let out = "";
  const stop = once(async () => {
    const group = -(child.pid as number);
    // SIGTERM lets Ray drain (up to 30 s); a test cluster has nothing to drain worth waiting for.
    signal(group, "SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, DRAIN_MS))]);
    signal(group, "SIGKILL");
    await exited;
    rmSync(temp, { recursive: true, force: true });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`ray start did not come up within ${START_TIMEOUT_MS} ms:\n${out}`)), START_TIMEOUT_MS);
      const watch = (d: Buffer) => {
        out = (out + d.toString()).slice(-8000);
        if (out.includes("Ray runtime started")) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on("data", watch);
      child.stderr!.on("data", watch);
      child.once("exit", (code) => reject(new Error(`ray start exited with code ${code}:\n${out}`)));
    });
  } catch (e) {
    await stop();
    throw e;
  }
  return { address: `127.0.0.1:${port}`, stop };
}

function signal(target: number, sig: NodeJS.Signals): void {
  try {
    process.kill(target, sig);
  } catch {
    // Already gone.
  }
}

function once(f: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= f());
}
