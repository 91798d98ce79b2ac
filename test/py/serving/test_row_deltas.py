"""Named deltas on one base, applied per row: mixed batches equal the merged checkpoints
(θ1 + delta, what `delta.apply` / `delta merge` give), the base weights never change."""

from __future__ import annotations

import random

import pytest
import torch
from conftest import FAMILIES, LABELS
from op_calls import call

from ctsft_runtime.circuits.fingerprint import weights_hash
from ctsft_runtime.ops.state import RuntimeState
from ctsft_runtime.serving import generate_texts

TOL = 1e-5


def _load(state: RuntimeState, path) -> str:
    return call(state, "model.load", {"source": str(path), "device": "cpu"}).body["handle"]


def _logits(state: RuntimeState, handle: str, texts: list[str], delta=None, batch_size: int = 8) -> torch.Tensor:
    body = {"model": handle, "texts": texts, "labels": LABELS, "batchSize": batch_size, "maxLength": 48}
    if delta is not None:
        body["delta"] = delta
    preds = call(state, "predict", body).body["predictions"]
    return torch.tensor([p["logits"] for p in preds], dtype=torch.float64)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Max over rows of max|a - b| / max|b| (logits near 0 make elementwise ratios meaningless)."""
    return float(((a - b).abs().amax(-1) / b.abs().amax(-1).clamp_min(1e-12)).max())


@pytest.fixture(scope="module")
def served(trained):
    """Per family: a state holding θ1 with both deltas loaded by name, and their merged references."""
    out = {}
    for family, t in trained.items():
        state = RuntimeState(device="cpu")
        base = _load(state, t.base)
        infos = {
            name: call(state, "deltas.load", {"model": base, "name": name, "delta": str(d)}).body
            for name, d in t.deltas.items()
        }
        merged = {}
        for name, d in t.deltas.items():
            merged[name] = _load(state, t.base)
            call(state, "delta.apply", {"model": merged[name], "delta": str(d)})  # θ1 + delta, in place
        out[family] = (state, base, merged, infos)
    return out


@pytest.mark.parametrize("family", list(FAMILIES))
def test_mixed_batch_equals_merged_checkpoints(served, trained, synthetic_task, family) -> None:
    state, base, merged, infos = served[family]
    assert {i["meta"]["method"] for i in infos.values()} == {"ctsft"}
    texts = synthetic_task["easy"]["test"].texts[:12] + synthetic_task["hard"]["test"].texts[:12]
    rows = [("easy", "hard", None)[i % 3] for i in range(len(texts))]
    mixed = _logits(state, base, texts, rows)
    plain = _logits(state, base, texts)
    refs = {name: _logits(state, h, texts) for name, h in merged.items()}
    refs[None] = plain
    expected = torch.stack([refs[r][i] for i, r in enumerate(rows)])
    rel = _rel(mixed, expected)
    print(f"{family}: max relative logit diff mixed vs merged {rel:.2e}")
    assert rel <= TOL
    # Not vacuous: each delta moves its rows far beyond the tolerance.
    for name in ("easy", "hard"):
        idx = [i for i, r in enumerate(rows) if r == name]
        assert _rel(refs[name][idx], plain[idx]) > 1e-2, f"{name} ({trained[family].mechanisms[name]}) barely moved"


@pytest.mark.parametrize("family", list(FAMILIES))
def test_single_name_applies_to_every_row(served, synthetic_task, family) -> None:
    state, base, merged, _ = served[family]
    texts = synthetic_task["hard"]["test"].texts[:10]
    assert _rel(_logits(state, base, texts, "hard", batch_size=4), _logits(state, merged["hard"], texts)) <= TOL


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_greedy_generation_with_deltas_equals_merged(served, family) -> None:
    state, base, merged, _ = served[family]
    prompts = ["the", "a good day in the city", "bad"]  # different lengths: left padding in play
    rows = ["easy", None, "hard"]
    lm = state.models[base]
    from ctsft_runtime.ops.serving import _deltas_for, _row_names

    names = _row_names(lm, rows, len(prompts), "prompts")
    with _deltas_for(lm, names) as selection:
        selection.select(names)
        got = generate_texts(lm.model, lm.tokenizer, prompts, max_new_tokens=12)
    for i, name in enumerate(rows):
        ref_lm = lm if name is None else state.models[merged[name]]
        want = generate_texts(ref_lm.model, ref_lm.tokenizer, prompts, max_new_tokens=12)[i]
        assert got[i].ids == want.ids and got[i].text == want.text, (family, name)
    # The delta changes what is generated (else the comparison above proves little).
    plain = generate_texts(lm.model, lm.tokenizer, prompts, max_new_tokens=12)
    assert plain[0].ids != got[0].ids or plain[2].ids != got[2].ids


def test_base_weights_bit_identical_after_1000_mixed_requests(served, synthetic_task) -> None:
    state, base, _, _ = served["qwen2"]
    lm = state.models[base]
    before = weights_hash(lm.model)
    pool = synthetic_task["src"]["test"].texts + synthetic_task["easy"]["test"].texts
    rng = random.Random(0)
    rows_done = 0
    for _ in range(10):  # 10 calls x 100 rows, each row its own random delta
        texts = [rng.choice(pool) for _ in range(100)]
        rows = [rng.choice(["easy", "hard", None]) for _ in texts]
        call(state, "predict", {"model": base, "texts": texts, "labels": LABELS, "delta": rows, "batchSize": 50})
        rows_done += len(texts)
    out = call(
        state, "generate", {"model": base, "prompts": ["the", "a"], "delta": ["easy", "hard"], "maxNewTokens": 4}
    )
    assert len(out.body["outputs"]) == 2
    assert rows_done == 1000
    assert weights_hash(lm.model) == before
    # And no hook was left behind: the base answers exactly as a freshly loaded θ1 does.
    fresh = _load(state, state.models[base].source)
    texts = pool[:8]
    assert torch.equal(_logits(state, base, texts), _logits(state, fresh, texts))
    call(state, "release", {"handle": fresh})
