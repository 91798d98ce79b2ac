"""Named sparse deltas applied per batch row, on top of base weights that never change.

A CT-SFT delta touches few slices (head rows/columns of Q/K/V/O, their biases) and the norm
vectors. To serve many of them from one base model, each batch row picks a delta (or none)
and the forward adds that delta's effect to that row only:

- Linear / Conv1D slices: the row group's `x @ Δᵀ` for the sliced output features (Q/K/V
  rows), `x[..., a:b] @ Δᵀ` for sliced input features (O columns), `Δb` for bias slices, with
  Δ = new − base (the same `Additions` the training `delta` mechanism adds, applied to a
  subset of rows). Linear in W, so equal to the merged model's output up to float rounding.
- Any other module (RMSNorm, LayerNorm, ...): not linear in its parameters, so its output
  for the group's rows is recomputed with the merged parameter values through
  `torch.func.functional_call`: exact.

Forward hooks do this; they are registered only while a request runs (`row_deltas`, a
context manager that removes them on any exit), and the parameters are never written: a
row that uses no delta, or another delta, cannot see this one. The runtime's compute
thread runs one op at a time, so the per-call row selection needs no lock.

Rows must lie along dim 0 of every hooked module's input and output, which holds for the
supported families (hidden states are [B, T, D]; attention's q/k norms see [B, T, H, d]).
A module that sees another batch size (e.g. a family that flattens the batch) is refused
loudly rather than mixed up.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call
from transformers.pytorch_utils import Conv1D

from ..artifacts import SparseDelta
from ..artifacts.delta import check_config, check_finished, resolve_views
from ..circuits.fingerprint import weights_hash
from ..errors import BadRequest, Internal
from ..training.masking_delta import Additions, parameter_owners, sole_owner

_PATH = "delta"


@dataclass(eq=False)
class _Recompute:
    """A non-linear module (a norm): its parameters with the delta's values written in."""

    params: dict[str, Tensor] = field(default_factory=dict)


@dataclass(eq=False)
class RowDelta:
    """A finished `SparseDelta` prepared for per-row use on one model: per touched module,
    the additions (Linear/Conv1D) or the merged parameters (others), on the model's device
    and dtype. Build with `prepare_row_delta`."""

    modules: dict[str, Additions | _Recompute]
    entries: int
    params: int
    fraction: float
    meta: dict[str, Any]

    @property
    def nbytes(self) -> int:
        def size(effect: Additions | _Recompute) -> int:
            if isinstance(effect, _Recompute):
                return sum(t.nbytes for t in effect.params.values())
            return sum(d.nbytes for *_, d in effect.outputs + effect.inputs + effect.biases)

        return sum(size(e) for e in self.modules.values())


@torch.no_grad()
def prepare_row_delta(model: nn.Module, delta: SparseDelta, current: str | None = None) -> RowDelta:
    """Check `delta` belongs to `model` as it is now (config and weights fingerprint equal
    the delta's base) and precompute what each touched module adds. BadRequest (path
    "delta") otherwise; the model is never written. `current`: the model's weights
    fingerprint when the caller knows it (hashing every weight is most of a load's cost)."""
    check_finished(delta)
    check_config(model, delta.manifest, "load")
    current = current or weights_hash(model)
    base, result = delta.manifest["base"]["weights"], delta.manifest["result"]["weights"]
    if current != base:
        merged = current == result and result != base
        raise BadRequest(
            "this delta is already merged into the model's weights; load it on its base model instead"
            if merged
            else f"delta of another base: the model's weights fingerprint {current[:12]} is not the delta's base "
            f"{base[:12]} (it was trained from another checkpoint, or the model changed since it was loaded)",
            path=_PATH,
        )
    views = resolve_views(model, delta.entries)  # names, ranges, shapes, dtypes checked
    owners = parameter_owners(model)
    names = {id(m): n for n, m in model.named_modules()}
    params = dict(model.named_parameters(remove_duplicate=False))
    modules: dict[str, Additions | _Recompute] = {}
    for entry, view in zip(delta.entries, views, strict=True):
        param = params[entry.name]
        what = f"{entry.name}: a per-row delta (merge it into a copy instead)"
        module, attr = sole_owner(owners, param, what, path=_PATH)
        key = names[id(module)]
        assert entry.new is not None  # check_finished
        new = entry.new.to(device=view.device, dtype=view.dtype)
        if isinstance(module, (nn.Linear, Conv1D)) and attr in ("weight", "bias"):
            conv1d = isinstance(module, Conv1D)
            adds = modules.setdefault(key, Additions(conv1d=conv1d))
            assert isinstance(adds, Additions)
            # Δ against the model's own current values: equal to the delta's base (checked above).
            adds.add(attr, entry.dim, entry.start, entry.stop, new - view)
        else:
            rec = modules.setdefault(key, _Recompute())
            assert isinstance(rec, _Recompute)
            merged_param = rec.params.get(attr)
            if merged_param is None:
                merged_param = rec.params[attr] = param.detach().clone()
            merged_param.narrow(entry.dim, entry.start, entry.stop - entry.start).copy_(new)
    return RowDelta(
        modules,
        entries=len(delta.entries),
        params=delta.numel,
        fraction=float(delta.manifest.get("fraction", 0.0)),
        meta=dict(delta.manifest.get("meta") or {}),
    )


