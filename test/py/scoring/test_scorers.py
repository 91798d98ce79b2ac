"""Scorers on a real tiny checkpoint with a planted circuit: the label signal can only reach
the answer position through two known heads, and every scorer must rank them on top."""

from __future__ import annotations

import pytest
import torch

from ctsft_runtime.data import PromptFormat, encode_batch
from ctsft_runtime.errors import BadRequest
from ctsft_runtime.heads import capture_z
from ctsft_runtime.models import label_token_ids, load_model
from ctsft_runtime.scoring import ScoreContext, check_discovery_set, mean_baseline, score_heads
from ctsft_runtime.training import TrainConfig, train_sft

FMT = PromptFormat()
PLANTED = [(0, 1), (1, 2)]


@pytest.fixture(scope="module")
def planted(tiny_checkpoint, synthetic_task):
    """Every head but the planted ones has its O columns zeroed (and kept zero while
    training): the answer position sees the text only through the planted heads."""
    lm = load_model(str(tiny_checkpoint))
    src = synthetic_task["src"]
    ids = label_token_ids(lm.tokenizer, FMT, src["train"].label_names)
    silent = [s for s in lm.head_map.heads() if (s.layer, s.head) not in PLANTED]

    def silence(_: dict | None = None) -> None:
        with torch.no_grad():
            for s in silent:
                s.o_weight.view().zero_()

    silence()
    train_sft(lm.model, lm.tokenizer, src["train"], FMT, ids, TrainConfig(epochs=8, lr=3e-3), emit=silence)
    return lm, src, ids


def _ctx(lm, ds, ids, mu) -> ScoreContext:
    hm = lm.head_map
    sources = [(lyr, h) for lyr in range(hm.n_layers) for h in range(hm.n_heads)]
    return ScoreContext(lm.model, hm, lm.tokenizer, ds, FMT, ids, mu, sources, batch_size=16)


@pytest.mark.parametrize("method", ["ablation", "attribution", "cdt"])
def test_planted_heads_rank_first(planted, method) -> None:
    lm, src, ids = planted
    mu = mean_baseline(lm.model, lm.head_map, lm.tokenizer, src["valid"], FMT)
    result = score_heads(method, _ctx(lm, src["valid"], ids, mu))
    flat = result.scores.flatten().tolist()
    # Attribution is first order: here the margin is concave in z along (z - μ) and peaks
    # before z (measured: slope < 0 at z while mean-ablation costs > 1.5), so its sign can
    # flip; its magnitude still finds the heads. The other scorers rank by signed R.
    key = abs if method == "attribution" else (lambda v: v)
    order = sorted(range(len(flat)), key=lambda i: -key(flat[i]))
    top = {divmod(i, lm.head_map.n_heads) for i in order[:2]}
    assert top == set(PLANTED), (method, result.scores)
    silent = [flat[i] for i in order[2:]]
    assert max(abs(v) for v in silent) < 1e-4, silent  # no path: exactly no effect
    assert result.per_class.shape == (3, lm.head_map.n_layers, lm.head_map.n_heads)


def test_mean_baseline_is_mean_of_class_means(tiny_checkpoint, synthetic_task) -> None:
    """Two implementations agree: batched masked sums vs one unpadded example at a time."""
    lm = load_model(str(tiny_checkpoint))
    ds = synthetic_task["src"]["valid"].select(range(12))
    mu = mean_baseline(lm.model, lm.head_map, lm.tokenizer, ds, FMT, batch_size=5)
    per_class: dict[int, list[torch.Tensor]] = {}
    for text, label in zip(ds.texts, ds.labels, strict=True):
        enc = encode_batch(lm.tokenizer, [text], FMT, 128)
        with capture_z(lm.head_map) as rec, torch.no_grad():
            lm.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        per_class.setdefault(label, []).append(torch.stack([rec.z[lyr][0] for lyr in range(lm.head_map.n_layers)]))
    class_means = [torch.cat(zs, dim=1).mean(dim=1) for zs in per_class.values()]  # [L, H, d] each
    torch.testing.assert_close(mu, torch.stack(class_means).mean(0), atol=1e-5, rtol=1e-4)


def test_discovery_set_checks(synthetic_task) -> None:
    ds = synthetic_task["src"]["valid"]
    one_class = ds.select([i for i, y in enumerate(ds.labels) if y == 0])
    with pytest.raises(BadRequest, match="one class"):
        check_discovery_set(one_class)
    skewed = ds.select(
        [i for i, y in enumerate(ds.labels) if y == 0]
        + [next(i for i, y in enumerate(ds.labels) if y == 1)]
        + [next(i for i, y in enumerate(ds.labels) if y == 2)]
    )
    with pytest.raises(BadRequest, match="unbalanced"):
        check_discovery_set(skewed)
    with pytest.raises(BadRequest, match="empty"):
        check_discovery_set(ds.select([]))


def test_unknown_method_and_bad_heads(planted) -> None:
    lm, src, ids = planted
    mu = torch.zeros(lm.head_map.n_layers, lm.head_map.n_heads, lm.head_map.head_dim)
    with pytest.raises(BadRequest, match="unknown scoring method"):
        score_heads("magic", _ctx(lm, src["valid"], ids, mu))
    ctx = _ctx(lm, src["valid"], ids, mu)
    ctx.sources = [(0, 99)]
    with pytest.raises(BadRequest):
        score_heads("ablation", ctx)
