"""Data parallelism for the training loop: one `Trainer` per run, the loop stays one loop.

With one rank, `Trainer` calls the model as before and changes nothing. With several
(`distributed.current()`, started by torchrun), every rank walks the same global batches
and takes its contiguous share of each (`share_of`); gradients are averaged across ranks,
so an optimizer step equals the single-process step on the whole global batch:

- `ddp` (every method): `DistributedDataParallel` over the model. Parameters outside
  the module (the `delta` mechanism's slices) are all-reduced by hand before clipping.
- `fsdp` (full and ctsft): FSDP2 `fully_shard` over a clone of the model built on the meta
  device (each decoder layer, then the root), filled with this rank's shards of the
  model's weights. The model the runtime holds is left alone while the clone trains, so
  head masks, head maps, spans and the rollback copy keep pointing at plain tensors; at
  the end (and before each validation) the trained tensors are gathered whole and copied
  back into it. Head masks: the hook mechanism's gradient hooks sit on the held model's
  tensors, so for the clone each frozen-element mask is sharded like its parameter and
  applied to the local gradient shard before clipping (the same zeros, in the same
  place: frozen elements stay bit-identical). Delta slices are small: replicated, hooked
  onto the clone's projections, all-reduced by hand like under DDP.

Memory under fsdp: the held model stays whole on every rank (so evaluate/save/score work
unchanged afterwards); what is sharded is the training state, gradients and AdamW's two
moments (12 of the 16 bytes per trained fp32 parameter), plus the clone's weights.
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn

from .. import distributed
from ..errors import BadRequest
from ..models.classify import class_logits

if TYPE_CHECKING:
    from .masking import HeadMask

Parallel = Literal["ddp", "fsdp"]
PARALLEL_MODES: tuple[str, ...] = ("ddp", "fsdp")


@dataclass(frozen=True)
class Share:
    """A rank's rows [lo, hi) of a global batch and the weight of its mean loss."""

    lo: int
    hi: int
    weight: float


def share_of(n: int, rank: int, world: int) -> Share:
    """Rank `rank`'s contiguous share of a global batch of `n` examples.

    Sizes differ by at most one (the first n % world ranks take one more). `weight` =
    n_r·world/n scales the share's mean loss so that the average of the ranks' gradients
    is the gradient of the global batch's mean loss, whatever the split. A rank left
    without an example (n < world, only in a short last batch) computes on row 0 with
    weight 0: it still joins the gradient all-reduce, contributing zeros.
    """
    base, extra = divmod(n, world)
    lo = rank * base + min(rank, extra)
    hi = lo + base + (1 if rank < extra else 0)
    if hi == lo:
        return Share(0, min(1, n), 0.0)
    return Share(lo, hi, (hi - lo) * world / n)


class _Forward(nn.Module):
    """The loop's forward pass (class logits) as a module, so that DDP's and FSDP's forward
    hooks run: `class_logits` reaches the model through `base_model`, past the root's forward."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, enc: dict[str, Tensor], token_ids: Sequence[int] | None) -> Tensor:
        return class_logits(self.model, enc, token_ids)


class Trainer:
    """One rank (the default): the model itself, gradients as computed."""

    rank, world = 0, 1
    mode: Parallel | None = None

    def __init__(self, model: nn.Module, groups: list[dict[str, Any]]):
        self.model = model
        self.module: nn.Module = model
        self.groups = groups

    def logits(self, enc: dict[str, Tensor], token_ids: Sequence[int] | None) -> Tensor:
        return class_logits(self.model, enc, token_ids)

    def share(self, n: int) -> Share:
        return Share(0, n, 1.0)

    def global_sum(self, values: list[float]) -> list[float]:
        return values

    def reduce_grads(self) -> None:
        """Make the gradients the global batch's (before clipping)."""

    def clip(self, params: list[Tensor], max_norm: float) -> float:
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))

    def eval_model(self) -> nn.Module:
        """The model with the training so far, for a validation pass."""
        return self.model

    def finish(self) -> None:
        """After the last step: leave the training in `model`."""

    def close(self) -> None:
        """Always, last: drop what the layout built."""


class _Ranked(Trainer):
    def __init__(self, model: nn.Module, groups: list[dict[str, Any]], ranks: distributed.Ranks):
        super().__init__(model, groups)
        self.ranks = ranks
        self.rank, self.world = ranks.rank, ranks.world
        held = {id(p) for p in model.parameters()}
        # Trainable tensors that are not the module's parameters: no wrapper reduces them.
        self.extra = [p for g in groups for p in g["params"] if id(p) not in held]

    def logits(self, enc: dict[str, Tensor], token_ids: Sequence[int] | None) -> Tensor:
        return self.module(enc, token_ids)

    def share(self, n: int) -> Share:
        return share_of(n, self.rank, self.world)

    def global_sum(self, values: list[float]) -> list[float]:
        from ..distributed.control import sum_floats

        return sum_floats(self.ranks, values)

    def reduce_grads(self) -> None:
        import torch.distributed as dist

        for p in self.extra:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)  # gloo has no AVG
            p.grad.div_(self.world)


class _DDP(_Ranked):
    mode: Parallel | None = "ddp"

    def __init__(self, model: nn.Module, groups: list[dict[str, Any]], ranks: distributed.Ranks):
        from torch.nn.parallel import DistributedDataParallel

        super().__init__(model, groups, ranks)
        device = next(model.parameters()).device
        self.module = DistributedDataParallel(
            _Forward(model),
            device_ids=[device.index] if device.type == "cuda" else None,
            # Buffers (rotary tables) are equal on every rank already: no per-step broadcast.
            forward_sync_buffers=False,
        )


