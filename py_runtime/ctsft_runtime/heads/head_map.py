"""The head map: where each attention head's parameters live, as data.

One object answers, for every (layer, query head): which parameter holds its Q/K/V/O
slices, along which dimension, and which index range. Scoring (z capture, CD-T), training
(gradient masks, sliced deltas) and artifacts all read slices from here, so a layout bug
shows up in one place, where the invariant tests look.

Conventions (all families):
- A query head h reads K/V from KV head `h // (n_heads // n_kv_heads)` (GQA/MQA).
- Every slice is one contiguous range along one dimension of one parameter: true for all
  supported layouts, fused ones included, so a `Span` is (param, dim, start, stop).
- O's slice for head h is its *input* features [h*head_dim, (h+1)*head_dim); O's bias is
  shared by all heads and is reported per layer, never per head.
- head_dim comes from the attention module (or config), never from d_model / n_heads:
  Gemma and Qwen3 configs commonly have n_heads * head_dim != d_model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from transformers.pytorch_utils import Conv1D

from ..errors import BadRequest
from .families import FAMILIES, Family, FusedLayout, supported_model_types

Proj = Literal["q", "k", "v"]


@dataclass(frozen=True, eq=False)
class Span:
    """`param` restricted to indices [start, stop) along `dim`."""

    name: str
    param: nn.Parameter
    dim: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start

    @property
    def index(self) -> Tensor:
        """The indices along `dim` as a long tensor (for index_select / index_add)."""
        return torch.arange(self.start, self.stop, device=self.param.device)

    def view(self) -> Tensor:
        """A view into the parameter (writes go through; wrap them in torch.no_grad())."""
        return self.param.narrow(self.dim, self.start, self.size)

    def mask(self) -> Tensor:
        """Boolean tensor of the parameter's shape, True inside the span."""
        m = torch.zeros(self.param.shape, dtype=torch.bool, device=self.param.device)
        m.narrow(self.dim, self.start, self.size).fill_(True)
        return m

    @property
    def numel(self) -> int:
        return self.view().numel()


@dataclass(frozen=True, eq=False)
class HeadSlices:
    """Everything that belongs to one query head (K/V spans are its KV head's, shared)."""

    layer: int
    head: int
    kv_head: int
    q_weight: Span
    q_bias: Span | None
    k_weight: Span
    k_bias: Span | None
    v_weight: Span
    v_bias: Span | None
    o_weight: Span

    def spans(self, *, kv: bool = True) -> list[Span]:
        """The head's spans: Q, (K, V when `kv`), O columns; biases where present."""
        parts = [self.q_weight, self.q_bias]
        if kv:
            parts += [self.k_weight, self.k_bias, self.v_weight, self.v_bias]
        parts.append(self.o_weight)
        return [s for s in parts if s is not None]

    def read_in(self, proj: Proj) -> tuple[Tensor, Tensor | None]:
        """(W [d_model, head_dim], b [head_dim] | None) with x @ W + b = this head's q/k/v.

        Pre-RoPE and pre q/k-norm: the raw projection, as views into the parameters.
        """
        weight, bias = {
            "q": (self.q_weight, self.q_bias),
            "k": (self.k_weight, self.k_bias),
            "v": (self.v_weight, self.v_bias),
        }[proj]
        w = weight.view()
        # nn.Linear slices rows of [out, in] -> transpose; Conv1D slices columns of [in, out].
        w = w.t() if weight.dim == 0 else w
        return w, (bias.view() if bias is not None else None)

    def read_out(self) -> Tensor:
        """W_O^h [head_dim, d_model]: the head's contribution is z_h @ W_O^h (bias excluded)."""
        w = self.o_weight.view()
        # nn.Linear: columns of [d_model, n*hd] -> [d_model, hd] -> transpose;
        # Conv1D: rows of [n*hd, d_model] are already [hd, d_model].
        return w.t() if self.o_weight.dim == 1 else w

    def contribution(self, z_head: Tensor) -> Tensor:
        """[..., head_dim] -> [..., d_model]: what this head writes through O, bias excluded."""
        return z_head @ self.read_out()


@dataclass(frozen=True, eq=False)
class LayerAttention:
    """One layer's attention: modules, shared parameters, and its heads."""

    index: int
    attention: nn.Module
    o_proj: nn.Module
    o_bias: Span | None
    """O's bias (whole vector): shared by the heads, added once."""
    qk_norms: tuple[tuple[str, nn.Parameter], ...]
    """Per-head q/k norm parameters (Qwen3), shared by all heads of the layer."""
    heads: tuple[HeadSlices, ...]


