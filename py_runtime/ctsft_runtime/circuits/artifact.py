"""Scores files and circuit artifacts: self-describing JSON, written atomically, versioned.

Reading one checks every field the ops use (a hand-edited or truncated file is a
BadRequest naming the field, never a KeyError deep inside an op); messages quote no value
from a file that is not yet known to be a ctsft artifact of the right kind.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import msgspec

from .. import __version__
from ..errors import BadRequest
from ..models.atomic import atomic_write_text

SCORES_VERSION = 1
CIRCUIT_VERSION = 1


def write_json(path: Path, body: dict[str, Any]) -> Path:
    atomic_write_text(path, json.dumps(body, indent=1, sort_keys=True, allow_nan=False) + "\n")
    return path


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def stamp(kind: str, version: int) -> dict[str, Any]:
    return {"kind": kind, "version": version, "ctsftRuntime": __version__, "created": now()}


class _Fingerprint(msgspec.Struct):
    config: str
    weights: str


class _Params(msgspec.Struct, rename="camel"):
    total: int
    norms: int
    per_head: list[list[int]]


class _Model(msgspec.Struct):
    fingerprint: _Fingerprint
    family: str
    layers: int
    heads: int


class _ScoresModel(_Model):
    params: _Params


class _Scores(msgspec.Struct):
    """What `circuit.select` reads from a scores file (other fields are kept as they are)."""

    scores: list[list[float | None]]
    model: _ScoresModel
    method: str
    settings: dict[str, Any]
    n: int
    labels: list[str]
    dataset: str


class _Circuit(msgspec.Struct):
    """What `train` reads from a circuit file."""

    heads: list[tuple[int, int]]
    model: _Model


def read_artifact(path: Path, kind: str) -> dict[str, Any]:
    """Read a scores/circuit JSON, checking it is the kind and version we understand and
    that every field the ops read is there with the right type."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadRequest(f"{path} does not exist", path=kind) from None
    except IsADirectoryError:
        raise BadRequest(f"{path} is a directory, not a {kind} file", path=kind) from None
    except json.JSONDecodeError as e:
        # e.msg and the position only: str(e) is the same, but nothing of the text itself.
        raise BadRequest(f"{path} is not JSON: {e.msg} (line {e.lineno}, column {e.colno})", path=kind) from None
    except UnicodeDecodeError as e:
        raise BadRequest(f"{path} is not UTF-8 text (byte {e.start})", path=kind) from None
    if not isinstance(body, dict) or body.get("kind") != kind:
        raise BadRequest(f"{path} is not a ctsft {kind} file", path=kind)
    expected = SCORES_VERSION if kind == "scores" else CIRCUIT_VERSION
    if body.get("version") != expected:
        raise BadRequest(
            f"{path}: {kind} version {body.get('version')!r} is not {expected}",
            path=kind,
            remote_message=f"{path}: the {kind} version is not {expected}",
        )
    try:
        # msgspec names the field and the expected type, never the value it found.
        msgspec.convert(body, _Scores if kind == "scores" else _Circuit)
    except msgspec.ValidationError as e:
        raise BadRequest(f"{path} is not a valid ctsft {kind} file: {e}", path=kind) from None
    if kind == "scores":
        _check_grid(path, body)
    return body


def _check_grid(path: Path, body: dict[str, Any]) -> None:
    """Scores and the per-head parameter table: the same layers x heads, non-empty."""
    scores, per_head = body["scores"], body["model"]["params"]["perHead"]
    widths = {len(row) for row in scores}
    if not scores or len(widths) != 1 or 0 in widths:
        raise BadRequest(f"{path}: `scores` must be a non-empty layers x heads table", path="scores")
    if [len(row) for row in per_head] != [len(row) for row in scores]:
        raise BadRequest(f"{path}: `model.params.perHead` is not the shape of `scores`", path="scores")
    if any(v is not None and not math.isfinite(v) for row in scores for v in row):
        raise BadRequest(f"{path}: `scores` holds a non-finite number (unscored heads are null)", path="scores")


def nan_to_none(rows: list[list[float]]) -> list[list[float | None]]:
    # JSON has no NaN: unscored heads are null.
    return [[None if v != v else v for v in row] for row in rows]


def none_to_nan(rows: list[list[float | None]]) -> list[list[float]]:
    return [[float("nan") if v is None else float(v) for v in row] for row in rows]
