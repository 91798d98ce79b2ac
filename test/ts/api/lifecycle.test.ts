// Process lifecycle against real runtimes: kill -9, clean exit after close(), SIGINT.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { describe, it } from "node:test";
import { Runtime, RuntimeLostError } from "../../../src/index.ts";
import { MODES, startServer, stopServer } from "../helpers/runtimes.ts";

const FIXTURE = new URL("../fixtures/child-runtime.ts", import.meta.url).pathname;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(pred: () => boolean, ms: number): Promise<boolean> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (pred()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return pred();
}

function runChild(args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; lines: string[]; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ["--import", "tsx", FIXTURE, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  const lines: string[] = [];
  child.stdout?.on("data", (d: Buffer) => lines.push(...d.toString().trim().split("\n")));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return { child, lines, exited };
}

describe("kill -9 of the runtime", () => {
  it("process mode: the pending call rejects with runtime_lost within 2 s, close() resolves", async () => {
    const rt = await Runtime.start();
    const stream = rt.diagnose({ count: 100000, intervalMs: 20 });
    let killedAt = 0;
    await assert.rejects(
      (async () => {
        for await (const e of stream) {
          if (e.step === 2) {
            killedAt = Date.now();
            process.kill(rt.hello.pid, "SIGKILL");
          }
        }
      })(),
      (e: unknown) => e instanceof RuntimeLostError && /SIGKILL/.test(e.message),
    );
    const took = Date.now() - killedAt;
    assert.ok(took < 2000, `took ${took} ms`);
    await assert.rejects(rt.ping(), RuntimeLostError);
    const t0 = Date.now();
    await rt.close();
    assert.ok(Date.now() - t0 < 2000);
  });

  it("remote mode: heartbeat loss rejects the pending call within seconds", async () => {
    const { server, endpoint, keysDir } = await startServer();
    try {
      const { readClientKeys } = await import("../../../src/api/keys.ts");
      const rt = await Runtime.connect(endpoint, { ...readClientKeys(keysDir), heartbeat: { intervalMs: 250, timeoutMs: 1500 } });
      const stream = rt.diagnose({ count: 100000, intervalMs: 20 });
      let killedAt = 0;
      await assert.rejects(
        (async () => {
          for await (const e of stream) {
            if (e.step === 2) {
              killedAt = Date.now();
              process.kill(rt.hello.pid, "SIGKILL");
            }
          }
        })(),
        RuntimeLostError,
      );
      // Heartbeat timeout 1.5 s plus one 250 ms tick; the slack absorbs a loaded CI machine.
      const took = Date.now() - killedAt;
      assert.ok(took < 4000, `took ${took} ms`);
      await rt.close();
    } finally {
      await stopServer(server);
    }
  });
});

for (const mode of MODES) {
  describe(`${mode} mode: the Node process exits by itself`, () => {
    it("after close()", async () => {
      const remote = mode === "remote" ? await startServer() : undefined;
      try {
        const env = remote ? { CTSFT_TEST_ENDPOINT: remote.endpoint, CTSFT_TEST_KEYS: remote.keysDir } : {};
        const { lines, exited, child } = runChild([mode, "close"], env);
        const code = await Promise.race([exited, new Promise<"hang">((r) => setTimeout(() => r("hang"), 30_000))]);
        if (code === "hang") child.kill("SIGKILL");
        assert.equal(code, 0, `exit: ${code}`);
        assert.deepEqual(lines, ["closed"]);
      } finally {
        if (remote) await stopServer(remote.server);
      }
    });

    if (mode !== "remote") {
      it("on SIGINT, taking its runtime with it", async () => {
        const { lines, exited, child } = runChild([mode, "sigint"]);
        assert.ok(await waitFor(() => lines.some((l) => l.startsWith("ready")), 30_000), "child never got ready");
        const pid = Number(lines.find((l) => l.startsWith("ready"))?.split(" ")[1]);
        child.kill("SIGINT");
        const code = await Promise.race([exited, new Promise<"hang">((r) => setTimeout(() => r("hang"), 10_000))]);
        if (code === "hang") child.kill("SIGKILL");
        assert.notEqual(code, "hang", "node did not exit on SIGINT");
        assert.ok(await waitFor(() => !alive(pid), 5000), `runtime ${pid} outlived its parent`);
      });
    }
  });
}
