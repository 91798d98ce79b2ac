"""Classification metrics from gold and predicted label indices."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def classification_report(gold: Sequence[int], pred: Sequence[int], label_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 (unweighted mean over classes; a class never predicted and never
    present is skipped), per-class precision/recall/F1/support, and the confusion matrix
    `confusion[gold][pred]`."""
    n_cls = len(label_names)
    confusion = [[0] * n_cls for _ in range(n_cls)]
    for g, p in zip(gold, pred, strict=True):
        confusion[g][p] += 1
    per_class = []
    f1s = []
    for c, name in enumerate(label_names):
        tp = confusion[c][c]
        support = sum(confusion[c])
        predicted = sum(row[c] for row in confusion)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        if support or predicted:
            f1s.append(f1)
        per_class.append(
            {
                "label": name,
                "support": support,
                "predicted": predicted,
                "correct": tp,
                "precision": precision,
                "recall": recall,
                "f1": f1,
            }
        )
    n = len(gold)
    return {
        "n": n,
        "accuracy": sum(confusion[c][c] for c in range(n_cls)) / n if n else 0.0,
        "macroF1": sum(f1s) / len(f1s) if f1s else 0.0,
        "perClass": per_class,
        "confusion": confusion,
    }
