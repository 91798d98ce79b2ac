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
