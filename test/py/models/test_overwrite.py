"""Outputs never destroy what ctsft did not write (issue 10).

Every directory the runtime writes goes through `atomic_dir`, which applies one rule
(`check_out_dir`): the target is absent, empty, or a folder ctsft wrote (it holds the
marker `ctsft-artifact.json` and nothing else beside what the marker lists), unless
overwrite; the working directory, the remote path root, home and their parents are never
replaced. Stale temporaries of a hard-killed save are cleaned by the next save.

Real tiny checkpoints (built by the conftest fixture), real torch/transformers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from ctsft_runtime.artifacts import DELTA_MANIFEST, DELTA_WEIGHTS, SparseDelta, load_delta, save_delta
from ctsft_runtime.errors import BadRequest
from ctsft_runtime.heads import build_head_map, norm_parameters
from ctsft_runtime.models import load_model
from ctsft_runtime.models.atomic import MARKER_FILE, STALE_AFTER_S, atomic_dir, check_out_dir, read_marker
from ctsft_runtime.models.new_model import build_checkpoint
from ctsft_runtime.models.saving import save_checkpoint

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def lm(tiny_checkpoint):
    return load_model(str(tiny_checkpoint), device="cpu")


def precious(folder: Path) -> dict[str, bytes]:
    """A user's folder: a file and a subfolder ctsft never wrote."""
    (folder / "sub").mkdir(parents=True)
    (folder / "thesis.txt").write_text("four years of work")
    (folder / "sub" / "notes.md").write_text("notes")
    return snapshot(folder)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(fn, *, field: str = "out", phrase: str) -> BadRequest:
    with pytest.raises(BadRequest) as info:
        fn()
    assert info.value.path == field, info.value.path
    assert phrase in info.value.message, info.value.message
    return info.value


# ------------------------------------------------------------------ the rule, per writer


