"""Typed errors shared by every layer of the runtime.

Each class maps to one wire error code; the server turns any `CtsftError` into an
`error` message carrying `code`, `message`, `detail` and (for bad input) the `path` of the
offending field. Plain-PyTorch layers (heads, data, training, ...) raise these too, so a
notebook user gets the same clear messages as a TypeScript caller.
"""

from __future__ import annotations


class CtsftError(Exception):
    """Root of all runtime errors; `code` is the wire error code."""

    code = "internal"

    def __init__(self, message: str, *, detail: str | None = None, path: str | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.path = path


class BadRequest(CtsftError):
    """The caller asked for something invalid (bad field, missing file, unknown column...)."""

    code = "bad_request"


class NotFound(CtsftError):
    """A handle, op or resource named by the caller does not exist."""

    code = "not_found"


class Cancelled(CtsftError):
    """The operation was cancelled by the caller."""

    code = "cancelled"


class VersionMismatch(CtsftError):
    """Client and runtime speak different protocol versions."""

    code = "version_mismatch"


class OutOfMemory(CtsftError):
    """The device ran out of memory."""

    code = "out_of_memory"


class Internal(CtsftError):
    """A bug or an unexpected failure inside the runtime."""

    code = "internal"
