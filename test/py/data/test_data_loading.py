"""load_labeled and LabeledSet: formats, column/label rules, and every error a user can hit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from asserts import raises_bad

from ctsft_runtime.data import LabeledSet, load_labeled


def write(tmp_path: Path, name: str, content: str) -> Path:
    file = tmp_path / name
    file.write_text(content, encoding="utf-8", newline="")
    return file


def test_csv_quoted_newlines_and_commas(tmp_path: Path) -> None:
    file = write(
        tmp_path,
        "d.csv",
        'id,text,label\n1,"first line\nsecond, line",positive\n2,plain,negative\n3,"say ""hi""",neutral\n',
    )
    ds = load_labeled(file)
    assert ds.texts == ["first line\nsecond, line", "plain", 'say "hi"']
    assert ds.label_names == ["negative", "neutral", "positive"]  # sorted
    assert ds.labels == [2, 0, 1]
    assert ds.source == str(file)
    assert len(ds) == 3


def test_csv_with_byte_order_mark(tmp_path: Path) -> None:
    file = write(tmp_path, "bom.csv", "\ufefftext,label\nhello,a\n")
    assert load_labeled(file).texts == ["hello"]


def test_tsv(tmp_path: Path) -> None:
    file = write(tmp_path, "d.tsv", "sentence\tlabels\na, b\tx\nc\ty\n")
    ds = load_labeled(file)
    assert ds.texts == ["a, b", "c"]
    assert ds.label_names == ["x", "y"]


def test_jsonl_numeric_labels_sort_numerically(tmp_path: Path) -> None:
    lines = [{"content": "t0", "category": 10}, {"content": "t1", "category": 2}]
    file = write(tmp_path, "d.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    ds = load_labeled(file)
    assert ds.label_names == ["2", "10"]
    assert ds.labels == [1, 0]


def test_explicit_columns_labels_and_format(tmp_path: Path) -> None:
    file = write(tmp_path, "data.txt", "review,stars\ngreat,5\nmeh, 3 \nawful,1\n")
    ds = load_labeled(file, text_column="review", label_column="stars", labels=["5", "3", "1"], fmt="csv")
    assert ds.labels == [0, 1, 2]  # caller's order; " 3 " is stripped
    assert ds.label_names == ["5", "3", "1"]


def test_limit_keeps_prefix_but_labels_of_whole_file(tmp_path: Path) -> None:
    file = write(tmp_path, "d.csv", "text,label\na,x\nb,x\nc,y\n")
    ds = load_labeled(file, limit=2)
    assert ds.texts == ["a", "b"]
    assert ds.label_names == ["x", "y"]
    assert ds.class_counts() == {"x": 2, "y": 0}


def test_missing_file(tmp_path: Path) -> None:
    with raises_bad("path", "does not exist"):
        load_labeled(tmp_path / "nope.csv")
    with raises_bad("path", "is a directory"):
        load_labeled(tmp_path, fmt="csv")


def test_unknown_format(tmp_path: Path) -> None:
    file = write(tmp_path, "d.parquet", "x")
    with raises_bad("fmt", "pass fmt="):
        load_labeled(file)
    with raises_bad("fmt", "unknown format 'xml'"):
        load_labeled(file, fmt="xml")


def test_unknown_column_lists_available(tmp_path: Path) -> None:
    file = write(tmp_path, "d.csv", "body,label\nhi,a\n")
    with raises_bad("text_column", "available columns: ['body', 'label']"):
        load_labeled(file)
    with raises_bad("label_column", "column 'tag' not found"):
        load_labeled(file, text_column="body", label_column="tag")


def test_unknown_label_names_label_allowed_set_and_row(tmp_path: Path) -> None:
    file = write(tmp_path, "d.csv", 'text,label\na,pos\n"two\nlines",neg\nc,meh\n')
    with raises_bad("labels", "unknown label 'meh' in row 3"):
        load_labeled(file, labels=["neg", "pos"])
    with raises_bad("labels", "allowed labels: ['neg', 'pos']"):
        load_labeled(file, labels=["neg", "pos"])
    jsonl = write(tmp_path, "d.jsonl", '{"text": "a", "label": "pos"}\n\n{"text": "b", "label": "x"}\n')
    with raises_bad("labels", "unknown label 'x' in line 3"):
        load_labeled(jsonl, labels=["pos"])


def test_bad_labels_argument(tmp_path: Path) -> None:
    file = write(tmp_path, "d.csv", "text,label\na,x\n")
    with raises_bad("labels", "duplicates"):
        load_labeled(file, labels=["x", "x"])
    with raises_bad("labels", "is empty"):
        load_labeled(file, labels=[])


def test_empty_dataset(tmp_path: Path) -> None:
    with raises_bad("path", "no data rows"):
        load_labeled(write(tmp_path, "h.csv", "text,label\n"))
    with raises_bad("path", "no data rows"):
        load_labeled(write(tmp_path, "e.jsonl", "\n"))


def test_malformed_jsonl_line(tmp_path: Path) -> None:
    file = write(tmp_path, "d.jsonl", '{"text": "a", "label": "x"}\n\n{"text": "b", label}\n')
    with raises_bad("path", "line 3"):
        load_labeled(file)
    with raises_bad("path", "expected an object"):
        load_labeled(write(tmp_path, "l.jsonl", '["a", "x"]\n'))


def test_missing_value_names_row(tmp_path: Path) -> None:
    with raises_bad("label_column", "row 2"):
        load_labeled(write(tmp_path, "d.csv", "text,label\na,x\nb\n"))
    with raises_bad("text_column", "line 2"):
        load_labeled(write(tmp_path, "d.jsonl", '{"text":"a","label":1}\n{"label":1}\n'))


@pytest.mark.parametrize(
    ("name", "content", "field", "phrase"),
    [
        # A missing label (pandas writes `text,`), a line of commas, a blank JSON label, an
        # unquoted comma or tab in a text, a repeated header column: each used to load quietly
        # as another class or the wrong column.
        ("d.csv", "text,label\na,x\ngood film,\n", "label_column", "row 2 of"),
        ("d.csv", "text,label\na,x\n,\n", "label_column", "empty label"),
        ("d.jsonl", '{"text":"a","label":"  "}\n', "label_column", "empty label"),
        ("d.csv", "text,label\nhello, world,positive\n", "path", "row 1 of"),
        ("d.tsv", "text\tlabel\na\tb\tx\n", "path", "quote a text that holds a tab"),
        ("d.csv", "text,label,text\na,x,b\n", "path", "['text'] more than once"),
    ],
)
def test_rows_the_csv_module_would_read_wrong_are_refused(
    tmp_path: Path, name: str, content: str, field: str, phrase: str
) -> None:
    with raises_bad(field, phrase):
        load_labeled(write(tmp_path, name, content))


def test_bad_encoding_and_limit(tmp_path: Path) -> None:
    file = tmp_path / "latin.csv"
    file.write_bytes(b"text,label\ncaf\xe9,x\n")
    with raises_bad("path", "not valid UTF-8"):
        load_labeled(file)
    with raises_bad("limit", "positive"):
        load_labeled(write(tmp_path, "d.csv", "text,label\na,x\n"), limit=0)


def test_labeled_set_checks_consistency() -> None:
    with raises_bad("labels", "2 texts but 1 labels"):
        LabeledSet(["a", "b"], [0], ["x"], "t")
    with raises_bad("labels", "out of range"):
        LabeledSet(["a"], [3], ["x", "y"], "t")
    ds = LabeledSet(["a", "b", "c"], [0, 1, 0], ["x", "y"], "t")
    assert ds.select([2, 0]).texts == ["c", "a"]
