"""deltas.load/unload/list, predict's defined results and every refusal naming its field."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
from conftest import LABELS, build, corpus, train_delta
from op_calls import OpCtx, call

from ctsft_runtime.errors import BadRequest, CtsftError, NotFound
from ctsft_runtime.ops.serving import named_deltas
from ctsft_runtime.ops.state import RuntimeState
from ctsft_runtime.serving.row_deltas import _Recompute


def _load(state: RuntimeState, path) -> str:
    return call(state, "model.load", {"source": str(path), "device": "cpu"}).body["handle"]


def _refused(state: RuntimeState, op: str, body: dict, path: str, kind: type[CtsftError] = BadRequest) -> CtsftError:
    with pytest.raises(kind) as e:
        call(state, op, body)
    assert e.value.path == path, (op, body, e.value.path, e.value.message)
    return e.value


def test_load_list_unload_and_what_a_delta_holds(trained) -> None:
    t = trained["qwen2"]
    state = RuntimeState(device="cpu")
    m = _load(state, t.base)
    info = call(state, "deltas.load", {"model": m, "name": "easy", "delta": str(t.deltas["easy"])}).body
    assert info["name"] == "easy" and info["path"].endswith("ctsft-delta")
    assert info["entries"] > 0 and 0 < info["fraction"] < 1 and info["meta"]["mechanism"] == "hook"
    row = named_deltas(state.models[m])["easy"].row
    # The equality tests exercise every path: norms recomputed, Q/K/V rows, O columns, q/k/v bias slices.
    adds = [e for e in row.modules.values() if not isinstance(e, _Recompute)]
    assert any(isinstance(e, _Recompute) for e in row.modules.values())
    assert any(a.outputs for a in adds) and any(a.inputs for a in adds) and any(a.biases for a in adds)
    # GPT-2: fused c_attn and c_proj are Conv1D ([in, out]): Q/K/V are its columns, O's rows.
    from ctsft_runtime.artifacts import load_delta
    from ctsft_runtime.models import load_model
    from ctsft_runtime.serving import prepare_row_delta

    gpt2 = load_model(str(trained["gpt2"].base), device="cpu")
    fused = prepare_row_delta(gpt2.model, load_delta(trained["gpt2"].deltas["hard"] / "ctsft-delta"))
    convs = [e for e in fused.modules.values() if not isinstance(e, _Recompute)]
    assert all(a.conv1d for a in convs) and any(a.outputs for a in convs) and any(a.inputs for a in convs)
    _refused(state, "deltas.load", {"model": m, "name": "easy", "delta": str(t.deltas["hard"])}, "name")
    again = call(state, "deltas.load", {"model": m, "name": "easy", "delta": str(t.deltas["hard"]), "overwrite": True})
    assert again.body["meta"]["mechanism"] == "delta"
    call(state, "deltas.load", {"model": m, "name": "b.2-x", "delta": str(t.deltas["easy"] / "ctsft-delta")})
    listed = call(state, "deltas.list", {"model": m}).body["deltas"]
    assert [d["name"] for d in listed] == ["easy", "b.2-x"]
    assert call(state, "deltas.unload", {"model": m, "name": "easy"}).body == {"unloaded": True}
    assert call(state, "deltas.unload", {"model": m, "name": "easy"}).body == {"unloaded": False}
    assert [d["name"] for d in call(state, "deltas.list", {"model": m}).body["deltas"]] == ["b.2-x"]
    # Another tenant (its own state) sees none of them; releasing the model frees them.
    other = RuntimeState(device="cpu")
    assert call(other, "deltas.list", {"model": _load(other, t.base)}).body == {"deltas": []}
    freed = weakref.ref(named_deltas(state.models[m])["b.2-x"].row)
    del row, adds
    call(state, "release", {"handle": m})
    _refused(state, "deltas.list", {"model": m}, "model", NotFound)
    gc.collect()
    assert freed() is None  # the deltas lived in the model's state and went with it


def test_delta_of_another_base_or_already_merged_is_refused(trained, synthetic_task, tmp_path) -> None:
    t = trained["llama"]
    state = RuntimeState(device="cpu")
    # Same architecture, other weights (another seed): the weights fingerprint differs.
    other = _load(state, build(tmp_path / "other", "llama", corpus(synthetic_task), seed=1))
    e = _refused(state, "deltas.load", {"model": other, "name": "x", "delta": str(t.deltas["easy"])}, "delta")
    assert "another base" in e.message
    # Another architecture: the config fingerprint differs.
    gpt2 = _load(state, trained["gpt2"].base)
    _refused(state, "deltas.load", {"model": gpt2, "name": "x", "delta": str(t.deltas["easy"])}, "delta")
    # θ2 itself (the trained checkpoint): the delta is merged there already.
    theta2 = _load(state, t.deltas["easy"])
    e = _refused(state, "deltas.load", {"model": theta2, "name": "x", "delta": str(t.deltas["easy"])}, "delta")
    assert "already merged" in e.message
    _refused(state, "deltas.load", {"model": other, "name": "x", "delta": str(tmp_path / "missing")}, "delta")
    for bad in ("", "-x", "a b", "x" * 65):
        with pytest.raises(BadRequest) as err:
            call(state, "deltas.load", {"model": other, "name": bad, "delta": str(t.deltas["easy"])})
        assert err.value.path == "body.name"
    assert call(state, "deltas.list", {"model": other}).body == {"deltas": []}


def test_predict_defined_results_and_refusals(trained, synthetic_task) -> None:
    t = trained["llama"]
    state = RuntimeState(device="cpu")
    m = _load(state, t.base)
    call(state, "deltas.load", {"model": m, "name": "easy", "delta": str(t.deltas["easy"])})
    base = {"model": m, "labels": LABELS}
    ctx = OpCtx(state)
    empty = call(state, "predict", {**base, "texts": []}, ctx).body
    assert empty["predictions"] == [] and empty["labels"] == LABELS and ctx.events == []
    long_text = " ".join(synthetic_task["src"]["train"].texts[:20])
    ctx = OpCtx(state)
    res = call(state, "predict", {**base, "texts": ["good", long_text, "bad"], "maxLength": 16, "batchSize": 2}, ctx)
    preds = res.body["predictions"]
    assert [p["truncated"] for p in preds] == [False, True, False]
    assert ctx.events == [{"type": "batch", "done": 2, "total": 3}, {"type": "batch", "done": 3, "total": 3}]
    for p in preds:
        probs = torch.tensor(p["probs"])
        assert torch.allclose(probs, torch.softmax(torch.tensor(p["logits"]), -1), atol=1e-6)
        assert p["index"] == int(probs.argmax()) and p["label"] == LABELS[p["index"]]
    # A dataset's texts, with the model's task labels (θ2 recorded its task in ctsft.json).
    theta2 = _load(state, t.deltas["easy"])
    src = synthetic_task["src"]["test"]
    handle = state.add(state.datasets, "d", src)
    res = call(state, "predict", {"model": theta2, "data": {"handle": handle}}).body
    assert res["labels"] == src.label_names and len(res["predictions"]) == len(src)

    _refused(state, "predict", {**base, "texts": ["a"], "delta": "nope"}, "delta", NotFound)
    e = _refused(state, "predict", {**base, "texts": ["a", "b"], "delta": ["easy", "nope"]}, "delta.1", NotFound)
    assert "easy" in e.message  # names the loaded deltas
    _refused(state, "predict", {**base, "texts": ["a", "b"], "delta": ["easy"]}, "delta")
    _refused(state, "predict", {**base, "texts": [], "delta": [None]}, "delta")
    _refused(state, "predict", {"model": m}, "texts")
    _refused(state, "predict", {**base, "texts": ["a"], "data": {"handle": handle}}, "texts")
    _refused(state, "predict", {"model": m, "texts": ["a"]}, "labels")  # θ1 has no task
    _refused(state, "predict", {**base, "texts": ["a"], "labels": []}, "body.labels")
    _refused(state, "predict", {**base, "texts": ["a"], "batchSize": 0}, "body.batchSize")
    _refused(state, "predict", {**base, "texts": ["a"], "maxLength": 4}, "body.maxLength")
    _refused(state, "predict", {**base, "texts": ["a"], "delta": [""]}, "body.delta.0")


def test_weight_changing_ops_refuse_a_model_serving_named_deltas(trained, synthetic_task, tmp_path) -> None:
    t = trained["llama"]
    state = RuntimeState(device="cpu")
    m = _load(state, t.base)
    call(state, "deltas.load", {"model": m, "name": "easy", "delta": str(t.deltas["easy"])})
    data = state.add(state.datasets, "d", synthetic_task["src"]["train"])
    e = _refused(state, "train", {"model": m, "data": {"handle": data}, "epochs": 1}, "model")
    assert "unload its deltas first" in e.message
    _refused(state, "delta.apply", {"model": m, "delta": str(t.deltas["easy"])}, "model")
    _refused(state, "delta.revert", {"model": m, "delta": str(t.deltas["easy"])}, "model")
    call(state, "model.save", {"handle": m, "out": str(tmp_path / "saved")})  # saving is fine
    call(state, "deltas.unload", {"model": m, "name": "easy"})
    call(state, "delta.apply", {"model": m, "delta": str(t.deltas["easy"])})  # allowed again
    # Its weights changed (now θ2): the fingerprint kept while deltas were loaded went with them.
    e = _refused(state, "deltas.load", {"model": m, "name": "easy", "delta": str(t.deltas["easy"])}, "delta")
    assert "already merged" in e.message
    # And a delta trained after this point is checked against the new weights again.
    out = train_delta(state, t.deltas["easy"], synthetic_task["hard"]["train"], tmp_path / "chain", [[1, 1]], "hook")
    _refused(state, "deltas.load", {"model": _load(state, t.base), "name": "c", "delta": str(out)}, "delta")


def test_results_and_events_conform_to_the_contract(trained) -> None:
    """What the ops send is what docs/contract.json (generated from the zod schemas) says."""
    from protocol.test_spec_client import CONTRACT, conforms

    t = trained["qwen2"]
    state = RuntimeState(device="cpu")
    m = _load(state, t.base)
    calls = [
        ("deltas.load", {"model": m, "name": "easy", "delta": str(t.deltas["easy"])}),
        ("deltas.list", {"model": m}),
        ("predict", {"model": m, "texts": ["good", "bad"], "labels": LABELS, "delta": ["easy", None]}),
        ("generate", {"model": m, "prompts": ["the", "a"], "delta": "easy", "maxNewTokens": 5, "stop": ["x"]}),
        ("deltas.unload", {"model": m, "name": "easy"}),
    ]
    for op, body in calls:
        ctx = OpCtx(state)
        result = call(state, op, body, ctx).body
        spec = CONTRACT["ops"][op]
        assert not conforms(result, spec["result"]), (op, conforms(result, spec["result"]))
        assert spec["streams"] or not ctx.events
        for event in ctx.events:
            assert not conforms(event, spec["event"]), (op, conforms(event, spec["event"]))
