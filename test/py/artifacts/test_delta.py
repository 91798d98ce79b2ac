"""The sparse delta artifact: θ1 + delta == θ2 bit for bit, revert == θ1 bit for bit, and
every way of misusing it (wrong model, double apply, edited or partial files) is refused
with the model left untouched.

A CT-SFT result is simulated without the training code: capture the slices of a few heads
plus every norm, add noise to exactly those slices in place (θ2), finish.
"""

from __future__ import annotations

import copy
import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tiny_models import CASE_IDS, CASES, Case, build, tokens
from torch import nn
from transformers import AutoModelForCausalLM

import ctsft_runtime.artifacts.delta as delta_module
from ctsft_runtime.artifacts import (
    DELTA_MANIFEST,
    DELTA_WEIGHTS,
    SparseDelta,
    apply_delta,
    load_delta,
    revert_delta,
    save_delta,
)
from ctsft_runtime.artifacts.manifest import REQUIRED_KEYS
from ctsft_runtime.circuits.fingerprint import fingerprint, weights_hash
from ctsft_runtime.errors import BadRequest
from ctsft_runtime.heads import Span, build_head_map, norm_parameters
from ctsft_runtime.models.atomic import MARKER_FILE

# (0, 0) and (0, 1) share KV head 0 (GQA 4:2): their K/V spans are captured once.
HEADS = [(0, 0), (0, 1), (1, 3)]
META = {"circuit": {"heads": [list(h) for h in HEADS]}, "method": "delta", "kv": "group", "lr": 1e-3}


def load(path: Path, dtype: torch.dtype = torch.float32) -> nn.Module:
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype).eval()


def head_spans(model: nn.Module, heads: list[tuple[int, int]] = HEADS) -> list[Span]:
    hmap = build_head_map(model)
    return [s for layer, head in heads for s in hmap.head(layer, head).spans(kv=True)]


