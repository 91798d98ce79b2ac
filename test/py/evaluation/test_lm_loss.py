"""`evaluate` with `lmLoss`: the token-weighted next-token NLL of each dataset's raw texts,
checked against plain transformers (HF's own loss, one text at a time), across batch sizes,
for pair-input records (fields joined by "\\n" in field order), and under mean-ablation."""

from __future__ import annotations

import json
import math

import pytest
import torch
from op_calls import OpCtx, call

from ctsft_runtime.errors import Cancelled
from ctsft_runtime.ops.state import RuntimeState

MAX_LENGTH = 8  # the schema's minimum: short enough that some texts are cut


@pytest.fixture(scope="module")
def texts(synthetic_task) -> list[tuple[str, str]]:
    """(text, label) of 30 held-out source-language examples."""
    ds = synthetic_task["src"]["valid"]
    return [(t, ds.label_names[y]) for t, y in zip(ds.texts, ds.labels, strict=True)]


@pytest.fixture()
def loaded(tiny_checkpoint):
    state = RuntimeState()
    return state, call(state, "model.load", {"source": str(tiny_checkpoint)}).body["handle"]


def _jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _reference(checkpoint, texts: list[str], max_length: int) -> tuple[float, int]:
    """Plain transformers: each text on its own, HF's mean loss with labels=input_ids, combined token-weighted."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for t in texts:
            ids = tok(t, return_tensors="pt")["input_ids"][:, :max_length]
            assert ids[0, 0] == tok.bos_token_id and tok.eos_token_id not in ids[0, 1:].tolist()
            loss = model(input_ids=ids, labels=ids).loss
            total += float(loss) * (ids.shape[1] - 1)
            n += ids.shape[1] - 1
    return total / n, n


def _evaluate(state, handle, data, **extra) -> dict:
    return call(state, "evaluate", {"model": handle, "data": [data], **extra}).body["results"][0]


def test_lm_loss_matches_plain_transformers_at_any_batch_size(loaded, tiny_checkpoint, texts, tmp_path) -> None:
    state, handle = loaded
    data = {"path": _jsonl(tmp_path / "valid.jsonl", [{"text": t, "label": y} for t, y in texts])}
    plain = [t for t, _ in texts]
    refs = {m: _reference(tiny_checkpoint, plain, m) for m in (128, MAX_LENGTH)}
    for max_length, (want, n) in refs.items():
        got = {b: _evaluate(state, handle, data, lmLoss=True, batchSize=b, maxLength=max_length) for b in (1, 7)}
        for r in got.values():
            assert r["lmTokens"] == n
            assert r["lmLoss"] == pytest.approx(want, rel=1e-5)
        assert got[1]["lmLoss"] == pytest.approx(got[7]["lmLoss"], rel=1e-5)
        assert math.isfinite(want) and want > 0
    # Truncation bites: the short budget predicts fewer tokens.
    assert refs[MAX_LENGTH][1] < refs[128][1]


def test_a_record_is_scored_as_its_fields_joined_in_field_order(loaded, texts, tmp_path) -> None:
    state, handle = loaded
    pairs = [(texts[i][0], texts[i + 1][0], texts[i][1]) for i in range(0, 20, 2)]
    # The file's columns are a, b; the field map puts b first, so the text is b + "\n" + a.
    records = _jsonl(tmp_path / "pairs.jsonl", [{"a": a, "b": b, "label": y} for a, b, y in pairs])
    joined = _jsonl(tmp_path / "joined.jsonl", [{"text": f"{b}\n{a}", "label": y} for a, b, y in pairs])
    swapped = _jsonl(tmp_path / "swapped.jsonl", [{"text": f"{a}\n{b}", "label": y} for a, b, y in pairs])
    pair = _evaluate(
        state,
        handle,
        {"path": records, "fields": {"first": "b", "second": "a"}},
        template="{first} / {second}\nSentiment:",
        lmLoss=True,
        batchSize=4,
    )
    plain = _evaluate(state, handle, {"path": joined}, lmLoss=True, batchSize=3)
    other = _evaluate(state, handle, {"path": swapped}, lmLoss=True, batchSize=3)
    assert pair["lmTokens"] == plain["lmTokens"]
    assert pair["lmLoss"] == pytest.approx(plain["lmLoss"], rel=1e-5)
    assert other["lmLoss"] != pytest.approx(plain["lmLoss"], rel=1e-5), "field order must matter"


def test_lm_loss_is_absent_unless_asked_and_runs_under_ablation(loaded, texts, tmp_path) -> None:
    state, handle = loaded
    path = _jsonl(tmp_path / "valid.jsonl", [{"text": t, "label": y} for t, y in texts])
    data = {"path": path}
    off = _evaluate(state, handle, data)
    assert "lmLoss" not in off and "lmTokens" not in off
    assert "lmLoss" not in _evaluate(state, handle, data, lmLoss=False)

    on = _evaluate(state, handle, data, lmLoss=True)
    assert on["accuracy"] == off["accuracy"] and on["confusion"] == off["confusion"]
    baseline = call(state, "baseline", {"model": handle, "data": data}).body["handle"]
    ablate = {"heads": [[0, 0], [0, 1], [1, 2]], "baseline": baseline}
    ablated = _evaluate(state, handle, data, lmLoss=True, ablate=ablate)
    assert ablated["lmTokens"] == on["lmTokens"]
    # The tiny model is untrained (loss ≈ ln 600), so ablating moves it little, but far beyond float noise.
    assert math.isfinite(ablated["lmLoss"]) and abs(ablated["lmLoss"] - on["lmLoss"]) > 1e-4
    # The hooks are gone afterwards: the same request without ablation gives the first number back.
    assert _evaluate(state, handle, data, lmLoss=True)["lmLoss"] == on["lmLoss"]


def test_cancellation_is_checked_between_lm_loss_batches(loaded, texts, tmp_path) -> None:
    state, handle = loaded
    data = {"path": _jsonl(tmp_path / "valid.jsonl", [{"text": t, "label": y} for t, y in texts])}

    class Counting(OpCtx):
        calls = 0

        def check_cancelled(self) -> None:
            self.calls += 1
            if self.calls > limit:
                raise Cancelled("cancelled")

    probe = Counting(state)
    limit = 10**9
    call(state, "evaluate", {"model": handle, "data": [data], "batchSize": 7}, probe)
    limit = probe.calls  # every check the classification pass makes (one per batch), and no more
    ctx = Counting(state)
    with pytest.raises(Cancelled):
        call(state, "evaluate", {"model": handle, "data": [data], "batchSize": 7, "lmLoss": True}, ctx)
    assert ctx.calls == limit + 1 and not state.models[handle].model.training


def test_a_non_finite_lm_loss_is_refused(tiny_checkpoint, texts) -> None:
    from ctsft_runtime.errors import NonFinite
    from ctsft_runtime.evaluation import lm_loss
    from ctsft_runtime.models import load_model

    lm = load_model(str(tiny_checkpoint))
    with torch.no_grad():
        lm.model.get_output_embeddings().weight[5].fill_(float("nan"))
    with pytest.raises(NonFinite, match=r"non-finite language-model loss on the texts 0\.\.6 of valid") as info:
        lm_loss(lm.model, lm.tokenizer, [t for t, _ in texts], batch_size=7, source="valid")
    assert info.value.code == "non_finite"
