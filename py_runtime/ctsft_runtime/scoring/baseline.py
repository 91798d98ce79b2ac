"""The label-balanced mean baseline μ (DESIGN 2.3): per head, the mean over classes of the
per-class mean of z (the head's output before O) over non-pad positions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..data import LabeledSet, PromptFormat, encode_batch, iterate_batches
from ..errors import BadRequest
from ..heads import HeadMap, capture_z

# A discovery set more skewed than this is refused: the mean of per-class means tolerates
# mild imbalance, but a class seen a handful of times would make μ mostly noise.
MAX_IMBALANCE = 2.0


def check_discovery_set(ds: LabeledSet) -> None:
    counts = ds.class_counts()
    if len(ds) == 0:
        raise BadRequest("discovery set is empty", path="data")
    present = {k: v for k, v in counts.items() if v > 0}
    if len(present) < 2:
        raise BadRequest(
            f"discovery set has one class only ({counts}); relevance needs every class",
            path="data",
            remote_message="discovery set has one class only; relevance needs every class",
        )
    missing = [k for k, v in counts.items() if v == 0]
    if missing:
        raise BadRequest(
            f"discovery set has no example of class(es) {missing}; counts {counts}",
            path="data",
            remote_message=f"discovery set has no example of {len(missing)} of its {len(counts)} classes",
        )
    if max(counts.values()) > MAX_IMBALANCE * min(counts.values()):
        raise BadRequest(
            f"discovery set is unbalanced ({counts}); use a label-balanced subsample (perClass)",
            path="data",
            remote_message=(
                f"discovery set is unbalanced (class sizes {sorted(counts.values())}); "
                "use a label-balanced subsample (perClass)"
            ),
        )


@torch.no_grad()
def mean_baseline(
    model: Any,
    head_map: HeadMap,
    tokenizer: Any,
    ds: LabeledSet,
    fmt: PromptFormat,
    *,
    batch_size: int = 32,
    max_length: int = 128,
    check: Callable[[], None] = lambda: None,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> torch.Tensor:
    """μ as [layers, heads, head_dim] (float32, on the model's device)."""
    check_discovery_set(ds)
    device = next(model.parameters()).device
    n_cls = len(ds.label_names)
    shape = (n_cls, head_map.n_layers, head_map.n_heads, head_map.head_dim)
    sums = torch.zeros(shape, dtype=torch.float64, device=device)
    counts = torch.zeros(n_cls, dtype=torch.float64, device=device)  # non-pad positions per class
    done = 0
    for batch in iterate_batches(ds, batch_size):
        check()
        enc = encode_batch(tokenizer, batch.texts, fmt, max_length)
        mask = enc["attention_mask"].to(device)  # [B, T]
        labels = torch.tensor(batch.labels, device=device)
        with capture_z(head_map) as rec:
            model(input_ids=enc["input_ids"].to(device), attention_mask=mask, use_cache=False)
        onehot = torch.nn.functional.one_hot(labels, n_cls).to(torch.float64)  # [B, C]
        weights = onehot[:, :, None] * mask[:, None, :].to(torch.float64)  # [B, C, T]
        for layer in range(head_map.n_layers):
            z = rec.z[layer].to(torch.float64)  # [B, T, H, d]
            sums[:, layer] += torch.einsum("bct,bthd->chd", weights, z)
        counts += weights.sum(dim=(0, 2))
        done += len(batch.texts)
        progress(done, len(ds))
    per_class = sums / counts[:, None, None, None]
    return per_class.mean(dim=0).to(torch.float32)
