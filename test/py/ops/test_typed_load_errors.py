"""Broken inputs are typed BadRequests naming the file and the field, never a KeyError,
JSONDecodeError, SafetensorError or UnpicklingError surfacing as `internal`. Real op
handlers, real tiny checkpoints damaged on disk."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from op_calls import call

from ctsft_runtime.data import write_task_csv
from ctsft_runtime.errors import BadRequest
from ctsft_runtime.ops.state import RuntimeState


@pytest.fixture()
def state():
    return RuntimeState()


@pytest.fixture()
def ckpt(tmp_path, tiny_checkpoint) -> Path:
    out = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, out)
    return out


def _bad(state, op, body, path: str, *phrases) -> BadRequest:
    with pytest.raises(BadRequest) as info:
        call(state, op, body)
    assert info.value.path == path, (info.value.path, info.value.message)
    for phrase in phrases:
        assert phrase in info.value.message, info.value.message
    return info.value


def test_truncated_safetensors(state, ckpt) -> None:
    weights = ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    _bad(state, "model.load", {"source": str(ckpt)}, "source", "not a readable safetensors file")


def test_pickle_weights_are_refused_as_bad_request(state, ckpt, tmp_path) -> None:
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (ckpt / "model.safetensors").unlink()
    torch.save({"x": Payload()}, ckpt / "pytorch_model.bin")
    _bad(state, "model.load", {"source": str(ckpt)}, "source", "refused to unpickle")
    assert not marker.exists()


def test_tokenizer_missing_a_field(state, ckpt) -> None:
    (ckpt / "tokenizer.json").write_text('{"version": "1.0"}')
    _bad(state, "model.load", {"source": str(ckpt)}, "source", "lacks a field", "added_tokens")


@pytest.mark.parametrize(
    ("text", "phrases"),
    [
        ('{"template": "{text} ->"', ["ctsft.json is not valid JSON"]),
        ('{"template": "{text} ->"}', ["ctsft.json", "`label_names` is missing"]),
        ('{"template": 3, "label_names": ["a", "b"]}', ["ctsft.json", "`template` is a number"]),
        ('{"template": "no slot", "label_names": ["a", "b"]}', ["ctsft.json", "exactly once"]),
        ('["a"]', ["ctsft.json must hold a JSON object"]),
    ],
)
def test_bad_task_file(state, ckpt, text, phrases) -> None:
    (ckpt / "ctsft.json").write_text(text)
    _bad(state, "model.load", {"source": str(ckpt)}, "source", *phrases)


@pytest.fixture()
def scores_file(state, ckpt, synthetic_task, tmp_path) -> tuple[str, str, Path]:
    write_task_csv({"src": synthetic_task["src"]}, tmp_path / "data")
    data = str(tmp_path / "data" / "src" / "train.csv")
    handle = call(state, "model.load", {"source": str(ckpt)}).body["handle"]
    body = {"model": handle, "data": {"path": data, "perClass": 4}, "method": "attribution", "faithfulness": False}
    out = tmp_path / "scores.json"
    call(state, "score", {**body, "out": str(out)})
    return handle, data, out


def test_circuit_without_fingerprint(state, scores_file, tmp_path) -> None:
    handle, data, scores = scores_file
    circuit = call(state, "circuit.select", {"scores": str(scores), "topK": 2}).body
    del circuit["model"]["fingerprint"]
    path = tmp_path / "circuit.json"
    path.write_text(json.dumps(circuit))
    body = {"model": handle, "data": {"path": data}, "method": "ctsft", "circuit": str(path), "epochs": 1}
    _bad(state, "train", body, "circuit", "not a valid ctsft circuit file", "fingerprint")
    circuit["model"]["fingerprint"] = {"config": 1, "weights": "x"}
    path.write_text(json.dumps(circuit))
    _bad(state, "train", body, "circuit", "fingerprint.config")


def test_scores_file_missing_fields(state, scores_file, tmp_path) -> None:
    _, _, scores = scores_file
    body = json.loads(scores.read_text())
    for broken, phrase in (
        (lambda b: b["model"].pop("params"), "params"),
        (lambda b: b.pop("scores"), "scores"),
        (lambda b: b["model"]["params"]["perHead"].pop(), "perHead"),
    ):
        copy = json.loads(json.dumps(body))
        broken(copy)
        path = tmp_path / "broken.json"
        path.write_text(json.dumps(copy))
        err = _bad(state, "circuit.select", {"scores": str(path), "topK": 2}, "scores", phrase)
        assert "broken.json" in err.message


def test_adapter_config_not_an_object(state, ckpt, tmp_path) -> None:
    handle = call(state, "model.load", {"source": str(ckpt)}).body["handle"]
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("[1, 2]")
    _bad(state, "delta.apply", {"model": handle, "delta": str(adapter)}, "delta", "not an object")


def test_corpus_folder_or_non_utf8_text(state, tmp_path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("a few words\n", encoding="utf-8")
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"caf\xe9 au lait\n")
    geometry = {"family": "llama", "layers": 1, "heads": 2, "dModel": 16, "vocab": 300, "out": str(tmp_path / "m")}
    _bad(state, "model.create", {**geometry, "corpus": [str(good), str(tmp_path)]}, "corpus.1", "is a directory")
    _bad(state, "model.create", {**geometry, "corpus": [str(latin)]}, "corpus.0", "not valid UTF-8")
    assert not (tmp_path / "m").exists()
