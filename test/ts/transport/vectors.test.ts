// The shared wire vectors (test/vectors/frames.json, also read by test/py/protocol): the TS
// codec decodes their bytes to their values and encodes their values to the same bytes.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import fc from "fast-check";
import { BadRequestError, type DType, type Tensor, TYPED_ARRAY } from "../../../src/index.ts";
import { decodeMessage, encodeMessage } from "../../../src/transport/frames.ts";
import { PROTOCOL_VERSION } from "../../../src/schema/version.ts";

interface Vector {
  name: string;
  header: { v: number; id: string; kind: "req"; op: string; seq: number; body: unknown; bufs: unknown[] };
  tensors: Record<string, { dtype: DType; shape: number[]; values: (number | boolean)[] }>;
  frames: string[];
}

const VECTORS: Vector[] = JSON.parse(readFileSync(new URL("../../vectors/frames.json", import.meta.url), "utf8"));

function toTensor(spec: Vector["tensors"][string]): Tensor {
  const Ctor = TYPED_ARRAY[spec.dtype];
  const n = spec.values.length;
  const data = new Ctor(new ArrayBuffer(n * Ctor.BYTES_PER_ELEMENT), 0, n);
  spec.values.forEach((v, i) => {
    data[i] = (data instanceof BigInt64Array ? BigInt(v as number) : Number(v)) as never;
  });
  return { dtype: spec.dtype, shape: spec.shape, data } as Tensor;
}

describe("shared wire vectors", () => {
  for (const v of VECTORS) {
    it(`decodes: ${v.name}`, () => {
      const msg = decodeMessage(v.frames.map((f) => Buffer.from(f, "hex")));
      assert.deepEqual(msg.header, v.header);
      for (const [name, spec] of Object.entries(v.tensors)) {
        const t = msg.tensors[name];
        assert.ok(t);
        assert.equal(t.dtype, spec.dtype);
        assert.deepEqual(t.shape, spec.shape);
        assert.deepEqual(Array.from(t.data as ArrayLike<number | bigint>, (x) => (typeof x === "bigint" ? Number(x) : x)), spec.values.map(Number));
      }
    });
    it(`encodes byte-identically: ${v.name}`, () => {
      const { bufs: _, ...header } = v.header;
      const tensors = Object.fromEntries(Object.entries(v.tensors).map(([k, s]) => [k, toTensor(s)]));
      const frames = encodeMessage(header, tensors);
      assert.deepEqual(frames.map((f) => f.toString("hex")), v.frames);
    });
  }

  it("docs/protocol.md states the SDK's protocol version", () => {
    const doc = readFileSync(new URL("../../../docs/protocol.md", import.meta.url), "utf8");
    assert.equal(Number(/Protocol version: \*\*(\d+)\*\*/.exec(doc)?.[1]), PROTOCOL_VERSION);
  });
});

describe("decoding arbitrary bytes", () => {
  it("returns a message or throws BadRequestError, nothing else (fast-check)", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 80 }), { minLength: 1, maxLength: 4 }), (frames) => {
        try {
          decodeMessage(frames.map((f) => Buffer.from(f)));
        } catch (e) {
          assert.ok(e instanceof BadRequestError, String(e));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("round-trips any header and tensor set (fast-check)", () => {
    // msgpackr decodes a "__proto__" key as "__proto_" (its guard against prototype
    // pollution), so such keys are the one thing a body cannot carry; documented in protocol.md.
    const body = fc.jsonValue().filter((v) => !JSON.stringify(v ?? null).includes('"__proto__"'));
    const dtypes: DType[] = ["float32", "int32", "uint8", "int64"];
    fc.assert(
      fc.property(fc.string(), body, fc.constantFrom(...dtypes), fc.array(fc.integer({ min: 0, max: 100 }), { maxLength: 6 }), (id, body, dtype, values) => {
        const Ctor = TYPED_ARRAY[dtype];
        const data = new Ctor(new ArrayBuffer(values.length * Ctor.BYTES_PER_ELEMENT), 0, values.length);
        values.forEach((x, i) => (data[i] = (data instanceof BigInt64Array ? BigInt(x) : x) as never));
        const frames = encodeMessage({ v: 1, id, kind: "event", op: "o", seq: 3, body }, { t: { dtype, shape: [values.length], data } as Tensor });
        const msg = decodeMessage(frames);
        assert.equal(msg.header.id, id);
        assert.deepEqual(JSON.parse(JSON.stringify(msg.header.body ?? null)), JSON.parse(JSON.stringify(body ?? null)));
        assert.deepEqual(Array.from(msg.tensors.t?.data as ArrayLike<number | bigint>, Number), values);
      }),
      { numRuns: 500 },
    );
  });
});
