"""Template slots, in one place for both layers that parse them: the data layer renders
templates, the ops layer checks wire fields and reads requests without importing torch
(the data package does). A slot is `{name}`, a field name an identifier."""

from __future__ import annotations

import re

FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SLOT = re.compile(r"\{(" + FIELD_NAME.pattern + r")\}")


def slot_names(template: str) -> list[str]:
    """The slots of `template`, in order (`"{text}\\nSentiment:"` → `["text"]`)."""
    return SLOT.findall(template)
