// Remote mode as a multi-tenant service, against a real `ctsft serve` on 127.0.0.1 with
// several client keys: each key sees only its own handles and jobs, limits hold per key, only
// an admin key shuts the server down, idle clients' handles are freed, and a job outlives a
// killed client: a new process with the same key re-attaches and gets the rest of its stream.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Dealer } from "zeromq";
import { readClientKeys } from "../../../src/api/keys.ts";
import { BadRequestError, ForbiddenError, type ModelHandle, NotFoundError, Runtime } from "../../../src/index.ts";
import { tcpEndpoints } from "../../../src/transport/endpoints.ts";
import { decodeMessage, encodeMessage } from "../../../src/transport/frames.ts";
import { startServer, stopServer } from "../helpers/runtimes.ts";

const CHILD = join(import.meta.dirname, "..", "fixtures", "child-runtime.ts");
const TTL_S = 3;

describe("remote mode: clients are tenants", () => {
  let srv: Awaited<ReturnType<typeof startServer>>;
  let root: string;
  let ckpt: string;
  let alice: Runtime;
  let bob: Runtime;
  let admin: Runtime;
  let aliceModel: ModelHandle;
  const connect = (name: string) => Runtime.connect(srv.endpoint, readClientKeys(srv.keysDir, name));

  before(async () => {
    root = mkdtempSync(join(tmpdir(), "ctsft-tenants-root-"));
    const leavers = Array.from({ length: 20 }, (_, i) => `leaver${i}`);
    srv = await startServer({ root, clients: ["bob", "admin", "carol", ...leavers], admin: ["admin"], ttlSeconds: TTL_S, maxModels: 2 });
    [alice, bob, admin] = await Promise.all([connect("client"), connect("bob"), connect("admin")]);
    const corpus = join(root, "corpus.txt");
    await (await import("node:fs/promises")).writeFile(corpus, "satu dua tiga empat lima\nenam tujuh delapan sembilan\n".repeat(20));
    ckpt = (await alice.models.create({ family: "llama", layers: 1, heads: 2, dModel: 16, corpus: [corpus], vocab: 300, out: join(root, "m") })).path;
    aliceModel = await alice.models.load({ source: ckpt });
  });
  after(async () => {
    await Promise.all([alice, bob, admin].map((rt) => rt?.close()));
    if (srv) await stopServer(srv.server);
  });

  it("a client cannot see, save or release another client's model", async () => {
    await assert.rejects(
      bob.call("model.info", { handle: aliceModel.id }),
      (e: unknown) => e instanceof NotFoundError && /\(loaded: none\)/.test(e.message),
    );
    await assert.rejects(bob.call("model.save", { handle: aliceModel.id, out: join(root, "stolen") }), NotFoundError);
    assert.equal((await bob.call("release", { handle: aliceModel.id })).body.released, false);
    assert.equal((await alice.call("model.info", { handle: aliceModel.id })).body.layers, 1);
  });

  it("status shows only the caller's job, and another client's cancel does not reach it", async () => {
    const stream = alice.diagnose({ count: 30, intervalMs: 20 });
    const iter = stream[Symbol.asyncIterator]();
    await iter.next(); // running now
    assert.equal((await alice.status()).running?.id, stream.id);
    assert.equal((await bob.status()).running, null);
    const reply = await rawControl(srv, "bob", { kind: "cancel", op: "cancel", body: { target: stream.id } });
    assert.deepEqual([reply.kind, reply.body], ["result", { cancelled: false }]);
    let steps = 1;
    for (let r = await iter.next(); !r.done; r = await iter.next()) steps++;
    assert.equal(steps, 30);
    assert.equal((await stream.result).body.count, 30);
    assert.deepEqual(await bob.jobs.list(), []);
  });

  it("only an admin key may shut the server down", async () => {
    const reply = await rawControl(srv, "bob", { kind: "req", op: "shutdown", body: {} });
    assert.equal(reply.kind, "error");
    assert.equal((reply.body as { code: string }).code, "forbidden");
    await bob.ping();
    const totals = (await admin.status()).server;
    assert.ok(totals !== undefined && totals.models >= 1, JSON.stringify(totals));
    assert.equal((await bob.status()).server, undefined);
  });

  it("remote clients may not run a checkpoint's code or download by default", async () => {
    await assert.rejects(
      alice.models.load({ source: ckpt, trustRemoteCode: true }),
      (e: unknown) => e instanceof ForbiddenError && e.path === "body.trustRemoteCode" && /--allow-remote-code/.test(e.message),
    );
    await assert.rejects(alice.models.load({ source: "some-org/some-model", allowDownload: true }), ForbiddenError);
  });

  it("the model limit holds per client", async () => {
    const second = await alice.models.load({ source: ckpt });
    await assert.rejects(alice.models.load({ source: ckpt }), (e: unknown) => e instanceof BadRequestError && /limit/.test(e.message));
    const bobs = await bob.models.load({ source: ckpt }); // bob's own budget
    await Promise.all([second.release(), bobs.release()]);
  });

  it("handles of clients that left are freed after the TTL; a live client keeps its own", async () => {
    for (let i = 0; i < 20; i++) {
      const rt = await connect(`leaver${i}`);
      await rt.models.load({ source: ckpt });
      await rt.close(); // leaves without releasing
    }
    const held = (await admin.status()).server;
    assert.ok(held !== undefined && held.models === 21, JSON.stringify(held));
    await sleep((TTL_S + 2.5) * 1000);
    const after = (await admin.status()).server;
    assert.equal(after?.models, 1, `only alice's model should remain: ${JSON.stringify(after)}`);
    // alice was idle all along but alive (keepalive): her model is still there
    assert.equal((await alice.call("model.info", { handle: aliceModel.id })).body.layers, 1);
  });

  it("a job outlives its killed client; a new process with the same key re-attaches with no seq gap", async () => {
    const count = 120; // 6 s at 50 ms per event: still running while the new process starts
    const child = spawnChild(srv, "carol", count);
    const jobId = await firstLine(child, /^job (\S+)$/);
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    const carol = await connect("carol");
    const running = (await carol.jobs.list()).find((j) => j.id === jobId);
    await carol.close();
    assert.equal(running?.state, "running", JSON.stringify(running));
    const listed = (await alice.jobs.list()).find((j) => j.id === jobId);
    assert.equal(listed, undefined, "another client's job is not listed");
    // A new process with the same key picks the job up.
    const attacher = spawn(process.execPath, ["--import", "tsx", CHILD, "remote", "attach", jobId], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, CTSFT_TEST_ENDPOINT: srv.endpoint, CTSFT_TEST_KEYS: srv.keysDir, CTSFT_TEST_CLIENT: "carol" },
    });
    const report = JSON.parse(await firstLine(attacher, /^(\{.*\})$/)) as { steps: number[]; count: number; firstEventMs: number; left: unknown[] };
    assert.deepEqual(report.steps, Array.from({ length: count }, (_, i) => i));
    assert.equal(report.count, count);
    assert.deepEqual(report.left, [], "a delivered job is gone");
    process.stderr.write(`# re-attach latency (attach() to first event, new process): ${report.firstEventMs.toFixed(1)} ms\n`);
  });

  it("re-attaching from a later seq starts there; an unknown job is NotFound", async () => {
    const stream = alice.diagnose({ count: 12, intervalMs: 30 });
    const iter = stream[Symbol.asyncIterator]();
    for (let i = 0; i < 6; i++) await iter.next(); // seq 5 exists now
    const again = await connect("client");
    try {
      const tail = await again.jobs.attach(stream.id, { op: "diagnose", fromSeq: 5 });
      const steps: number[] = [];
      for await (const ev of tail) steps.push(ev.step);
      assert.deepEqual(steps, [5, 6, 7, 8, 9, 10, 11]);
      await assert.rejects(again.jobs.attach("no-such-job"), NotFoundError);
    } finally {
      await again.close();
    }
    // the first connection lost the stream to the second one, with a typed error
    await assert.rejects(
      (async () => {
        for (let r = await iter.next(); !r.done; r = await iter.next()) void r;
      })(),
      (e: unknown) => (e as { code?: string }).code === "cancelled" && /attached by another connection/.test((e as Error).message),
    );
  });
});

