"""Evaluation: predictions, accuracy, macro-F1, per-class counts, confusion matrices."""

from .metrics import classification_report
from .predict import predict

__all__ = ["classification_report", "predict"]
