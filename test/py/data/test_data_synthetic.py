"""Synthetic multilingual task: determinism, parallelism, and distance doing what it says."""

from __future__ import annotations

from pathlib import Path

from asserts import raises_bad

from ctsft_runtime.data import load_labeled, make_language, make_task, nusax, write_task_csv
from ctsft_runtime.data.synthetic import COPULAS, NEGATIVE, POSITIVE, SOURCE_WORDS, token_overlap

SMALL = {"n_train": 90, "n_valid": 30, "n_test": 60}


def test_deterministic_by_seed() -> None:
    a = make_task(7, **SMALL)
    b = make_task(7, **SMALL)
    c = make_task(8, **SMALL)
    for lang in a:
        for split in a[lang]:
            assert a[lang][split] == b[lang][split]
    assert a["hard"]["train"].texts != c["hard"]["train"].texts
    assert make_language(7, "x", 0.5) == make_language(7, "x", 0.5)


def test_distance_zero_is_the_source_text() -> None:
    task = make_task(3, {"src": 0.0, "twin": 0.0, "far": 0.9}, **SMALL)
    for split in ("train", "valid", "test"):
        assert task["twin"][split].texts == task["src"][split].texts
    same = make_language(3, "twin", 0.0)
    assert same.rules == () and all(k == v for k, v in same.lexicon.items())


def test_larger_distance_means_less_overlap() -> None:
    distances = [0.0, 0.25, 0.5, 0.75, 1.0]
    for seed in range(3):
        task = make_task(seed, {f"d{i}": d for i, d in enumerate(distances)}, 150, 0, 0)
        src = task["d0"]["train"].texts
        overlap = [token_overlap(task[f"d{i}"]["train"].texts, src) for i in range(5)]
        assert overlap[0] == 1.0
        assert overlap == sorted(overlap, reverse=True), overlap
        assert overlap[-1] == 0.0  # distance 1: every word replaced


def test_labels_balanced_and_parallel() -> None:
    task = make_task(1, **SMALL)
    for split, n in (("train", 90), ("valid", 30), ("test", 60)):
        counts = task["src"][split].class_counts()
        assert counts == {"negative": n // 3, "neutral": n // 3, "positive": n // 3}
        assert task["easy"][split].labels == task["src"][split].labels
        assert task["hard"][split].labels == task["src"][split].labels
        assert task["hard"][split].label_names == ["negative", "neutral", "positive"]


def test_each_row_is_the_same_sentence_translated() -> None:
    task = make_task(2, {"src": 0.0, "t": 0.8}, 60, 0, 0)
    lang = make_language(2, "t", 0.8)
    for src, tgt in zip(task["src"]["train"].texts, task["t"]["train"].texts, strict=True):
        kept = [w for w in src.split() if not ("no_copula" in lang.rules and w in COPULAS)]
        assert sorted(tgt.split()) == sorted(lang.lexicon[w] for w in kept)
    assert len(set(lang.lexicon.values())) == len(SOURCE_WORDS)  # no two words merge


def test_negation_flips_polarity() -> None:
    ds = make_task(4, {"src": 0.0}, 300, 0, 0, negation=0.5)["src"]["train"]
    negated = 0
    for text, y in zip(ds.texts, ds.labels, strict=True):
        words = text.split()
        if "not" in words:
            negated += 1
            polar = "positive" if any(w in POSITIVE for w in words) else "negative"
            assert ds.label_names[y] != polar and ds.label_names[y] != "neutral"
        elif ds.label_names[y] == "positive":
            assert not any(w in NEGATIVE for w in words)
    assert negated > 20
    plain = make_task(4, {"src": 0.0}, 300, 0, 0, negation=0.0)["src"]["train"]
    assert not any("not" in t.split() for t in plain.texts)


def test_splits_do_not_repeat_sentences() -> None:
    task = make_task(0, {"src": 0.0}, 300, 100, 300)["src"]
    assert not set(task["train"].texts) & set(task["test"].texts)
    assert len(set(task["train"].texts)) == 300


def test_write_csv_is_atomic_and_round_trips(tmp_path: Path) -> None:
    task = make_task(5, {"src": 0.0, "far": 0.6}, 12, 6, 6)
    paths = write_task_csv(task, tmp_path)
    assert len(paths) == 6
    assert sorted(p.name for p in (tmp_path / "far").iterdir()) == [
        "test.csv",
        "train.csv",
        "valid.csv",
    ]  # no temp files left behind
    back = nusax(tmp_path, "far", "train")
    assert (back.texts, back.labels) == (task["far"]["train"].texts, task["far"]["train"].labels)
    write_task_csv(task, tmp_path)  # overwriting is fine
    assert load_labeled(tmp_path / "src" / "test.csv").texts == task["src"]["test"].texts


def test_bad_arguments() -> None:
    with raises_bad("languages.x", "must be a number in [0, 1]"):
        make_task(0, {"x": 1.5})
    with raises_bad("languages", "language name '../up'"):
        make_task(0, {"../up": 0.1})
    with raises_bad("n_train", "non-negative int"):
        make_task(0, n_train=-1)
    with raises_bad("negation", "probability"):
        make_task(0, negation=2.0)
