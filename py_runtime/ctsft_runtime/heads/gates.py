"""Head gates: capture, scale or replace each head's z right before the O projection.

transformers v5 removed `head_mask`, so this is how we intervene on heads. z is O's input,
[batch, pos, n_heads * head_dim] with head h at [h*head_dim, (h+1)*head_dim) in every
supported family (checked by the invariant tests); we view it as
[batch, pos, n_heads, head_dim] and hand O the (possibly edited) result.

Used by: mean baselines (capture), exact mean-ablation (replace), attribution scoring
(capture with detach=False, then autograd w.r.t. the captured z), and tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from ..errors import BadRequest, Internal
from .head_map import HeadMap, build_head_map

PreHook = Callable[[nn.Module, tuple[Any, ...]], tuple[Any, ...] | None]


@dataclass
class ZRecord:
    """z per layer from the latest forward pass inside `head_gates`."""

    z: dict[int, Tensor] = field(default_factory=dict)
    """layer -> [batch, pos, n_heads, head_dim], after gates/replacements: what O read."""


@contextmanager
def head_gates(
    target: HeadMap | nn.Module,
    *,
    capture: bool | Iterable[int] = False,
    gate: Mapping[int, Tensor] | None = None,
    replace: Mapping[int, Mapping[int, Tensor]] | None = None,
    detach: bool = True,
) -> Iterator[ZRecord]:
    """Register O pre-hooks for the `with` block; removed on exit, exception or not.

    capture: True for every layer, or the layers to record into the yielded `ZRecord`.
    gate:    layer -> [n_heads] multiplier of each head's z (0 ablates a head).
    replace: layer -> {head: value broadcastable to [batch, pos, head_dim]}, e.g. the
             head's mean z for mean-ablation. Applied after `gate`, so it wins.
    detach:  False keeps captured z in the autograd graph, upstream of O, so gradients
             w.r.t. it are the gradients w.r.t. the head outputs.
    A layer with no gate, no replacement and a detached capture is left bit-identical.
    """
    hmap = target if isinstance(target, HeadMap) else build_head_map(target)
    gate = dict(gate or {})
    replace = {layer: dict(heads) for layer, heads in (replace or {}).items()}
    captured = set(range(hmap.n_layers)) if capture is True else set(capture or ())
    _validate(hmap, captured, gate, replace)

    record = ZRecord()
    handles: list[RemovableHandle] = []
    try:
        for layer in sorted(captured | gate.keys() | replace.keys()):
            hook = _make_hook(
                hmap,
                layer,
                gate.get(layer),
                replace.get(layer, {}),
                record if layer in captured else None,
                detach,
            )
            handles.append(hmap.layers[layer].o_proj.register_forward_pre_hook(hook))
        yield record
    finally:
        for handle in handles:
            handle.remove()


def capture_z(
    target: HeadMap | nn.Module, layers: Iterable[int] | None = None, *, detach: bool = True
) -> AbstractContextManager[ZRecord]:
    """`head_gates` that only records z (all layers unless `layers` is given)."""
    return head_gates(target, capture=True if layers is None else layers, detach=detach)


def _make_hook(
    hmap: HeadMap,
    layer: int,
    gate: Tensor | None,
    replace: dict[int, Tensor],
    record: ZRecord | None,
    detach: bool,
) -> PreHook:
    n, hd = hmap.n_heads, hmap.head_dim
    edits = gate is not None or bool(replace)

    def hook(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if not args or not isinstance(args[0], Tensor):
            raise Internal(f"layer {layer}: O module was not called with z as first argument")
        z = args[0]
        lead = z.shape[:-1]
        z4 = z.reshape(*lead, n, hd)  # [batch, pos, n*hd] -> [batch, pos, n, hd]
        if gate is not None:
            z4 = z4 * gate.to(z4)[:, None]  # [n] -> [n, 1]: one factor per head
        if replace:
            z4 = z4.clone()  # never write into the attention module's own output
            for head, value in replace.items():
                z4[..., head, :] = value.to(z4)  # value broadcasts to [batch, pos, hd]
        if record is not None:
            record.z[layer] = z4.detach() if detach else z4
        if not edits and (record is None or detach):
            return None  # pure observation: O sees the very same tensor
        # Feeding O from z4 puts the captured tensor on the gradient path.
        return (z4.reshape(*lead, n * hd), *args[1:])  # [batch, pos, n, hd] -> [.., n*hd]

    return hook


def _validate(
    hmap: HeadMap,
    captured: set[int],
    gate: dict[int, Tensor],
    replace: dict[int, dict[int, Tensor]],
) -> None:
    for layer in captured | gate.keys() | replace.keys():
        hmap.check_layer(layer)
    for layer, g in gate.items():
        if tuple(g.shape) != (hmap.n_heads,):
            raise BadRequest(f"gate for layer {layer} has shape {tuple(g.shape)}, expected ({hmap.n_heads},)")
    for layer, heads in replace.items():
        for head, value in heads.items():
            hmap.check_head(head)
            if value.ndim > 0 and value.shape[-1] not in (1, hmap.head_dim):
                raise BadRequest(
                    f"replacement for layer {layer} head {head} has shape {tuple(value.shape)}; "
                    f"it must broadcast to [batch, pos, {hmap.head_dim}]"
                )