@dataclass(frozen=True, eq=False)
class HeadMap:
    """Per-family attention head map of one model instance."""

    family: str
    """The model's `config.model_type`."""
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    d_model: int
    layers: tuple[LayerAttention, ...]

    @classmethod
    def for_model(cls, model: nn.Module) -> HeadMap:
        """Same as `build_head_map(model)`."""
        return build_head_map(model)

    @property
    def group_size(self) -> int:
        """Query heads per KV head (1 without GQA)."""
        return self.n_heads // self.n_kv_heads

    def kv_head_of(self, head: int) -> int:
        self.check_head(head)
        return head // self.group_size

    def query_heads_of(self, kv_head: int) -> list[int]:
        """The query heads that share KV head `kv_head` (touched when its K/V change)."""
        if not 0 <= kv_head < self.n_kv_heads:
            raise BadRequest(f"kv head {kv_head} out of range [0, {self.n_kv_heads})")
        return list(range(kv_head * self.group_size, (kv_head + 1) * self.group_size))

    def head(self, layer: int, head: int) -> HeadSlices:
        self.check_layer(layer)
        self.check_head(head)
        return self.layers[layer].heads[head]

    def heads(self) -> Iterator[HeadSlices]:
        """All heads, layer-major."""
        for layer in self.layers:
            yield from layer.heads

    def check_layer(self, layer: int) -> None:
        """Raise BadRequest unless 0 <= layer < n_layers."""
        if not 0 <= layer < self.n_layers:
            raise BadRequest(f"layer {layer} out of range [0, {self.n_layers})")

    def check_head(self, head: int) -> None:
        """Raise BadRequest unless 0 <= head < n_heads."""
        if not 0 <= head < self.n_heads:
            raise BadRequest(f"head {head} out of range [0, {self.n_heads})")


