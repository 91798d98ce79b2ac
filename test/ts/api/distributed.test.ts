// The runtime as 2 gloo ranks under torchrun, driven through the SDK: Runtime.start({ ranks: 2 })
// trains data-parallel (the per-method equality with one process is pinned in
// test/py/distributed/), and a rank killed with SIGKILL mid-training fails the client's stream
// with a typed error within 5 s instead of hanging.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { readClientKeys } from "../../../src/api/keys.ts";
import { BadRequestError, CtsftError, Runtime, RuntimeLostError } from "../../../src/index.ts";
import { startServer, stopServer } from "../helpers/runtimes.ts";

/** The pids of the other ranks: children of rank 0's parent (torchrun's agent) running the runtime. */
function otherRanks(rank0: number): number[] {
  const ppidOf = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ")[1]);
  const agent = ppidOf(rank0);
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === rank0) continue;
    try {
      if (ppidOf(pid) === agent && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("ctsft_runtime")) out.push(pid);
    } catch {
      // a process that ended while we looked
    }
  }
  return out;
}

describe("Runtime.start({ ranks: 2 })", { skip: process.platform !== "linux" && "reads /proc to find the ranks" }, () => {
  let rt: Runtime;
  let ckpt: string;
  let train: string;

  before(async () => {
    rt = await Runtime.start({ ranks: 2, device: "cpu" });
    const dir = mkdtempSync(join(tmpdir(), "ctsft-ranks-"));
    const files = (await rt.data.synthetic({ out: join(dir, "data"), nTrain: 60, nValid: 20, nTest: 20 })).files;
    train = files.src?.train as string;
    const corpus = Object.values(files).map((f) => f.train as string);
    ckpt = (await rt.models.create({ family: "llama", layers: 2, heads: 4, kvHeads: 2, dModel: 32, corpus, vocab: 400, out: join(dir, "model") })).path;
  });
  after(async () => {
    await rt?.close();
  });

  it("runs as two ranks and trains with fsdp across them", async () => {
    assert.equal(otherRanks(rt.hello.pid).length, 1, "one follower beside rank 0");
    const model = await rt.models.load({ source: ckpt });
    const result = await rt.train({ model, data: { path: train }, method: "ctsft", heads: [[0, 1]], parallel: "fsdp", epochs: 1, batchSize: 8 }).finalResult();
    assert.deepEqual(result.body.ranks, { world: 2, parallel: "fsdp" });
    assert.equal(result.body.steps, 8);
    // FSDP is for full and ctsft: the SDK refuses it for norms before anything is sent.
    assert.throws(
      () => rt.train({ model, data: { path: train }, method: "norms", parallel: "fsdp" as "ddp", epochs: 1 }),
      (e: unknown) => e instanceof BadRequestError && /parallel$/.test(e.path ?? ""),
    );
    await model.release();
  });

  it("fails the stream with a typed error within 5 s when rank 1 is killed mid-training", async () => {
    const model = await rt.models.load({ source: ckpt });
    const run = rt.train({ model, data: { path: train }, epochs: 500, batchSize: 8 });
    let killedAt = 0;
    let steps = 0;
    const failure = await (async () => {
      try {
        for await (const event of run) {
          if (event.type !== "step" || ++steps !== 3) continue;
          const [rank1] = otherRanks(rt.hello.pid);
          assert.ok(rank1, "rank 1 is running");
          killedAt = performance.now();
          process.kill(rank1, "SIGKILL");
        }
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    const seconds = (performance.now() - killedAt) / 1000;
    console.log(JSON.stringify({ killToErrorS: Number(seconds.toFixed(3)), error: String(failure).slice(0, 300) }));
    assert.ok(killedAt > 0, "training reached step 3");
    assert.ok(failure instanceof CtsftError, `a typed error, got ${String(failure)}`);
    assert.ok(failure instanceof RuntimeLostError, `the runtime is gone: ${String(failure)}`);
    assert.ok(seconds < 5, `the error came ${seconds.toFixed(2)} s after the kill`);
  });
});

describe("ctsft serve --ranks 2", { skip: process.platform !== "linux" && "reads /proc to find the ranks" }, () => {
  it("serves remote clients from rank 0 of two ranks", async () => {
    const { server, endpoint, keysDir } = await startServer({ ranks: 2, device: "cpu" });
    try {
      await using rt = await Runtime.connect(endpoint, readClientKeys(keysDir));
      await rt.ping();
      assert.equal(otherRanks(rt.hello.pid).length, 1, "one follower beside rank 0");
    } finally {
      await stopServer(server);
    }
    assert.ok(server.exitCode !== null || server.signalCode !== null);
  });
});
