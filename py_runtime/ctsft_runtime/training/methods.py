"""Training methods behind one loop: what trains, and what is left behind when it is done.

`full` trains everything; `ctsft` the selected heads' slices plus every norm (head-level
masking, `hook` or `delta`); `norms` the norms only; `lora` peft adapters on the attention
projections. The `low` and `random` baselines are `ctsft` with a circuit of that strategy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..errors import BadRequest
from .lora import LoraOptions, wrap_lora

if TYPE_CHECKING:
    from .masking import HeadMask

Method = Literal["full", "ctsft", "norms", "lora"]


@dataclass
class Prepared:
    """A method ready to train: the model the loop drives, its optimizer groups, and the
    hooks that end it (`finish` after success, `abort` on failure or cancel)."""

    model: Any
    param_groups: list[dict[str, Any]] | None
    finish: Callable[[], dict[str, Any]]
    abort: Callable[[], None]
    trainable: Callable[[], int] | None = None
    report: dict[str, Any] = field(default_factory=dict)
    head_mask: HeadMask | None = None
    """ctsft/norms: the applied mask, which a data-parallel trainer reads (training/parallel.py)."""


def prepare(
    lm: Any,
    method: Method,
    *,
    heads: list[tuple[int, int]] | None = None,
    mask: Literal["hook", "delta"] = "hook",
    kv: Literal["group", "frozen"] = "group",
    lora: LoraOptions | None = None,
    weight_decay: float = 0.01,
    meta: dict[str, Any] | None = None,
) -> Prepared:
    if method == "full":
        return Prepared(lm.model, None, lambda: {}, lambda: None)
    if method == "lora":
        wrapped = wrap_lora(lm.model, lm.head_map.family, lora or LoraOptions())
        groups = [{"name": "lora", "params": wrapped.trainable(), "weight_decay": weight_decay}]

        def finish_lora() -> dict[str, Any]:
            from ..heads import build_head_map

            lm.model = wrapped.finish()
            lm.head_map = build_head_map(lm.model)
            lm.extra["adapter"] = wrapped.adapter_dir
            lm.extra["adapter_tmp"] = wrapped._tmp  # keeps the temp dir alive with the model
            return {"lora": {"r": wrapped.options.r, "alpha": wrapped.options.alpha, "targets": wrapped.targets}}

        def abort_lora() -> None:
            lm.model = wrapped.abort()

        count = sum(p.numel() for p in wrapped.trainable())
        return Prepared(wrapped.inner, groups, finish_lora, abort_lora, trainable=lambda: count)
    if method == "ctsft" and not heads:
        raise BadRequest("ctsft needs a circuit: a non-empty list of heads", path="heads")
    from ..artifacts import SparseDelta
    from .masking import apply_head_mask

    hm = lm.head_map
    m = apply_head_mask(lm.model, hm, heads or [], kv=kv, norms=True, mechanism=mask)
    delta = SparseDelta.capture(lm.model, m.spans, m.norm_names, meta={**(meta or {}), "method": method, **m.report()})

    def finish_mask() -> dict[str, Any]:
        m.finish()
        lm.extra["delta"] = delta.finish(lm.model)
        return {"mask": m.report()}

    return Prepared(
        lm.model, m.param_groups(), finish_mask, m.remove, trainable=m.trainable_params, report=m.report(), head_mask=m
    )
