"""Wire protocol v1: header structs, tensor frames, codec. Imports msgspec and numpy only."""

from .codec import decode_frames, encode_frames
from .header import BufSpec, ErrorBody, Header
from .tensors import DTYPES, WireTensor
from .version import MAX_HEADER_BYTES, PROTOCOL_VERSION

__all__ = [
    "DTYPES",
    "MAX_HEADER_BYTES",
    "PROTOCOL_VERSION",
    "BufSpec",
    "ErrorBody",
    "Header",
    "WireTensor",
    "decode_frames",
    "encode_frames",
]
