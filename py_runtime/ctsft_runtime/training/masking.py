"""Head-level masking for CT-SFT (DESIGN 2.6): train only the selected heads' slices and the norms.

What trains, for each selected query head h of layer l: h's rows of Q (and Q bias) and h's
columns of O; with kv="group" also the K/V rows (and biases) of h's KV head, which under
GQA changes the other query heads of that group too (reported as `touched_heads`); with
kv="frozen" K/V stay as they are. With norms=True, every norm parameter of the model.
Everything else keeps its exact bits (the invariant the tests check).

Two interchangeable mechanisms, numerically equal up to float rounding:
- "hook": the full tensors that hold a slice train, and a gradient hook zeroes every
  element outside the slices. Zero gradient leaves AdamW's moments at zero and the element
  bit-identical, but only with weight_decay 0: decoupled decay shrinks every element of a
  tensor in the optimizer, masked or not (DESIGN 7). So `param_groups()` puts the masked
  tensors, and the norms, in groups with weight_decay 0.
- "delta": base weights frozen; each slice is its own zero-initialised parameter added in
  the forward (see `masking_delta`), so gradients and optimizer state scale with the
  circuit. `finish()` adds each delta into its slice and leaves a plain model.

Life cycle: `mask = apply_head_mask(...)`; `train_sft(..., param_groups=mask.param_groups())`;
`mask.finish()` keeps the training. On an error or cancellation call `mask.remove()`
(idempotent): it detaches everything and rolls the trainable elements back to their values
at apply time, so a cancelled run leaves the model exactly as it was, with either
mechanism. (The copy this needs is the size of the circuit plus norms.)
`with apply_head_mask(...) as mask:` finishes on success and removes on an exception.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from ..errors import BadRequest
from ..heads import HeadMap, Span, build_head_map, norm_parameters
from .masking_delta import install_deltas

Kv = Literal["group", "frozen"]
Mechanism = Literal["hook", "delta"]
KV_POLICIES: tuple[str, ...] = ("group", "frozen")
MECHANISMS: tuple[str, ...] = ("hook", "delta")
_ACTIVE = "_ctsft_head_mask"  # attribute on the model while a mask is applied


@dataclass(frozen=True, eq=False)
class TrainableSlice:
    """One trainable span and whose it is."""

    span: Span
    layer: int
    part: str
    """HeadSlices field: q_weight, q_bias, k_weight, k_bias, v_weight, v_bias or o_weight."""
    head: int
    """The query head for q/o parts; the KV head for k/v parts (shared under GQA)."""

    def describe(self) -> dict[str, Any]:
        s = self.span
        return {
            "name": s.name,
            "dim": s.dim,
            "start": s.start,
            "stop": s.stop,
            "numel": s.numel,
            "layer": self.layer,
            "part": self.part,
            "head": self.head,
        }


def apply_head_mask(
    model: nn.Module,
    head_map: HeadMap | None,
    heads: Sequence[tuple[int, int]],
    *,
    kv: Kv = "group",
    norms: bool = True,
    mechanism: Mechanism = "hook",
) -> HeadMask:
    """Restrict training of `model` to the `(layer, head)` query heads' slices (+ norms).

    `head_map` None builds one. `heads=[]` with norms=True is the norm-only method.
    Raises BadRequest for bad heads, policies, or when nothing would train.
    """
    hmap = head_map if head_map is not None else build_head_map(model)
    if kv not in KV_POLICIES:
        raise BadRequest(f"kv must be one of {', '.join(KV_POLICIES)}, got {kv!r}", path="kv")
    if mechanism not in MECHANISMS:
        raise BadRequest(f"mechanism must be one of {', '.join(MECHANISMS)}, got {mechanism!r}", path="mechanism")
    selected = _check_heads(hmap, heads)
    norm_params = norm_parameters(model) if norms else []
    if not selected and not norm_params:
        raise BadRequest(
            "nothing to train: no heads selected and norms=False" if not norms else "no heads and no norm parameters",
            path="heads",
        )
    _check_same_model(model, hmap)
    active = getattr(model, _ACTIVE, None)
    if active is not None:
        raise BadRequest("this model already has a head mask applied; call its finish() or remove() first")
    return HeadMask(model, hmap, selected, kv, mechanism, norm_params)


def active_head_mask(model: nn.Module) -> HeadMask | None:
    """The mask currently applied to `model`, if any (e.g. to remove one left behind)."""
    return getattr(model, _ACTIVE, None)


class HeadMask:
    """An applied head mask. Build with `apply_head_mask`; end with `finish()` or `remove()`."""

    def __init__(
        self,
        model: nn.Module,
        head_map: HeadMap,
        heads: list[tuple[int, int]],
        kv: Kv,
        mechanism: Mechanism,
        norm_params: list[tuple[str, nn.Parameter]],
    ) -> None:
        self.model = model
        self.head_map = head_map
        self.heads: tuple[tuple[int, int], ...] = tuple(heads)
        self.kv: Kv = kv
        self.mechanism: Mechanism = mechanism
        self.slices: tuple[TrainableSlice, ...] = tuple(_slices(head_map, heads, kv))
        self.spans: tuple[Span, ...] = tuple(s.span for s in self.slices)
        self.norm_names: tuple[str, ...] = tuple(name for name, _ in norm_params)
        self.touched_heads: tuple[tuple[int, int], ...] = tuple(_touched(head_map, heads, kv))
        self._norms = [p for _, p in norm_params]
        self._deltas: list[nn.Parameter] = []
        self._masked: list[nn.Parameter] = []  # hook mechanism: full tensors with a gradient mask
        self._frozen: dict[int, Tensor] = {}  # hook mechanism: id(param) -> True where frozen
        self._handles: list[RemovableHandle] = []
        self._state: Literal["active", "finished", "removed"] = "active"
        self._saved = [(p, p.requires_grad) for p in _unique(model.parameters())]
        with torch.no_grad():  # θ1 of everything that can change, for remove()'s rollback
            self._theta1 = [(s.view(), s.view().clone()) for s in self.spans]
            self._theta1 += [(p, p.detach().clone()) for p in self._norms]
        try:
            self._install()
        except BaseException:
            self._detach()
            raise
        setattr(model, _ACTIVE, self)

    # -- installation -------------------------------------------------------------------

    def _install(self) -> None:
        for p, _ in self._saved:
            # A stale gradient (e.g. from attribution scoring) would reach the first optimizer
            # step unmasked and move frozen elements.
            p.grad = None
            p.requires_grad_(False)
        for p in self._norms:
            p.requires_grad_(True)
        if self.mechanism == "hook":
            frozen = self._frozen
            for span in self.spans:
                if id(span.param) not in frozen:
                    frozen[id(span.param)] = torch.ones(span.param.shape, dtype=torch.bool, device=span.param.device)
                    self._masked.append(span.param)
                frozen[id(span.param)].narrow(span.dim, span.start, span.size).fill_(False)
            for p in self._masked:
                p.requires_grad_(True)
                self._handles.append(p.register_hook(partial(_zero_outside, frozen=frozen[id(p)])))
        else:
            for span in self.spans:
                base = span.view()
                self._deltas.append(nn.Parameter(torch.zeros(base.shape, dtype=base.dtype, device=base.device)))
            self._handles += install_deltas(self.model, list(zip(self.spans, self._deltas, strict=True)))

    def _detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for p, requires_grad in self._saved:
            p.requires_grad_(requires_grad)
        if getattr(self.model, _ACTIVE, None) is self:
            delattr(self.model, _ACTIVE)

    # -- training API -------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self._state == "active"

    def param_groups(self, *, heads_lr: float | None = None, norms_lr: float | None = None) -> list[dict[str, Any]]:
        """Named AdamW groups for `train_sft(param_groups=...)`; none decays (see module doc).

        `heads_lr` / `norms_lr` override the run's learning rate for that group (DESIGN 7:
        heads and norms like different rates). Empty groups are left out.
        """
        self._require_active("param_groups")
        head_params = self._masked if self.mechanism == "hook" else self._deltas
        groups: list[dict[str, Any]] = []
        for name, params, lr in (
            ("head_slices" if self.mechanism == "hook" else "head_deltas", head_params, heads_lr),
            ("norms", self._norms, norms_lr),
        ):
            if params:
                group: dict[str, Any] = {"name": name, "params": list(params), "weight_decay": 0.0}
                if lr is not None:
                    group["lr"] = lr
                groups.append(group)
        return groups

    def frozen_masks(self) -> list[tuple[nn.Parameter, Tensor]]:
        """Hook mechanism: each masked tensor with its mask (True where frozen), for a
        trainer that moves gradients where the gradient hooks do not reach (FSDP shards)."""
        return [(p, self._frozen[id(p)]) for p in self._masked]

    def delta_items(self) -> list[tuple[Span, nn.Parameter]]:
        """Delta mechanism: each slice's span with its delta parameter."""
        return list(zip(self.spans, self._deltas, strict=True)) if self.mechanism == "delta" else []

    def trainable_params(self) -> int:
        """Elements that training can change: slices (a shared KV slice once) plus norms."""
        return sum(s.numel for s in self.spans) + sum(p.numel() for p in self._norms)

    def optimizer_params(self) -> int:
        """Elements the optimizer holds state for: full masked tensors (hook) or slices (delta)."""
        head_params = self._masked if self.mechanism == "hook" else self._deltas
        return sum(p.numel() for p in head_params) + sum(p.numel() for p in self._norms)

    def report(self) -> dict[str, Any]:
        """JSON-ready summary (camelCase keys, like `train_sft`'s result)."""
        total = sum(p.numel() for p, _ in self._saved)
        trainable = self.trainable_params()
        return {
            "mechanism": self.mechanism,
            "kv": self.kv,
            "heads": [list(h) for h in self.heads],
            "touchedHeads": [list(h) for h in self.touched_heads],
            "slices": [s.describe() for s in self.slices],
            "norms": list(self.norm_names),
            "trainableParams": trainable,
            "optimizerParams": self.optimizer_params(),
            "totalParams": total,
            "fraction": trainable / total if total else 0.0,
        }

    def finish(self) -> None:
        """End training and leave a plain model: deltas are added into their slices."""
        if self._state == "finished":
            return
        if self._state == "removed":
            raise BadRequest("this head mask was removed and its training rolled back; nothing to finish")
        try:
            if self.mechanism == "delta":
                with torch.no_grad():
                    for span, delta in zip(self.spans, self._deltas, strict=True):
                        span.view().add_(delta)
        finally:
            self._detach()
        self._state = "finished"
        self._theta1 = []

    def remove(self) -> None:
        """Detach and roll back to the weights at apply time (for errors, cancellation; idempotent)."""
        if self._state != "active":
            return
        try:
            with torch.no_grad():
                for view, saved in self._theta1:
                    view.copy_(saved)
        finally:
            self._detach()
            self._state = "removed"
        self._theta1 = []

    def __enter__(self) -> HeadMask:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.remove()

    def _require_active(self, what: str) -> None:
        if not self.active:
            raise BadRequest(f"{what}: this head mask is already {self._state}")


