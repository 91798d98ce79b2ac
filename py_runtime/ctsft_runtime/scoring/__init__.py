"""Relevance of attention heads: the mean baseline and four scorers behind one interface."""

from .baseline import check_discovery_set, mean_baseline
from .context import ScoreContext
from .registry import SCORERS, ScoreResult, score_heads

__all__ = ["SCORERS", "ScoreContext", "ScoreResult", "check_discovery_set", "mean_baseline", "score_heads"]
