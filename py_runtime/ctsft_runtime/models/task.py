"""The task a checkpoint was trained for: prompt template, verbalizer and label names.

Saved as `ctsft.json` beside the weights, so evaluating a checkpoint uses the template it
was trained with unless the caller overrides it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..data import PromptFormat

TASK_FILE = "ctsft.json"
TASK_VERSION = 1


@dataclass(frozen=True)
class TaskConfig:
    template: str
    verbalizer: dict[str, str] | None
    label_names: list[str]

    @property
    def prompt(self) -> PromptFormat:
        return PromptFormat(self.template, self.verbalizer)

    def to_json(self) -> str:
        body = {
            "ctsft_task_version": TASK_VERSION,
            "template": self.template,
            "verbalizer": self.verbalizer,
            "label_names": self.label_names,
        }
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    @staticmethod
    def read(directory: Path) -> TaskConfig | None:
        path = directory / TASK_FILE
        if not path.is_file():
            return None
        raw = json.loads(path.read_text())
        return TaskConfig(raw["template"], raw.get("verbalizer"), list(raw["label_names"]))
