"""Labeled text sets and the one loader that reads them from CSV, TSV or JSONL files.

Every dataset the runtime handles is a `LabeledSet`: parallel lists of examples and integer
labels plus the ordered label names those integers index. An example is one text, or (for
pair-input tasks such as NLI) a record of named fields read from several columns. Label order matters (it fixes
which class logit is which), so it is always explicit: given by the caller, or derived
from the file by a documented rule (see `load_labeled`).

Error messages name files, rows and columns, and quote the cells, labels and column names
they read, to make the fix obvious; each such error also carries a `remote_message` that
quotes nothing from the file, for remote clients (see `errors.CtsftError`).
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadRequest
from .prompts import FIELD_NAME, Example

# Column names tried, in order, when the caller names none. Kept short on purpose: a
# longer list makes a wrong guess on an unfamiliar file more likely, and the error for a
# miss lists the available columns so the fix (`text_column=`) is one argument away.
TEXT_COLUMNS = ("text", "sentence", "content")
LABEL_COLUMNS = ("label", "labels", "category")

FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass
class LabeledSet:
    """Examples with integer labels; `labels[i]` indexes `label_names`.

    Without `fields` every example is a text (str). With `fields` (field name -> the column
    it was read from, e.g. {"premise": "sentence1", "hypothesis": "sentence2"}) every example
    is a dict holding exactly those field names, which a template's `{premise}` and
    `{hypothesis}` slots take. `texts` keeps its name so that every consumer (batching,
    training, scoring) passes examples on unchanged."""

    texts: list[Example]
    labels: list[int]
    label_names: list[str]
    source: str
    fields: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if self.fields is not None:
            self.fields = dict(self.fields)
            keys = set(self.fields)
            bad = next((i for i, t in enumerate(self.texts) if not isinstance(t, Mapping) or set(t) != keys), None)
        else:
            bad = next((i for i, t in enumerate(self.texts) if not isinstance(t, str)), None)
        if bad is not None:
            want = f"a record of fields {list(self.fields)}" if self.fields is not None else "a text (str)"
            raise BadRequest(f"example {bad} of {self.source} is not {want}", path="texts")
        # Catch inconsistent sets where they are built, not deep inside a training step.
        if len(self.texts) != len(self.labels):
            raise BadRequest(
                f"{len(self.texts)} texts but {len(self.labels)} labels in {self.source}",
                path="labels",
            )
        if len(set(self.label_names)) != len(self.label_names):
            raise BadRequest(
                f"duplicate label names {self.label_names}",
                path="label_names",
                remote_message=f"duplicate label names in {self.source} ({len(self.label_names)} names)",
            )
        n = len(self.label_names)
        bad = next((y for y in self.labels if not 0 <= y < n), None)
        if bad is not None:
            raise BadRequest(
                f"label index {bad} out of range for {n} label names {self.label_names}",
                path="labels",
                remote_message=f"label index {bad} out of range for {n} label names in {self.source}",
            )

    def __len__(self) -> int:
        return len(self.texts)

    def class_counts(self) -> dict[str, int]:
        """Examples per class, in label order (classes with no example count 0)."""
        counts = Counter(self.labels)
        return {name: counts[i] for i, name in enumerate(self.label_names)}

    def select(self, indices: Sequence[int], source: str | None = None) -> LabeledSet:
        """The rows at `indices`, in that order, with the same label names."""
        return LabeledSet(
            texts=[self.texts[i] for i in indices],
            labels=[self.labels[i] for i in indices],
            label_names=list(self.label_names),
            source=self.source if source is None else source,
            fields=None if self.fields is None else dict(self.fields),
        )


def load_labeled(
    path: str | os.PathLike[str],
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    labels: Sequence[str] | None = None,
    fmt: str | None = None,
    limit: int | None = None,
    fields: Mapping[str, str] | None = None,
    label_map: Mapping[str, str] | None = None,
) -> LabeledSet:
    """Read a labeled text file.

    - `fmt`: "csv", "tsv" or "jsonl"; by default from the extension (.csv, .tsv/.tab,
      .jsonl/.ndjson). CSV/TSV go through the `csv` module, so quoted fields may hold
      delimiters and newlines; a UTF-8 byte-order mark is ignored.
    - `text_column` / `label_column`: by default the first present of `TEXT_COLUMNS`
      (text, sentence, content) and `LABEL_COLUMNS` (label, labels, category).
    - `labels`: the label set AND its order. Rows with any other label are an error. When
      omitted, the labels found in the whole file are used, sorted: numerically when every
      label is an integer ("2" before "10"), otherwise as strings (so NusaX gives
      negative, neutral, positive). Pass `labels` whenever the order must be stable across
      files, e.g. when one split might lack a class.
    - Label values are compared after stripping surrounding whitespace; JSON numbers and
      booleans are read as their text (`1` -> "1").
    - `limit`: keep only the first `limit` rows (file order). The whole file is still read
      and checked, so the derived label set is the file's, not the prefix's.
    - `fields`: field name -> column, for pair-input tasks (`{"premise": "sentence1",
      "hypothesis": "sentence2"}`); each example is then a dict of those fields, in this
      order, instead of one text. Not together with `text_column`.
    - `label_map`: label as spelled in the file -> label name (`{"e": "entailment"}`), so
      sets that spell labels differently align. A label that already is a label name (a
      value of the map) stays as it is, so one map serves both spellings (IndoNLI's `e`,
      AmericasNLI's `entailment`); any other label is an error naming it, its row and the
      label column. `labels` and the derived order are in label names.
    """
    file = Path(path)
    source = os.fspath(path)
    if fmt is None:
        fmt = FORMATS.get(file.suffix.lower())
        if fmt is None:
            raise BadRequest(
                f"cannot tell the format of {source} from its extension; pass fmt= one of csv, tsv, jsonl",
                path="fmt",
            )
    elif fmt not in ("csv", "tsv", "jsonl"):
        raise BadRequest(f"unknown format {fmt!r}; use csv, tsv or jsonl", path="fmt")
    if limit is not None and limit < 1:
        raise BadRequest(f"limit must be a positive number of rows, got {limit}", path="limit")
    if not file.is_file():
        what = "is a directory, not a file" if file.is_dir() else "does not exist"
        raise BadRequest(f"dataset file {source} {what}", path="path")

    if fields is not None:
        _check_field_map(fields, text_column)

    rows = _read_rows(file, fmt)
    texts: list[Example] = []
    raw_labels: list[str] = []
    places: list[str] = []
    text_col = label_col = ""
    for where, row in rows:
        if not texts:  # the first row fixes the columns (a CSV header, a JSONL object)
            if fields is None:
                text_col = _pick_column(row, text_column, TEXT_COLUMNS, "text_column", source)
            else:
                _check_field_columns(row, fields, source)
            label_col = _pick_column(row, label_column, LABEL_COLUMNS, "label_column", source)
        if fields is None:
            texts.append(_cell(row, text_col, where, "text_column", source))
        else:
            texts.append({name: _cell(row, col, where, "fields", source) for name, col in fields.items()})
        label = _cell(row, label_col, where, "label_column", source).strip()
        if not label:  # else "" would become a class of its own, trained on without a word said
            raise BadRequest(f"{where} of {source} has an empty label (column {label_col!r})", path="label_column")
        raw_labels.append(label)
        places.append(where)
    if not texts:
        raise BadRequest(f"dataset file {source} has no data rows", path="path")
    if label_map is not None:
        raw_labels = _map_labels(raw_labels, label_map, places, label_col, source)

    if labels is None:
        names = _sorted_labels(set(raw_labels))
    else:
        names = [str(x) for x in labels]
        if not names:
            raise BadRequest("labels= is empty; give at least one label name", path="labels")
        if len(set(names)) != len(names):
            raise BadRequest(f"labels= has duplicates: {names}", path="labels")
    index = {name: i for i, name in enumerate(names)}
    ids: list[int] = []
    for i, raw in enumerate(raw_labels):
        if raw not in index:
            raise BadRequest(
                f"unknown label {raw!r} in {places[i]} of {source}; allowed labels: {names}",
                path="labels",
                remote_message=f"{places[i]} of {source} has a label outside the {len(names)} allowed labels",
            )
        ids.append(index[raw])

    if limit is not None:
        texts, ids = texts[:limit], ids[:limit]
    return LabeledSet(
        texts=texts, labels=ids, label_names=names, source=source, fields=None if fields is None else dict(fields)
    )


def _check_field_map(fields: Mapping[str, str], text_column: str | None) -> None:
    if text_column is not None:
        raise BadRequest("give text_column (one text) or fields (several named columns), not both", path="text_column")
    if not fields:
        raise BadRequest("fields is empty: map at least one field name to a column", path="fields")
    bad = [name for name in fields if not FIELD_NAME.fullmatch(name)]
    if bad:
        raise BadRequest(
            f"field names must be identifiers (letters, digits, _; they are template slots), got {bad}",
            path="fields",
        )


def _check_field_columns(row: dict[str, object], fields: Mapping[str, str], source: str) -> None:
    available = [k for k in row if k is not None]
    for name, col in fields.items():
        if col not in row:
            raise BadRequest(
                f"field {name!r} maps to column {col!r}, which {source} lacks; available columns: {available}",
                path="fields",
                remote_message=f"field {name!r} maps to a column that {source} lacks ({len(available)} columns)",
            )


def _map_labels(raw: list[str], label_map: Mapping[str, str], places: list[str], column: str, source: str) -> list[str]:
    """Each raw label's name under `label_map` (a name stays itself); any other is an error naming it."""
    if not label_map:
        raise BadRequest("label_map is empty: map each label of the file to a label name", path="label_map")
    names = set(label_map.values())
    out: list[str] = []
    for i, label in enumerate(raw):
        name = label_map.get(label, label if label in names else None)
        if name is None:
            raise BadRequest(
                f"label {label!r} in {places[i]} of {source} (column {column!r}) is not in label_map, "
                f"which maps {sorted(label_map)} (to {sorted(names)})",
                path="label_map",
                remote_message=f"{places[i]} of {source} has a label that label_map ({len(label_map)} keys) lacks",
            )
        out.append(name)
    return out


def _read_rows(file: Path, fmt: str) -> list[tuple[str, dict[str, object]]]:
    """(where, row) pairs; `where` names the row for error messages ("row 3", "line 7").

    CSV/TSV rows are counted from 1 after the header, not by file line, since quoted
    newlines make line numbers misleading; JSONL rows are named by their file line.
    """
    try:
        # newline="" lets the csv module see quoted newlines as part of a field.
        with file.open(encoding="utf-8-sig", newline="") as f:
            if fmt == "jsonl":
                return list(_jsonl_rows(f, os.fspath(file)))
            reader = csv.DictReader(f, delimiter="\t" if fmt == "tsv" else ",")
            header = reader.fieldnames or []
            twice = sorted({name for name in header if header.count(name) > 1})
            if twice:  # DictReader would keep only the last column of each name
                raise BadRequest(
                    f"the header of {file} names {twice} more than once",
                    path="path",
                    remote_message=f"the header of {file} names {len(twice)} column(s) more than once",
                )
            rows = [(f"row {i}", row) for i, row in enumerate(reader, start=1)]
    except UnicodeDecodeError as e:
        raise BadRequest(f"{file} is not valid UTF-8 (byte {e.start}); re-save it as UTF-8", path="path") from e
    except csv.Error as e:
        raise BadRequest(f"{file} is not a well-formed {fmt.upper()} file: {e}", path="path") from e
    for where, row in rows:
        extra = row.get(None)  # DictReader puts the cells beyond the header's under None
        if extra is not None:
            cells = len(header) + len(extra)
            raise BadRequest(
                f"{where} of {file} has {cells} cells, the header {len(header)}: quote a text that holds "
                f"{'a tab' if fmt == 'tsv' else 'a comma'}",
                path="path",
            )
    return [(where, dict(row)) for where, row in rows]


def _jsonl_rows(lines: Iterator[str], source: str) -> Iterator[tuple[str, dict[str, object]]]:
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue  # blank lines (often a trailing one) carry no row
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise BadRequest(
                f"line {n} of {source} is not valid JSON: {e.msg} (column {e.colno})",
                path="path",
            ) from e
        if not isinstance(row, dict):
            raise BadRequest(
                f"line {n} of {source} is a JSON {type(row).__name__}, expected an object with text and label fields",
                path="path",
            )
        yield f"line {n}", row


def _pick_column(row: dict[str, object], wanted: str | None, defaults: tuple[str, ...], field: str, source: str) -> str:
    available = [k for k in row if k is not None]  # csv puts surplus cells under None
    if wanted is not None:
        if wanted in row:
            return wanted
        raise BadRequest(
            f"column {wanted!r} not found in {source}; available columns: {available}",
            path=field,
            remote_message=f"column {wanted!r} not found in {source} (it has {len(available)} column(s))",
        )
    for name in defaults:
        if name in row:
            return name
    looked = f"no {field.removesuffix('_column')} column in {source} (looked for {', '.join(defaults)})"
    raise BadRequest(
        f"{looked}; available columns: {available}; pass {field}=",
        path=field,
        remote_message=f"{looked}; it has {len(available)} other column(s); pass {field}=",
    )


def _cell(row: dict[str, object], column: str, where: str, field: str, source: str) -> str:
    value = row.get(column)
    if value is None:  # a short CSV row, or a JSONL object lacking the key / holding null
        raise BadRequest(f"{where} of {source} has no value for {column!r}", path=field)
    if isinstance(value, (dict, list)):
        raise BadRequest(
            f"{where} of {source}: {column!r} holds a JSON {type(value).__name__}, expected a string",
            path=field,
        )
    if isinstance(value, bool):
        return "true" if value else "false"  # JSON spelling, not Python's "True"
    return str(value)


def _sorted_labels(found: set[str]) -> list[str]:
    try:
        return sorted(found, key=int)
    except ValueError:
        return sorted(found)


def balanced_subsample(ds: LabeledSet, per_class: int, seed: int) -> LabeledSet:
    """`per_class` examples of every class, drawn with `random.Random(seed)`.

    The chosen rows keep their original order. Because the draw depends only on the label
    sequence and the seed, parallel sets (same labels row by row, like NusaX languages)
    get the same rows: the subsample stays parallel.
    """
    return ds.select(balanced_indices(ds, per_class, seed), f"{ds.source} [balanced {per_class}/class, seed {seed}]")


def balanced_indices(ds: LabeledSet, per_class: int, seed: int) -> list[int]:
    """The sorted row indices `balanced_subsample` keeps."""
    if per_class < 1:
        raise BadRequest(f"per_class must be at least 1, got {per_class}", path="per_class")
    rng = random.Random(seed)
    chosen: list[int] = []
    for c, name in enumerate(ds.label_names):
        rows = [i for i, y in enumerate(ds.labels) if y == c]
        if len(rows) < per_class:
            raise BadRequest(
                f"class {name!r} has only {len(rows)} examples in {ds.source}, fewer than per_class={per_class}",
                path="per_class",
                remote_message=(
                    f"class {c} (of {len(ds.label_names)}) has only {len(rows)} examples in {ds.source}, "
                    f"fewer than per_class={per_class}"
                ),
            )
        chosen.extend(rng.sample(rows, per_class))
    return sorted(chosen)


def split(ds: LabeledSet, parts: Sequence[float] | Sequence[int], seed: int) -> list[LabeledSet]:
    """Cut `ds` into disjoint random parts, each keeping the original row order.

    `parts` are either sizes (ints, summing to at most len(ds); rows left over are
    dropped) or fractions (floats in (0, 1], summing to at most 1). Fractions summing to 1
    use every row, the remainder going to the parts with the largest fractional share;
    otherwise each part gets floor(fraction * len(ds)) rows.
    """
    n = len(ds)
    if not parts:
        raise BadRequest("split needs at least one part", path="parts")
    if all(isinstance(p, int) and not isinstance(p, bool) for p in parts):
        sizes = [int(p) for p in parts]
        if any(s < 0 for s in sizes) or sum(sizes) > n:
            raise BadRequest(
                f"sizes {sizes} must be non-negative and sum to at most {n} (the set size)",
                path="parts",
            )
    elif all(isinstance(p, float) for p in parts):
        fractions = [float(p) for p in parts]
        total = sum(fractions)
        if any(not 0.0 < f <= 1.0 for f in fractions) or total > 1.0 + 1e-9:
            raise BadRequest(
                f"fractions {fractions} must each be in (0, 1] and sum to at most 1",
                path="parts",
            )
        sizes = [math.floor(f * n) for f in fractions]
        if abs(total - 1.0) <= 1e-9:
            by_remainder = sorted(range(len(sizes)), key=lambda k: sizes[k] - fractions[k] * n)
            for k in by_remainder[: n - sum(sizes)]:
                sizes[k] += 1
    else:
        raise BadRequest(
            f"parts must be all ints (sizes) or all floats (fractions), got {list(parts)}",
            path="parts",
        )

    order = list(range(n))
    random.Random(seed).shuffle(order)
    out: list[LabeledSet] = []
    start = 0
    for k, size in enumerate(sizes):
        rows = sorted(order[start : start + size])
        start += size
        out.append(ds.select(rows, f"{ds.source} [split part {k + 1}/{len(sizes)}, seed {seed}]"))
    return out
