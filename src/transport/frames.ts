import { Packr } from "msgpackr";
import { BadRequestError } from "../errors.ts";
import { MAX_HEADER_BYTES } from "../schema/version.ts";
import { type BufSpec, Header } from "../schema/wire.ts";
import { type DType, type Tensor, type Tensors, TYPED_ARRAY } from "../schema/tensor.ts";

// Plain msgpack for Python interop: no records extension, maps decode to plain objects,
// 64-bit integers become numbers (byte counts of GPU memory exceed 2^32), and maps get their
// smallest header (fixmap), as msgspec writes them, so both sides produce identical bytes.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: "number", variableMapSize: true });

/** A decoded message: the validated header and its tensors (zero-copy views where aligned). */
export interface Message {
  header: Header;
  tensors: Tensors;
}

/** Encode `[header][buf...]`. Tensor frames are views over the caller's memory (no copy). */
export function encodeMessage(header: Omit<Header, "bufs">, tensors: Tensors = {}): Buffer[] {
  const bufs: BufSpec[] = [];
  const frames: Buffer[] = [];
  for (const [name, t] of Object.entries(tensors)) {
    bufs.push({ name, dtype: t.dtype, shape: t.shape });
    frames.push(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  const full = { v: header.v, id: header.id, kind: header.kind, op: header.op, seq: header.seq, body: dropUndefined(header.body), bufs };
  return [packr.pack(full), ...frames];
}

/** Decode and validate a message; a malformed one throws `BadRequestError`. */
export function decodeMessage(frames: Buffer[]): Message {
  const [head, ...bufs] = frames;
  if (head === undefined) throw new BadRequestError("empty message");
  if (head.length > MAX_HEADER_BYTES) throw new BadRequestError(`header of ${head.length} bytes exceeds ${MAX_HEADER_BYTES}`);
  let raw: unknown;
  try {
    raw = packr.unpack(head);
  } catch (e) {
    throw new BadRequestError(`header is not valid msgpack: ${(e as Error).message}`);
  }
  const parsed = Header.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BadRequestError(`invalid header: ${issue?.message}`, { path: issue?.path.join(".") });
  }
  const header = parsed.data;
  if (header.bufs.length !== bufs.length) {
    throw new BadRequestError(`header describes ${header.bufs.length} tensor frames but ${bufs.length} followed`, { path: "bufs" });
  }
  const tensors: Tensors = {};
  header.bufs.forEach((spec, i) => {
    tensors[spec.name] = viewTensor(spec, bufs[i] as Buffer);
  });
  return { header, tensors };
}

function viewTensor(spec: BufSpec, buf: Buffer): Tensor {
  const Ctor = TYPED_ARRAY[spec.dtype as DType];
  const count = spec.shape.reduce((a, b) => a * b, 1);
  if (buf.length !== count * Ctor.BYTES_PER_ELEMENT) {
    throw new BadRequestError(`tensor ${spec.name}: ${buf.length} bytes for shape [${spec.shape}] ${spec.dtype}`, { path: "bufs" });
  }
  // Zero-copy when the frame is aligned for the element type; otherwise one copy is unavoidable.
  const aligned = buf.byteOffset % Ctor.BYTES_PER_ELEMENT === 0;
  const source = aligned ? buf : Buffer.from(buf);
  return { dtype: spec.dtype, shape: spec.shape, data: new Ctor(source.buffer, source.byteOffset, count) } as Tensor;
}

// msgpack has no `undefined`; an optional field left undefined must be absent, not nil.
function dropUndefined(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropUndefined);
  if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    // defineProperty, not assignment: a key named "__proto__" must stay a key, not set a prototype.
    for (const [k, v] of Object.entries(value)) if (v !== undefined) Object.defineProperty(out, k, { value: dropUndefined(v), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return value;
}
