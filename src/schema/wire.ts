import { z } from "zod";
import { DType } from "./tensor.ts";

/** Message kinds of protocol v1 (see docs/protocol.md §Messages). */
export const Kind = z.enum(["hello", "req", "event", "result", "error", "cancel"]);
export type Kind = z.infer<typeof Kind>;

/** Describes one raw tensor frame following the header, in order. */
export const BufSpec = z.object({
  name: z.string(),
  dtype: DType,
  shape: z.array(z.number().int().nonnegative()),
});
export type BufSpec = z.infer<typeof BufSpec>;

/** The msgpack header that starts every message. Keys are encoded in this order. */
export const Header = z.object({
  v: z.number().int(),
  id: z.string(),
  kind: Kind,
  op: z.string(),
  seq: z.number().int().nonnegative(),
  body: z.unknown(),
  bufs: z.array(BufSpec),
});
export type Header = z.infer<typeof Header>;

/** Wire error codes; each maps to one error class in `errors.ts`. */
export const ErrorCode = z.enum([
  "bad_request",
  "not_found",
  "cancelled",
  "runtime_lost",
  "version_mismatch",
  "internal",
  "out_of_memory",
  "non_finite",
  "forbidden",
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

/** Body of an `error` message. */
export const ErrorBody = z.object({
  code: ErrorCode.catch("internal"),
  message: z.string(),
  detail: z.string().optional(),
  traceback: z.string().optional(),
  path: z.string().optional(),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

/** Body of the runtime's `hello` reply. */
export const HelloBody = z.object({
  protocol: z.number().int(),
  runtimeVersion: z.string(),
  python: z.string(),
  pid: z.number().int(),
  /** Remote mode: how often the client should show it is alive (the server frees an idle
   * client's handles after three such periods without a message). */
  keepaliveMs: z.number().int().positive().optional(),
});
export type HelloBody = z.infer<typeof HelloBody>;
