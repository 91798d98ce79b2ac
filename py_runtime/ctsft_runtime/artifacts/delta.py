"""The sparse delta of a CT-SFT run: the trained head slices and the norm parameters, nothing else.

Life cycle (θ1 = the model before CT-SFT, θ2 = after):

    delta = SparseDelta.capture(model, spans, norm_names, meta={...})   # before training
    ...train...                                                         # only those slices move
    delta.finish(model)                                                 # after training
    save_delta(delta, "runs/x/delta")         # delta.safetensors + delta.json, atomically
    apply_delta(theta1_model, load_delta("runs/x/delta"))               # θ1 -> θ2
    revert_delta(theta2_model, delta)                                   # θ2 -> θ1, bit-exact

Every entry keeps both the `base` (θ1) and the `new` (θ2) values of its slice. Apply
writes `new`, revert writes `base` back: no arithmetic is ever inverted, so revert is
bit-exact (the peft ln_tuning way, not the IA3 divide-back way). Keeping `base` in the file
also lets apply tell "already applied" apart from "another model".

Both directions are guarded by the model fingerprints recorded at capture (`base`) and
finish (`result`): apply needs the weights to be exactly `base`, revert exactly `result`,
and each checks its outcome and rolls back if it is not the recorded one. `finish` refuses
a model that changed outside the captured slices (the CT-SFT invariant), so a delta that
saves at all reproduces its result exactly.

Fingerprints hash every parameter (on the CPU), once per capture/apply/revert check:
seconds for a 7B model, negligible next to training.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from .. import __version__
from ..circuits.fingerprint import config_hash, fingerprint, weights_hash
from ..errors import BadRequest
from ..heads import Span
from ..models.atomic import atomic_dir, check_out_dir
from .manifest import (
    BASE,
    DELTA_FILES,
    DELTA_KIND,
    DELTA_MANIFEST,
    DELTA_VERSION,
    DELTA_WEIGHTS,
    ENTRY_KEYS,
    NEW,
    dtype_name,
    parse_dtype,
    read_manifest,
    tensor_key,
    validate_manifest,
    write_manifest,
)

__all__ = [
    "DeltaEntry",
    "SparseDelta",
    "apply_delta",
    "check_config",
    "check_finished",
    "load_delta",
    "resolve_views",
    "revert_delta",
    "save_delta",
]

_PATH = "delta"


@dataclass(eq=False)
class DeltaEntry:
    """One contiguous slice `[start, stop)` along `dim` of the parameter `name`.

    `base` / `new` hold the slice's values before / after training (CPU, contiguous, the
    parameter's dtype); `new` is None until `SparseDelta.finish`. Norm parameters are
    whole-tensor entries: dim 0, [0, size).
    """

    name: str
    dim: int
    start: int
    stop: int
    base: Tensor
    new: Tensor | None = None

    @property
    def size(self) -> int:
        return self.stop - self.start

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.base.shape)

    @property
    def numel(self) -> int:
        return self.base.numel()

    def key(self, prefix: str) -> str:
        """The safetensors key of this entry's `base` or `new` tensor."""
        return tensor_key(prefix, self.name, self.dim, self.start, self.stop)

    def view(self, param: Tensor) -> Tensor:
        """The slice inside `param` (a view: writes go through)."""
        return param.narrow(self.dim, self.start, self.size)

    def spec(self) -> dict[str, Any]:
        """The manifest's description of this entry."""
        return {
            "name": self.name,
            "dim": self.dim,
            "start": self.start,
            "stop": self.stop,
            "shape": list(self.shape),
            "dtype": dtype_name(self.base.dtype),
        }


