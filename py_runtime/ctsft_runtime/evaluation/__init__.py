"""Evaluation: predictions, accuracy, macro-F1, per-class counts, confusion matrices, LM loss."""

from .lm_loss import LMLoss, lm_loss, lm_text
from .metrics import classification_report
from .predict import LogitBatch, logit_batches, predict

__all__ = ["LMLoss", "LogitBatch", "classification_report", "lm_loss", "lm_text", "logit_batches", "predict"]
