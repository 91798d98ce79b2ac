"""The sparse delta's manifest (`delta.json`): file names, required keys, read/write.

The manifest sits beside the tensors (`delta.safetensors`) and says what they are: which
model they belong to (`base` fingerprint), which model applying them gives (`result`),
which slice every tensor pair covers, and the caller's free-form `meta` (circuit, method,
kv policy, training settings). Written as indented JSON with sorted keys, stamped with the
runtime version. On load, unknown keys are kept as they are (a newer runtime may add
some); a missing required key or a wrong kind/version is a BadRequest.

Layout of one entry (one contiguous slice of one parameter):

    {"name": "model.layers.0.self_attn.q_proj.weight", "dim": 0, "start": 8, "stop": 16,
     "shape": [8, 32], "dtype": "float32"}

Norm parameters are whole-tensor entries (dim 0, [0, size)) whose names are also listed
under `norms`.

Its tensors in the safetensors file are `base/<name>/<dim>:<start>:<stop>` and
`new/<name>/<dim>:<start>:<stop>` (see `tensor_key`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import BadRequest

DELTA_KIND = "ctsft-delta"
DELTA_VERSION = 1
DELTA_WEIGHTS = "delta.safetensors"
DELTA_MANIFEST = "delta.json"
DELTA_FILES = (DELTA_WEIGHTS, DELTA_MANIFEST)

BASE, NEW = "base", "new"
"""Prefixes of the two tensors of every entry in the safetensors file."""

REQUIRED_KEYS = ("kind", "version", "base", "result", "modelType", "entries", "norms")
ENTRY_KEYS = ("name", "dim", "start", "stop", "shape", "dtype")
FINGERPRINT_KEYS = ("config", "weights")

_PATH = "delta"


def tensor_key(prefix: str, name: str, dim: int, start: int, stop: int) -> str:
    """`base/<param name>/<dim>:<start>:<stop>` (or `new/...`): explicit indices, no order."""
    return f"{prefix}/{name}/{dim}:{start}:{stop}"


def dtype_name(dtype: torch.dtype) -> str:
    """`torch.bfloat16` -> "bfloat16"."""
    return str(dtype).removeprefix("torch.")


def parse_dtype(name: object, where: str) -> torch.dtype:
    value = getattr(torch, name, None) if isinstance(name, str) else None
    if not isinstance(value, torch.dtype):
        raise BadRequest(f"{where}: unknown dtype {name!r}", path=_PATH)
    return value


def write_manifest(path: Path, manifest: Mapping[str, Any]) -> None:
    """Plain write: callers put it inside an `atomic_dir`, which publishes it atomically."""
    try:
        text = json.dumps(manifest, indent=1, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise BadRequest(f"delta manifest is not plain JSON: {e}", path=_PATH) from None
    path.write_text(text + "\n", encoding="utf-8")


def read_manifest(path: Path) -> dict[str, Any]:
    """Read and validate `delta.json`; extra keys are kept, missing required ones refused."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadRequest(f"{path} does not exist: not a ctsft delta", path=_PATH) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadRequest(f"{path} is not JSON: {e}", path=_PATH) from None
    validate_manifest(body, str(path))
    return body


def validate_manifest(body: object, where: str) -> None:
    """Raise BadRequest unless `body` is a complete manifest of a finished delta."""
    if not isinstance(body, dict):
        raise BadRequest(f"{where}: manifest is not a JSON object", path=_PATH)
    if body.get("kind") != DELTA_KIND:
        raise BadRequest(
            f"{where}: kind {body.get('kind')!r} is not {DELTA_KIND!r}",
            path=_PATH,
            remote_message=f"{where}: not a {DELTA_KIND} manifest (its kind differs)",
        )
    if body.get("version") != DELTA_VERSION:
        raise BadRequest(
            f"{where}: delta version {body.get('version')!r} is not {DELTA_VERSION} "
            "(written by another ctsft runtime version?)",
            path=_PATH,
            remote_message=f"{where}: the delta version is not {DELTA_VERSION} (written by another ctsft version?)",
        )
    missing = [k for k in REQUIRED_KEYS if k not in body]
    if missing:
        raise BadRequest(f"{where}: manifest lacks required key(s) {', '.join(missing)}", path=_PATH)
    for key in ("base", "result"):
        fp = body[key]
        if not isinstance(fp, dict) or any(not isinstance(fp.get(k), str) for k in FINGERPRINT_KEYS):
            raise BadRequest(f"{where}: {key!r} must be a fingerprint {{config, weights}}", path=_PATH)
    if not isinstance(body["entries"], list) or not body["entries"]:
        raise BadRequest(f"{where}: 'entries' must be a non-empty list", path=_PATH)
    for i, entry in enumerate(body["entries"]):
        check_entry(entry, f"{where}: entries[{i}]")
    if not isinstance(body["norms"], list) or any(not isinstance(n, str) for n in body["norms"]):
        raise BadRequest(f"{where}: 'norms' must be a list of parameter names", path=_PATH)
    if "meta" in body and not isinstance(body["meta"], dict):
        raise BadRequest(f"{where}: 'meta' must be an object", path=_PATH)


def check_entry(entry: object, where: str) -> None:
    if not isinstance(entry, dict):
        raise BadRequest(f"{where} is not an object", path=_PATH)
    missing = [k for k in ENTRY_KEYS if k not in entry]
    if missing:
        raise BadRequest(f"{where} lacks {', '.join(missing)}", path=_PATH)
    name, dim, start, stop, shape = (entry[k] for k in ("name", "dim", "start", "stop", "shape"))
    ints = (dim, start, stop)
    if not isinstance(name, str) or not name or any(not isinstance(v, int) or isinstance(v, bool) for v in ints):
        raise BadRequest(f"{where}: name must be a string, dim/start/stop integers", path=_PATH)
    if not isinstance(shape, list) or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in shape):
        raise BadRequest(f"{where}: shape must be a list of sizes", path=_PATH)
    if not (0 <= dim < len(shape) and 0 <= start < stop and shape[dim] == stop - start):
        raise BadRequest(
            f"{where}: slice {dim}:{start}:{stop} does not match shape {shape}",
            path=_PATH,
        )
    parse_dtype(entry["dtype"], where)
