"""Metrics against hand-computed values."""

from __future__ import annotations

import pytest

from ctsft_runtime.evaluation import classification_report


def test_known_confusion() -> None:
    gold = [0, 0, 0, 1, 1, 2]
    pred = [0, 0, 1, 1, 2, 2]
    r = classification_report(gold, pred, ["a", "b", "c"])
    assert r["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert r["accuracy"] == pytest.approx(4 / 6)
    # per-class F1: a = 2*1*(2/3)/(1+2/3) = 0.8; b = 0.5; c = 2*0.5*1/1.5 = 2/3
    assert [c["f1"] for c in r["perClass"]] == pytest.approx([0.8, 0.5, 2 / 3])
    assert r["macroF1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert [c["support"] for c in r["perClass"]] == [3, 2, 1]


def test_absent_class_is_not_averaged() -> None:
    r = classification_report([0, 1], [0, 1], ["x", "y", "z"])
    assert r["macroF1"] == 1.0 and r["perClass"][2]["support"] == 0
