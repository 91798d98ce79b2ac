"""`data.synthetic` writes its folder whole, under the output rule of every save
(models/atomic.py): it never replaces files ctsft did not write unless asked, and never the
root of a remote runtime."""

from __future__ import annotations

import pytest
from op_calls import call

from ctsft_runtime.errors import BadRequest
from ctsft_runtime.ops.state import RuntimeState

SMALL = {"languages": {"src": 0, "jav": 0.3}, "nTrain": 6, "nValid": 3, "nTest": 3}


def test_own_folder_rewritten_foreign_one_refused_unless_overwrite(tmp_path) -> None:
    state = RuntimeState()
    out = tmp_path / "data"
    first = call(state, "data.synthetic", {"out": str(out), **SMALL}).body
    assert sorted(first["files"]) == ["jav", "src"]
    assert all(p.startswith(str(out)) and (tmp_path / p).is_file() for s in first["files"].values() for p in s.values())
    # Its own folder: written again, whole (a language no longer asked for is gone).
    again = call(state, "data.synthetic", {"out": str(out), **{**SMALL, "languages": {"src": 0}}}).body
    assert sorted(again["files"]) == ["src"] and not (out / "jav").exists()
    # A folder holding someone's data: refused, left as it was; replaced only with overwrite.
    mine = tmp_path / "mine"
    (mine / "jav").mkdir(parents=True)
    (mine / "jav" / "train.csv").write_text("text,label\nmy data,positive\n", encoding="utf-8")
    with pytest.raises(BadRequest, match="did not write") as info:
        call(state, "data.synthetic", {"out": str(mine), **SMALL})
    assert info.value.path == "out"
    assert (mine / "jav" / "train.csv").read_text(encoding="utf-8") == "text,label\nmy data,positive\n"
    call(state, "data.synthetic", {"out": str(mine), "overwrite": True, **SMALL})
    assert "my data" not in (mine / "jav" / "train.csv").read_text(encoding="utf-8")


def test_a_remote_client_cannot_write_over_the_root(tmp_path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "operator.txt").write_text("keep\n", encoding="utf-8")
    state = RuntimeState(path_root=root)
    for out in (".", str(root)):
        with pytest.raises(BadRequest) as info:
            call(state, "data.synthetic", {"out": out, "overwrite": True, **SMALL})
        assert info.value.path == "out"
    assert (root / "operator.txt").read_text(encoding="utf-8") == "keep\n"
    assert call(state, "data.synthetic", {"out": "sub/data", **SMALL}).body["dir"] == str((root / "sub/data").resolve())
