// A diverging run fails fast with a typed error naming the step, and the runtime is free at
// once; a call whose events the SDK cannot read is cancelled in the runtime, not left running.
// Against a real runtime and a real tiny checkpoint the runtime builds itself.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { z } from "zod";
import { RunStream } from "../../../src/api/stream.ts";
import { InternalError, NonFiniteError } from "../../../src/errors.ts";
import { type ModelHandle, Runtime } from "../../../src/index.ts";
import type { Connection } from "../../../src/transport/index.ts";

describe("non-finite training and unreadable replies", () => {
  let rt: Runtime;
  let train: string;
  let ckpt: string;

  before(async () => {
    rt = await Runtime.start();
    const dir = mkdtempSync(join(tmpdir(), "ctsft-nonfinite-"));
    const files = (await rt.data.synthetic({ out: join(dir, "data"), nTrain: 60, nValid: 30, nTest: 30 })).files;
    train = (files.src as Record<string, string>).train as string;
    ckpt = (await rt.models.create({ family: "llama", layers: 2, heads: 4, kvHeads: 2, dModel: 32, corpus: [train], vocab: 600, out: join(dir, "model") })).path;
  });
  after(async () => {
    await rt?.close();
  });

  it("lr 1e30: NonFiniteError naming the step, the runtime answers at once, the model is refused after", async () => {
    const model: ModelHandle = await rt.models.load({ source: ckpt });
    const stream = rt.train({ model, data: { path: train }, epochs: 50, batchSize: 4, lr: 1e30 });
    const steps: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const e of stream) if (e.type === "step") steps.push(e.gradNorm, e.loss);
      })(),
      (e: unknown) => e instanceof NonFiniteError && e.code === "non_finite" && /training diverged at step \d+ of \d+/.test(e.message) && /now invalid/.test(e.message),
    );
    assert.ok(steps.every(Number.isFinite), "no NaN ever reaches the SDK");
    const t0 = performance.now();
    await rt.ping();
    assert.ok(performance.now() - t0 < 1000, `ping took ${performance.now() - t0} ms`);
    assert.equal((await rt.status()).running, null);
    await assert.rejects(rt.evaluate({ model, data: [{ path: train }] }).finalResult(), (e: unknown) => e instanceof NonFiniteError && /holds invalid weights/.test(e.message));
    await model.release();
  });

  it("an event that fails the SDK's schema cancels the call in the runtime", async () => {
    const conn = (rt as unknown as { conn: Connection }).conn;
    const call = conn.request("diagnose", { count: 10_000, intervalMs: 20, payloadBytes: 0 });
    // A stricter event schema than the runtime's: the first tick does not parse.
    const stream = new RunStream(conn, call, { event: z.object({ type: z.literal("never") }), result: z.unknown() });
    await assert.rejects(stream.finalResult(), (e: unknown) => e instanceof InternalError && /does not match the SDK's schema/.test(e.message) && /cancelled in the runtime/.test(e.message));
    const deadline = Date.now() + 3000;
    while ((await rt.status()).running !== null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal((await rt.status()).running, null, "the runtime stopped the call (10 000 ticks × 20 ms would take 200 s)");
    const t0 = performance.now();
    await rt.ping();
    assert.ok(performance.now() - t0 < 1000);
  });
});
