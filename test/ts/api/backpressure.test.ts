// 100,000 streamed events under a slow consumer: all arrive, in order (DESIGN §4 trap 1).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Runtime } from "../../../src/index.ts";

describe("streaming back-pressure", () => {
  it("delivers 100,000 events complete and in order to a slow consumer", { timeout: 120_000 }, async () => {
    await using rt = await Runtime.start();
    const stream = rt.diagnose({ count: 100_000 });
    let expected = 0;
    let paused = 0;
    for await (const e of stream) {
      assert.equal(e.step, expected);
      expected++;
      // Slower than the producer: stall now and then, long enough for every queue to fill.
      if (expected % 20_000 === 0) {
        paused++;
        await new Promise((r) => setTimeout(r, 300));
      } else if (expected % 100 === 0) {
        await new Promise((r) => setImmediate(r));
      }
    }
    assert.equal(expected, 100_000);
    assert.equal(paused, 5);
    assert.equal((await stream.result).body.count, 100_000);
    const st = await rt.status();
    assert.equal(st.running, null);
  });
});
