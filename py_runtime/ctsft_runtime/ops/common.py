"""Bodies and helpers shared by several ops: dataset references and task resolution."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import msgspec

from ..errors import BadRequest
from .fields import Labels, NonEmpty, Positive
from .state import RuntimeState

if TYPE_CHECKING:  # the data layer imports torch; ops must import without it (fast hello)
    from ..data import LabeledSet, PromptFormat


class NusaxRef(msgspec.Struct, forbid_unknown_fields=True):
    lang: str
    split: Literal["train", "valid", "test"] = "train"
    dir: str | None = None  # default: $CTSFT_NUSAX_DIR


class DataRef(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """A dataset: a loaded handle, a file, or a NusaX language split (exactly one)."""

    handle: str | None = None
    path: NonEmpty | None = None
    nusax: NusaxRef | None = None
    text_column: str | None = None
    label_column: str | None = None
    labels: Labels | None = None
    format: Literal["csv", "tsv", "jsonl"] | None = None
    limit: Positive | None = None
    per_class: Positive | None = None
    seed: int = 0


def resolve_data(state: RuntimeState, ref: DataRef, field: str, labels: list[str] | None = None) -> LabeledSet:
    """Load (or look up) a dataset; `labels` imposes a label set and order (the model's)."""
    from ..data import balanced_subsample, load_labeled, nusax

    given = [k for k in ("handle", "path", "nusax") if getattr(ref, k) is not None]
    if len(given) != 1:
        raise BadRequest(f"a dataset needs exactly one of handle, path, nusax (got {given or 'none'})", path=field)
    wanted = ref.labels or labels
    if ref.handle is not None:
        ds = state.get(state.datasets, "dataset", ref.handle, f"{field}.handle")
        ds = align_labels(ds, wanted, field) if wanted else ds
    elif ref.path is not None:
        path = state.check_path(ref.path, f"{field}.path")
        ds = load_labeled(
            path,
            text_column=ref.text_column,
            label_column=ref.label_column,
            labels=wanted,
            fmt=ref.format,
            limit=ref.limit,
        )
    else:
        assert ref.nusax is not None
        root = state.check_path(ref.nusax.dir, f"{field}.nusax.dir") if ref.nusax.dir else None
        ds = nusax(root, ref.nusax.lang, ref.nusax.split, limit=ref.limit)
        ds = align_labels(ds, wanted, field) if wanted else ds
    if len(ds) == 0:
        raise BadRequest(f"dataset {ds.source} is empty", path=field)
    if ref.per_class is not None:
        ds = balanced_subsample(ds, ref.per_class, ref.seed)
    return ds


def align_labels(ds: LabeledSet, wanted: list[str], field: str) -> LabeledSet:
    """Re-index `ds` to the label order `wanted`; refuse label sets that differ."""
    from ..data import LabeledSet

    if ds.label_names == wanted:
        return ds
    if set(ds.label_names) - set(wanted):
        raise BadRequest(
            f"dataset {ds.source} has labels {ds.label_names}, the model/task expects {wanted}",
            path=f"{field}.labels",
            remote_message=(
                f"dataset {ds.source} has {len(set(ds.label_names) - set(wanted))} label(s) outside the "
                f"{len(wanted)} the model/task expects"
            ),
        )
    index = {name: i for i, name in enumerate(wanted)}
    remap = [index[name] for name in ds.label_names]
    return LabeledSet(list(ds.texts), [remap[y] for y in ds.labels], list(wanted), ds.source)


def prompt_for(lm: Any, template: str | None, verbalizer: dict[str, str] | None) -> PromptFormat:
    """The caller's template/verbalizer, else the one the checkpoint was trained with, else defaults."""
    from ..data import PromptFormat

    task = lm.task
    return PromptFormat(
        template or (task.template if task else PromptFormat.template),
        verbalizer if verbalizer is not None else (task.verbalizer if task else None),
    )


def dataset_info(ds: LabeledSet) -> dict[str, Any]:
    return {"n": len(ds), "labels": ds.label_names, "classCounts": ds.class_counts(), "source": ds.source}
