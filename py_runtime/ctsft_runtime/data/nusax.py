"""NusaX-Senti reader: `<root>/<lang>/<split>.csv` with `text` and `label` columns.

The data stays where the user keeps it (it carries its own license and provenance); the
runtime only reads it. Languages are parallel: row i of every language is the same
sentence with the same label, which is what makes cross-lingual transfer measurable.
The synthetic task (`synthetic.write_task_csv`) writes the same layout, so this reader
also loads it.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import BadRequest
from .loading import LabeledSet, load_labeled

NUSAX_LABELS = ("negative", "neutral", "positive")
NUSAX_SPLITS = ("train", "valid", "test")
NUSAX_ENV = "CTSFT_NUSAX_DIR"


def nusax_root(root: str | os.PathLike[str] | None = None) -> Path:
    """`root`, or the directory named by $CTSFT_NUSAX_DIR when `root` is None."""
    if root is None:
        env = os.environ.get(NUSAX_ENV)
        if not env:
            raise BadRequest(
                f"no NusaX directory given: pass root= or set {NUSAX_ENV} to the folder holding ind/, jav/, ...",
                path="root",
            )
        root = env
    path = Path(root)
    if not path.is_dir():
        raise BadRequest(f"NusaX directory {os.fspath(root)} does not exist", path="root")
    return path


def nusax_languages(root: str | os.PathLike[str] | None = None) -> list[str]:
    """Language folders under `root` (those holding at least one split file), sorted."""
    base = nusax_root(root)
    return sorted(
        d.name for d in base.iterdir() if d.is_dir() and any((d / f"{s}.csv").is_file() for s in NUSAX_SPLITS)
    )


def nusax(root: str | os.PathLike[str] | None, lang: str, split: str, *, limit: int | None = None) -> LabeledSet:
    """One language/split of NusaX-Senti, labels ordered negative, neutral, positive."""
    base = nusax_root(root)
    if split not in NUSAX_SPLITS:
        raise BadRequest(f"unknown split {split!r}; use one of {list(NUSAX_SPLITS)}", path="split")
    langs = nusax_languages(base)
    if lang not in langs:
        raise BadRequest(f"language {lang!r} not found in {base}; available languages: {langs}", path="lang")
    file = base / lang / f"{split}.csv"
    if not file.is_file():
        raise BadRequest(f"{file} is missing (language {lang!r} has no {split} split)", path="split")
    ds = load_labeled(file, labels=NUSAX_LABELS, limit=limit)
    ds.source = f"nusax-senti/{lang}/{split}"
    return ds
