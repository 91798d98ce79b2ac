"""The protocol version lives here and in src/schema/version.ts; a test checks both and docs/protocol.md agree."""

PROTOCOL_VERSION = 1

# A header is a few hundred bytes in practice; anything near this limit is garbage or abuse,
# and refusing it before decoding keeps a hostile client from making us allocate.
MAX_HEADER_BYTES = 1 << 20

KINDS = ("hello", "req", "event", "result", "error", "cancel")
