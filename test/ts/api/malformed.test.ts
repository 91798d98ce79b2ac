// Malformed input against a real runtime: every message gets a typed error and the runtime
// keeps serving. Property-based with fast-check (test/py/server has the hypothesis twin).
import assert from "node:assert/strict";
import fc from "fast-check";
import { Packr } from "msgpackr";
import { after, before, describe, it } from "node:test";
import { decodeMessage, encodeMessage } from "../../../src/transport/frames.ts";
import { type RawRuntime, startRawRuntime } from "../helpers/raw-runtime.ts";

const packr = new Packr({ useRecords: false });
const ERROR_CODES = new Set(["bad_request", "not_found", "version_mismatch"]);

describe("malformed input to a real runtime", () => {
  let raw: RawRuntime;
  before(async () => {
    raw = await startRawRuntime();
  });
  after(async () => {
    await raw?.stop();
  });

  async function expectError(frames: Buffer[]): Promise<{ code: string; message: string; path?: string }> {
    const reply = decodeMessage(await raw.exchange(frames));
    assert.equal(reply.header.kind, "error", JSON.stringify(reply.header));
    const body = reply.header.body as { code: string; message: string; path?: string };
    assert.ok(ERROR_CODES.has(body.code), body.code);
    return body;
  }

  async function stillServes(): Promise<void> {
    const reply = decodeMessage(await raw.exchange(encodeMessage({ v: 1, id: "alive", kind: "req", op: "ping", seq: 0, body: {} })));
    assert.equal(reply.header.kind, "result");
    assert.equal(reply.header.id, "alive");
  }

  it("answers named bad inputs with the right code and field", async () => {
    const req = (op: string, body: unknown) => encodeMessage({ v: 1, id: "x", kind: "req", op, seq: 0, body });
    assert.match((await expectError([Buffer.from([0xc1])])).message, /not valid msgpack/);
    assert.equal((await expectError(req("no_such_op", {}))).code, "not_found");
    assert.equal((await expectError(req("diagnose", { count: "many" }))).path, "body.count");
    assert.equal((await expectError(req("diagnose", { count: 1, bogus: true }))).code, "bad_request");
    const v2 = await expectError(encodeMessage({ v: 2, id: "h", kind: "hello", op: "hello", seq: 0, body: {} }));
    assert.equal(v2.code, "version_mismatch");
    assert.match(v2.message, /v2.*v1/);
    assert.match((await expectError([Buffer.alloc(2 << 20)])).message, /exceeds/);
    const truncated = encodeMessage({ v: 1, id: "t", kind: "req", op: "echo", seq: 0, body: {} }, {
      x: { dtype: "float32", shape: [4], data: new Float32Array(4) },
    });
    assert.match((await expectError([truncated[0] as Buffer, (truncated[1] as Buffer).subarray(0, 7)])).message, /bytes for shape/);
    assert.match((await expectError([truncated[0] as Buffer])).message, /describes 1 tensor frames but 0/);
    await stillServes();
  });

  it("survives arbitrary frames (fast-check)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 64 }), { minLength: 1, maxLength: 4 }), async (frames) => {
        const reply = decodeMessage(await raw.exchange(frames.map((f) => Buffer.from(f))));
        assert.ok(["error", "hello", "result"].includes(reply.header.kind));
      }),
      { numRuns: 150 },
    );
    await stillServes();
  });

  it("survives well-formed msgpack of the wrong shape (fast-check)", async () => {
    const header = fc.record({
      v: fc.oneof(fc.constant(1), fc.integer()),
      id: fc.oneof(fc.string(), fc.integer()),
      kind: fc.constantFrom("req", "hello", "event", "cancel", "bogus"),
      // No streaming op here: its events would answer the next exchange.
      op: fc.constantFrom("echo", "ping", "info", "nope", ""),
      seq: fc.integer(),
      body: fc.jsonValue(),
      bufs: fc.array(fc.record({ name: fc.string(), dtype: fc.constantFrom("float32", "int8", "bool"), shape: fc.array(fc.integer({ min: -1, max: 4 })) }), { maxLength: 2 }),
    }, { requiredKeys: [] });
    await fc.assert(
      fc.asyncProperty(fc.oneof(header, fc.jsonValue()), fc.array(fc.uint8Array({ maxLength: 32 }), { maxLength: 2 }), async (h, bufs) => {
        const frames = [packr.pack(h), ...bufs.map((b) => Buffer.from(b))];
        const reply = decodeMessage(await raw.exchange(frames));
        // A random message may be valid (e.g. a hello); what matters is one typed answer each.
        if (reply.header.kind === "error") assert.ok(ERROR_CODES.has((reply.header.body as { code: string }).code));
      }),
      { numRuns: 200 },
    );
    await stillServes();
  });
});
