"""Bodies and helpers shared by several ops: dataset references and task resolution."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from ..errors import BadRequest
from ..slots import slot_names
from .fields import FieldMap, LabelMap, Labels, NonEmpty, NonNegative, Positive
from .state import RuntimeState

if TYPE_CHECKING:  # the data layer imports torch; ops must import without it (fast hello)
    from ..data import LabeledSet, PromptFormat
    from ..models import TaskConfig


class NusaxRef(msgspec.Struct, forbid_unknown_fields=True):
    lang: str
    split: Literal["train", "valid", "test"] = "train"
    dir: str | None = None  # default: $CTSFT_NUSAX_DIR


class DataRef(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """A dataset: a loaded handle, a file, or a NusaX language split (exactly one).

    `fields` (field name -> column) reads a file as records of named fields for a template
    with one slot per field (pair-input tasks); `label_map` renames the file's labels
    (`{"e": "entailment"}`). `skip` drops the first rows (before `limit`), so one file can
    give disjoint parts: `limit: 300` and `skip: 300`."""

    handle: str | None = None
    path: NonEmpty | None = None
    nusax: NusaxRef | None = None
    text_column: str | None = None
    label_column: str | None = None
    fields: FieldMap | None = None
    label_map: LabelMap | None = None
    labels: Labels | None = None
    format: Literal["csv", "tsv", "jsonl"] | None = None
    skip: NonNegative | None = None
    limit: Positive | None = None
    per_class: Positive | None = None
    seed: int = 0


def resolve_data(
    state: RuntimeState,
    ref: DataRef,
    field: str,
    labels: list[str] | None = None,
    fields: dict[str, str] | None = None,
) -> LabeledSet:
    """Load (or look up) a dataset; `labels` imposes a label set and order (the model's);
    `fields` are the columns a file is read from when `ref` names neither fields nor a
    text column (the model's task's, so a pair-input checkpoint reads new files alike)."""
    from ..data import balanced_subsample, load_labeled, nusax
    from ..data.nusax import NUSAX_ENV

    given = [k for k in ("handle", "path", "nusax") if getattr(ref, k) is not None]
    if len(given) != 1:
        raise BadRequest(f"a dataset needs exactly one of handle, path, nusax (got {given or 'none'})", path=field)
    if ref.path is None and (ref.fields is not None or ref.label_map is not None):
        raise BadRequest(
            "fields and labelMap apply to files (path); a handle keeps what it was loaded with, NusaX is single-text",
            path=f"{field}.fields" if ref.fields is not None else f"{field}.labelMap",
        )
    wanted = ref.labels or labels
    # With `skip`, `limit` counts from the first row kept, so the loader reads everything.
    limit = ref.limit if ref.skip is None else None
    if ref.handle is not None:
        ds = state.get(state.datasets, "dataset", ref.handle, f"{field}.handle")
        ds = align_labels(ds, wanted, field) if wanted else ds
    elif ref.path is not None:
        path = state.check_path(ref.path, f"{field}.path")
        columns = ref.fields if ref.fields is not None else (fields if ref.text_column is None else None)
        ds = load_labeled(
            path,
            text_column=ref.text_column,
            label_column=ref.label_column,
            labels=wanted,
            fmt=ref.format,
            limit=limit,
            fields=columns,
            label_map=ref.label_map,
        )
    else:
        assert ref.nusax is not None
        # A remote runtime confines the server's $CTSFT_NUSAX_DIR default like any path a client names.
        folder = ref.nusax.dir or (os.environ.get(NUSAX_ENV) if state.path_root is not None else None)
        root = state.check_path(folder, f"{field}.nusax.dir") if folder else None
        ds = nusax(root, ref.nusax.lang, ref.nusax.split, limit=limit)
        ds = align_labels(ds, wanted, field) if wanted else ds
    if ref.skip is not None:
        if ref.skip >= len(ds):
            raise BadRequest(f"skip={ref.skip} leaves no rows of the {len(ds)} in {ds.source}", path=f"{field}.skip")
        stop = len(ds) if ref.limit is None else min(len(ds), ref.skip + ref.limit)
        ds = ds.select(range(ref.skip, stop), f"{ds.source} [rows {ref.skip + 1}..{stop}]")
    if len(ds) == 0:
        raise BadRequest(f"dataset {ds.source} is empty", path=field)
    if ref.per_class is not None:
        ds = balanced_subsample(ds, ref.per_class, ref.seed)
    return ds


def resolve_like(state: RuntimeState, ref: DataRef, field: str, like: LabeledSet) -> LabeledSet:
    """A dataset read like `like` (its label order; its columns unless `ref` names others)
    that one prompt format can take alongside it: the same fields, or single texts both."""
    ds = resolve_data(state, ref, field, like.label_names, like.fields)
    if (ds.fields is None) != (like.fields is None) or set(ds.fields or ()) != set(like.fields or ()):
        raise BadRequest(
            f"{ds.source} gives {_kind(ds)}, {like.source} gives {_kind(like)}: one template cannot take both",
            path=f"{field}.fields",
        )
    return ds


def _kind(ds: LabeledSet) -> str:
    return "single texts" if ds.fields is None else f"fields {list(ds.fields)}"


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
    return LabeledSet(list(ds.texts), [remap[y] for y in ds.labels], list(wanted), ds.source, ds.fields)


def task_fields(lm: Any, template: str | None = None) -> dict[str, str] | None:
    """The columns a file is read from when its reference names neither fields nor a text
    column: the model's task's (None: single text, or no task), except for a request whose
    template has the one slot {text}, which asks for single texts (sentiment after NLI)."""
    task: TaskConfig | None = lm.task
    if task is None or (template is not None and slot_names(template) == ["text"]):
        return None
    return task.fields


def task_of(lm: Any, template: str | None) -> TaskConfig | None:
    """The task a request runs: the model's recorded one, unless the request gives another
    template (NLI asked of a model last trained for sentiment). Then the labels and label
    words are the request's and its data's, not the recorded task's: aligning NLI data to
    sentiment labels would refuse it, and sentiment's label words would be wrong for it. (A
    file is read with the recorded fields, see `task_fields`, unless its reference says how.)"""
    task: TaskConfig | None = lm.task
    return None if task is not None and template is not None and template != task.template else task


def prompt_for(
    task: TaskConfig | None,
    template: str | None,
    verbalizer: dict[str, str] | None,
    fields: Sequence[str] | None = None,
) -> PromptFormat:
    """The caller's template/verbalizer, else the ones of `task` (the checkpoint's, see
    `task_of`), else defaults; `fields` are the examples' field names (None: single texts)."""
    from ..data import PromptFormat

    names = tuple(fields) if fields is not None else None
    words = verbalizer if verbalizer is not None else (task.verbalizer if task else None)
    if template:
        return PromptFormat(template, words, names)
    if task is not None:
        try:
            return PromptFormat(task.template, words, names)
        except BadRequest as e:
            # The template was not the caller's: say where it came from and how to override it.
            raise BadRequest(
                f"the model's recorded template (ctsft.json) does not fit this data: {e.message}; give a template",
                path="template",
                remote_message=f"the model's recorded template does not fit this data: {e.remote_message or e.message}",
            ) from None
    if names is not None:
        example = "\n".join(f"{{{f}}}" for f in names) + "\nAnswer:"
        raise BadRequest(
            f"examples with fields {list(names)} need a template with one slot per field, e.g. {example!r}",
            path="template",
        )
    return PromptFormat(PromptFormat.template, words)


def field_names(ds: LabeledSet) -> list[str] | None:
    return None if ds.fields is None else list(ds.fields)


def task_for(fmt: PromptFormat, ds: LabeledSet) -> TaskConfig:
    """What a model trained on `ds` in format `fmt` now answers (recorded in ctsft.json)."""
    from ..models import TaskConfig

    words = dict(fmt.verbalizer) if fmt.verbalizer else None
    return TaskConfig(fmt.template, words, list(ds.label_names), None if ds.fields is None else dict(ds.fields))


def dataset_info(ds: LabeledSet) -> dict[str, Any]:
    return {
        "n": len(ds),
        "labels": ds.label_names,
        "classCounts": ds.class_counts(),
        "source": ds.source,
        "fields": None if ds.fields is None else list(ds.fields),
    }
