import type { ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addClient, createKeys, readClientKeys } from "../../../src/api/keys.ts";
import { type ServeOptions, serveRuntime } from "../../../src/api/serve.ts";
import { Runtime, type RuntimeMode } from "../../../src/index.ts";

export const MODES: RuntimeMode[] = ["process", "embedded", "remote"];

/** A running runtime of the given mode plus whatever must be stopped with it. */
export interface Started {
  rt: Runtime;
  server?: ChildProcess;
  keysDir?: string;
  endpoint?: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  for (;;) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    const ok = await Promise.all([base, base + 1, base + 2].map(portFree));
    if (ok.every(Boolean)) return base;
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/** Start `ctsft serve` on a free loopback port with fresh keys (`client` plus `clients`). */
export async function startServer(
  options: Partial<Omit<ServeOptions, "bind" | "keys">> & { clients?: string[] } = {},
): Promise<{ server: ChildProcess; endpoint: string; keysDir: string }> {
  const keysDir = mkdtempSync(join(tmpdir(), "ctsft-keys-"));
  createKeys(keysDir);
  const { clients, ...serve } = options;
  for (const name of clients ?? []) addClient(keysDir, name);
  const endpoint = `tcp://127.0.0.1:${await freePort()}`;
  const server = await serveRuntime({ logLevel: "WARNING", ...serve, bind: endpoint, keys: keysDir });
  return { server, endpoint, keysDir };
}

export async function stopServer(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null || server.signalCode !== null) return;
  const exited = new Promise((r) => server.once("exit", r));
  server.kill("SIGTERM");
  const t = setTimeout(() => server.kill("SIGKILL"), 3000);
  await exited;
  clearTimeout(t);
}

export async function startMode(mode: RuntimeMode): Promise<Started> {
  if (mode !== "remote") {
    const rt = await Runtime.start({ mode });
    return { rt, stop: () => rt.close() };
  }
  const { server, endpoint, keysDir } = await startServer();
  const rt = await Runtime.connect(endpoint, readClientKeys(keysDir));
  return {
    rt,
    server,
    keysDir,
    endpoint,
    async stop() {
      await rt.close();
      await stopServer(server);
    },
  };
}
