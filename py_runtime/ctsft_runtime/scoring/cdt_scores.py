"""`cdt` and `cdt-unsigned`: scores from the contextual decomposition of each source head's
contribution (β = z − μ, γ = μ) propagated to the class logits (see `scoring/cdt`), and the
stability figure every cdt run reports."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .context import ScoreContext
from .margins import margin

STABILITY_WARN = 10.0
"""max |rel| / max |true| above this is reported with a warning: the two parts then cancel
each other by an order of magnitude and the scores carry float noise (docs/method.md)."""


@dataclass
class Stability:
    """max |rel| / max |true| over layers, source heads and examples (each row's max over
    positions and features), and where it was reached."""

    max_ratio: float = 0.0
    layer: int = -1
    head: tuple[int, int] | None = None
    example: int = -1

    def observe(
        self, heads: list[tuple[int, int]], offset: int, bsz: int,
        point: str, layer: int, rel: torch.Tensor, irrel: torch.Tensor, sources: list[int],
    ) -> None:  # fmt: skip
        """A `Trace` (after `heads`, `offset`, `bsz` are bound): rows k * bsz + b."""
        if point != "layer":
            return
        ratio = rel.abs().flatten(1).amax(1) / (rel + irrel).abs().flatten(1).amax(1).clamp_min(1e-30)
        worst, row = ratio.max(0)
        if worst.item() > self.max_ratio:
            k, b = divmod(int(row), bsz)
            self.max_ratio, self.layer = worst.item(), layer
            self.head, self.example = heads[sources[k]], offset + b

    def to_json(self) -> dict[str, object]:
        warning = None
        if self.max_ratio > STABILITY_WARN:
            warning = (
                f"cdt is unstable here: max |rel| reached {self.max_ratio:.3g}x max |true| "
                f"(layer {self.layer}, source head {self.head}, example {self.example}); "
                f"above {STABILITY_WARN:g}x the scores are dominated by cancelling parts"
            )
        return {
            "maxRatio": self.max_ratio,
            "layer": self.layer,
            "head": None if self.head is None else list(self.head),
            "example": self.example,
            "threshold": STABILITY_WARN,
            "warning": warning,
        }


def _decomposed(ctx: ScoreContext) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    from .cdt import decompose_heads

    stab = Stability()
    ctx.notes["stability"] = stab
    offset = 0
    for enc, gold in ctx.batches():
        trace = functools.partial(stab.observe, ctx.sources, offset, len(gold))
        rel, irrel = decompose_heads(
            ctx.model, ctx.head_map, enc["input_ids"], enc["attention_mask"], enc["last_index"],
            ctx.token_ids, ctx.mu, ctx.sources, chunk=ctx.chunk, check=ctx.check,
            pattern=ctx.settings.get("pattern", "decomposed"), trace=trace,
        )  # fmt: skip
        offset += len(gold)
        yield rel, irrel, gold


@torch.no_grad()
def cdt_scores(ctx: ScoreContext) -> torch.Tensor:
    """Directional: rel_logit[gold] − rel_logit[c*], c* the non-gold class with the highest
    logit of the model itself (the reference's competitor); positive helps the answer."""
    columns, done = [], 0
    for rel, irrel, gold in _decomposed(ctx):
        columns.append(margin(rel, gold, reference=rel + irrel))  # [S, B]
        done += len(gold)
        ctx.progress(done, len(ctx.ds))
    return torch.cat(columns, dim=1).float().cpu()


@torch.no_grad()
def cdt_unsigned_scores(ctx: ScoreContext) -> torch.Tensor:
    """The original CD-T ratio ‖rel‖₁ / ‖irrel‖₁ at the class logits: how much of the output
    the head explains, whichever way it pushes."""
    columns, done = [], 0
    for rel, irrel, gold in _decomposed(ctx):
        columns.append(rel.abs().sum(-1) / irrel.abs().sum(-1).clamp_min(1e-12))
        done += len(gold)
        ctx.progress(done, len(ctx.ds))
    return torch.cat(columns, dim=1).float().cpu()
