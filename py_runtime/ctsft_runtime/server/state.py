"""What lives in the runtime between calls: the default device now, models and data later."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RuntimeState:
    device: str = "auto"