def perturb(spans: list[Span], norms: list[tuple[str, nn.Parameter]], seed: int = 0) -> None:
    """Stand-in for CT-SFT: noise on exactly the trainable slices and the norms."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for s in spans:
            v = s.view()
            v.add_(0.05 * torch.randn(v.shape, generator=gen, dtype=v.dtype))
        for _, p in norms:
            p.add_(0.05 * torch.randn(p.shape, generator=gen, dtype=p.dtype))


def train(model: nn.Module, heads: list[tuple[int, int]] = HEADS) -> SparseDelta:
    spans, norms = head_spans(model, heads), norm_parameters(model)
    delta = SparseDelta.capture(model, spans, [n for n, _ in norms], meta=META)
    perturb(spans, norms)
    return delta.finish(model)


def logits(model: nn.Module) -> torch.Tensor:
    vocab = model.get_input_embeddings().weight.shape[0]
    ids = torch.randint(4, vocab, (2, 12), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        return model(input_ids=ids).logits


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def assert_refused(model: nn.Module, delta: SparseDelta, fn, match: str) -> None:
    """fn(model, delta) raises BadRequest(path="delta") matching `match`, model untouched."""
    before = weights_hash(model)
    with pytest.raises(BadRequest, match=match) as e:
        fn(model, delta)
    assert e.value.path == "delta"
    assert weights_hash(model) == before


@pytest.fixture(scope="module")
def theta2(tiny_checkpoint) -> tuple[nn.Module, SparseDelta]:
    """(θ2 model, its finished delta). Tests must not modify either: copy first."""
    model = load(tiny_checkpoint)
    return model, train(model)


@pytest.fixture(scope="module")
def saved(theta2, tmp_path_factory) -> Path:
    return save_delta(theta2[1], tmp_path_factory.mktemp("delta") / "run-1")


# --- (1) (2) round trip, bit-exact apply and revert -------------------------------------


@pytest.mark.parametrize("which", ["dir", DELTA_WEIGHTS, DELTA_MANIFEST])
def test_save_load_apply_is_bit_identical(tiny_checkpoint, theta2, saved, which) -> None:
    trained, delta = theta2
    loaded = load_delta(saved if which == "dir" else saved / which)
    assert loaded.manifest == json.loads((saved / DELTA_MANIFEST).read_text())
    assert [e.spec() for e in loaded.entries] == [e.spec() for e in delta.entries]

    model = load(tiny_checkpoint)
    assert fingerprint(model) == loaded.manifest["base"]
    apply_delta(model, loaded)
    assert fingerprint(model) == loaded.manifest["result"] == fingerprint(trained)
    assert_same_weights(model, trained)
    assert torch.equal(logits(model), logits(trained))


def test_revert_is_bit_exact(tiny_checkpoint, theta2, saved) -> None:
    theta1 = load(tiny_checkpoint)
    model = load(tiny_checkpoint)
    delta = load_delta(saved)
    apply_delta(model, delta)
    revert_delta(model, delta)
    assert fingerprint(model) == delta.manifest["base"]
    assert_same_weights(model, theta1)
    # Also straight from the trained model, with the in-memory delta.
    trained = copy.deepcopy(theta2[0])
    revert_delta(trained, theta2[1])
    assert_same_weights(trained, theta1)
    assert torch.equal(logits(trained), logits(theta1))


# --- (3) (4) refusals -------------------------------------------------------------------


def test_apply_twice_and_revert_twice_refused(tiny_checkpoint, saved) -> None:
    model, delta = load(tiny_checkpoint), load_delta(saved)
    apply_delta(model, delta)
    assert_refused(model, delta, apply_delta, "already applied")
    revert_delta(model, delta)
    assert_refused(model, delta, revert_delta, "not applied")


def test_already_applied_detected_from_slices(tiny_checkpoint, saved) -> None:
    # θ2 that also differs elsewhere: weights are neither base nor result, but the slices hold `new`.
    model, delta = load(tiny_checkpoint), load_delta(saved)
    apply_delta(model, delta)
    with torch.no_grad():
        model.lm_head.weight[0, 0] += 1.0
    assert_refused(model, delta, apply_delta, "already applied")
    assert_refused(model, delta, revert_delta, "changed outside the delta's slices")


def test_other_weights_refused(tiny_checkpoint, synthetic_task, saved, tmp_path) -> None:
    from ctsft_runtime.models.new_model import build_checkpoint, label_words

    texts = [t for lang in synthetic_task.values() for t in lang["train"].texts]
    texts += label_words(synthetic_task["src"]["train"].label_names)
    common = dict(layers=2, heads=4, kv_heads=2, d_model=32, texts=texts, vocab_size=600)
    delta = load_delta(saved)

    build_checkpoint("llama", **common, seed=1, out_dir=tmp_path / "seed1")
    other_seed = load(tmp_path / "seed1")
    assert_refused(other_seed, delta, apply_delta, "not the delta's base")
    assert_refused(other_seed, delta, revert_delta, "not the delta's result")

    build_checkpoint("llama", **{**common, "kv_heads": 4}, out_dir=tmp_path / "mha")
    other_config = load(tmp_path / "mha")
    assert_refused(other_config, delta, apply_delta, "delta is for another model")
    assert_refused(other_config, delta, revert_delta, "delta is for another model")

    half = load(tiny_checkpoint, dtype=torch.bfloat16)
    assert_refused(half, delta, apply_delta, "dtype bfloat16 but the delta is float32")

    base_model = load(tiny_checkpoint).model  # LlamaModel: same config, names lack "model."
    assert_refused(base_model, delta, apply_delta, "no parameter 'model.layers")


def test_mismatched_shape_refused(tiny_checkpoint, saved) -> None:
    delta = load_delta(saved)
    entry = delta.entries[0]
    entry.base, entry.new = entry.base[:-1], entry.new[:-1]
    assert_refused(load(tiny_checkpoint), delta, apply_delta, "does not match the delta's")


def test_edited_delta_rolls_back(tiny_checkpoint, saved) -> None:
    # Right base, but `new` no longer gives the recorded result: undone, refused.
    delta = load_delta(saved)
    delta.entries[-1].new = delta.entries[-1].new + 1.0
    model = load(tiny_checkpoint)
    assert_refused(model, delta, apply_delta, "did not give the fingerprint")
    assert fingerprint(model) == delta.manifest["base"]


# --- (5) nothing outside the entries moves ----------------------------------------------


def test_apply_touches_only_the_entries(tiny_checkpoint, theta2, saved) -> None:
    trained = theta2[0]
    theta1, model, delta = load(tiny_checkpoint), load(tiny_checkpoint), load_delta(saved)
    apply_delta(model, delta)
    params = dict(model.named_parameters())
    masks = {name: torch.zeros_like(p, dtype=torch.bool) for name, p in params.items()}
    for e in delta.entries:
        e.view(masks[e.name]).fill_(True)
    before, after, target = theta1.state_dict(), model.state_dict(), trained.state_dict()
    touched = 0
    for name, mask in masks.items():
        assert torch.equal(after[name][~mask], before[name][~mask]), name
        assert torch.equal(after[name][mask], target[name][mask]), name
        touched += int(mask.sum())
    assert touched == delta.numel == delta.manifest["elements"]
    # Heads outside the circuit kept their Q slices; the chosen ones moved.
    hmap = build_head_map(model)
    assert torch.equal(hmap.head(1, 0).q_weight.view(), build_head_map(theta1).head(1, 0).q_weight.view())
    assert not torch.equal(hmap.head(1, 3).q_weight.view(), build_head_map(theta1).head(1, 3).q_weight.view())


# --- (6) files: safetensors + JSON only, atomic -----------------------------------------


def test_files_are_safetensors_and_json(theta2, saved) -> None:
    # Plus ctsft's marker (models/atomic.py), which every saved directory carries.
    assert sorted(p.name for p in saved.iterdir()) == sorted([DELTA_WEIGHTS, DELTA_MANIFEST, MARKER_FILE])
    raw = (saved / DELTA_WEIGHTS).read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])  # a safetensors header, not a pickle
    assert header["__metadata__"] == {"format": "pt", "kind": "ctsft-delta"}
    delta = theta2[1]
    keys = {e.key(p) for e in delta.entries for p in ("base", "new")}
    assert set(header) - {"__metadata__"} == keys
    assert "new/model.layers.1.self_attn.q_proj.weight/0:24:32" in keys  # explicit head indices
    assert "base/model.norm.weight/0:0:32" in keys
    with safe_open(saved / DELTA_WEIGHTS, "pt") as f:
        assert set(f.keys()) == keys

    text = (saved / DELTA_MANIFEST).read_text()
    body = json.loads(text)
    assert text == json.dumps(body, indent=1, sort_keys=True) + "\n"


def test_failed_save_leaves_nothing(theta2, tmp_path, monkeypatch) -> None:
    delta = theta2[1]
    real = delta_module.save_file

    def crash_midway(tensors, filename, metadata=None):
        real(tensors, filename, metadata=metadata)  # half the artifact is on disk...
        raise OSError("disk full")  # ...then the save dies

    monkeypatch.setattr(delta_module, "save_file", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        save_delta(delta, tmp_path / "fresh")
    assert list(tmp_path.iterdir()) == []  # no target, no temporary sibling

    monkeypatch.setattr(delta_module, "save_file", real)
    out = save_delta(delta, tmp_path / "existing")
    old = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(delta_module, "save_file", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        save_delta(delta, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old  # previous delta intact
    assert [p.name for p in tmp_path.iterdir()] == ["existing"]


def test_save_replaces_a_delta_but_not_other_folders(theta2, tmp_path) -> None:
    delta = theta2[1]
    out = save_delta(delta, tmp_path / "d")
    save_delta(delta, out)  # replacing a delta is fine
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    with pytest.raises(BadRequest, match="ctsft did not write"):
        save_delta(delta, ckpt)
    assert [p.name for p in ckpt.iterdir()] == ["config.json"]
    with pytest.raises(BadRequest, match="not a directory"):
        save_delta(delta, ckpt / "config.json")


# --- (7) small --------------------------------------------------------------------------


def test_delta_is_small(theta2, saved) -> None:
    model, delta = theta2
    model_bytes = sum(p.nbytes for p in model.parameters())
    n_params = sum(p.numel() for p in model.parameters())
    m = delta.manifest
    assert m["modelElements"] == n_params
    assert m["fraction"] == pytest.approx(m["elements"] / n_params)
    assert delta.nbytes == 2 * m["elements"] * 4  # base + new, float32
    assert delta.nbytes < model_bytes / 10
    assert (saved / DELTA_WEIGHTS).stat().st_size < model_bytes / 10


# --- (8) merged checkpoint --------------------------------------------------------------


def test_merged_checkpoint_loads_in_plain_transformers(tiny_checkpoint, theta2, saved, tmp_path) -> None:
    model = load(tiny_checkpoint)
    apply_delta(model, load_delta(saved))
    model.save_pretrained(tmp_path / "merged", safe_serialization=True)
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    assert torch.equal(logits(plain), logits(theta2[0]))
    assert fingerprint(plain) == theta2[1].manifest["result"]


# --- manifest ---------------------------------------------------------------------------


def test_manifest_contents(theta2) -> None:
    model, delta = theta2
    m = delta.manifest
    assert (m["kind"], m["version"], m["modelType"]) == ("ctsft-delta", 1, "llama")
    assert m["ctsftRuntime"] and m["created"]
    assert m["meta"] == META
    assert m["result"] == fingerprint(model) and m["base"]["config"] == m["result"]["config"]
    assert m["base"]["weights"] != m["result"]["weights"]
    assert m["norms"] == [n for n, _ in norm_parameters(model)]
    names = {e["name"] for e in m["entries"]}
    assert set(m["norms"]) <= names
    assert all(set(e) == {"name", "dim", "start", "stop", "shape", "dtype"} for e in m["entries"])
    # GQA: heads 0 and 1 of layer 0 share KV head 0, whose K/V rows are listed once.
    k0 = [e for e in m["entries"] if e["name"] == "model.layers.0.self_attn.k_proj.weight"]
    assert [(e["dim"], e["start"], e["stop"]) for e in k0] == [(0, 0, 8)]
    o1 = [e for e in m["entries"] if e["name"] == "model.layers.1.self_attn.o_proj.weight"]
    assert [(e["dim"], e["start"], e["stop"], e["shape"]) for e in o1] == [(1, 24, 32, [32, 8])]


def rewrite(saved: Path, tmp_path: Path, edit) -> Path:
    """A copy of the saved delta with its manifest passed through `edit`."""
    out = tmp_path / "edited"
    out.mkdir()
    (out / DELTA_WEIGHTS).write_bytes((saved / DELTA_WEIGHTS).read_bytes())
    body = json.loads((saved / DELTA_MANIFEST).read_text())
    (out / DELTA_MANIFEST).write_text(json.dumps(edit(body)))
    return out


def test_unknown_manifest_keys_tolerated(saved, tmp_path, tiny_checkpoint) -> None:
    def add(body):
        body["futureField"] = {"x": 1}
        body["entries"][0]["futureEntryField"] = True
        return body

    delta = load_delta(rewrite(saved, tmp_path, add))
    assert delta.manifest["futureField"] == {"x": 1}
    model = load(tiny_checkpoint)
    apply_delta(model, delta)
    assert fingerprint(model) == delta.manifest["result"]
    save_delta(delta, tmp_path / "again")  # round-trips with the extra keys


@pytest.mark.parametrize("key", REQUIRED_KEYS)
def test_missing_required_key_refused(saved, tmp_path, key) -> None:
    path = rewrite(saved, tmp_path, lambda body: {k: v for k, v in body.items() if k != key})
    with pytest.raises(BadRequest) as e:
        load_delta(path)
    assert e.value.path == "delta"


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda b: {**b, "kind": "circuit"}, "kind"),
        (lambda b: {**b, "version": 2}, "version 2"),
        (lambda b: {**b, "entries": [{**b["entries"][0], "stop": 99}, *b["entries"][1:]]}, "does not match shape"),
        (lambda b: {**b, "entries": [{**b["entries"][0], "dtype": "float16"}, *b["entries"][1:]]}, "manifest says"),
        (lambda b: {**b, "entries": b["entries"][1:]}, "does not list"),
        (lambda b: {**b, "entries": [{**b["entries"][0], "name": "x.weight"}, *b["entries"][1:]]}, "lacks tensor"),
        (lambda b: {**b, "base": {"config": "abc"}}, "fingerprint"),
    ],
)
def test_bad_manifest_refused(saved, tmp_path, edit, match) -> None:
    with pytest.raises(BadRequest, match=match):
        load_delta(rewrite(saved, tmp_path, edit))


def test_bad_paths_and_files(saved, tmp_path) -> None:
    with pytest.raises(BadRequest, match="does not exist"):
        load_delta(tmp_path / "nope")
    (tmp_path / "other.txt").write_text("x")
    with pytest.raises(BadRequest, match="not a ctsft delta"):
        load_delta(tmp_path / "other.txt")
    with pytest.raises(BadRequest, match="does not exist"):
        load_delta(tmp_path)  # a folder without delta.json
    broken = rewrite(saved, tmp_path, lambda b: b)
    (broken / DELTA_WEIGHTS).write_bytes(b"\x00" * 16)
    with pytest.raises(BadRequest, match="not a readable safetensors"):
        load_delta(broken)
    (broken / DELTA_WEIGHTS).unlink()
    with pytest.raises(BadRequest, match=r"no delta\.safetensors"):
        load_delta(broken)
    (broken / DELTA_MANIFEST).write_text("{not json")
    with pytest.raises(BadRequest, match="not JSON"):
        load_delta(broken)


def test_extra_tensor_refused(saved, tmp_path) -> None:
    out = rewrite(saved, tmp_path, lambda b: b)
    tensors = load_file(out / DELTA_WEIGHTS)
    tensors["new/model.norm.weight/0:0:16"] = torch.zeros(16)
    save_file(tensors, out / DELTA_WEIGHTS)
    with pytest.raises(BadRequest, match="does not list"):
        load_delta(out)


# --- capture / finish -------------------------------------------------------------------


def test_capture_validation(tiny_checkpoint) -> None:
    model = load(tiny_checkpoint)
    q = build_head_map(model).head(0, 0).q_weight
    names = [n for n, _ in norm_parameters(model)]
    cases = [
        ([Span(q.name, q.param, 0, 4, 12)], [], "overlap"),
        ([Span(q.name, q.param, 1, 0, 8)], [], "overlap"),  # rows x columns cross
        ([Span(q.name, q.param, 0, 120, 130)], [], "out of range"),
        ([Span("nope.weight", q.param, 0, 0, 8)], [], "does not have"),
        (head_spans(load(tiny_checkpoint))[:1], [], "another model instance"),
        ([], ["model.not_a_norm.weight"], "not a parameter"),
        ([], [], "nothing to capture"),
    ]
    for spans, norms, match in cases:
        with pytest.raises(BadRequest, match=match):
            SparseDelta.capture(model, [q, *spans] if spans else spans, norms)
    with pytest.raises(BadRequest, match="not plain JSON") as e:
        SparseDelta.capture(model, [q], names, meta={"x": object()})
    assert e.value.path == "meta"
    # (name, param) pairs from norm_parameters work too; exact repeats are kept once.
    delta = SparseDelta.capture(model, [q, q], norm_parameters(model))
    assert len(delta.entries) == 1 + len(names)
    assert not delta.finished
    for fn in (apply_delta, revert_delta):
        with pytest.raises(BadRequest, match="not finished"):
            fn(model, delta)
    with pytest.raises(BadRequest, match="not finished"):
        save_delta(delta, Path("/nonexistent/never-written"))


def test_finish_refuses_changes_outside_the_slices(tiny_checkpoint) -> None:
    model = load(tiny_checkpoint)
    spans, norms = head_spans(model), norm_parameters(model)
    delta = SparseDelta.capture(model, spans, [n for n, _ in norms])
    perturb(spans, norms)
    with torch.no_grad():
        build_head_map(model).head(1, 0).q_weight.view().add_(1e-3)  # a head outside the circuit
    trained = weights_hash(model)
    with pytest.raises(BadRequest, match="changed outside the delta's slices"):
        delta.finish(model)
    assert weights_hash(model) == trained  # the check put everything back
    assert not delta.finished


def test_untrained_delta_is_a_no_op(tiny_checkpoint) -> None:
    model = load(tiny_checkpoint)
    delta = SparseDelta.capture(model, head_spans(model), []).finish(model)
    assert delta.manifest["base"] == delta.manifest["result"]
    apply_delta(model, delta)
    revert_delta(model, delta)
    assert fingerprint(model) == delta.manifest["base"]


# --- every family (fused QKV, Conv1D, biases, GQA/MQA) ------------------------------------


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_round_trip_every_family(case: Case, tmp_path) -> None:
    model = build(case)
    heads = [(0, 0), (1, case.n_heads - 1)]
    delta = train(model, heads)
    out = save_delta(delta, tmp_path / "d")
    fresh = build(case)
    assert_refused(fresh, delta, revert_delta, "not applied")
    apply_delta(fresh, load_delta(out))
    assert_same_weights(fresh, model)
    with torch.no_grad():
        assert torch.equal(fresh(tokens()).logits, model(tokens()).logits)
    revert_delta(fresh, delta)
    assert_same_weights(fresh, build(case))
