"""Evaluation: predictions, accuracy, macro-F1, per-class counts, confusion matrices."""

from .metrics import classification_report
from .predict import LogitBatch, logit_batches, predict

__all__ = ["LogitBatch", "classification_report", "logit_batches", "predict"]
