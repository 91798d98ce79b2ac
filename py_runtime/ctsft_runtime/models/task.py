"""The task a checkpoint was trained for: prompt template, verbalizer, label names and, for
pair-input tasks, the fields (field name -> the column it was read from).

Saved as `ctsft.json` beside the weights, so evaluating a checkpoint uses the template it
was trained with unless the caller overrides it, and a pair-input checkpoint reads the same
columns of a new file (or takes records of its fields) without repeating the mapping.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..data import PromptFormat
from ..errors import BadRequest

TASK_FILE = "ctsft.json"
TASK_VERSION = 1


@dataclass(frozen=True)
class TaskConfig:
    template: str
    verbalizer: dict[str, str] | None
    label_names: list[str]
    fields: dict[str, str] | None = None  # None: a single-text task

    @property
    def prompt(self) -> PromptFormat:
        return PromptFormat(self.template, self.verbalizer, tuple(self.fields) if self.fields else None)

    def to_json(self) -> str:
        body = {
            "ctsft_task_version": TASK_VERSION,
            "template": self.template,
            "verbalizer": self.verbalizer,
            "label_names": self.label_names,
            "fields": self.fields,
        }
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    @staticmethod
    def read(directory: Path) -> TaskConfig | None:
        """The task in `directory/ctsft.json`, None without one. A file that is not valid JSON
        or lacks a field is a BadRequest naming the file and the field; messages never
        quote the file's text (it may be any file of that name)."""
        path = directory / TASK_FILE
        if not path.is_file():
            return None
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise BadRequest(
                f"{path} is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno}); fix or delete it",
                path="source",
            ) from None
        except UnicodeDecodeError as e:
            raise BadRequest(f"{path} is not UTF-8 text (byte {e.start}); fix or delete it", path="source") from None
        if not isinstance(raw, dict):
            raise BadRequest(f"{path} must hold a JSON object, not a {type(raw).__name__}", path="source")
        template, verbalizer, labels = raw.get("template"), raw.get("verbalizer"), raw.get("label_names")
        fields = raw.get("fields")  # absent in files written before pair-input tasks: single text
        if not isinstance(template, str):
            raise BadRequest(f"{path}: `template` is {_what(template)}, expected a string", path="source")
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
            raise BadRequest(
                f"{path}: `label_names` is {_what(labels)}, expected a non-empty list of strings", path="source"
            )
        if verbalizer is not None and (
            not isinstance(verbalizer, dict) or not all(isinstance(v, str) for v in verbalizer.values())
        ):
            raise BadRequest(
                f"{path}: `verbalizer` is {_what(verbalizer)}, expected null or an object of strings", path="source"
            )
        if fields is not None and (
            not isinstance(fields, dict) or not fields or not all(isinstance(v, str) for v in fields.values())
        ):
            raise BadRequest(
                f"{path}: `fields` is {_what(fields)}, expected null or a non-empty object of strings", path="source"
            )
        try:
            # {text} exactly once, or one slot per field
            PromptFormat(template, verbalizer, tuple(fields) if fields else None)
        except BadRequest as e:
            raise BadRequest(
                f"{path}: {e.message}", path="source", remote_message=f"{path}: {e.remote_message}"
            ) from None
        return TaskConfig(template, verbalizer, list(labels), dict(fields) if fields else None)


def _what(value: object) -> str:
    """A JSON value's kind, never its text."""
    if value is None:
        return "missing or null"
    kinds = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list", dict: "an object"}
    return kinds.get(type(value), type(value).__name__)
