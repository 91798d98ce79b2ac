"""Typed errors shared by every layer of the runtime.

Each class maps to one wire error code; the server turns any `CtsftError` into an
`error` message carrying `code`, `message`, `detail` and (for bad input) the `path` of the
offending field. Plain-PyTorch layers (heads, data, training, ...) raise these too, so a
notebook user gets the same clear messages as a TypeScript caller.

`remote_message`: a message that reveals nothing read from a file. Raise sites whose
`message` quotes file contents (cells, lines, labels, column names, JSON values, a
library's error that repeats them) set it; a server in remote mode sends it instead of
`message` (and drops `detail`), since a remote client may name files it cannot read.
"""

from __future__ import annotations


class CtsftError(Exception):
    """Root of all runtime errors; `code` is the wire error code."""

    code = "internal"

    def __init__(
        self,
        message: str,
        *,
        detail: str | None = None,
        path: str | None = None,
        remote_message: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.path = path
        # What a remote client is told instead of `message` when `message` would reveal the
        # contents of a file (None: `message` reveals none and is safe to send as it is).
        self.remote_message = remote_message


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


class NonFinite(CtsftError):
    """Training produced a non-finite loss or gradient norm (the message names the step and
    says what became of the model's weights), or an op was asked to use a model whose
    weights such a failure left invalid."""

    code = "non_finite"


class RankLost(CtsftError):
    """Another rank of a multi-rank runtime died mid-op (server/ranks.py): the runtime stops."""

    code = "runtime_lost"


class Internal(CtsftError):
    """A bug or an unexpected failure inside the runtime."""

    code = "internal"


class Forbidden(CtsftError):
    """The server's policy does not allow this client to do that (a remote client asking to
    run a checkpoint's code, to download, or to shut the server down without an admin key)."""

    code = "forbidden"