/** One control-socket exchange with a raw DEALER, as a hand-written client would. */
async function rawControl(srv: { endpoint: string; keysDir: string }, name: string, msg: { kind: "req" | "cancel"; op: string; body: unknown }) {
  const keys = readClientKeys(srv.keysDir, name);
  const sock = new Dealer({ linger: 0, receiveTimeout: 5000 });
  sock.curveServerKey = keys.serverKey;
  sock.curvePublicKey = keys.clientKeys.publicKey;
  sock.curveSecretKey = keys.clientKeys.secretKey;
  sock.connect(tcpEndpoints(srv.endpoint).control);
  try {
    await sock.send(encodeMessage({ v: 1, id: "raw-1", kind: msg.kind, op: msg.op, seq: 0, body: msg.body }));
    return decodeMessage(await sock.receive()).header;
  } finally {
    sock.close();
  }
}

function spawnChild(srv: { endpoint: string; keysDir: string }, client: string, count: number): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", CHILD, "remote", "job"], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, CTSFT_TEST_ENDPOINT: srv.endpoint, CTSFT_TEST_KEYS: srv.keysDir, CTSFT_TEST_CLIENT: client, CTSFT_TEST_COUNT: String(count) },
  });
}

function firstLine(child: ChildProcess, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on("line", (line) => {
      const m = pattern.exec(line);
      if (m) resolve(m[1] as string);
    });
    child.once("exit", (code) => reject(new Error(`child exited (${code}) before printing ${pattern}`)));
  });
}
