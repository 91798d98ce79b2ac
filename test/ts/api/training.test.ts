// Models, data, training and evaluation driven from TypeScript against a real runtime,
// on a real tiny checkpoint built by the runtime itself (no weights fetched).
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BadRequestError, CancelledError, handleId, type ModelHandle, NotFoundError, Runtime, type TrainEvent } from "../../../src/index.ts";

describe("models, data, training and evaluation", () => {
  let rt: Runtime;
  let dir: string;
  let files: Record<string, Record<string, string>>;
  let model: ModelHandle;
  let ckpt: string;

  before(async () => {
    rt = await Runtime.start();
    dir = mkdtempSync(join(tmpdir(), "ctsft-train-"));
    files = (await rt.data.synthetic({ out: join(dir, "data"), nTrain: 120, nValid: 30, nTest: 60 })).files;
    const created = await rt.models.create({
      family: "llama",
      layers: 2,
      heads: 4,
      kvHeads: 2,
      dModel: 32,
      corpus: Object.values(files).map((f) => f.train as string),
      vocab: 600,
      out: join(dir, "model"),
    });
    assert.equal(created.kvHeads, 2);
    ckpt = created.path;
    model = await rt.models.load({ source: ckpt });
  });
  after(async () => {
    await rt?.close();
  });

  it("describes the loaded model", () => {
    assert.deepEqual(
      { family: model.info.family, layers: model.info.layers, heads: model.info.heads, kvHeads: model.info.kvHeads, dtype: model.info.dtype, device: model.info.device },
      { family: "llama", layers: 2, heads: 4, kvHeads: 2, dtype: "float32", device: "cpu" },
    );
    assert.ok(model.info.params > 10_000);
  });

  it("trains with typed streamed events, evaluates several datasets, saves and reloads", async () => {
    const src = files.src as Record<string, string>;
    const taskBefore = model.info.task;
    assert.equal(taskBefore, null, "a fresh checkpoint has no task");
    const stream = rt.train({ model, data: { path: src.train as string }, valid: { path: src.valid as string }, epochs: 6, lr: 3e-3 });
    const events: TrainEvent[] = [];
    for await (const e of stream) events.push(e);
    const { body } = await stream.result;
    assert.equal(events[0]?.type, "start");
    const steps = events.filter((e) => e.type === "step");
    assert.equal(steps.length, body.steps);
    assert.ok(steps.every((e) => e.type === "step" && Number.isFinite(e.loss) && e.examplesPerS > 0));
    assert.equal(events.filter((e) => e.type === "epoch").length, 6);
    assert.equal(body.paramsFraction, 1);
    assert.equal(body.paramsTrainable, model.info.params);
    // The handle is fresh after training (no refresh() needed): it answers this task now.
    assert.deepEqual(model.info.task?.labels, ["negative", "neutral", "positive"]);
    assert.deepEqual(model.info, body.model);

    const evalData = [{ path: src.test as string }, { path: (files.hard as Record<string, string>).test as string }];
    const r1 = (await rt.evaluate({ model, data: evalData, predictions: true }).finalResult()).body.results;
    assert.equal(r1.length, 2);
    assert.ok((r1[0]?.accuracy ?? 0) > 0.6, `source accuracy ${r1[0]?.accuracy}`);
    assert.equal(r1[0]?.predictions?.length, 60);
    assert.equal(r1[0]?.confusion.flat().reduce((a, b) => a + b, 0), 60);

    const saved = (await model.save(join(dir, "trained"))).path;
    const again = await rt.models.load({ source: saved });
    assert.deepEqual(again.info.task?.labels, ["negative", "neutral", "positive"]);
    const r2 = (await rt.evaluate({ model: again, data: evalData }).finalResult()).body.results;
    assert.deepEqual(r2.map((r) => r.accuracy), r1.map((r) => r.accuracy));
    await again.release();
  });

  it("cancels training mid-epoch and stays usable", async () => {
    const fresh = await rt.models.load({ source: ckpt });
    const ac = new AbortController();
    const stream = rt.train({ model: fresh, data: { path: (files.src as Record<string, string>).train as string }, epochs: 50, batchSize: 4 }, { signal: ac.signal });
    let steps = 0;
    await assert.rejects(
      (async () => {
        for await (const e of stream) if (e.type === "step" && ++steps === 3) ac.abort();
      })(),
      CancelledError,
    );
    for (let i = 0; i < 50 && (await rt.status()).running !== null; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal((await rt.status()).running, null);
    const r = await rt.evaluate({ model: fresh, data: [{ path: (files.src as Record<string, string>).test as string }] }).finalResult();
    assert.equal(r.body.results[0]?.n, 60);
    await fresh.release();
  });

  it("answers bad input with typed errors and keeps serving", async () => {
    const train = (files.src as Record<string, string>).train as string;
    const empty = join(dir, "empty.csv");
    writeFileSync(empty, "text,label\n");
    const cases: [string, () => Promise<unknown>, (e: unknown) => boolean][] = [
      ["missing file", () => rt.data.load({ path: join(dir, "nope.csv") }), (e) => e instanceof BadRequestError && /nope\.csv/.test(e.message)],
      ["unknown column", () => rt.data.load({ path: train, textColumn: "review" }), (e) => e instanceof BadRequestError && /review/.test(e.message) && e.path === "body.textColumn"],
      ["unknown label", () => rt.data.load({ path: train, labels: ["good", "bad"] }), (e) => e instanceof BadRequestError && /label/.test(e.message)],
      ["empty dataset", () => rt.data.load({ path: empty }), (e) => e instanceof BadRequestError && /empty/.test(e.message)],
      [
        "colliding verbalizer",
        () => rt.train({ model, data: { path: train }, verbalizer: { negative: " bad", neutral: " bad", positive: " good" } }).finalResult(),
        (e) => e instanceof BadRequestError && e.path === "body.verbalizer" && /distinct/.test(e.message),
      ],
      ["wrong dtype", () => rt.models.load({ source: ckpt, dtype: "float8" as never }), (e) => e instanceof BadRequestError && e.path === "body.dtype"],
      ["unavailable device", () => rt.models.load({ source: ckpt, device: "cuda:3" }), (e) => e instanceof BadRequestError && e.path === "body.device"],
      ["missing model dir", () => rt.models.load({ source: join(dir, "no-model") }), (e) => e instanceof BadRequestError && e.path === "body.source"],
      ["unknown handle", () => rt.evaluate({ model: handleId("m999"), data: [{ path: train }] }).finalResult(), (e) => e instanceof NotFoundError && /m999/.test(e.message)],
      ["two sources", () => rt.data.load({ path: train, handle: "d1" } as never), (e) => e instanceof BadRequestError],
    ];
    for (const [name, run, check] of cases) await assert.rejects(run(), check, name);
    await rt.ping();
  });
});
