"""What lives in the runtime between calls: models and datasets behind handles, the default
device, and the directory that wire paths must stay inside (remote mode)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BadRequest, NotFound


@dataclass
class RuntimeState:
    device: str = "auto"
    # Remote mode confines every path a client names to this directory; local modes trust the
    # caller (it is the same user on the same machine).
    path_root: Path | None = None
    # Remote mode bounds how many models one client may hold at once.
    max_models: int | None = None
    models: dict[str, Any] = field(default_factory=dict)
    datasets: dict[str, Any] = field(default_factory=dict)
    baselines: dict[str, Any] = field(default_factory=dict)
    _next_id: int = 1

    def add(self, table: dict[str, Any], prefix: str, value: Any) -> str:
        if table is self.models and self.max_models is not None and len(table) >= self.max_models:
            raise BadRequest(
                f"this client already holds {len(table)} models, the server's limit; release one first",
                path="handle",
            )
        handle = f"{prefix}{self._next_id}"
        self._next_id += 1
        table[handle] = value
        return handle

    def mark(self) -> tuple[int, frozenset[str]]:
        """Where the handles stand now; `undo_since` returns to it (several ranks, server/ranks.py)."""
        return self._next_id, frozenset(h for t in (self.models, self.datasets, self.baselines) for h in t)

    def undo_since(self, mark: tuple[int, frozenset[str]]) -> None:
        """Drop the handles added since `mark` and reuse their ids: after an op that succeeded
        on some ranks only, every rank's handles are the same again."""
        next_id, held = mark
        for table in (self.models, self.datasets, self.baselines):
            for h in [h for h in table if h not in held]:
                del table[h]
        self._next_id = next_id

    def get(self, table: dict[str, Any], kind: str, handle: str, path: str) -> Any:
        if handle not in table:
            known = ", ".join(sorted(table)) or "none"  # only this client's own handles
            raise NotFound(f"no {kind} with handle {handle!r} (loaded: {known})", path=path)
        return table[handle]

    def release(self, handle: str) -> bool:
        return any(table.pop(handle, None) is not None for table in (self.models, self.datasets, self.baselines))

    def check_path(self, raw: str, field_path: str, *, must_exist: bool = False) -> Path:
        """Resolve a path received over the wire; refuse NULs and, in remote mode, escapes:
        resolved against the root with every link followed, it must end inside the root, and
        a directory must hold no link leading out of it (rule: `ops/paths.py`)."""
        from .paths import confine, expand_home

        if not raw or "\x00" in raw:
            raise BadRequest("path is empty or contains NUL", path=field_path)
        p = expand_home(raw, field_path) if self.path_root is None else confine(self.path_root, raw, field_path)
        if must_exist and not p.exists():
            raise BadRequest(f"{raw!r} does not exist", path=field_path)
        return p
