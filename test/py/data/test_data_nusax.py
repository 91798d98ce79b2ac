"""NusaX reader: real data when CTSFT_NUSAX_DIR is set, error messages on fake layouts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from asserts import raises_bad

from ctsft_runtime.data import NUSAX_LABELS, nusax, nusax_languages, nusax_root

NUSAX_DIR = os.environ.get("CTSFT_NUSAX_DIR")
needs_nusax = pytest.mark.skipif(
    not NUSAX_DIR, reason="set CTSFT_NUSAX_DIR to the nusax-senti folder to test real data"
)


@needs_nusax
def test_real_nusax_ind_row_counts_and_labels() -> None:
    sizes = {s: len(nusax(NUSAX_DIR, "ind", s)) for s in ("train", "valid", "test")}
    assert sizes == {"train": 500, "valid": 100, "test": 400}
    ds = nusax(NUSAX_DIR, "ind", "train")
    assert ds.label_names == list(NUSAX_LABELS)
    assert set(ds.labels) == {0, 1, 2}
    assert ds.source == "nusax-senti/ind/train"


@needs_nusax
def test_real_nusax_is_parallel_and_has_six_languages() -> None:
    assert {"ind", "jav", "sun", "eng", "ace", "ban"} <= set(nusax_languages(NUSAX_DIR))
    ind, jav = nusax(NUSAX_DIR, "ind", "valid"), nusax(NUSAX_DIR, "jav", "valid")
    assert ind.labels == jav.labels
    assert ind.texts != jav.texts
    assert len(nusax(None, "eng", "test", limit=7)) == 7  # root from the environment


def fake_root(tmp_path: Path) -> Path:
    for lang in ("aaa", "bbb"):
        (tmp_path / lang).mkdir()
        (tmp_path / lang / "train.csv").write_text("id,text,label\n0,x,neutral\n")
    (tmp_path / "notes").mkdir()  # a folder without splits is not a language
    return tmp_path


def test_missing_language_lists_available(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    assert nusax_languages(root) == ["aaa", "bbb"]
    with raises_bad("lang", "language 'jav' not found"):
        nusax(root, "jav", "train")
    with raises_bad("lang", "available languages: ['aaa', 'bbb']"):
        nusax(root, "jav", "train")


def test_missing_split_and_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = fake_root(tmp_path)
    assert nusax(root, "aaa", "train").labels == [1]
    with raises_bad("split", "has no valid split"):
        nusax(root, "aaa", "valid")
    with raises_bad("split", "unknown split 'dev'"):
        nusax(root, "aaa", "dev")
    with raises_bad("root", "does not exist"):
        nusax(tmp_path / "missing", "aaa", "train")
    monkeypatch.delenv("CTSFT_NUSAX_DIR", raising=False)
    with raises_bad("root", "CTSFT_NUSAX_DIR"):
        nusax_root(None)
