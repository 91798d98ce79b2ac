"""Atomic saves: a reader sees the old artifact or the new one, never a half-written one.

Every save in the runtime (checkpoints, tokenizers, head maps, metrics files) goes
through these helpers, so an interrupted run (exception, Ctrl-C, a killed worker) cannot
leave a directory that `from_pretrained` half-loads.

- `atomic_write_text` / `atomic_write_bytes`: write a temporary file in the target's own
  folder, fsync it, then `os.replace` it over the target (atomic on POSIX and Windows).
- `atomic_dir`: build a whole directory in a temporary sibling, then move it into place.
  POSIX has no portable "replace a non-empty directory" call, so an existing target is
  renamed aside first and the new one renamed in; between those two renames (two
  metadata operations, microseconds) the target path does not exist. A reader that hits
  that window sees "not found", never a mix of old and new files. If the second rename
  fails, the old directory is moved back.

Temporary names start with "." and carry the target's name, so leftovers after a hard
kill (SIGKILL, power loss) are easy to spot: `.<name>.<random>.tmp` (a build that never
finished) and `.<name>.<random>.old` (a replaced directory not yet deleted). Neither is
ever read by these helpers; deleting them by hand is safe once no save is running.

One writer per target at a time: two concurrent `atomic_dir` saves to the same path both
complete and the later rename wins, but which one is later is not defined.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_dir", "atomic_write_bytes", "atomic_write_text"]

_TRIES = 100  # random-name collisions are astronomically rare; this only bounds the loop


def _sibling(final: Path, suffix: str) -> Path:
    """A fresh, not-yet-existing name next to `final` (same folder, so same filesystem)."""
    return final.with_name(f".{final.name}.{secrets.token_hex(6)}{suffix}")


def _fsync_dir(path: Path) -> None:
    # Makes a rename inside `path` durable. Directories cannot be opened on Windows; there
    # the rename is already durable enough and we skip it.
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """fsync every file and folder under `root`, so the rename publishes complete data.

    Without this, a crash shortly after the rename can leave the new name pointing at
    files whose contents never reached the disk (zero-length safetensors).
    """
    for folder, _dirs, files in os.walk(root):
        for name in files:
            file = Path(folder, name)
            if file.is_symlink():
                continue
            fd = os.open(file, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(folder))


def _make_temp_dir(final: Path) -> Path:
    # os.mkdir (unlike tempfile.mkdtemp, which forces 0o700) honours the umask, so the
    # published directory gets the same permissions a plain mkdir would give it.
    for _ in range(_TRIES):
        tmp = _sibling(final, ".tmp")
        try:
            os.mkdir(tmp)
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"could not create a temporary directory next to {final}")


def _resolve_target(final: str | os.PathLike[str]) -> Path:
    # A symlinked target (e.g. a checkpoint folder linked onto a big disk) keeps its link:
    # we replace the directory it points to, and build next to that one so the final
    # rename stays on one filesystem.
    path = Path(final)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    return path.absolute()


@contextmanager
def atomic_dir(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary directory; on success it becomes `final`, atomically.

    Fill the yielded directory inside the `with` block. On normal exit its contents are
    fsynced and it replaces `final` (created, or swapped with an existing directory; see
    the module doc for the short window where `final` is absent). On any exception,
    including KeyboardInterrupt, the temporary directory is removed and `final` is left
    exactly as it was. The parent folder is created if missing.

    Raises NotADirectoryError (before yielding) when `final` exists and is not a folder:
    a file there is never silently replaced by a directory.
    """
    target = _resolve_target(final)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{target} exists and is not a directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _make_temp_dir(target)
    try:
        yield tmp
        _fsync_tree(tmp)
        _publish(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _publish(tmp: Path, target: Path) -> None:
    """Move the finished `tmp` to `target`, replacing an existing directory there."""
    if not target.exists():
        # If someone creates `target` right now, rename fails (non-empty) or replaces an
        # empty folder (POSIX semantics); both are acceptable outcomes for a lost race.
        os.rename(tmp, target)
        _fsync_dir(target.parent)
        return
    if not target.is_dir():
        raise NotADirectoryError(f"{target} exists and is not a directory")
    old = _sibling(target, ".old")
    os.rename(target, old)
    # --- window: `target` does not exist until the next rename completes ---
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(old, target)  # put the previous version back; tmp is removed by caller
        raise
    _fsync_dir(target.parent)
    # The new version is live; failing to delete the old copy must not fail the save.
    shutil.rmtree(old, ignore_errors=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace the file `path` with `data` atomically (temp file in the same folder)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(_TRIES):
        tmp = _sibling(target, ".tmp")
        try:
            # O_EXCL: never clobber a file we did not create; 0o666 & ~umask like open().
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        break
    else:
        raise FileExistsError(f"could not create a temporary file next to {target}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> None:
    """Replace the file `path` with `text` atomically. Newlines are written as given
    (no platform translation), so the bytes on disk do not depend on the OS."""
    atomic_write_bytes(path, text.encode(encoding))