def build_head_map(model: nn.Module) -> HeadMap:
    """Build the head map of a transformers model (base model or any *For* head on top)."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type not in FAMILIES:
        raise BadRequest(
            f"unsupported model_type {model_type!r} for head-level tuning; "
            f"supported: {', '.join(supported_model_types())}",
            detail=f"model class {type(model).__name__}",
        )
    family = FAMILIES[model_type]
    if family.check is not None and (reason := family.check(config)):
        raise BadRequest(f"unsupported {model_type} variant: {reason}")

    # First name of each parameter: the key a state_dict / safetensors file uses.
    names = {id(p): n for n, p in model.named_parameters()}
    blocks = _get_path(getattr(model, "base_model", model), family.layers, model_type)
    n_heads = int(config.num_attention_heads)
    n_kv_heads = int(getattr(config, "num_key_value_heads", None) or n_heads)
    d_model = int(config.hidden_size)
    if n_heads % n_kv_heads:
        raise BadRequest(f"{model_type}: n_heads {n_heads} not a multiple of {n_kv_heads}")

    attns = [_get_path(block, family.attention, model_type) for block in blocks]
    head_dims = {_head_dim(attn, config, model_type) for attn in attns}
    if len(head_dims) != 1:
        raise BadRequest(f"{model_type}: expected one head_dim for all layers, got {head_dims}")
    (head_dim,) = head_dims
    geo = _Geometry(n_heads, n_kv_heads, head_dim, d_model)
    layers = [_layer(i, attn, family, geo, names, model_type) for i, attn in enumerate(attns)]
    return HeadMap(
        family=model_type,
        n_layers=len(layers),
        n_heads=n_heads,
        n_kv_heads=n_kv_heads,
        head_dim=head_dim,
        d_model=d_model,
        layers=tuple(layers),
    )


@dataclass(frozen=True)
class _Geometry:
    n_heads: int
    n_kv_heads: int
    head_dim: int
    d_model: int


def _layer(
    index: int,
    attn: nn.Module,
    family: Family,
    geo: _Geometry,
    names: dict[int, str],
    model_type: str,
) -> LayerAttention:
    hd, n, g = geo.head_dim, geo.n_heads, geo.n_kv_heads
    o_proj = _get_path(attn, family.out, model_type)
    o_in_dim = 1 - _out_dim(o_proj, model_type)
    _expect_shape(o_proj, o_in_dim, n * hd, geo.d_model, f"{model_type} O")

    if family.fused is not None:
        fused = _get_path(attn, family.fused, model_type)
        q_mod = k_mod = v_mod = fused
        rows = (n + 2 * g) * hd
        _expect_shape(fused, _out_dim(fused, model_type), rows, geo.d_model, f"{model_type} QKV")
        if family.fused_layout == "per_head" and g != n:
            raise BadRequest(f"{model_type}: per-head fused QKV cannot have GQA")
    else:
        q_mod, k_mod, v_mod = (_get_path(attn, name or "", model_type) for name in (family.q, family.k, family.v))
        for mod, rows, what in ((q_mod, n * hd, "Q"), (k_mod, g * hd, "K"), (v_mod, g * hd, "V")):
            _expect_shape(mod, _out_dim(mod, model_type), rows, geo.d_model, f"{model_type} {what}")
    q_start, k_start, v_start = _row_starts(family.fused_layout, n, g, hd)

    def weight(mod: nn.Module, start: int) -> Span:
        return Span(names[id(mod.weight)], mod.weight, _out_dim(mod, model_type), start, start + hd)

    def bias(mod: nn.Module, start: int) -> Span | None:
        b = getattr(mod, "bias", None)
        return None if b is None else Span(names[id(b)], b, 0, start, start + hd)

    o_name = names[id(o_proj.weight)]
    heads = []
    for h in range(n):
        kv = h // (n // g)
        heads.append(
            HeadSlices(
                layer=index,
                head=h,
                kv_head=kv,
                q_weight=weight(q_mod, q_start(h)),
                q_bias=bias(q_mod, q_start(h)),
                k_weight=weight(k_mod, k_start(kv)),
                k_bias=bias(k_mod, k_start(kv)),
                v_weight=weight(v_mod, v_start(kv)),
                v_bias=bias(v_mod, v_start(kv)),
                o_weight=Span(o_name, o_proj.weight, o_in_dim, h * hd, (h + 1) * hd),
            )
        )
    o_bias = getattr(o_proj, "bias", None)
    qk_norms = tuple(
        (names[id(p)], p) for norm in family.qk_norms for p in _get_path(attn, norm, model_type).parameters()
    )
    return LayerAttention(
        index=index,
        attention=attn,
        o_proj=o_proj,
        o_bias=None if o_bias is None else Span(names[id(o_bias)], o_bias, 0, 0, o_bias.shape[0]),
        qk_norms=qk_norms,
        heads=tuple(heads),
    )


StartOf = Callable[[int], int]


def _row_starts(layout: FusedLayout | None, n: int, g: int, hd: int) -> tuple[StartOf, StartOf, StartOf]:
    """First output row of q for query head h, and of k / v for KV head kv."""
    if layout == "per_head":
        # Output viewed as [n_heads, 3, head_dim]: head h owns rows [3h*hd, 3(h+1)*hd).
        return (lambda h: 3 * h * hd, lambda kv: (3 * kv + 1) * hd, lambda kv: (3 * kv + 2) * hd)
    if layout == "blocked":
        # Output is [n*hd of q | g*hd of k | g*hd of v].
        return (lambda h: h * hd, lambda kv: (n + kv) * hd, lambda kv: (n + g + kv) * hd)
    # Separate q/k/v modules: each indexed from 0.
    return (lambda h: h * hd, lambda kv: kv * hd, lambda kv: kv * hd)


def _out_dim(module: nn.Module, model_type: str) -> int:
    """Dimension of `module.weight` indexing output features."""
    # Conv1D (GPT-2) stores [in, out]: a head's "rows" of Q are columns of its weight.
    if isinstance(module, Conv1D):
        return 1
    if isinstance(module, nn.Linear):
        return 0
    raise BadRequest(
        f"{model_type}: projection {type(module).__name__} is neither nn.Linear nor Conv1D "
        "(quantized or otherwise wrapped models are not supported by the head map)"
    )


def _expect_shape(module: nn.Module, dim: int, size: int, d_model: int, what: str) -> None:
    shape = tuple(module.weight.shape)
    if shape[dim] != size or shape[1 - dim] != d_model:
        raise BadRequest(
            f"{what} weight has shape {shape}, expected {size} along dim {dim} and d_model {d_model} along the other"
        )


def _head_dim(attn: nn.Module, config: object, model_type: str) -> int:
    for attr in ("head_dim", "head_size"):  # head_size: GPT-NeoX
        value = getattr(attn, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(config, "head_dim", None)
    if isinstance(value, int) and value > 0:
        return value
    raise BadRequest(f"{model_type}: cannot find head_dim on the attention module or config")


def _get_path(root: nn.Module, path: str, model_type: str) -> nn.Module:
    node: object = root
    for part in path.split("."):
        node = getattr(node, part, None)
        if node is None:
            raise BadRequest(
                f"{model_type}: expected module at {path!r} under {type(root).__name__}; "
                "is this a standard transformers model of that family?"
            )
    if not isinstance(node, nn.Module):
        raise BadRequest(f"{model_type}: {path!r} is not a module")
    return node


def norm_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Every LayerNorm/RMSNorm parameter (weight and bias), q/k norms and final norm included.

    A module counts as a norm when it is an `nn.LayerNorm` or its class name contains
    "Norm" (LlamaRMSNorm, Qwen3RMSNorm, GemmaRMSNorm, ...): families define their own norm
    classes, and the name is the one convention they all keep. Only parameters owned
    directly by such modules are returned, each once, in module order.
    """
    seen: set[int] = set()
    out: list[tuple[str, nn.Parameter]] = []
    for mod_name, module in model.named_modules():
        if not (isinstance(module, nn.LayerNorm) or "Norm" in type(module).__name__):
            continue
        for p_name, param in module.named_parameters(recurse=False):
            if id(param) not in seen:
                seen.add(id(param))
                out.append((f"{mod_name}.{p_name}" if mod_name else p_name, param))
    return out