def test_save_refuses_a_folder_ctsft_did_not_write_and_leaves_it_alone(lm, tmp_path) -> None:
    folder = tmp_path / "precious"
    before = precious(folder)
    e = refused(lambda: save_checkpoint(lm, folder), phrase="ctsft did not write")
    assert "thesis.txt" in e.message and "sub/" in e.message and "overwrite" in e.message
    assert e.remote_message is not None and "thesis" not in e.remote_message  # no listing sent remotely
    assert "overwrite" in e.remote_message
    assert snapshot(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious"]  # no temp sibling either


def test_save_writes_the_marker_and_may_replace_its_own_checkpoint(lm, tmp_path) -> None:
    out = tmp_path / "ckpt"
    save_checkpoint(lm, out)
    marker = read_marker(out)
    assert marker is not None and marker["kind"] == "checkpoint" and marker["writer"] == "ctsft"
    assert set(marker["files"]) == {p.name for p in out.iterdir()} - {MARKER_FILE}
    assert "model.safetensors" in marker["files"]
    AutoModelForCausalLM.from_pretrained(out)  # the marker does not disturb plain transformers
    save_checkpoint(lm, out)  # its own checkpoint: replaced without overwrite
    assert read_marker(out) == marker


def test_a_file_added_to_a_ctsft_checkpoint_is_not_destroyed_without_overwrite(lm, tmp_path) -> None:
    out = tmp_path / "ckpt"
    save_checkpoint(lm, out)
    (out / "my-notes.txt").write_text("lr 1e-3 was best")
    refused(lambda: save_checkpoint(lm, out), phrase="my-notes.txt")
    assert (out / "my-notes.txt").read_text() == "lr 1e-3 was best"
    save_checkpoint(lm, out, overwrite=True)  # asked for: the whole folder is replaced
    assert not (out / "my-notes.txt").exists() and read_marker(out) is not None


def test_overwrite_replaces_a_foreign_folder_and_empty_folders_need_nothing(lm, tmp_path) -> None:
    folder = tmp_path / "precious"
    precious(folder)
    save_checkpoint(lm, folder, overwrite=True)
    assert not (folder / "thesis.txt").exists() and (folder / "model.safetensors").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    save_checkpoint(lm, empty)
    assert (empty / MARKER_FILE).is_file()


def test_a_file_is_never_replaced_by_a_directory(lm, tmp_path) -> None:
    file = tmp_path / "model"
    file.write_text("keep")
    for overwrite in (False, True):
        refused(lambda o=overwrite: save_checkpoint(lm, file, overwrite=o), phrase="not a directory")
    assert file.read_text() == "keep"


def test_the_working_directory_and_its_parents_are_never_replaced(lm, tmp_path, monkeypatch) -> None:
    project = tmp_path / "project"
    precious(project)
    (project / "train.csv").write_text("text,label\n")
    before = snapshot(project)
    monkeypatch.chdir(project)
    for target in (Path("."), project, tmp_path):  # `--out .`, the same by name, a parent
        for overwrite in (False, True):
            refused(lambda t=target, o=overwrite: save_checkpoint(lm, t, overwrite=o), phrase="working directory")
    assert snapshot(project) == before
    monkeypatch.chdir(tmp_path)
    save_checkpoint(lm, project / "model")  # a new subfolder is fine
    assert snapshot(project).keys() > before.keys()


def test_the_path_root_and_its_parents_are_never_replaced(lm, tmp_path) -> None:
    root = tmp_path / "server-root"
    precious(root)
    (root / "keys").mkdir()
    (root / "keys" / "server.key_secret").write_text("secret")
    before = snapshot(root)
    for target in (root, tmp_path):
        refused(lambda t=target: save_checkpoint(lm, t, overwrite=True, protected=(root,)), phrase="path root")
    assert snapshot(root) == before


def test_build_checkpoint_shares_the_rule(tmp_path) -> None:
    texts = [f"word{i} another{i % 7} text" for i in range(200)]
    args = dict(layers=1, heads=2, kv_heads=None, d_model=16, texts=texts, vocab_size=300)
    out = tmp_path / "new"
    build_checkpoint("gpt2", out_dir=out, **args)
    assert read_marker(out)["kind"] == "checkpoint"
    build_checkpoint("gpt2", out_dir=out, seed=1, **args)  # its own output: no overwrite needed
    folder = tmp_path / "precious"
    before = precious(folder)
    refused(lambda: build_checkpoint("gpt2", out_dir=folder, out_field="out", **args), phrase="overwrite")
    assert snapshot(folder) == before


def test_save_delta_shares_the_rule_and_still_accepts_a_bare_delta(tiny_checkpoint, tmp_path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint).eval()
    spans = build_head_map(model).head(0, 0).spans(kv=True)
    norms = norm_parameters(model)
    delta = SparseDelta.capture(model, spans, [n for n, _ in norms])
    with torch.no_grad():
        for s in spans:
            s.view().add_(0.01)
    delta = delta.finish(model)

    out = save_delta(delta, tmp_path / "d")
    assert read_marker(out)["kind"] == "delta"
    assert sorted(read_marker(out)["files"]) == sorted([DELTA_MANIFEST, DELTA_WEIGHTS])
    load_delta(out)
    save_delta(delta, out)
    (out / MARKER_FILE).unlink()  # a delta written before the marker existed
    save_delta(delta, out)
    folder = tmp_path / "precious"
    before = precious(folder)
    refused(lambda: save_delta(delta, folder), phrase="ctsft did not write")
    assert snapshot(folder) == before


def test_dry_run_check_names_the_field(tmp_path) -> None:
    folder = tmp_path / "precious"
    precious(folder)
    refused(lambda: check_out_dir(folder, field="targets"), field="targets", phrase="thesis.txt")
    assert check_out_dir(tmp_path / "absent") == tmp_path / "absent"


# ------------------------------------------------------------------ leftovers of hard kills


KILLED_SAVE = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, sys.argv[3])
    from ctsft_runtime.models import load_model
    from ctsft_runtime.models import saving

    lm = load_model(sys.argv[1], device="cpu")
    real = lm.tokenizer.save_pretrained

    def slow(folder, *a, **k):
        real(folder, *a, **k)          # weights and tokenizer are on disk in the temp dir...
        print("writing", flush=True)
        time.sleep(600)                # ...when the process is SIGKILLed

    lm.tokenizer.save_pretrained = slow
    saving.save_checkpoint(lm, __import__("pathlib").Path(sys.argv[2]))
    """
)


def test_a_hard_killed_save_leaves_a_temp_dir_that_the_next_save_removes(lm, tiny_checkpoint, tmp_path) -> None:
    out = tmp_path / "ckpt"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_SAVE, str(tiny_checkpoint), str(out), str(ROOT / "py_runtime")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "writing"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".ckpt.")]
    assert len(left) == 1 and left[0].name.endswith(".tmp") and (left[0] / "model.safetensors").is_file()
    assert not out.exists()
    save_checkpoint(lm, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_the_sweep_is_conservative(lm, tmp_path) -> None:
    out = tmp_path / "ckpt"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        old_time = time.time() - STALE_AFTER_S - 60
        names = {
            "dead": f".ckpt.{dead_pid}-0123456789ab.tmp",  # writer gone: removed
            "dead_old": f".ckpt.{dead_pid}-0123456789ac.old",  # writer gone: removed
            "live": f".ckpt.{live.pid}-0123456789ad.tmp",  # writer running, fresh: kept
            "legacy_fresh": ".ckpt.0123456789ae.tmp",  # no pid, fresh: kept
            "legacy_old": ".ckpt.0123456789af.tmp",  # no pid, a day old: removed
            "other_target": f".ckpt2.{dead_pid}-0123456789ab.tmp",  # another target's: kept
            "not_ours": ".ckpt.backup",  # not our pattern: kept
        }
        for key, name in names.items():
            (tmp_path / name).mkdir()
            (tmp_path / name / "model.safetensors").write_bytes(b"x" * 16)
            if key == "legacy_old":
                os.utime(tmp_path / name / "model.safetensors", (old_time, old_time))
                os.utime(tmp_path / name, (old_time, old_time))
        save_checkpoint(lm, out)
        left = {p.name for p in tmp_path.iterdir()}
        assert left == {"ckpt", names["live"], names["legacy_fresh"], names["other_target"], names["not_ours"]}
    finally:
        live.kill()
        live.wait()


def test_a_failed_publish_check_keeps_a_file_added_during_the_save(tmp_path) -> None:
    out = tmp_path / "d"
    with pytest.raises(BadRequest, match=r"late\.txt"), atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("a")
        out.mkdir()
        (out / "late.txt").write_text("written while we built")
    assert (out / "late.txt").read_text() == "written while we built"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
    assert read_marker(out) is None
