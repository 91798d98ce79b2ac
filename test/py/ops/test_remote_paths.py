"""Remote mode confines every file the runtime opens to its root: relative sources resolve
against the root (not the server's working directory), hub ids need allowDownload, and links
inside a named folder (a checkpoint, a NusaX language) must not lead out of the root.
Real op handlers on a real tiny checkpoint and real CSV files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from op_calls import call

from ctsft_runtime.data import write_task_csv
from ctsft_runtime.errors import BadRequest
from ctsft_runtime.ops.state import RuntimeState


@pytest.fixture()
def layout(tmp_path, tiny_checkpoint, monkeypatch):
    """root/ (the server's --root), outside/ (beside it), cwd/ (the server's working dir)."""
    root, outside, cwd = tmp_path / "root", tmp_path / "outside", tmp_path / "cwd"
    for d in (root, outside, cwd):
        d.mkdir()
    shutil.copytree(tiny_checkpoint, root / "models" / "theta1")
    monkeypatch.chdir(cwd)
    return root, outside, cwd, RuntimeState(path_root=root)


def _refused(state, op, body, *phrases) -> BadRequest:
    with pytest.raises(BadRequest) as info:
        call(state, op, body)
    for phrase in phrases:
        assert phrase in info.value.message, info.value.message
    return info.value


def test_relative_source_resolves_against_the_root(layout) -> None:
    root, _, _, state = layout
    for source in ("models/theta1", "./models/theta1", "models/theta1/"):
        reply = call(state, "model.load", {"source": source})
        assert reply.body["info"]["source"] == str((root / "models" / "theta1").resolve())


def test_a_name_under_the_working_directory_is_not_loaded(layout, tiny_checkpoint) -> None:
    _, _, cwd, state = layout
    shutil.copytree(tiny_checkpoint, cwd / "models" / "other")
    _refused(
        state, "model.load", {"source": "models/other"}, "does not exist under the runtime's root", "allowDownload"
    )
    err = _refused(state, "model.load", {"source": "models/other", "allowDownload": True}, "working directory")
    assert err.path == "source"


def test_hub_ids_need_allow_download_and_a_hub_shape(layout) -> None:
    _, _, _, state = layout
    _refused(state, "model.load", {"source": "HuggingFaceTB/SmolLM2-135M"}, "allowDownload")
    _refused(state, "model.load", {"source": "a/b/c", "allowDownload": True}, "neither a path")
    _refused(state, "model.load", {"source": "../outside", "allowDownload": True}, "outside the runtime's root")


def test_a_weights_link_out_of_the_root_is_refused(layout, tiny_checkpoint) -> None:
    root, outside, _, state = layout
    shutil.copy(tiny_checkpoint / "model.safetensors", outside / "weights.safetensors")
    evil = root / "models" / "evil"
    shutil.copytree(tiny_checkpoint, evil)
    (evil / "model.safetensors").unlink()
    (evil / "model.safetensors").symlink_to(outside / "weights.safetensors")
    err = _refused(state, "model.load", {"source": "models/evil"}, "models/evil/model.safetensors", "outside")
    assert str(outside) not in err.message  # the link's target is not revealed
    # A link that stays inside the root is fine.
    (root / "shared").mkdir()
    shutil.move(outside / "weights.safetensors", root / "shared" / "weights.safetensors")
    (evil / "model.safetensors").unlink()
    (evil / "model.safetensors").symlink_to(root / "shared" / "weights.safetensors")
    assert call(state, "model.load", {"source": "models/evil"}).body["handle"]


def test_a_linked_folder_inside_a_checkpoint_is_walked(layout) -> None:
    root, outside, _, state = layout
    (outside / "secret.txt").write_text("s3cr3t\n")
    (root / "inner").mkdir()
    (root / "inner" / "leak").symlink_to(outside / "secret.txt")
    (root / "models" / "theta1" / "sub").symlink_to(root / "inner", target_is_directory=True)
    _refused(state, "model.load", {"source": "models/theta1"}, "models/theta1/sub/leak")


def test_a_shard_index_naming_files_outside_is_refused(layout) -> None:
    root, _, _, state = layout
    ckpt = root / "models" / "theta1"
    index = {"metadata": {}, "weight_map": {"lm_head.weight": "../../../outside/model-00001.safetensors"}}
    (ckpt / "model.safetensors.index.json").write_text(json.dumps(index))
    _refused(state, "model.load", {"source": "models/theta1"}, "names a shard outside")


def test_nusax_folders_and_files_linked_out_of_the_root(layout, synthetic_task) -> None:
    root, outside, _, state = layout
    write_task_csv({"src": synthetic_task["src"], "easy": synthetic_task["easy"]}, outside / "nusax")
    (root / "nusax").mkdir()
    (root / "nusax" / "jav").symlink_to(outside / "nusax" / "src", target_is_directory=True)
    body = {"data": {"nusax": {"lang": "jav", "split": "train", "dir": "nusax"}}}
    _refused(state, "data.load", body, "nusax/jav", "outside")
    (root / "nusax" / "jav").unlink()
    (root / "nusax" / "jav").mkdir()
    (root / "nusax" / "jav" / "train.csv").symlink_to(outside / "nusax" / "src" / "train.csv")
    _refused(state, "data.load", body, "nusax/jav/train.csv", "outside")
    # A real folder inside the root loads.
    (root / "nusax" / "jav" / "train.csv").unlink()
    shutil.copy(outside / "nusax" / "src" / "train.csv", root / "nusax" / "jav" / "train.csv")
    assert call(state, "data.load", body).body["info"]["n"] == len(synthetic_task["src"]["train"])


def test_check_path_rules(layout) -> None:
    root, outside, _, state = layout
    assert state.check_path("models/theta1/config.json", "f") == (root / "models/theta1/config.json").resolve()
    for bad in ("../outside", "/etc/passwd", "~/x", str(outside)):
        with pytest.raises(BadRequest, match="outside the runtime's root"):
            state.check_path(bad, "f")
    (root / "up").symlink_to(outside, target_is_directory=True)
    with pytest.raises(BadRequest, match="outside the runtime's root"):
        state.check_path("up/anything", "f")
    with pytest.raises(BadRequest, match="a link that leads outside"):
        state.check_path(".", "f")  # the root itself now holds a link out
    # Local mode trusts the caller: paths are used as given.
    assert RuntimeState().check_path(str(outside), "f") == outside
    # A root given as a link or a relative path works the same.
    (root.parent / "root-link").symlink_to(root, target_is_directory=True)
    linked = RuntimeState(path_root=Path(os.path.relpath(root.parent / "root-link")))
    assert linked.check_path("models/theta1", "f") == (root / "models" / "theta1").resolve()


def test_a_tilde_name_that_is_no_user_is_a_bad_request(layout) -> None:
    # pathlib's expanduser raises a bare RuntimeError for `~name` without such a user: it
    # used to reach the client as an internal error. A remote client gets the same refusal
    # for every `~` path, so that it cannot tell which users the host has.
    _, _, _, remote = layout
    with pytest.raises(BadRequest, match="names a user's home") as info:
        RuntimeState().check_path("~no-such-user-ctsft/train.csv", "data.path")
    assert info.value.path == "data.path"
    with pytest.raises(BadRequest, match="names a user's home") as info:
        call(RuntimeState(), "model.load", {"source": "~no-such-user-ctsft/theta1"})
    assert info.value.path == "source"
    for raw in ("~no-such-user-ctsft/x", "~root/x", "~"):
        with pytest.raises(BadRequest, match="outside the runtime's root") as info:
            remote.check_path(raw, "data.path")
        assert info.value.path == "data.path"


def test_a_remote_source_climbing_out_gets_one_answer_whether_or_not_its_target_exists(layout) -> None:
    root, outside, _, state = layout
    (outside / "secret").mkdir()
    answers = set()
    for target in ("secret", "no-such-thing"):
        # `models` exists under the root; the rest climbs out of it.
        depth = len(root.relative_to(root.anchor).parts) + 1
        raw = "models/" + "../" * depth + str(outside.relative_to(outside.anchor) / target)
        answers.add(
            _refused(state, "model.load", {"source": raw}, "outside the runtime's root").message.replace(raw, "RAW")
        )
    assert len(answers) == 1, answers


def test_the_servers_nusax_default_is_confined_too(layout, synthetic_task, monkeypatch) -> None:
    # Without `dir`, NusaX is read from the server's $CTSFT_NUSAX_DIR: outside the root it is
    # refused like any path, inside it loads.
    root, outside, _, state = layout
    write_task_csv({"jav": synthetic_task["src"]}, outside / "nusax")
    body = {"data": {"nusax": {"lang": "jav", "split": "train"}}}
    monkeypatch.setenv("CTSFT_NUSAX_DIR", str(outside / "nusax"))
    err = _refused(state, "data.load", body, "outside the runtime's root")
    assert err.path == "data.nusax.dir"
    shutil.copytree(outside / "nusax", root / "nusax")
    monkeypatch.setenv("CTSFT_NUSAX_DIR", str(root / "nusax"))
    assert call(state, "data.load", body).body["info"]["n"] == len(synthetic_task["src"]["train"])
