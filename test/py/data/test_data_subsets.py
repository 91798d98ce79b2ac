"""balanced_subsample and split: seeded, disjoint, label-aware."""

from __future__ import annotations

from asserts import raises_bad
from hypothesis import given, settings
from hypothesis import strategies as st

from ctsft_runtime.data import LabeledSet, balanced_subsample, split


def make(n: int, labels: list[int] | None = None) -> LabeledSet:
    ys = labels if labels is not None else [i % 3 for i in range(n)]
    return LabeledSet([f"t{i}" for i in range(len(ys))], ys, ["neg", "neu", "pos"], "mem")


def test_balanced_subsample_is_balanced_seeded_and_ordered() -> None:
    ds = make(0, [0] * 10 + [1] * 4 + [2] * 30)
    sub = balanced_subsample(ds, 4, seed=1)
    assert sub.class_counts() == {"neg": 4, "neu": 4, "pos": 4}
    rows = [int(t[1:]) for t in sub.texts]
    assert rows == sorted(rows)  # original order kept
    assert sub.texts == balanced_subsample(ds, 4, seed=1).texts
    assert sub.texts != balanced_subsample(ds, 4, seed=2).texts
    assert "balanced 4/class" in sub.source


def test_balanced_subsample_stays_parallel() -> None:
    labels = [0, 1, 2, 2, 1, 0, 0, 2, 1, 1]
    a, b = make(0, labels), LabeledSet([f"u{i}" for i in range(10)], labels, ["x", "y", "z"], "b")
    ra = [t[1:] for t in balanced_subsample(a, 2, seed=5).texts]
    rb = [t[1:] for t in balanced_subsample(b, 2, seed=5).texts]
    assert ra == rb


def test_balanced_subsample_errors() -> None:
    ds = make(0, [0] * 5 + [1] * 2 + [2] * 5)
    with raises_bad("per_class", "class 'neu' has only 2 examples"):
        balanced_subsample(ds, 3, seed=0)
    with raises_bad("per_class", "at least 1"):
        balanced_subsample(ds, 0, seed=0)


def test_split_fractions_use_every_row() -> None:
    ds = make(101)
    parts = split(ds, [0.8, 0.1, 0.1], seed=0)
    assert [len(p) for p in parts] == [81, 10, 10]
    seen = [t for p in parts for t in p.texts]
    assert sorted(seen) == sorted(ds.texts)
    assert parts[0].texts == split(ds, [0.8, 0.1, 0.1], seed=0)[0].texts


def test_split_sizes_may_leave_rows() -> None:
    a, b = split(make(20), [5, 3], seed=3)
    assert (len(a), len(b)) == (5, 3)
    assert not set(a.texts) & set(b.texts)


def test_split_errors() -> None:
    with raises_bad("parts", "sum to at most 10"):
        split(make(10), [6, 5], seed=0)
    with raises_bad("parts", "all ints (sizes) or all floats"):
        split(make(10), [0.5, 5], seed=0)
    with raises_bad("parts", "(0, 1]"):
        split(make(10), [0.7, 0.7], seed=0)
    with raises_bad("parts", "at least one part"):
        split(make(10), [], seed=0)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 60),
    weights=st.lists(st.integers(1, 9), min_size=1, max_size=4),
    seed=st.integers(0, 10**6),
)
def test_split_fraction_partition_property(n: int, weights: list[int], seed: int) -> None:
    fractions = [w / sum(weights) for w in weights]
    parts = split(make(n), fractions, seed)
    texts = [t for p in parts for t in p.texts]
    assert sorted(texts) == sorted(make(n).texts)  # disjoint and complete
    for p, f in zip(parts, fractions, strict=True):
        assert abs(len(p) - f * n) < 1.0 + 1e-9
