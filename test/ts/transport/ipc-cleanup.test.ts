// The SDK's private ipc directory (`ctsft-*` in the temp directory) does not outlive the
// runtime: it is removed on close, when Node is killed by SIGINT or SIGTERM (a real user
// program in its own process, a real runtime), and dirs left by a SIGKILL are swept by the
// next start, but only the ones provably ours whose owner is dead.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Runtime } from "../../../src/index.ts";
import { OWNER_FILE } from "../../../src/transport/ipc-dir.ts";

const FIXTURE = new URL("../fixtures/child-runtime.ts", import.meta.url).pathname;
const ipcDirs = (base: string) => readdirSync(base).filter((n) => /^ctsft-(emb-)?[A-Za-z0-9]{6}$/.test(n));

async function waitFor(pred: () => boolean, ms: number): Promise<boolean> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (pred()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return pred();
}

/** A user program with a runtime in a long stream, its temp directory private to this test. */
async function killedUserProgram(mode: "process" | "embedded", signal: NodeJS.Signals): Promise<{ base: string; during: string[]; exit: { code: number | null; signal: NodeJS.Signals | null } }> {
  const base = mkdtempSync(join(tmpdir(), "ctsft-ipc-test-"));
  const child = spawn(process.execPath, ["--import", "tsx", FIXTURE, mode, "sigint"], { env: { ...process.env, TMPDIR: base }, stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once("exit", (code, sig) => r({ code, signal: sig })));
  let out = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  assert.ok(await waitFor(() => out.includes("ready"), 60_000), "the child runtime started");
  const during = ipcDirs(base);
  child.kill(signal);
  return { base, during, exit: await exited };
}

describe("ipc directory cleanup", () => {
  const cases = [
    ["process", "SIGTERM"],
    ["process", "SIGINT"],
    ["embedded", "SIGTERM"],
  ] as const;
  for (const [mode, signal] of cases) {
    it(`${mode} mode: is removed when Node is killed by ${signal}, and Node still dies of ${signal}`, { timeout: 90_000 }, async () => {
      const { base, during, exit } = await killedUserProgram(mode, signal);
      assert.equal(during.length, 1, `one ipc dir while running: ${during}`);
      assert.equal(exit.signal, signal, `exit ${JSON.stringify(exit)}`);
      assert.ok(await waitFor(() => ipcDirs(base).length === 0, 5000), `left behind: ${ipcDirs(base)}`);
    });
  }

  it("is removed on close, and the next start sweeps only stale dirs that are provably ours", { timeout: 90_000 }, async () => {
    const base = mkdtempSync(join(tmpdir(), "ctsft-ipc-test-"));
    const dead = spawnSync(process.execPath, ["-e", "console.log(process.pid)"], { encoding: "utf8" });
    const deadPid = Number(dead.stdout.trim());
    const make = (name: string, owner?: object) => {
      mkdirSync(join(base, name));
      writeFileSync(join(base, name, "main"), "");
      if (owner) writeFileSync(join(base, name, OWNER_FILE), JSON.stringify(owner));
    };
    make("ctsft-Stale1", { pid: deadPid }); // a SIGKILLed SDK's: swept
    make("ctsft-emb-Stale2", { pid: deadPid }); // same, embedded mode: swept
    make("ctsft-Alive1", { pid: process.pid }); // a live owner: kept
    make("ctsft-NoOwnr"); // no owner file: not provably ours, kept
    make("ctsft-keys-Abc123", { pid: deadPid }); // not an ipc dir name: kept
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = base;
    try {
      const rt = await Runtime.start({ device: "cpu" });
      const running = ipcDirs(base);
      assert.deepEqual(running.filter((n) => !["ctsft-Alive1", "ctsft-NoOwnr"].includes(n)).length, 1, `only ours besides the kept ones: ${running}`);
      await rt.close();
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
    assert.deepEqual(readdirSync(base).sort(), ["ctsft-Alive1", "ctsft-NoOwnr", "ctsft-keys-Abc123"]);
  });
});
