// The same round-trip and streaming suite, run against a real runtime in every mode.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  BadRequestError,
  CancelledError,
  type DType,
  InternalError,
  OutOfMemoryError,
  type Tensor,
  tensor,
  TYPED_ARRAY,
} from "../../../src/index.ts";
import { MODES, type Started, startMode } from "../helpers/runtimes.ts";

function sample(dtype: DType, shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const Ctor = TYPED_ARRAY[dtype];
  const data = new Ctor(new ArrayBuffer(n * Ctor.BYTES_PER_ELEMENT), 0, n);
  for (let i = 0; i < n; i++) {
    if (data instanceof BigInt64Array) data[i] = BigInt(i) * 12345678901n - 7n;
    else if (dtype === "bool") data[i] = i % 3 === 0 ? 1 : 0;
    else if (data instanceof Float32Array) data[i] = i * 0.25 - 3;
    else data[i] = (i * 7919) % (dtype === "uint8" ? 256 : 65536);
  }
  return tensor(dtype, shape, data as never);
}

for (const mode of MODES) {
  describe(`${mode} mode`, () => {
    let s: Started;
    before(async () => {
      s = await startMode(mode);
    });
    after(async () => {
      await s?.stop();
    });

    it("handshakes and reports versions", async () => {
      assert.equal(s.rt.hello.protocol, 1);
      const info = await s.rt.info();
      assert.match(info.torch, /^2\.13\.0/);
      assert.equal(typeof info.cuda, "boolean");
      assert.match(info.transformers, /^\d+\./);
    });

    it("round-trips tensors of every dtype, through torch too", async () => {
      const dtypes: DType[] = ["float32", "float16", "bfloat16", "int64", "int32", "uint8", "bool"];
      const tensors = Object.fromEntries(dtypes.map((d, i) => [d, sample(d, [3, i + 1, 2])]));
      tensors.empty = sample("float32", [0, 5]);
      for (const viaTorch of [false, true]) {
        const r = await s.rt.echo({ payload: { nested: [1, "two", null, 3.5] }, viaTorch }, { tensors });
        assert.deepEqual(r.body.payload, { nested: [1, "two", null, 3.5] });
        for (const [name, t] of Object.entries(tensors)) {
          const got = r.tensors[name];
          assert.ok(got, name);
          assert.equal(got.dtype, t.dtype);
          assert.deepEqual(got.shape, t.shape);
          assert.deepEqual(Array.from(got.data as ArrayLike<unknown>), Array.from(t.data as ArrayLike<unknown>), name);
        }
      }
    });

    it("streams events in order, then the result", async () => {
      const stream = s.rt.diagnose({ count: 2000 });
      let expected = 0;
      for await (const e of stream) assert.equal(e.step, expected++);
      assert.equal(expected, 2000);
      assert.equal((await stream.result).body.count, 2000);
    });

    it("maps runtime failures to typed errors (with the traceback, except for remote clients)", async () => {
      const fail = s.rt.diagnose({ count: 10, failAt: 3 });
      const seen: number[] = [];
      await assert.rejects(
        (async () => {
          for await (const e of fail) seen.push(e.step);
        })(),
        (e: unknown) =>
          e instanceof InternalError &&
          (mode === "remote"
            ? // A remote client learns that it failed and a reference to the server's log, never the server's internals.
              /internal error in diagnose \(reference [0-9a-f]{8}/.test(e.message) && e.traceback === undefined
            : /simulated failure at step 3/.test(e.message) && /Traceback/.test(e.traceback ?? "")),
      );
      assert.deepEqual(seen, [0, 1, 2]);
      await assert.rejects(s.rt.call("diagnose", { count: 5, failAt: 0, failCode: "out_of_memory" }), OutOfMemoryError);
    });

    it("refuses invalid input before sending, naming the field", async () => {
      assert.throws(() => s.rt.diagnose({ count: -1 }), (e: unknown) => e instanceof BadRequestError && e.path === "body.count");
      await assert.rejects(s.rt.call("echo", { bogus: 1 } as never), BadRequestError);
      await s.rt.ping();
    });

    it("cancels a stream within one step and stays usable", async () => {
      const ac = new AbortController();
      const stream = s.rt.diagnose({ count: 1000, intervalMs: 100 }, { signal: ac.signal });
      let got = 0;
      await assert.rejects(
        (async () => {
          for await (const _ of stream) if (++got === 3) ac.abort();
        })(),
        CancelledError,
      );
      const t0 = Date.now();
      for (;;) {
        const st = await s.rt.status();
        if (st.running === null) break;
        assert.ok(Date.now() - t0 < 1000, "runtime still running the cancelled op after 1 s");
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(Date.now() - t0 <= 400, `stopped after ${Date.now() - t0} ms (one step is 100 ms)`);
      await s.rt.ping();
      assert.equal((await s.rt.call("diagnose", { count: 3 })).body.count, 3);
    });

    it("leaving a for-await early cancels the op", async () => {
      const stream = s.rt.diagnose({ count: 100000, intervalMs: 1 });
      for await (const e of stream) if (e.step === 5) break;
      await assert.rejects(stream.result, CancelledError);
      await s.rt.ping();
    });

    it("answers status from the control thread during compute", async () => {
      const stream = s.rt.diagnose({ count: 5, intervalMs: 100 });
      const done = stream.finalResult();
      await new Promise((r) => setTimeout(r, 150));
      const st = await s.rt.status();
      assert.equal(st.running?.op, "diagnose");
      await done;
    });
  });
}
