"""Shared pytest setup: the runtime's sources come first on sys.path, as the SDK arranges."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "py_runtime"))