@dataclass(eq=False)
class SparseDelta:
    """θ1 -> θ2 as the changed slices only, plus the manifest that says where they belong."""

    entries: list[DeltaEntry]
    manifest: dict[str, Any]

    @staticmethod
    def capture(
        model: nn.Module,
        spans: Sequence[Span],
        norm_names: Sequence[str | tuple[str, nn.Parameter]],
        *,
        meta: Mapping[str, Any] | None = None,
    ) -> SparseDelta:
        """Snapshot the base values of `spans` and of the norm parameters `norm_names`
        (names, or the (name, param) pairs `norm_parameters` returns), and the model's
        fingerprint as `manifest["base"]`. Call BEFORE training.

        Spans repeated exactly (GQA heads sharing a KV head, a norm listed twice) are kept
        once; partially overlapping ones are refused. `meta` must be plain JSON (the caller
        records the circuit, method, kv policy, training settings there).
        """
        meta = dict(meta or {})
        try:
            json.dumps(meta, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise BadRequest(f"delta meta is not plain JSON: {e}", path="meta") from None
        params = _named_parameters(model)
        wanted: list[tuple[str, int, int, int]] = []
        for span in spans:
            if not isinstance(span, Span):
                raise BadRequest(f"expected a head-map Span, got {type(span).__name__}", path=_PATH)
            param = params.get(span.name)
            if param is None:
                raise BadRequest(f"span names parameter {span.name!r}, which the model does not have", path=_PATH)
            if param is not span.param:
                raise BadRequest(
                    f"span {span.name!r} belongs to another model instance (build the head map of this model)",
                    path=_PATH,
                )
            wanted.append((span.name, span.dim, span.start, span.stop))
        norms: list[str] = []
        for item in norm_names:
            name = item[0] if isinstance(item, tuple) else item
            param = params.get(name) if isinstance(name, str) else None
            if param is None:
                raise BadRequest(f"norm parameter {name!r} is not a parameter of the model", path=_PATH)
            if param.dim() == 0:
                raise BadRequest(f"norm parameter {name!r} is a scalar; only tensors can be sliced", path=_PATH)
            if name not in norms:
                norms.append(name)
            wanted.append((name, 0, 0, int(param.shape[0])))
        wanted = list(dict.fromkeys(wanted))  # exact repeats once, first-seen order
        if not wanted:
            raise BadRequest("nothing to capture: no spans and no norm parameters", path=_PATH)
        _check_disjoint(wanted)
        entries = []
        with torch.no_grad():
            for name, dim, start, stop in wanted:
                entry = DeltaEntry(name, dim, start, stop, base=torch.empty(0))
                entry.base = _snapshot(entry.view(_check_range(entry, params[name])))
                entries.append(entry)
        n_params = sum(p.numel() for p in model.parameters())  # tied weights once
        n_delta = sum(e.numel for e in entries)
        manifest = {
            "kind": DELTA_KIND,
            "version": DELTA_VERSION,
            "ctsftRuntime": __version__,
            "modelType": getattr(getattr(model, "config", None), "model_type", None),
            "base": fingerprint(model),
            "entries": [e.spec() for e in entries],
            "norms": norms,
            "elements": n_delta,
            "modelElements": n_params,
            "fraction": n_delta / n_params if n_params else 0.0,
            "meta": meta,
        }
        return SparseDelta(entries, manifest)

    def finish(self, model: nn.Module) -> SparseDelta:
        """Record the slices' trained values and `manifest["result"]`; call AFTER training.

        Refuses (BadRequest) a model whose config differs from the captured one, or whose
        weights changed outside the captured slices: such a delta could not reproduce the
        trained model. Mutates and returns `self`; calling it again re-records.
        """
        check_config(model, self.manifest, "finish")
        views = resolve_views(model, self.entries)
        with torch.no_grad():
            new = [_snapshot(v) for v in views]
        result = fingerprint(model)
        base = self.manifest["base"]["weights"]
        if result["weights"] != base:
            # Put θ1's slices in, hash, put θ2's back: equal to `base` iff nothing else moved.
            with torch.no_grad():
                _write(views, [e.base for e in self.entries])
                try:
                    outside = weights_hash(model)
                finally:
                    _write(views, new)
            if outside != base:
                raise BadRequest(
                    "the model changed outside the delta's slices between capture and finish "
                    "(a frozen parameter moved, or the wrong heads were captured); the delta could not "
                    "reproduce this model",
                    path=_PATH,
                )
        for entry, value in zip(self.entries, new, strict=True):
            entry.new = value
        self.manifest["result"] = result
        self.manifest["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return self

    @property
    def finished(self) -> bool:
        return "result" in self.manifest and all(e.new is not None for e in self.entries)

    @property
    def numel(self) -> int:
        """Elements covered (each entry once)."""
        return sum(e.numel for e in self.entries)

    @property
    def nbytes(self) -> int:
        """Tensor bytes stored (base and new of every entry)."""
        return sum(e.base.nbytes + (0 if e.new is None else e.new.nbytes) for e in self.entries)


def save_delta(
    delta: SparseDelta,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    protected: Iterable[str | os.PathLike[str] | None] = (),
    field: str = "out",
) -> Path:
    """Write `delta.safetensors` and `delta.json` into `out_dir`, atomically.

    The directory appears complete or not at all. It must be absent, empty or a delta
    ctsft wrote (its marker, or a bare pre-marker delta), unless `overwrite`; any other
    non-empty directory is refused (it may hold a checkpoint). See `models.atomic`.
    """
    check_finished(delta)
    validate_manifest(delta.manifest, "delta manifest")
    listed = [{k: spec.get(k) for k in ENTRY_KEYS} for spec in delta.manifest["entries"]]
    if listed != [e.spec() for e in delta.entries]:
        raise BadRequest("delta manifest entries do not match its tensors", path=_PATH)
    target = Path(out_dir)
    rule = {"overwrite": overwrite, "protected": tuple(protected), "field": field, "recognize": DELTA_FILES}
    check_out_dir(target, **rule)  # before the tensors are gathered
    tensors: dict[str, Tensor] = {}
    for entry in delta.entries:
        tensors[entry.key(BASE)] = entry.base.contiguous()
        tensors[entry.key(NEW)] = entry.new.contiguous()  # type: ignore[union-attr]
    with atomic_dir(target, kind="delta", **rule) as tmp:
        save_file(tensors, tmp / DELTA_WEIGHTS, metadata={"format": "pt", "kind": DELTA_KIND})
        write_manifest(tmp / DELTA_MANIFEST, delta.manifest)
    return target


def load_delta(path: str | Path) -> SparseDelta:
    """Read a delta directory (or the `delta.safetensors` / `delta.json` inside one)."""
    p = Path(path)
    if p.is_dir():
        folder = p
    elif p.is_file() and p.name in DELTA_FILES:
        folder = p.parent
    elif not p.exists():
        raise BadRequest(f"{p} does not exist", path=_PATH)
    else:
        raise BadRequest(f"{p} is not a ctsft delta (a directory holding {' and '.join(DELTA_FILES)})", path=_PATH)
    manifest = read_manifest(folder / DELTA_MANIFEST)
    weights = folder / DELTA_WEIGHTS
    if not weights.is_file():
        raise BadRequest(f"{folder} has {DELTA_MANIFEST} but no {DELTA_WEIGHTS}", path=_PATH)
    try:
        tensors = load_file(weights)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise BadRequest(
            f"{weights} is not a readable safetensors file: {e}",
            path=_PATH,
            remote_message=f"{weights} is not a readable safetensors file (truncated or corrupt?)",
        ) from None
    entries = []
    used: set[str] = set()
    for i, spec in enumerate(manifest["entries"]):
        entry = DeltaEntry(spec["name"], spec["dim"], spec["start"], spec["stop"], base=torch.empty(0))
        dtype = parse_dtype(spec["dtype"], f"entries[{i}]")
        for prefix in (BASE, NEW):
            key = entry.key(prefix)
            value = tensors.get(key)
            if value is None:
                raise BadRequest(
                    f"{weights} lacks tensor {key!r} listed in the manifest",
                    path=_PATH,
                    remote_message=f"{weights} lacks a tensor of manifest entry {i}",
                )
            if list(value.shape) != spec["shape"] or value.dtype != dtype:
                raise BadRequest(
                    f"{weights}: tensor {key!r} is {list(value.shape)} {dtype_name(value.dtype)}, "
                    f"the manifest says {spec['shape']} {spec['dtype']}",
                    path=_PATH,
                    remote_message=f"{weights}: a tensor of manifest entry {i} has another shape or dtype",
                )
            used.add(key)
        entry.base, entry.new = tensors[entry.key(BASE)], tensors[entry.key(NEW)]
        entries.append(entry)
    if extra := sorted(set(tensors) - used):
        raise BadRequest(
            f"{weights} holds tensors the manifest does not list: {', '.join(extra[:5])}",
            path=_PATH,
            remote_message=f"{weights} holds {len(extra)} tensor(s) the manifest does not list",
        )
    keys = [(e.name, e.dim, e.start, e.stop) for e in entries]
    if len(set(keys)) != len(keys):
        raise BadRequest(f"{folder}: the manifest lists an entry twice", path=_PATH)
    _check_disjoint(keys)
    return SparseDelta(entries, manifest)


def apply_delta(model: nn.Module, delta: SparseDelta) -> None:
    """θ1 -> θ2: write every entry's `new` values into `model`, in place.

    Refuses (BadRequest, path "delta", model untouched) a model of another config, a
    model whose weights are not exactly the delta's base (with "delta already applied"
    when they already hold the result), a missing parameter or a shape/dtype mismatch.
    """
    check_finished(delta)
    check_config(model, delta.manifest, "apply")
    views = resolve_views(model, delta.entries)
    current = weights_hash(model)
    if current != delta.manifest["base"]["weights"]:
        moved = delta.manifest["result"]["weights"] != delta.manifest["base"]["weights"]
        if current == delta.manifest["result"]["weights"] or (moved and _holds(views, [e.new for e in delta.entries])):
            raise BadRequest("delta already applied: the model's slices already hold its new values", path=_PATH)
        raise BadRequest(
            "model weights are not the delta's base (fingerprint "
            f"{current[:12]} != {delta.manifest['base']['weights'][:12]}): the delta was made from another "
            "checkpoint, or the model was changed since it was loaded",
            path=_PATH,
        )
    _swap(model, views, delta, to=NEW)


def revert_delta(model: nn.Module, delta: SparseDelta) -> None:
    """θ2 -> θ1 bit-exactly: write every entry's `base` values back, in place.

    Needs the model to be exactly the delta's result (refused otherwise, model
    untouched); afterwards its weights fingerprint is the delta's base.
    """
    check_finished(delta)
    check_config(model, delta.manifest, "revert")
    views = resolve_views(model, delta.entries)
    current = weights_hash(model)
    if current != delta.manifest["result"]["weights"]:
        if _holds(views, [e.base for e in delta.entries]):
            raise BadRequest("delta is not applied: the model's slices hold its base values", path=_PATH)
        if _holds(views, [e.new for e in delta.entries]):
            raise BadRequest(
                "the model changed outside the delta's slices since it was applied: reverting would not "
                "give the delta's base",
                path=_PATH,
            )
        raise BadRequest("model weights are not the delta's result: nothing to revert", path=_PATH)
    _swap(model, views, delta, to=BASE)


# --- helpers ---------------------------------------------------------------------------


def _named_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    # Every alias of a tied parameter, so any of its names resolves.
    return dict(model.named_parameters(remove_duplicate=False))


def _snapshot(view: Tensor) -> Tensor:
    """An independent, contiguous CPU copy."""
    return view.detach().to("cpu").clone(memory_format=torch.contiguous_format)


def _check_range(entry: DeltaEntry, param: Tensor) -> Tensor:
    if not 0 <= entry.dim < param.dim():
        raise BadRequest(f"{entry.name}: dim {entry.dim} out of range for shape {tuple(param.shape)}", path=_PATH)
    if not 0 <= entry.start < entry.stop <= param.shape[entry.dim]:
        raise BadRequest(
            f"{entry.name}: slice [{entry.start}, {entry.stop}) out of range for size {param.shape[entry.dim]} "
            f"along dim {entry.dim}",
            path=_PATH,
        )
    return param


def _check_disjoint(keys: Sequence[tuple[str, int, int, int]]) -> None:
    """Refuse overlapping slices of one parameter (exact repeats are removed before)."""
    by_name: dict[str, list[tuple[int, int, int]]] = {}
    for name, dim, start, stop in keys:
        for odim, ostart, ostop in by_name.get(name, []):
            # Slices along different dims always cross; along one dim, ranges may.
            if odim != dim or (start < ostop and ostart < stop):
                raise BadRequest(f"{name}: slices {odim}:{ostart}:{ostop} and {dim}:{start}:{stop} overlap", path=_PATH)
        by_name.setdefault(name, []).append((dim, start, stop))


def check_finished(delta: SparseDelta) -> None:
    if not delta.finished:
        raise BadRequest("delta is not finished: call finish(model) after training", path=_PATH)


def check_config(model: nn.Module, manifest: Mapping[str, Any], action: str) -> None:
    if getattr(model, "config", None) is None:
        raise BadRequest(f"cannot {action} a delta on {type(model).__name__}: not a transformers model", path=_PATH)
    mine, theirs = config_hash(model), manifest["base"]["config"]
    if mine != theirs:
        raise BadRequest(
            f"delta is for another model: config fingerprint {mine[:12]} != {theirs[:12]} "
            f"(model_type {getattr(model.config, 'model_type', None)!r}, delta made for {manifest.get('modelType')!r})",
            path=_PATH,
            remote_message=f"delta is for another model: config fingerprint {mine[:12]} != {theirs[:12]}",
        )


def resolve_views(model: nn.Module, entries: Sequence[DeltaEntry]) -> list[Tensor]:
    """Each entry's view into the model's parameter, after checking name, range, shape, dtype."""
    params = _named_parameters(model)
    views = []
    for entry in entries:
        param = params.get(entry.name)
        if param is None:
            raise BadRequest(f"the model has no parameter {entry.name!r} that the delta changes", path=_PATH)
        view = entry.view(_check_range(entry, param))
        if view.shape != entry.base.shape or (entry.new is not None and entry.new.shape != entry.base.shape):
            raise BadRequest(
                f"{entry.name}: slice shape {tuple(view.shape)} does not match the delta's {entry.shape}", path=_PATH
            )
        if view.dtype != entry.base.dtype:
            raise BadRequest(
                f"{entry.name}: model dtype {dtype_name(view.dtype)} but the delta is "
                f"{dtype_name(entry.base.dtype)} (load the model in that dtype)",
                path=_PATH,
            )
        views.append(view)
    return views


def _same_bits(a: Tensor, b: Tensor) -> bool:
    """Bit-for-bit equality (NaNs and signed zeros included), across devices."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    a, b = a.detach().reshape(-1), b.detach().to(a.device).reshape(-1)
    if a.dtype.is_floating_point or a.dtype.is_complex:
        a, b = a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8)
    return torch.equal(a, b)


def _holds(views: Sequence[Tensor], values: Sequence[Tensor | None]) -> bool:
    return all(v is not None and _same_bits(view, v) for view, v in zip(views, values, strict=True))


@torch.no_grad()
def _write(views: Sequence[Tensor], values: Sequence[Tensor | None]) -> None:
    for view, value in zip(views, values, strict=True):
        assert value is not None
        view.copy_(value)


def _swap(model: nn.Module, views: Sequence[Tensor], delta: SparseDelta, *, to: str) -> None:
    """Write `new` (to=NEW) or `base` (to=BASE), then check the fingerprint the manifest
    promises; on mismatch put the old values back and refuse (an edited delta file)."""
    new, base = [e.new for e in delta.entries], [e.base for e in delta.entries]
    target, undo = (new, base) if to == NEW else (base, new)
    expected = delta.manifest["result" if to == NEW else "base"]["weights"]
    _write(views, target)
    try:
        ok = weights_hash(model) == expected
    except BaseException:
        _write(views, undo)
        raise
    if not ok:
        _write(views, undo)
        raise BadRequest(
            f"{'applying' if to == NEW else 'reverting'} the delta did not give the fingerprint its manifest "
            "records: the delta's tensors and manifest disagree (edited file?); the model was left unchanged",
            path=_PATH,
        )
