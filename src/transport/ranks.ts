import { createServer } from "node:net";
import { availableParallelism } from "node:os";
import { BadRequestError } from "../errors.ts";

/** How the runtime's python is started: `-m ctsft_runtime` for one rank; for several, through
 * torch.distributed.run (torchrun) from the same python, one process per rank on this host.
 * Rank 0 serves the protocol; the others follow it (py_runtime/ctsft_runtime/server/ranks.py). */
export interface RuntimeCommand {
  /** Arguments before the runtime's own (`--ipc-dir …` or `--bind …`). */
  args: string[];
  /** Environment additions. */
  env: NodeJS.ProcessEnv;
}

/** Check a `ranks` option: a positive integer (1 = the single-process runtime). */
export function checkRanks(ranks: unknown, path = "ranks"): number {
  if (ranks === undefined) return 1;
  if (typeof ranks !== "number" || !Number.isInteger(ranks) || ranks < 1) {
    throw new BadRequestError(`ranks must be a positive integer, got ${JSON.stringify(ranks)}`, { path });
  }
  return ranks;
}

export async function runtimeCommand(ranks: number): Promise<RuntimeCommand> {
  if (ranks === 1) return { args: ["-m", "ctsft_runtime"], env: {} };
  const port = await freePort();
  const args = ["-m", "torch.distributed.run", "--nproc-per-node", String(ranks)];
  // The agent checks its workers every monitor interval: a dead rank is noticed within 0.5 s
  // and the others are stopped, so the client's "runtime exited" fires within seconds.
  args.push("--monitor-interval", "0.5", "--master-addr", "127.0.0.1", "--master-port", String(port));
  args.push("-m", "ctsft_runtime");
  // torchrun would set 1 (and warn); share this host's cores between the ranks instead.
  const threads = process.env.OMP_NUM_THREADS ?? String(Math.max(1, Math.floor(availableParallelism() / ranks)));
  return { args, env: { OMP_NUM_THREADS: threads } };
}

/** A TCP port free right now on 127.0.0.1 (for the ranks' rendezvous). Another process could
 * take it before torchrun binds it; then the start fails with the address in use. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
