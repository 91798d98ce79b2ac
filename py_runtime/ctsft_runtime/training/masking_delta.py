"""The `delta` mechanism's wiring: each trainable slice is its own small tensor, added to the
output of the projection that owns the slice, LoRA-style, by a forward hook.

Why an additive output hook and not `torch.nn.utils.parametrize` (W_eff = W + pad(delta)):
with a parametrization the projection's backward still forms the full-size gradient of
W_eff on every step and only then slices it, so the transient gradient scales with the
model. Adding the slice's own product instead (rows: out[..., a:b] += x @ dᵀ; columns:
out += x[..., a:b] @ dᵀ; bias: out[..., a:b] += d) makes autograd compute gradients for the
delta alone, while the base weights, frozen, get none. The model's parameters, their names
and the state_dict stay exactly as they were, so nothing else has to know a mask is on.

The price: only calls of the projection module see the delta (not code that reads
`module.weight` directly). Every supported family calls its projections, and the one that
may not (BLOOM's slow_but_exact path) is refused by the head map already.
Every Span is one contiguous range along one dim, so fused Q/K/V layouts need nothing more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle
from transformers.pytorch_utils import Conv1D

from ..errors import BadRequest
from ..heads import Span


@dataclass
class Additions:
    """The deltas of one projection module, applied to its output by a forward hook."""

    conv1d: bool
    """GPT-2's Conv1D computes x @ W with W [in, out]; nn.Linear computes x @ Wᵀ."""
    outputs: list[tuple[int, int, Tensor]] = field(default_factory=list)
    """(start, stop, delta) on output features: rows of a Linear weight, columns of a Conv1D one."""
    inputs: list[tuple[int, int, Tensor]] = field(default_factory=list)
    """(start, stop, delta) on input features (O's columns for a head)."""
    biases: list[tuple[int, int, Tensor]] = field(default_factory=list)

    def add(self, attr: str, dim: int, start: int, stop: int, delta: Tensor) -> None:
        """File the Δ of slice `[start, stop)` along `dim` of the module's `attr` by what it touches."""
        item = (start, stop, delta)
        if attr == "bias":
            self.biases.append(item)
        elif dim == (1 if self.conv1d else 0):
            self.outputs.append(item)
        else:
            self.inputs.append(item)

    def _matmul(self, x: Tensor, delta: Tensor) -> Tensor:
        return x @ delta if self.conv1d else F.linear(x, delta)

    def __call__(self, module: nn.Module, args: tuple[Any, ...], output: Tensor) -> Tensor:
        x = args[0]
        out = output
        for start, stop, delta in self.inputs:
            out = out + self._matmul(x[..., start:stop], delta)
        if self.outputs or self.biases:
            if out is output:
                out = out.clone()  # never write into the module's own result
            for start, stop, delta in self.outputs:
                out[..., start:stop] += self._matmul(x, delta)
            for start, stop, delta in self.biases:
                out[..., start:stop] += delta
        return out


def parameter_owners(model: nn.Module) -> dict[int, list[tuple[nn.Module, str]]]:
    """id(parameter) -> every (module, attribute) that holds it directly."""
    owners: dict[int, list[tuple[nn.Module, str]]] = {}
    for module in model.modules():
        for attr, param in module._parameters.items():
            if param is not None:
                owners.setdefault(id(param), []).append((module, attr))
    return owners


def sole_owner(
    owners: dict[int, list[tuple[nn.Module, str]]], param: Tensor, what: str, path: str | None = None
) -> tuple[nn.Module, str]:
    """The one (module, attribute) holding `param`; a tied parameter (several holders) is
    refused, since a hook on one of them would miss the others. `what` opens the message."""
    held_by = owners.get(id(param), [])
    if len(held_by) != 1:
        raise BadRequest(f"{what} needs the parameter held by exactly one module, found {len(held_by)}", path=path)
    return held_by[0]


def install_deltas(model: nn.Module, items: Sequence[tuple[Span, Tensor]]) -> list[RemovableHandle]:
    """Register forward hooks adding each delta (shaped like `span.view()`) to its module's output.

    On failure nothing stays registered.
    """
    owners = parameter_owners(model)
    per_module: dict[int, tuple[nn.Module, Additions]] = {}
    for span, delta in items:
        module, attr = sole_owner(owners, span.param, f"{span.name}: the delta mechanism (use mechanism='hook')")
        if not isinstance(module, (nn.Linear, Conv1D)) or attr not in ("weight", "bias"):
            raise BadRequest(f"{span.name}: {type(module).__name__}.{attr} is not a Linear/Conv1D weight or bias")
        conv1d = isinstance(module, Conv1D)
        _, adds = per_module.setdefault(id(module), (module, Additions(conv1d=conv1d)))
        adds.add(attr, span.dim, span.start, span.stop, delta)
    return [module.register_forward_hook(adds) for module, adds in per_module.values()]
