// Using an adapted model from TypeScript (issue 12): named deltas on one base model, predict
// (typed, batched, streamed, one delta per row) and generate (token events, cancel by break
// or AbortSignal), against a real runtime and real tiny checkpoints with real CT-SFT deltas.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BadRequestError, CancelledError, type GenerateEvent, type ModelHandle, NotFoundError, type PredictEvent, Runtime } from "../../../src/index.ts";
import { type Adapted, buildAdapted, closeTo } from "../helpers/adapted.ts";

const TEXTS = ["good great nice", "bad awful", "fine ok", "the movie was not good", "great", "terrible not nice at all"];

describe("serving: predict, generate and named deltas", { timeout: 300_000 }, () => {
  let rt: Runtime;
  let dir: string;
  let fx: Adapted;
  let model: ModelHandle;
  /** How long 400 greedy tokens take in full (measured by the break test). */
  let fullMs = Number.POSITIVE_INFINITY;

  before(async () => {
    rt = await Runtime.start({ device: "cpu" });
    dir = mkdtempSync(join(tmpdir(), "ctsft-serving-"));
    fx = await buildAdapted(rt, dir);
    model = await rt.models.load({ source: fx.theta1 });
  });
  after(async () => {
    await rt?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Wait until the runtime runs nothing for this client (a cancelled job has ended). */
  async function idle(): Promise<void> {
    for (let i = 0; i < 100 && (await rt.status()).running !== null; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal((await rt.status()).running, null, "the runtime still runs the cancelled job");
  }

  it("deltas.load / list / unload: typed infos, a taken name refused, overwrite, unload twice", async () => {
    const easy = await model.deltas.load("easy", fx.deltas.easy as string);
    assert.equal(easy.name, "easy");
    assert.ok(easy.params > 0 && easy.entries > 0, JSON.stringify(easy));
    assert.ok(easy.fraction > 0 && easy.fraction < 0.5, `fraction ${easy.fraction}`);
    // A checkpoint that keeps its delta is accepted as well as the delta folder.
    const hard = await model.deltas.load("hard", fx.theta2.hard as string);
    assert.deepEqual(
      (await model.deltas.list()).map((d) => d.name),
      ["easy", "hard"],
    );
    await assert.rejects(model.deltas.load("easy", fx.deltas.hard as string), (e: unknown) => e instanceof BadRequestError && e.path === "body.name");
    const again = await model.deltas.load("easy", fx.deltas.easy as string, { overwrite: true });
    assert.equal(again.params, easy.params);
    assert.equal(await model.deltas.unload("hard"), true);
    assert.equal(await model.deltas.unload("hard"), false);
    assert.deepEqual(
      (await model.deltas.list()).map((d) => d.name),
      ["easy"],
    );
    await model.deltas.load("hard", fx.deltas.hard as string);
    assert.equal(hard.params, (await model.deltas.list()).find((d) => d.name === "hard")?.params);
  });

  it("predict: typed predictions over the task's labels, in input order; a delta per row equals its merged checkpoint", async () => {
    const base = await model.predict(TEXTS);
    assert.deepEqual(base.labels, ["negative", "neutral", "positive"]);
    assert.equal(base.predictions.length, TEXTS.length);
    for (const p of base.predictions) {
      assert.equal(p.label, base.labels[p.index]);
      assert.equal(p.index, p.logits.indexOf(Math.max(...p.logits)));
      assert.ok(Math.abs(p.probs.reduce((a, b) => a + b, 0) - 1) < 1e-5);
      assert.equal(p.truncated, false);
    }
    const merged: Record<string, number[][]> = {};
    for (const lang of ["easy", "hard"]) {
      const m = await rt.models.load({ source: fx.theta2[lang] as string });
      merged[lang] = (await m.predict(TEXTS)).predictions.map((p) => p.logits);
      await m.release();
      const one = await model.predict(TEXTS, { delta: lang });
      one.predictions.forEach((p, i) => assert.ok(closeTo(p.logits, merged[lang]?.[i] as number[]), `${lang} row ${i}: ${p.logits} vs ${merged[lang]?.[i]}`));
    }
    // Mixed: each row its own delta, or the base model.
    const choice = [null, "easy", "hard", "easy", null, "hard"];
    const mixed = await model.predict(TEXTS, { delta: choice, batchSize: 4 });
    mixed.predictions.forEach((p, i) => {
      const lang = choice[i];
      const want = lang === null || lang === undefined ? (base.predictions[i]?.logits as number[]) : (merged[lang]?.[i] as number[]);
      assert.ok(closeTo(p.logits, want), `row ${i} (${lang}): ${p.logits} vs ${want}`);
    });
    assert.ok(
      mixed.predictions.some((p, i) => !closeTo(p.logits, base.predictions[i]?.logits as number[], 1e-3)),
      "the deltas change some logits (else this test shows nothing)",
    );
  });

  it("predictStream: a batch event after each batch; a dataset's texts; labels for a model without a task", async () => {
    const stream = model.predictStream(TEXTS.slice(0, 5), { batchSize: 2 });
    const events: PredictEvent[] = [];
    for await (const e of stream) events.push(e);
    assert.deepEqual(
      events.map((e) => [e.done, e.total]),
      [
        [2, 5],
        [4, 5],
        [5, 5],
      ],
    );
    assert.equal((await stream.result).body.predictions.length, 5);

    const test = (fx.files.easy as Record<string, string>).test as string;
    const data = await rt.data.load({ path: test });
    const viaHandle = await model.predict(data, { delta: "easy" });
    assert.equal(viaHandle.predictions.length, data.info.n);
    const viaRef = await model.predict({ path: test }, { delta: "easy" });
    assert.deepEqual(viaRef.predictions, viaHandle.predictions);
    await data.release();

    const theta0 = await rt.models.load({ source: fx.theta0 });
    await assert.rejects(theta0.predict(TEXTS), (e: unknown) => e instanceof BadRequestError && e.path === "body.labels");
    const named = await theta0.predict(TEXTS, { labels: ["negative", "neutral", "positive"] });
    assert.deepEqual(named.labels, ["negative", "neutral", "positive"]);
    await theta0.release();
  });

  it("predict: no texts is an empty result; a text longer than maxLength is cut and flagged", async () => {
    const empty = await model.predict([]);
    assert.deepEqual(empty.predictions, []);
    assert.deepEqual(empty.labels, ["negative", "neutral", "positive"]);
    const long = `${"good ".repeat(200)}bad`;
    const r = await model.predict([long, "good"], { maxLength: 16 });
    assert.deepEqual(
      r.predictions.map((p) => p.truncated),
      [true, false],
    );
  });

  it("generate: token events that add up to the result; greedy and seeded sampling reproducible; several prompts, a delta each", async () => {
    const stream = model.generate("good great", { maxNewTokens: 12 });
    const events: GenerateEvent[] = [];
    for await (const e of stream) events.push(e);
    const { body } = await stream.result;
    assert.equal(body.outputs.length, 1);
    const out = body.outputs[0];
    assert.ok(out);
    assert.equal(events.map((e) => e.text).join(""), out.text);
    assert.ok(events.every((e) => e.type === "token" && e.index === 0));
    assert.equal(events.at(-1)?.tokens, out.tokens);
    assert.ok(out.tokens >= 1 && out.tokens <= 12);
    assert.equal(out.finishReason === "length", out.tokens === 12, `${out.finishReason} after ${out.tokens} tokens`);
    assert.deepEqual((await model.generate("good great", { maxNewTokens: 12 }).finalResult()).body.outputs, body.outputs, "greedy is deterministic");

    const sample = { maxNewTokens: 10, temperature: 1.5, topP: 0.95, topK: 50, seed: 7 };
    const s1 = (await model.generate("bad", sample).finalResult()).body.outputs;
    const s2 = (await model.generate("bad", sample).finalResult()).body.outputs;
    assert.deepEqual(s1, s2, "same seed, same text");

    const many = model.generate(["good", "bad", "fine"], { maxNewTokens: 6, delta: [null, "easy", "hard"] });
    const seen = new Set<number>();
    for await (const e of many) seen.add(e.index);
    const outs = (await many.result).body.outputs;
    assert.equal(outs.length, 3);
    assert.deepEqual([...seen].sort(), [0, 1, 2].filter((i) => (outs[i]?.tokens ?? 0) > 0));
  });

  it("break out of the token loop cancels the generation in the runtime", async () => {
    // The tiny model has 512 positions: 400 new tokens take a second or two in full.
    let t = performance.now();
    const full = (await model.generate("good", { maxNewTokens: 400 }).finalResult()).body.outputs[0];
    fullMs = performance.now() - t;
    assert.equal(full?.finishReason, "length");
    const stream = model.generate("good", { maxNewTokens: 400 });
    let n = 0;
    for await (const _ of stream) if (++n === 2) break;
    t = performance.now();
    await assert.rejects(stream.result, CancelledError);
    await idle();
    const stopMs = performance.now() - t;
    assert.ok(stopMs < fullMs / 2, `the runtime stopped ${stopMs.toFixed(0)} ms after the break (a full run: ${fullMs.toFixed(0)} ms)`);
    assert.equal((await model.predict(["good"])).predictions.length, 1, "the runtime serves the next request");
  });

  it("an AbortSignal cancels generate (mid-stream) and predict", async () => {
    const ac = new AbortController();
    const stream = model.generate("good", { maxNewTokens: 400, signal: ac.signal });
    let aborted = 0;
    await assert.rejects(
      (async () => {
        for await (const e of stream) {
          if (e.tokens >= 3 && aborted === 0) {
            aborted = performance.now();
            ac.abort();
          }
        }
      })(),
      CancelledError,
    );
    await idle();
    const stopMs = performance.now() - aborted;
    assert.ok(stopMs < fullMs / 2, `the runtime stopped ${stopMs.toFixed(0)} ms after the abort (a full run: ${fullMs.toFixed(0)} ms)`);
    const before = new AbortController();
    before.abort();
    await assert.rejects(model.predict(TEXTS, { signal: before.signal }), CancelledError);
    await idle();
  });

  it("bad input: typed errors naming the field", async () => {
    // An unknown delta name is not found (like an unknown handle), naming the field; per row, the row.
    await assert.rejects(model.predict(TEXTS, { delta: "klingon" }), (e: unknown) => e instanceof NotFoundError && e.path === "body.delta" && /klingon/.test(e.message));
    await assert.rejects(model.predict(TEXTS.slice(0, 2), { delta: ["easy", "klingon"] }), (e: unknown) => e instanceof NotFoundError && e.path === "body.delta.1");
    await assert.rejects(model.predict(TEXTS, { delta: ["easy", null] }), (e: unknown) => e instanceof BadRequestError && e.path === "body.delta");
    await assert.rejects(model.predict(TEXTS, { delta: "not a name!" }), (e: unknown) => e instanceof BadRequestError && e.path?.startsWith("body.delta") === true);
    // Refused by zod before anything is sent: generate throws at once, no stream exists.
    assert.throws(() => model.generate("good", { maxNewTokens: 0 }), (e: unknown) => e instanceof BadRequestError && e.path === "body.maxNewTokens");
    assert.throws(() => model.generate([], {}), (e: unknown) => e instanceof BadRequestError && e.path === "body.prompts");
    assert.throws(() => model.generate(["a", "b"], { delta: ["easy"] }), (e: unknown) => e instanceof BadRequestError && e.path === "body.delta");
    assert.throws(() => model.generate("a", { topP: 0 }), (e: unknown) => e instanceof BadRequestError && e.path === "body.topP");
    assert.throws(() => model.generate("a", { temperature: 1, seed: 2 ** 32 }), (e: unknown) => e instanceof BadRequestError && e.path === "body.seed");
    await assert.rejects(
      (async () => {
        for await (const _ of model.generate("good", { delta: "klingon" })) void _;
      })(),
      (e: unknown) => e instanceof NotFoundError && e.path === "body.delta",
    );
    // A delta trained from another base (θ0 is not θ1) is refused when it is loaded.
    const theta0 = await rt.models.load({ source: fx.theta0 });
    await assert.rejects(theta0.deltas.load("easy", fx.deltas.easy as string), (e: unknown) => e instanceof BadRequestError && e.path === "body.delta");
    await theta0.release();
    // While named deltas rest on its weights, the model's weights cannot change.
    const train = { path: (fx.files.src as Record<string, string>).train as string };
    await assert.rejects(rt.train({ model, data: train, epochs: 1 }).finalResult(), (e: unknown) => e instanceof BadRequestError && e.path === "body.model");
    await assert.rejects(model.applyDelta(fx.deltas.easy as string), (e: unknown) => e instanceof BadRequestError && e.path === "body.model");
    await rt.ping();
  });

  it("types: options are checked at compile time", () => {
    const misuse = (m: ModelHandle) => {
      // @ts-expect-error maxNewTokens is a number
      void m.generate("a", { maxNewTokens: "8" });
      // @ts-expect-error a per-row delta is a name or null
      void m.predict(["a"], { delta: [1] });
      // @ts-expect-error predict takes texts or a dataset, not one string
      void m.predict("a");
    };
    assert.equal(typeof misuse, "function"); // compiled, never run
  });
});
