"""From-scratch checkpoints for every supported family, and the atomic save helpers.

Each family is built once (module fixture) and loaded back through the same plain
`from_pretrained` calls a user's checkpoint takes; the in-memory model made from the
public building blocks must match it exactly, weights and logits.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers as tf
from safetensors import safe_open
from torch import Tensor

from ctsft_runtime.data import PromptFormat, encode_batch, make_task, nusax
from ctsft_runtime.errors import BadRequest
from ctsft_runtime.heads import build_head_map, supported_model_types
from ctsft_runtime.models import atomic, new_model
from ctsft_runtime.models.atomic import MARKER_FILE, atomic_dir, atomic_write_text
from ctsft_runtime.models.new_model import (
    BOS_ID,
    EOS_ID,
    FAMILY_SPECS,
    MIN_VOCAB,
    PAD_ID,
    build_checkpoint,
    family_config,
    init_model,
    resolve_geometry,
    train_tokenizer,
)

VOCAB = 300
MAX_POS = 64
NUSAX_DIR = os.environ.get("CTSFT_NUSAX_DIR")
# Weight formats that unpickle on load: a from-scratch checkpoint must contain none.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
UNICODE_TEXT = "Makanannya enak sekali! 😀 «ñ» 東京\nline two\ttab"


@dataclass(frozen=True)
class Case:
    family: str
    heads: int = 4
    kv_heads: int | None = None
    d_model: int = 32
    head_dim: int | None = None

    @property
    def want_head_dim(self) -> int:
        return self.head_dim or self.d_model // self.heads

    def kwargs(self) -> dict[str, Any]:
        return dict(
            layers=2,
            heads=self.heads,
            kv_heads=self.kv_heads,
            d_model=self.d_model,
            head_dim=self.head_dim,
            max_positions=MAX_POS,
        )


# GQA where the family has it; heads * head_dim != d_model where it has a head_dim field.
CASES = [
    Case("gpt2"),
    Case("llama", kv_heads=2),
    Case("mistral", kv_heads=2),
    Case("qwen2", kv_heads=2),
    Case("qwen3", kv_heads=2, head_dim=16),
    Case("gemma", kv_heads=1, head_dim=16),
    Case("gemma2", heads=4, kv_heads=2, d_model=48, head_dim=10),
    Case("gpt_neox"),
    Case("phi3", kv_heads=2),
    Case("opt"),
    Case("bloom"),
]
by_case = pytest.mark.parametrize("case", CASES, ids=[c.family for c in CASES])


@contextmanager
def raises_bad(path: str, phrase: str) -> Iterator[None]:
    with pytest.raises(BadRequest) as info:
        yield
    assert info.value.path == path, info.value.path
    assert phrase in info.value.message, info.value.message


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    """A few hundred synthetic sentences across three languages at different distances."""
    task = make_task(seed=0, n_train=120, n_valid=0, n_test=0)
    return [t for lang in task.values() for t in lang["train"].texts]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, corpus: list[str]) -> dict[str, dict[str, Any]]:
    """family -> build info, each checkpoint written once for the whole module."""
    root = tmp_path_factory.mktemp("ckpt")
    return {
        c.family: build_checkpoint(c.family, texts=corpus, vocab_size=VOCAB, out_dir=root / c.family, **c.kwargs())
        for c in CASES
    }


def in_memory(case: Case, corpus: list[str], seed: int = 0) -> tuple[tf.PreTrainedModel, tf.PreTrainedTokenizerFast]:
    """The model and tokenizer as they were before saving, from the public pieces."""
    spec = FAMILY_SPECS[case.family]
    tok = train_tokenizer(corpus, VOCAB, add_bos=spec.add_bos, max_positions=MAX_POS)
    geometry = resolve_geometry(case.family, **case.kwargs())
    return init_model(family_config(case.family, geometry, len(tok)), seed), tok


def test_every_supported_family_has_a_builder_and_a_case() -> None:
    assert set(FAMILY_SPECS) == set(supported_model_types())
    assert {c.family for c in CASES} == set(supported_model_types())


@by_case
def test_checkpoint_files_are_safetensors_only(case: Case, built: dict[str, dict[str, Any]]) -> None:
    folder = Path(built[case.family]["path"])
    names = sorted(p.name for p in folder.iterdir())
    assert not [n for n in names if n.endswith(PICKLE_SUFFIXES)], names
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(names)
    assert not [n for n in names if n.startswith(".")], names  # no temp leftovers
    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        assert len(list(f.keys())) > 0
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]


@by_case
def test_loads_with_plain_from_pretrained_and_matches_in_memory(
    case: Case, built: dict[str, dict[str, Any]], corpus: list[str]
) -> None:
    info = built[case.family]
    model = tf.AutoModelForCausalLM.from_pretrained(info["path"]).eval()
    tok = tf.AutoTokenizer.from_pretrained(info["path"])
    assert model.config.model_type == case.family
    assert model.dtype == torch.float32
    assert model.config.vocab_size == len(tok) == info["vocab_size"]
    assert MIN_VOCAB <= info["vocab_size"] <= VOCAB
    assert (model.config.pad_token_id, model.config.bos_token_id, model.config.eos_token_id) == (
        PAD_ID,
        BOS_ID,
        EOS_ID,
    )
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (PAD_ID, BOS_ID, EOS_ID)
    assert info["params"] == sum(p.numel() for p in model.parameters())
    assert info["tie_word_embeddings"] == (model.get_output_embeddings().weight is model.get_input_embeddings().weight)

    hmap = build_head_map(model)
    assert (hmap.n_layers, hmap.n_heads, hmap.n_kv_heads) == (2, case.heads, case.kv_heads or case.heads)
    assert (hmap.head_dim, hmap.d_model) == (case.want_head_dim, case.d_model)
    assert (info["heads"], info["kv_heads"], info["head_dim"]) == (hmap.n_heads, hmap.n_kv_heads, hmap.head_dim)

    ref_model, ref_tok = in_memory(case, corpus)
    ref_state = ref_model.state_dict()
    loaded = model.state_dict()
    assert set(loaded) == set(ref_state)
    for name, tensor in loaded.items():
        assert torch.equal(tensor, ref_state[name]), name

    texts = [*corpus[:3], UNICODE_TEXT]
    batch = encode_batch(tok, texts, PromptFormat(), max_length=MAX_POS)
    assert torch.equal(batch["input_ids"], encode_batch(ref_tok, texts, PromptFormat(), MAX_POS)["input_ids"])
    with torch.no_grad():
        args = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        logits: Tensor = model(**args).logits
        ref_logits: Tensor = ref_model(**args).logits
    assert logits.shape == (*batch["input_ids"].shape, len(tok))
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(logits, ref_logits, rtol=0, atol=0)


@by_case
def test_tokenizer_round_trips_and_adds_bos_only_where_conventional(
    case: Case, built: dict[str, dict[str, Any]], corpus: list[str]
) -> None:
    tok = tf.AutoTokenizer.from_pretrained(built[case.family]["path"])
    assert tok.is_fast
    add_bos = built[case.family]["add_bos"]
    assert add_bos == (case.family in {"llama", "mistral", "gemma", "gemma2"})
    for text in [*corpus[:50], UNICODE_TEXT, " leading space", ""]:
        ids = tok(text)["input_ids"]
        assert EOS_ID not in ids and PAD_ID not in ids
        assert ids[:1] == ([BOS_ID] if add_bos else ids[:1])
        if not add_bos:
            assert BOS_ID not in ids
        assert tok.decode(ids, skip_special_tokens=True) == text
    # Merges were learned from the corpus: a corpus sentence takes fewer tokens than bytes.
    assert len(tok(corpus[0], add_special_tokens=False)["input_ids"]) < len(corpus[0].encode())


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path: Path, corpus: list[str]) -> None:
    common: dict[str, Any] = dict(layers=2, heads=4, kv_heads=2, d_model=32, texts=corpus, vocab_size=VOCAB)
    a = build_checkpoint("llama", out_dir=tmp_path / "a", seed=3, **common)
    b = build_checkpoint("llama", out_dir=tmp_path / "b", seed=3, **common)
    c = build_checkpoint("llama", out_dir=tmp_path / "c", seed=4, **common)
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (Path(a["path"]) / name).read_bytes() == (Path(b["path"]) / name).read_bytes(), name
    assert (Path(a["path"]) / "tokenizer.json").read_bytes() == (Path(c["path"]) / "tokenizer.json").read_bytes()
    assert (Path(a["path"]) / "model.safetensors").read_bytes() != (Path(c["path"]) / "model.safetensors").read_bytes()


def test_building_leaves_the_global_rng_alone(tmp_path: Path, corpus: list[str]) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_checkpoint(
        "gpt2", layers=1, heads=2, kv_heads=None, d_model=16, texts=corpus, vocab_size=VOCAB, out_dir=tmp_path / "m"
    )
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.skipif(not NUSAX_DIR, reason="set CTSFT_NUSAX_DIR to the nusax-senti folder to test real data")
def test_llama_tokenizer_trained_on_nusax_text(tmp_path: Path) -> None:
    texts = [t for lang in ("ind", "jav", "sun") for t in nusax(NUSAX_DIR, lang, "train", limit=200).texts]
    info = build_checkpoint(
        "llama", layers=2, heads=4, kv_heads=2, d_model=32, texts=texts, vocab_size=1000, out_dir=tmp_path / "nx"
    )
    assert MIN_VOCAB < info["vocab_size"] <= 1000
    tok = tf.AutoTokenizer.from_pretrained(info["path"])
    model = tf.AutoModelForCausalLM.from_pretrained(info["path"])
    for text in texts:
        assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text
    batch = encode_batch(tok, texts[:4], PromptFormat(), max_length=128)
    assert (batch["input_ids"][:, 0] == BOS_ID).all()
    with torch.no_grad():
        assert torch.isfinite(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits).all()


# ---------------------------------------------------------------------------- errors


BASE: dict[str, Any] = dict(layers=2, heads=4, kv_heads=None, d_model=32, vocab_size=VOCAB)

ERRORS: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown-family", dict(family="t5"), "family", "supported: bloom, gemma, gemma2, gpt2"),
    ("kv-on-non-gqa", dict(family="gpt2", kv_heads=2), "kv_heads", "gpt2 has no grouped-query attention"),
    ("kv-not-dividing", dict(family="llama", kv_heads=3), "kv_heads", "must divide heads (4)"),
    ("heads-not-dividing", dict(family="opt", heads=5), "heads", "must divide d_model (32)"),
    ("head-dim-on-derived", dict(family="qwen2", head_dim=16), "head_dim", "cannot be set to 16"),
    ("odd-rope-head-dim", dict(family="gemma", head_dim=7), "head_dim", "even head_dim"),
    ("bloom-d-ff", dict(family="bloom", d_ff=64), "d_ff", "fixes the MLP width"),
    ("zero-layers", dict(family="llama", layers=0), "layers", "at least 1"),
    ("bool-heads", dict(family="llama", heads=True), "heads", "must be an integer"),
    ("vocab-too-small", dict(family="llama", vocab_size=200), "vocab_size", f"at least {MIN_VOCAB}"),
    ("negative-seed", dict(family="llama", seed=-1), "seed", "at least 0"),
    ("empty-texts", dict(family="llama", texts=[]), "texts", "texts is empty"),
    ("blank-texts", dict(family="llama", texts=["", ""]), "texts", "texts is empty"),
    ("one-string", dict(family="llama", texts="the food is good"), "texts", "not one string"),
    ("non-string-item", dict(family="llama", texts=["ok", 3]), "texts[1]", "must be a string"),
]


@pytest.mark.parametrize(("overrides", "path", "phrase"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_bad_requests_name_the_field_and_write_nothing(
    tmp_path: Path, corpus: list[str], overrides: dict[str, Any], path: str, phrase: str
) -> None:
    kwargs = {**BASE, "texts": corpus[:50], **overrides}
    with raises_bad(path, phrase):
        build_checkpoint(out_dir=tmp_path / "out", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_config_validators_surface_as_bad_request() -> None:
    # Bypass resolve_geometry so the config class's own RoPE check is what fires.
    odd = new_model.Geometry(layers=1, heads=4, kv_heads=4, head_dim=7, d_model=28, d_ff=64, max_positions=64)
    with raises_bad("family", "llama config rejected this shape"):
        family_config("llama", odd, VOCAB)


def test_family_names_are_normalised(tmp_path: Path, corpus: list[str]) -> None:
    info = build_checkpoint("GPT-NeoX", out_dir=tmp_path / "n", texts=corpus, **{**BASE, "d_model": 16})
    assert info["family"] == "gpt_neox"
    assert tf.AutoConfig.from_pretrained(info["path"]).model_type == "gpt_neox"


def test_out_dir_must_not_be_a_file_or_a_non_empty_folder_without_overwrite(tmp_path: Path, corpus: list[str]) -> None:
    file = tmp_path / "file"
    file.write_text("x")
    with raises_bad("out_dir", "not a directory"):
        build_checkpoint("gpt2", out_dir=file, texts=corpus, **BASE)
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep")
    with raises_bad("out_dir", "overwrite=True"):
        build_checkpoint("gpt2", out_dir=folder, texts=corpus, **BASE)
    assert (folder / "precious.txt").read_text() == "keep"
    # An existing empty folder is fine (e.g. made by the caller beforehand).
    empty = tmp_path / "empty"
    empty.mkdir()
    build_checkpoint("gpt2", out_dir=empty, texts=corpus, **BASE)
    assert (empty / "model.safetensors").is_file()


def test_overwrite_replaces_and_a_failed_build_keeps_the_old_checkpoint(
    tmp_path: Path, corpus: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "ckpt"
    build_checkpoint("gpt2", out_dir=out, texts=corpus, seed=0, **BASE)
    old_weights = (out / "model.safetensors").read_bytes()

    def boom(*_args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(new_model, "_save_tokenizer", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        build_checkpoint("gpt2", out_dir=out, texts=corpus, seed=1, overwrite=True, **BASE)
    assert (out / "model.safetensors").read_bytes() == old_weights
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    with pytest.raises(RuntimeError, match="disk full"):
        build_checkpoint("gpt2", out_dir=tmp_path / "fresh", texts=corpus, **BASE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]

    monkeypatch.undo()
    build_checkpoint("gpt2", out_dir=out, texts=corpus, seed=1, overwrite=True, **BASE)
    assert (out / "model.safetensors").read_bytes() != old_weights
    assert tf.AutoModelForCausalLM.from_pretrained(out).config.model_type == "gpt2"


# ---------------------------------------------------------------------------- atomic


def test_atomic_dir_creates_the_target_with_umask_permissions(tmp_path: Path) -> None:
    final = tmp_path / "deep" / "out"
    with atomic_dir(final) as tmp:
        assert tmp.parent == final.parent and tmp.name.startswith(".out.")
        assert not final.exists()
        (tmp / "a.txt").write_text("a")
    assert (final / "a.txt").read_text() == "a"
    assert sorted(p.name for p in final.parent.iterdir()) == ["out"]
    umask = os.umask(0)
    os.umask(umask)
    assert final.stat().st_mode & 0o777 == 0o777 & ~umask


def test_atomic_dir_replaces_an_existing_folder(tmp_path: Path) -> None:
    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("old")
    # A folder ctsft did not write needs overwrite (see test_overwrite.py for the rule).
    with atomic_dir(final, overwrite=True) as tmp:
        (tmp / "new.txt").write_text("new")
        assert (final / "old.txt").exists()  # readers see the old version until the end
    assert sorted(p.name for p in final.iterdir()) == [MARKER_FILE, "new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with atomic_dir(final) as tmp:  # its own output: no overwrite needed
        (tmp / "newer.txt").write_text("newer")
    assert sorted(p.name for p in final.iterdir()) == [MARKER_FILE, "newer.txt"]


@pytest.mark.parametrize("exc", [ValueError("bad"), KeyboardInterrupt()], ids=["error", "interrupt"])
def test_atomic_dir_failure_removes_temp_and_keeps_target(tmp_path: Path, exc: BaseException) -> None:
    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(type(exc)), atomic_dir(final, overwrite=True) as tmp:
        (tmp / "half.txt").write_text("half")
        raise exc
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in final.iterdir()) == ["old.txt"]
    with pytest.raises(ValueError), atomic_dir(tmp_path / "never") as tmp:
        raise ValueError("no")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_dir_restores_the_old_folder_when_the_swap_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("old")
    real_rename = os.rename

    def flaky(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if str(src).endswith(".tmp"):
            raise OSError("simulated failure moving the new folder in")
        real_rename(src, dst)

    monkeypatch.setattr(atomic.os, "rename", flaky)
    with pytest.raises(OSError, match="simulated"), atomic_dir(final, overwrite=True) as tmp:
        (tmp / "new.txt").write_text("new")
    monkeypatch.undo()
    assert sorted(p.name for p in final.iterdir()) == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_dir_refuses_a_file_and_follows_a_symlink(tmp_path: Path) -> None:
    file = tmp_path / "f"
    file.write_text("keep")
    with raises_bad("out", "not a directory"), atomic_dir(file, overwrite=True):
        pytest.fail("must not yield")
    assert file.read_text() == "keep"

    real = tmp_path / "real"
    real.mkdir()
    (real / "old.txt").write_text("old")
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    with atomic_dir(link, overwrite=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert link.is_symlink()
    assert sorted(p.name for p in real.iterdir()) == [MARKER_FILE, "new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "link", "real"]


def test_atomic_write_text_replaces_and_cleans_up_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "sub" / "metrics.json"
    atomic_write_text(target, "one\n")
    atomic_write_text(target, "two\r\nü")
    assert target.read_bytes() == "two\r\nü".encode()
    assert sorted(p.name for p in target.parent.iterdir()) == ["metrics.json"]

    def fail(*_args: object) -> None:
        raise OSError("simulated replace failure")

    monkeypatch.setattr(atomic.os, "replace", fail)
    with pytest.raises(OSError, match="simulated"):
        atomic_write_text(target, "three")
    monkeypatch.undo()
    assert target.read_bytes() == "two\r\nü".encode()
    assert sorted(p.name for p in target.parent.iterdir()) == ["metrics.json"]
