"""Paths a client names over the wire, and the rule that confines them in remote mode.

Remote mode (`RuntimeState.path_root` set) trusts the client with the files under the root
and nothing else, links included:

- a path is resolved against the root (never against the server's working directory),
  following every link, and must end inside the root;
- a directory the client names (a checkpoint, a NusaX folder, a delta or adapter folder)
  must hold no link, at any depth, that leads outside the root, since the loaders open the
  files inside it by name (`model.safetensors`, `jav/train.csv`, ...); a checkpoint's
  shard index must name shards inside the root too;
- `model.load`'s source is a path when it is spelled as one (`./`, `/`, `~`, or with a
  `..` part) or when something of that name exists under the root; otherwise it is a Hugging Face hub id, used
  only with `allowDownload` (the hub cache is outside the root) and only when it is
  syntactically a hub id and names nothing relative to the server's working directory
  (transformers would read that as a local folder).

Local modes trust the caller (same user, same machine): paths are used as given.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..errors import BadRequest

# A named folder with more entries than this is refused rather than walked (a checkpoint or a
# NusaX folder holds a few dozen).
MAX_TREE_ENTRIES = 100_000

HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")
_SPELLED_AS_PATH = (".", "/", "~")


def expand_home(raw: str, field: str) -> Path:
    """`raw` with `~` and `~name` expanded, as a shell would; a `~name` that names no user with
    a home directory is refused naming the field (pathlib raises a bare RuntimeError)."""
    try:
        return Path(raw).expanduser()
    except RuntimeError as e:
        raise BadRequest(
            f"{raw!r} begins with '~', which names a user's home, and {e}; write ./{raw} for a file so named",
            path=field,
        ) from e


def confine(root: Path, raw: str, field: str) -> Path:
    """`raw` resolved against `root` (links followed); refused unless it ends inside `root`.
    A directory is also checked with `check_tree`."""
    root = root.resolve()
    # `~` is not expanded here: the server's home is outside the root anyway, and whether
    # `~name` expands would tell a client which users the host has.
    p = (root / raw).resolve()
    if raw.startswith("~") or not p.is_relative_to(root):
        raise BadRequest(f"path {raw!r} is outside the runtime's root {root}", path=field)
    if p.is_dir():
        check_tree(root, p, raw, field)
    return p


def check_tree(root: Path, top: Path, raw: str, field: str) -> None:
    """Refuse a directory holding a link (at any depth, through linked folders) that
    resolves outside `root`. The message names the link, never its target."""
    seen = {top}
    stack: list[tuple[Path, str]] = [(top, raw.rstrip("/") or raw)]
    count = 0
    while stack:
        folder, shown = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as e:
            raise BadRequest(f"cannot list {shown!r} ({e.strerror})", path=field) from None
        for entry in entries:
            count += 1
            if count > MAX_TREE_ENTRIES:
                raise BadRequest(
                    f"{raw!r} holds more than {MAX_TREE_ENTRIES} entries: name a smaller folder", path=field
                )
            name = f"{shown}/{entry.name}"
            if entry.is_symlink():
                real = Path(entry.path).resolve()
                if not real.is_relative_to(root):
                    raise BadRequest(
                        f"{name!r} is a link that leads outside the runtime's root; a remote client may only "
                        "read files inside it",
                        path=field,
                    )
                if real.is_dir() and real not in seen:
                    seen.add(real)
                    stack.append((real, name))
            elif entry.is_dir(follow_symlinks=False):
                stack.append((Path(entry.path), name))


def check_shard_index(root: Path, checkpoint: Path, raw: str, field: str) -> None:
    """A sharded checkpoint's `*.index.json` names its shard files; transformers opens them
    relative to the folder, so `../` in a name would reach outside it. Every shard must
    resolve inside the root."""
    root = root.resolve()
    for index in checkpoint.glob("*.index.json"):
        try:
            body = json.loads(index.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise BadRequest(f"{raw!r}: {index.name} is not a readable JSON shard index", path=field) from None
        weight_map = body.get("weight_map") if isinstance(body, dict) else None
        if not isinstance(weight_map, dict):
            raise BadRequest(f"{raw!r}: {index.name} has no weight_map object", path=field)
        for shard in set(weight_map.values()):
            if not isinstance(shard, str) or not (checkpoint / shard).resolve().is_relative_to(root):
                raise BadRequest(
                    f"{raw!r}: {index.name} names a shard outside the runtime's root (or not a file name)",
                    path=field,
                )


def model_source(root: Path | None, raw: str, *, allow_download: bool, field: str = "source") -> str:
    """What `model.load` loads for `source`: a path, or a hub id (rule: module doc)."""
    if not raw or "\x00" in raw:
        raise BadRequest("source is empty or contains NUL", path=field)
    if root is None:
        p = expand_home(raw, field)
        if p.exists() or raw.startswith(_SPELLED_AS_PATH):
            if not p.exists():
                raise BadRequest(f"{raw!r} does not exist", path=field)
            return str(p)
        return raw
    root = root.resolve()
    # A `..` part makes it a path (no hub id has one), so that the existence check cannot
    # follow `d/../../x` out of the root and tell the client what is there.
    if raw.startswith(_SPELLED_AS_PATH) or ".." in Path(raw).parts or os.path.lexists(root / raw):
        p = confine(root, raw, field)
        if not p.exists():
            raise BadRequest(f"{raw!r} does not exist under the runtime's root", path=field)
        if p.is_dir():
            check_shard_index(root, p, raw, field)
        return str(p)
    if not allow_download:
        raise BadRequest(
            f"{raw!r} does not exist under the runtime's root; a remote runtime loads a Hugging Face hub id only "
            "with allowDownload",
            path=field,
        )
    if not HUB_ID.fullmatch(raw) or ".." in raw:
        raise BadRequest(f"{raw!r} is neither a path under the runtime's root nor a hub id (org/name)", path=field)
    if os.path.lexists(raw):
        raise BadRequest(
            f"{raw!r} names nothing under the runtime's root, and as a hub id it would be read from the server's "
            "working directory; give a path under the root",
            path=field,
        )
    return raw