def _zero_outside(grad: Tensor, *, frozen: Tensor) -> Tensor:
    # masked_fill, not grad * mask: exact zeros even where the gradient is inf or nan.
    return grad.masked_fill(frozen, 0)


def _unique(params: Any) -> list[nn.Parameter]:
    seen: set[int] = set()
    out = []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def _check_heads(hmap: HeadMap, heads: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Validated (layer, head) pairs, duplicates dropped, order kept."""
    if isinstance(heads, (str, bytes)) or not hasattr(heads, "__iter__"):
        raise BadRequest(f"heads must be a list of [layer, head] pairs, got {type(heads).__name__}", path="heads")
    out: list[tuple[int, int]] = []
    for i, item in enumerate(heads):
        try:
            layer, head = item
            if isinstance(layer, bool) or isinstance(head, bool):
                raise TypeError
            layer, head = operator.index(layer), operator.index(head)
        except (TypeError, ValueError):
            raise BadRequest(
                f"heads[{i}] must be a [layer, head] pair of integers, got {item!r}", path="heads"
            ) from None
        if not 0 <= layer < hmap.n_layers:
            raise BadRequest(f"heads[{i}]: layer {layer} out of range [0, {hmap.n_layers})", path="heads")
        if not 0 <= head < hmap.n_heads:
            raise BadRequest(f"heads[{i}]: head {head} out of range [0, {hmap.n_heads})", path="heads")
        if (layer, head) not in out:
            out.append((layer, head))
    return out


def _check_same_model(model: nn.Module, hmap: HeadMap) -> None:
    ids = {id(p) for p in model.parameters()}
    first = hmap.layers[0].heads[0].q_weight if hmap.layers else None
    if first is not None and id(first.param) not in ids:
        raise BadRequest("head_map was built for a different model instance", path="head_map")


def _slices(hmap: HeadMap, heads: list[tuple[int, int]], kv: Kv) -> list[TrainableSlice]:
    """The trainable spans, layer-major, each (parameter, range) once."""
    out: list[TrainableSlice] = []
    seen: set[tuple[int, int, int, int]] = set()
    for layer, head in sorted(heads):
        hs = hmap.head(layer, head)
        parts = ["q_weight", "q_bias"]
        if kv == "group":
            parts += ["k_weight", "k_bias", "v_weight", "v_bias"]
        parts.append("o_weight")
        for part in parts:
            span: Span | None = getattr(hs, part)
            if span is None:
                continue
            key = (id(span.param), span.dim, span.start, span.stop)
            if key in seen:
                continue  # a KV head shared by two selected query heads
            seen.add(key)
            owner = hs.kv_head if part[0] in "kv" else head
            out.append(TrainableSlice(span, layer, part, owner))
    return out


def _touched(hmap: HeadMap, heads: list[tuple[int, int]], kv: Kv) -> list[tuple[int, int]]:
    """Unselected query heads whose K/V change because a selected head shares their KV head."""
    if kv != "group":
        return []
    selected = set(heads)
    groups = sorted({(layer, hmap.kv_head_of(head)) for layer, head in heads})
    return [(layer, q) for layer, g in groups for q in hmap.query_heads_of(g) if (layer, q) not in selected]
