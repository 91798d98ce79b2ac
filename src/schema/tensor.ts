import { z } from "zod";

/** Dtypes that travel as raw frames. `bfloat16` has no JS typed array: its raw bits arrive as
 * a `Uint16Array`; `bool` arrives as a `Uint8Array` of 0/1. */
export const DType = z.enum(["float32", "float16", "bfloat16", "int64", "int32", "uint8", "bool"]);
export type DType = z.infer<typeof DType>;

/** The typed array that holds each dtype's elements (float16 and bfloat16 as raw uint16 bits). */
export interface TypedArrayOf {
  float32: Float32Array;
  float16: Uint16Array;
  bfloat16: Uint16Array;
  int64: BigInt64Array;
  int32: Int32Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}

/** A tensor as the SDK sees it: dtype, shape (row-major) and its elements. */
export interface Tensor<D extends DType = DType> {
  dtype: D;
  shape: number[];
  data: TypedArrayOf[D];
}

/** A set of named tensors travelling with a message. */
export type Tensors = Record<string, Tensor>;

type Ctor = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArrayOf[DType]; BYTES_PER_ELEMENT: number };

/** dtype -> typed array constructor; the single place that knows element sizes. */
export const TYPED_ARRAY: Record<DType, Ctor> = {
  float32: Float32Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

/** Build a tensor, checking that the element count matches the shape. */
export function tensor<D extends DType>(dtype: D, shape: number[], data: TypedArrayOf[D]): Tensor<D> {
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new RangeError(`tensor of shape [${shape}] needs ${n} elements, got ${data.length}`);
  if (!(data instanceof TYPED_ARRAY[dtype])) throw new TypeError(`${dtype} data must be a ${TYPED_ARRAY[dtype].name}`);
  return { dtype, shape, data };
}