class _FSDP(_Ranked):
    mode: Parallel | None = "fsdp"

    def __init__(
        self, model: nn.Module, groups: list[dict[str, Any]], ranks: distributed.Ranks, head_mask: HeadMask | None
    ):
        from torch.distributed.fsdp import fully_shard
        from torch.distributed.tensor import distribute_tensor

        from .masking_delta import install_deltas

        super().__init__(model, groups, ranks)
        device = next(model.parameters()).device
        dtype = next(model.parameters()).dtype
        mesh = _mesh(device.type, ranks.world)
        self.names = {id(p): n for n, p in model.named_parameters()}
        held = dict(model.named_parameters())
        with torch.device("meta"):
            clone = type(model)(model.config).to(dtype)
        for name, p in clone.named_parameters():
            p.requires_grad_(held[name].requires_grad)
        self.clone = clone
        self.module = _Forward(clone)
        blocks = set(getattr(model, "_no_split_modules", None) or [])
        for sub in clone.modules():
            if type(sub).__name__ in blocks:
                fully_shard(sub, mesh=mesh)
        fully_shard(self.module, mesh=mesh)
        self.module.to_empty(device=device)
        shards = dict(clone.named_parameters())
        with torch.no_grad():
            for name, p in shards.items():
                # Every rank holds the whole tensor, so each takes its own shard: no traffic.
                local = distribute_tensor(held[name].detach(), mesh, p.placements, src_data_rank=None)
                p.to_local().copy_(local.to_local())
            buffers = dict(model.named_buffers())
            for name, b in clone.named_buffers():
                b.copy_(buffers[name])
        self.groups = [{**g, "params": [self._sharded(p, shards) for p in g["params"]]} for g in groups]
        self.masks: list[tuple[Tensor, Tensor]] = []
        self.handles: list[Any] = []
        if head_mask is not None:
            for p, frozen in head_mask.frozen_masks():
                shard = shards[self.names[id(p)]]
                local = distribute_tensor(frozen, mesh, shard.placements, src_data_rank=None).to_local()
                self.masks.append((shard, local))
            items = [
                (dataclasses.replace(span, param=shards[self.names[id(span.param)]]), delta)
                for span, delta in head_mask.delta_items()
            ]
            self.handles = install_deltas(clone, items)
        self.shards = shards

    def _sharded(self, p: Tensor, shards: dict[str, nn.Parameter]) -> Tensor:
        name = self.names.get(id(p))
        return p if name is None else shards[name]

    def reduce_grads(self) -> None:
        super().reduce_grads()
        with torch.no_grad():
            for shard, frozen in self.masks:
                if shard.grad is not None:
                    shard.grad.to_local().masked_fill_(frozen, 0)

    def clip(self, params: list[Tensor], max_norm: float) -> float:
        from torch.distributed.tensor import DTensor

        # clip_grad_norm_ refuses a mix of DTensor (shards) and Tensor (delta) gradients:
        # take the global norm of each kind, then scale both by the one coefficient.
        grads = [p.grad for p in params if p.grad is not None]
        parts = []
        for kind in (True, False):
            same = [g for g in grads if isinstance(g, DTensor) is kind]
            if same:
                n = torch.nn.utils.get_total_norm(same)
                parts.append(n.full_tensor() if isinstance(n, DTensor) else n)
        total = torch.linalg.vector_norm(torch.stack(parts)) if len(parts) > 1 else parts[0]
        coef = float(torch.clamp(max_norm / (total + 1e-6), max=1.0))
        with torch.no_grad():
            for g in grads:
                g.mul_(coef)
        return float(total)

    def _copy_back(self) -> None:
        with torch.no_grad():
            held = dict(self.model.named_parameters())
            for name, shard in self.shards.items():
                if shard.requires_grad:
                    held[name].copy_(shard.full_tensor())  # a collective: all ranks, same order

    def eval_model(self) -> nn.Module:
        self._copy_back()
        return self.model

    def finish(self) -> None:
        self._copy_back()

    def close(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles, self.masks, self.groups = [], [], []
        del self.clone, self.module, self.shards
        gc.collect()


_MESHES: dict[tuple[str, int], Any] = {}


def _mesh(device_type: str, world: int) -> Any:
    """One device mesh per device type for the runtime's life: each new mesh creates process
    groups (sockets, communicators), which a long sweep of fsdp runs would otherwise pile up."""
    from torch.distributed.device_mesh import init_device_mesh

    key = (device_type, world)
    if key not in _MESHES:
        _MESHES[key] = init_device_mesh(device_type, (world,))
    return _MESHES[key]


def make_trainer(
    model: nn.Module,
    groups: list[dict[str, Any]],
    *,
    parallel: Parallel = "ddp",
    head_mask: HeadMask | None = None,
) -> Trainer:
    """The trainer for this process: one rank, DDP or FSDP2 (see the module doc)."""
    ranks = distributed.current()
    if ranks is None:
        return Trainer(model, groups)
    if parallel == "fsdp":  # which methods may use it is the train op's rule
        return _FSDP(model, groups, ranks, head_mask)
    if parallel != "ddp":
        raise BadRequest(f"parallel must be one of {', '.join(PARALLEL_MODES)}, got {parallel!r}", path="parallel")
    return _DDP(model, groups, ranks)
