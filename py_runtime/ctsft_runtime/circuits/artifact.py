"""Scores files and circuit artifacts: self-describing JSON, written atomically, versioned."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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


def read_artifact(path: Path, kind: str) -> dict[str, Any]:
    """Read a scores/circuit JSON, checking it is the kind and version we understand."""
    try:
        body = json.loads(path.read_text())
    except FileNotFoundError:
        raise BadRequest(f"{path} does not exist", path=kind) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadRequest(f"{path} is not JSON: {e}", path=kind) from None
    if not isinstance(body, dict) or body.get("kind") != kind:
        raise BadRequest(f"{path} is not a ctsft {kind} file", path=kind)
    expected = SCORES_VERSION if kind == "scores" else CIRCUIT_VERSION
    if body.get("version") != expected:
        raise BadRequest(f"{path}: {kind} version {body.get('version')} is not {expected}", path=kind)
    return body


def nan_to_none(rows: list[list[float]]) -> list[list[float | None]]:
    # JSON has no NaN: unscored heads are null.
    return [[None if v != v else v for v in row] for row in rows]


def none_to_nan(rows: list[list[float | None]]) -> list[list[float]]:
    return [[float("nan") if v is None else float(v) for v in row] for row in rows]
