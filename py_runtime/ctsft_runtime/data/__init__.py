"""Data layer: labeled sets (single texts or records of named fields), file/NusaX/synthetic sources, prompts, batching.

Plain Python and PyTorch, no protocol: ops wrap these functions, notebooks call them
directly.
"""

from .batching import Batch, encode_batch, iterate_batches
from .loading import LabeledSet, balanced_subsample, load_labeled, split
from .nusax import NUSAX_LABELS, NUSAX_SPLITS, nusax, nusax_languages, nusax_root
from .prompts import Example, PromptFormat, check_verbalizer
from .synthetic import (
    DEFAULT_LANGUAGES,
    SyntheticLanguage,
    make_language,
    make_task,
    token_overlap,
    write_task_csv,
)

__all__ = [
    "DEFAULT_LANGUAGES",
    "NUSAX_LABELS",
    "NUSAX_SPLITS",
    "Batch",
    "Example",
    "LabeledSet",
    "PromptFormat",
    "SyntheticLanguage",
    "balanced_subsample",
    "check_verbalizer",
    "encode_batch",
    "iterate_batches",
    "load_labeled",
    "make_language",
    "make_task",
    "nusax",
    "nusax_languages",
    "nusax_root",
    "split",
    "token_overlap",
    "write_task_csv",
]
