"""The pieces of the per-run trust figures: Spearman with ties, the reference's competitor."""

from __future__ import annotations

import torch

from ctsft_runtime.scoring.faithfulness import spearman
from ctsft_runtime.scoring.margins import margin


def test_spearman_known_values_ties_and_undefined() -> None:
    assert spearman(torch.tensor([1.0, 2, 3, 4]), torch.tensor([10.0, 20, 30, 40])) == 1.0
    assert spearman(torch.tensor([1.0, 2, 3, 4]), torch.tensor([4.0, 3, 2, 1])) == -1.0
    # ties share their average rank: ranks (0, 1.5, 1.5, 3) vs (0, 1, 2, 3) -> 0.9486...
    rho = spearman(torch.tensor([1.0, 2, 2, 3]), torch.tensor([1.0, 2, 3, 4]))
    assert rho is not None and abs(rho - 0.9486832980505138) < 1e-9
    assert spearman(torch.tensor([1.0, 1, 1]), torch.tensor([1.0, 2, 3])) is None  # constant side
    assert spearman(torch.tensor([1.0, float("nan"), 3, 2]), torch.tensor([1.0, 5, 3, 2])) == 1.0  # NaN skipped
    assert spearman(torch.tensor([1.0]), torch.tensor([2.0])) is None


def test_competitor_is_the_models_best_other_class() -> None:
    rel = torch.tensor([[1.0, 3.0, 2.0]])
    gold = torch.tensor([0])
    assert margin(rel, gold).item() == -2.0  # max over the other relevant logits
    model_logits = torch.tensor([[0.0, 0.0, 9.0]])  # the model weighs class 2 against the answer
    assert margin(rel, gold, reference=model_logits).item() == -1.0
    # [S, B, C] values against a [S, B, C] reference, per row
    rel3 = torch.tensor([[[1.0, 3.0, 2.0], [0.0, 1.0, 5.0]]])
    ref3 = torch.tensor([[[0.0, 5.0, 1.0], [0.0, 1.0, 2.0]]])
    assert margin(rel3, torch.tensor([0, 2]), reference=ref3).tolist() == [[-2.0, 4.0]]


def test_stability_warns_above_its_threshold() -> None:
    from ctsft_runtime.scoring.cdt_scores import STABILITY_WARN, Stability

    calm = Stability(max_ratio=STABILITY_WARN / 2, layer=1, head=(1, 2), example=3).to_json()
    assert calm["warning"] is None and calm["threshold"] == STABILITY_WARN and calm["head"] == [1, 2]
    wild = Stability(max_ratio=STABILITY_WARN * 100, layer=3, head=(0, 1), example=19).to_json()
    text = str(wild["warning"])
    assert "unstable" in text and "layer 3" in text and "example 19" in text
    # observe() keeps the worst row and maps it back to (head, example): rows k * bsz + b
    s = Stability()
    rel = torch.zeros(4, 2, 3)
    irrel = torch.ones(4, 2, 3)
    rel[3, 0, 0] = 5.0  # source k=1 (rows 2..3), example b=1 of this batch
    s.observe([(0, 0), (2, 1)], 10, 2, "layer", 2, rel, irrel, [0, 1])
    assert (s.layer, s.head, s.example) == (2, (2, 1), 11) and abs(s.max_ratio - 5 / 6) < 1e-6
