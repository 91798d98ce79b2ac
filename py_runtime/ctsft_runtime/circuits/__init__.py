"""Circuits: parameter accounting, selection strategies, fingerprints, JSON artifacts."""

from .artifact import read_artifact, write_json
from .fingerprint import fingerprint
from .params import param_table
from .select import circuit_params, rank, select_heads

__all__ = ["circuit_params", "fingerprint", "param_table", "rank", "read_artifact", "select_heads", "write_json"]