class RowSelection:
    """Which delta each row of the next forward uses; change it between batches."""

    def __init__(self, deltas: Mapping[str, RowDelta], device: torch.device) -> None:
        self._deltas = deltas
        self._device = device
        self.batch = 0
        # (delta, row indices or None for every row), one per delta used in the batch.
        self.groups: list[tuple[RowDelta, Tensor | None]] = []

    def select(self, rows: Sequence[str | None]) -> None:
        by_name: dict[str, list[int]] = {}
        for i, name in enumerate(rows):
            if name is not None:
                by_name.setdefault(name, []).append(i)
        self.batch = len(rows)
        self.groups = [
            (
                self._deltas[name],
                None if len(idx) == len(rows) else torch.tensor(idx, dtype=torch.long, device=self._device),
            )
            for name, idx in by_name.items()
        ]


class _RowHook:
    """The forward hook of one module: applies each selected delta's effect to its rows."""

    def __init__(self, key: str, selection: RowSelection) -> None:
        self.key = key
        self.selection = selection
        self._busy = False  # recomputing through functional_call re-enters the module's hooks

    def __call__(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Any:
        if self._busy:
            return None
        sel = self.selection
        groups = [(d.modules[self.key], idx) for d, idx in sel.groups if self.key in d.modules]
        if not groups:
            return None
        if not isinstance(output, Tensor) or output.shape[0] != sel.batch:
            raise Internal(
                f"per-row deltas: module {self.key} ({type(module).__name__}) gave "
                f"{type(output).__name__} {tuple(getattr(output, 'shape', ()))}, expected a tensor with the "
                f"batch of {sel.batch} rows along dim 0"
            )
        out = output.clone()  # never write into the module's own result
        for effect, idx in groups:
            rows_args = args if idx is None else tuple(_rows(a, idx, sel.batch) for a in args)
            rows_kwargs = kwargs if idx is None else {k: _rows(v, idx, sel.batch) for k, v in kwargs.items()}
            if isinstance(effect, Additions):
                current = out if idx is None else out[idx]
                value = effect(module, rows_args, current)
            else:
                self._busy = True
                try:
                    value = functional_call(module, effect.params, rows_args, rows_kwargs)
                finally:
                    self._busy = False
            if idx is None:
                out = value
            else:
                out[idx] = value
        return out


def _rows(value: Any, idx: Tensor, batch: int) -> Any:
    """The group's rows of a batched tensor argument; anything else as it is."""
    if isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == batch:
        return value.index_select(0, idx)
    return value


@contextmanager
def row_deltas(model: nn.Module, deltas: Mapping[str, RowDelta]) -> Iterator[RowSelection]:
    """Hooks on every module the `deltas` touch, for the duration of the block; select the
    rows with `RowSelection.select` before each forward. Removed on any exit."""
    selection = RowSelection(deltas, next(model.parameters()).device)
    keys = sorted({key for d in deltas.values() for key in d.modules})
    modules = dict(model.named_modules())
    handles = []
    try:
        for key in keys:
            handles.append(modules[key].register_forward_hook(_RowHook(key, selection), with_kwargs=True))
        yield selection
    finally:
        for h in handles:
            h.remove()
