// `ctsft keys` / createKeys / addClient: existing server keys are never silently regenerated,
// more clients can be added without touching the server pair, and a secret key file is 0600
// from its first byte. Each added client really connects to a real `ctsft serve`.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs, { existsSync, fstatSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { addClient, createKeys, readClientKeys } from "../../../src/api/keys.ts";
import { serveRuntime } from "../../../src/api/serve.ts";
import { BadRequestError, Runtime } from "../../../src/index.ts";
import { freePort, stopServer } from "../helpers/runtimes.ts";

const BIN = new URL("../../../bin/ctsft.js", import.meta.url).pathname;
const run = promisify(execFile);
const fresh = () => mkdtempSync(join(tmpdir(), "ctsft-keys-test-"));
const mode = (p: string) => statSync(p).mode & 0o777;

function refused(fn: () => unknown, path: string, phrase: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof BadRequestError, String(e));
    assert.equal(e.path, path);
    assert.match(e.message, phrase);
    return true;
  });
}

describe("key directories", () => {
  it("createKeys refuses a directory that already holds server keys, unless overwrite", () => {
    const dir = fresh();
    createKeys(dir);
    const server = readFileSync(join(dir, "server.key_secret"), "utf8");
    const client = readFileSync(join(dir, "client.key_secret"), "utf8");
    refused(() => createKeys(dir), "out", /already holds server keys.*--client NAME.*--overwrite/s);
    refused(() => createKeys(dir, { client: "other" }), "out", /already holds server keys/);
    assert.equal(readFileSync(join(dir, "server.key_secret"), "utf8"), server);
    assert.equal(readFileSync(join(dir, "client.key_secret"), "utf8"), client);
    assert.ok(!existsSync(join(dir, "other.key_secret")));
    createKeys(dir, { overwrite: true });
    assert.notEqual(readFileSync(join(dir, "server.key_secret"), "utf8"), server);
  });

  it("addClient adds a pair without touching the server's or another client's, and refuses a taken name", () => {
    const dir = fresh();
    createKeys(dir);
    const before = ["server.key", "server.key_secret", "client.key_secret", "clients/client.key"].map((f) => readFileSync(join(dir, f), "utf8"));
    const files = addClient(dir, "alice");
    addClient(dir, "bob");
    assert.deepEqual(
      ["server.key", "server.key_secret", "client.key_secret", "clients/client.key"].map((f) => readFileSync(join(dir, f), "utf8")),
      before,
    );
    assert.equal(files.secretKey, join(dir, "alice.key_secret"));
    assert.equal(files.publicKey, join(dir, "clients", "alice.key"));
    const alice = readClientKeys(dir, "alice");
    const bob = readClientKeys(dir, "bob");
    assert.equal(alice.serverKey, readClientKeys(dir).serverKey);
    assert.notEqual(alice.clientKeys?.publicKey, bob.clientKeys?.publicKey);
    assert.match(readFileSync(join(dir, "clients", "alice.key"), "utf8"), new RegExp(alice.clientKeys?.publicKey.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") ?? "x"));
    const aliceSecret = readFileSync(files.secretKey, "utf8");
    refused(() => addClient(dir, "alice"), "client", /already has keys/);
    assert.equal(readFileSync(files.secretKey, "utf8"), aliceSecret);
    refused(() => addClient(dir, "server"), "client", /not allowed/);
    refused(() => addClient(dir, "../evil"), "client", /not allowed/);
    refused(() => addClient(fresh(), "carol"), "out", /holds no server keys/);
  });

  it("secret files are 0600 from their first byte, public ones are not secret", () => {
    // Record the permissions of every key file at each moment its content is written.
    const seen: { file: string; mode: number }[] = [];
    const { writeSync, writeFileSync } = fs;
    const fdPaths = new Map<number, string>();
    const { openSync } = fs;
    const patched = fs as unknown as Record<string, unknown>;
    patched.openSync = (p: fs.PathLike, ...rest: unknown[]) => {
      const fd = (openSync as (...a: unknown[]) => number)(p, ...rest);
      fdPaths.set(fd, String(p));
      return fd;
    };
    patched.writeSync = (fd: number, ...rest: unknown[]) => {
      const n = (writeSync as (...a: unknown[]) => number)(fd, ...rest);
      seen.push({ file: fdPaths.get(fd) ?? String(fd), mode: fstatSync(fd).mode & 0o777 });
      return n;
    };
    patched.writeFileSync = (p: fs.PathOrFileDescriptor, ...rest: unknown[]) => {
      (writeFileSync as (...a: unknown[]) => void)(p, ...rest);
      seen.push({ file: String(p), mode: typeof p === "number" ? fstatSync(p).mode & 0o777 : mode(String(p)) });
    };
    syncBuiltinESMExports();
    const dir = fresh();
    try {
      createKeys(dir);
      addClient(dir, "alice");
    } finally {
      Object.assign(patched, { openSync, writeSync, writeFileSync });
      syncBuiltinESMExports();
    }
    const secrets = seen.filter((s) => s.file.includes("key_secret"));
    assert.ok(secrets.length >= 3, JSON.stringify(seen));
    for (const s of secrets) assert.equal(s.mode & 0o077, 0, `${s.file} was ${s.mode.toString(8)} while written`);
    for (const f of ["server.key_secret", "client.key_secret", "alice.key_secret"]) assert.equal(mode(join(dir, f)), 0o600, f);
    assert.equal(mode(join(dir, "server.key")) & 0o600, 0o600);
    assert.equal(mode(dir) & 0o077, 0, "the key directory is private when created by createKeys");
  });

  it("ctsft keys: refuses existing keys, --client adds one, --overwrite regenerates", async () => {
    const dir = join(fresh(), "keys");
    await run(process.execPath, [BIN, "keys", "--out", dir]);
    const server = readFileSync(join(dir, "server.key_secret"), "utf8");
    await assert.rejects(run(process.execPath, [BIN, "keys", "--out", dir]), (e: { code?: number; stderr?: string }) => e.code === 1 && /already holds server keys/.test(e.stderr ?? ""));
    const { stdout } = await run(process.execPath, [BIN, "keys", "--out", dir, "--client", "bob"]);
    assert.match(stdout, /added client bob/);
    assert.equal(readFileSync(join(dir, "server.key_secret"), "utf8"), server);
    assert.ok(existsSync(join(dir, "clients", "bob.key")) && existsSync(join(dir, "bob.key_secret")));
    await assert.rejects(run(process.execPath, [BIN, "keys", "--out", dir, "--client", "bob"]), (e: { code?: number; stderr?: string }) => e.code === 1 && /already has keys/.test(e.stderr ?? ""));
    await run(process.execPath, [BIN, "keys", "--out", dir, "--overwrite"]);
    assert.notEqual(readFileSync(join(dir, "server.key_secret"), "utf8"), server);
    rmSync(dir, { recursive: true, force: true });
  });

  it("every added client connects to a real server", { timeout: 120_000 }, async () => {
    const dir = fresh();
    createKeys(dir);
    addClient(dir, "alice");
    addClient(dir, "bob");
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    const server = await serveRuntime({ bind: endpoint, keys: dir, device: "cpu", logLevel: "WARNING", root: fresh() }); // keys outside the root
    try {
      for (const name of ["client", "alice", "bob"]) {
        await using rt = await Runtime.connect(endpoint, { ...readClientKeys(dir, name), connectTimeoutMs: 60_000 });
        await rt.ping();
      }
    } finally {
      await stopServer(server);
    }
  });
});
