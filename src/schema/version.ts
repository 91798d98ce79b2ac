/** Wire protocol version spoken by this SDK. Kept equal to `PROTOCOL_VERSION` in
 * `py_runtime/ctsft_runtime/protocol/version.py` and the version in `docs/protocol.md`
 * (a test reads all three). */
export const PROTOCOL_VERSION = 1;

/** Headers larger than this are refused by both sides before decoding. */
export const MAX_HEADER_BYTES = 1 << 20;
