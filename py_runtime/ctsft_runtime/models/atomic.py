"""Atomic saves, and the one rule for where a directory may be written.

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

**Outputs never destroy what ctsft did not write** (`check_out_dir`, applied by every
`atomic_dir`, so by model.save, model.create / new-model, train --out, delta --out and the
delta beside a checkpoint). A directory target must be

1. absent, or an empty folder; or
2. a folder ctsft wrote: it holds the marker `ctsft-artifact.json` (MARKER_FILE) that
   every `atomic_dir` writes, listing the entries it wrote, and nothing else was added
   beside them (a writer may also recognise its own pre-marker layout, e.g. a bare delta);
3. anything else only with `overwrite=True` (SDK `overwrite: true`, CLI `--overwrite`),
   and then the whole folder is replaced, files ctsft did not write included: that is
   what the caller asked for.

Never, not even with overwrite: a file (a directory never replaces a file), the runtime's
working directory, the path root of a remote runtime, the home directory, or any parent
of one of them. Refusals are `BadRequest` naming the field (`out` by default), saying what
is there and how to proceed.

Temporary names start with "." and carry the target's name and the writer's pid:
`.<name>.<pid>-<random>.tmp` (a build that never finished) and `.<name>.<pid>-<random>.old`
(a replaced directory not yet deleted). They are left only by a hard kill (SIGKILL, power
loss). The next save to the same target removes them when their writer is gone (the pid
is not running) or when they are older than STALE_AFTER_S (one day); names without a pid
(written before it was recorded) only by age. Nothing else is ever removed.

One writer per target at a time: two concurrent `atomic_dir` saves to the same path both
complete and the later rename wins, but which one is later is not defined.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from ..distributed import is_follower
from ..errors import BadRequest

__all__ = [
    "MARKER_FILE",
    "STALE_AFTER_S",
    "atomic_dir",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_out_dir",
    "read_marker",
    "sweep_stale_siblings",
]

_TRIES = 100  # random-name collisions are astronomically rare; this only bounds the loop

MARKER_FILE = "ctsft-artifact.json"
"""Written by every `atomic_dir` into the directory it publishes: `{"writer": "ctsft",
"kind": ..., "files": [entries written], "runtimeVersion": ...}`. Its presence (and the
absence of other entries) is what makes a folder safe to replace without `overwrite`."""

STALE_AFTER_S = 24 * 3600
"""A temporary sibling this old (newest mtime inside it) is stale even if its pid runs."""

_MAX_LISTED = 5


def _sibling(final: Path, suffix: str) -> Path:
    """A fresh, not-yet-existing name next to `final` (same folder, so same filesystem)."""
    return final.with_name(f".{final.name}.{os.getpid()}-{secrets.token_hex(6)}{suffix}")


def _stale_pattern(name: str) -> re.Pattern[str]:
    # Exactly the names `_sibling` makes (and the pid-less ones of earlier versions).
    return re.compile(rf"\.{re.escape(name)}\.(?:(?P<pid>\d+)-)?[0-9a-f]{{12}}\.(?:tmp|old)")


def _pid_running(pid: int) -> bool:
    if pid <= 0:
        return True  # not a real writer pid: never treat it as dead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's process), or unknowable: assume running
    return True


def _newest_mtime(path: Path) -> float:
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for folder, dirs, files in os.walk(path):
            for name in (*dirs, *files):
                try:
                    newest = max(newest, os.lstat(os.path.join(folder, name)).st_mtime)
                except OSError:
                    continue
    return newest


def sweep_stale_siblings(final: str | os.PathLike[str], *, now: float | None = None) -> list[Path]:
    """Remove leftovers of interrupted saves to `final` (see the module doc); returns them.

    Only names matching the helpers' own `.<name>.<pid>-<hex12>.tmp|.old` pattern are
    considered, and only when their writer pid is not running, or when they are older than
    STALE_AFTER_S. Failures to remove are ignored: a sweep never fails a save.
    """
    target = Path(final)
    parent = target.parent
    pattern = _stale_pattern(target.name)
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m is None:
            continue
        path = Path(entry.path)
        try:
            pid = m.group("pid")
            dead = pid is not None and int(pid) != os.getpid() and not _pid_running(int(pid))
            if not dead and now - _newest_mtime(path) < STALE_AFTER_S:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


def read_marker(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The folder's ctsft marker, or None when it has none (or an unreadable one)."""
    try:
        body = json.loads(Path(folder, MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(body, dict) or body.get("writer") != "ctsft" or not isinstance(body.get("files"), list):
        return None
    return body


def _describe(names: list[str], folder: Path) -> str:
    shown = [f"{n}/" if (folder / n).is_dir() else n for n in names[:_MAX_LISTED]]
    more = f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else ""
    return ", ".join(shown) + more


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _protected_paths(protected: Iterable[str | os.PathLike[str] | None]) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    with suppress(OSError):  # a deleted working directory has no path left to protect
        found.append((_real(Path.cwd()), "the runtime's working directory"))
    for p in protected:
        if p is not None:
            found.append((_real(Path(p)), "the runtime's path root"))
    with suppress(KeyError, RuntimeError):  # no home directory known: nothing to guard
        found.append((_real(Path.home()), "the home directory"))
    return found


def check_out_dir(
    final: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    field: str = "out",
    protected: Iterable[str | os.PathLike[str] | None] = (),
    recognize: Iterable[str] = (),
) -> Path:
    """Apply the output rule of the module doc to the directory target `final`.

    Returns the path to write (a symlinked target resolved to the folder it points to).
    `protected` adds paths (the remote path root) that are never replaced, nor any parent
    of them, whatever `overwrite` says; the working directory and home always are.
    `recognize`: file names of a writer's own layout from before the marker existed (a
    folder holding only such files counts as ctsft's). Raises BadRequest on `field`.
    """
    target = _resolve_target(final)
    real = _real(target)
    for guarded, what in _protected_paths(protected):
        if guarded == real or guarded.is_relative_to(real):
            which = "is" if guarded == real else "is a parent of"
            raise BadRequest(
                f"{field} {target} {which} {what} ({guarded}); ctsft never replaces it, not even with "
                f"overwrite. Save into a new subfolder instead, e.g. {target / 'model'}",
                path=field,
            )
    if not target.exists():
        return target
    if not target.is_dir():
        raise BadRequest(
            f"{field} {target} exists and is not a directory; a directory never replaces a file. "
            "Choose another path, or move the file away",
            path=field,
        )
    names = sorted(os.listdir(target))
    if not names or overwrite:
        return target
    marker = read_marker(target)
    if marker is not None:
        foreign = [n for n in names if n != MARKER_FILE and n not in marker["files"]]
        if not foreign:
            return target
        how = (
            "move them out, choose another folder, or pass overwrite=True (SDK overwrite: true, "
            "CLI --overwrite) to replace the whole folder"
        )
        raise BadRequest(
            f"{field} {target} was written by ctsft ({marker.get('kind', 'artifact')}), but also holds "
            f"{_describe(foreign, target)}, which ctsft did not write; {how}",
            path=field,
            # A remote client is not told the names of files in the folder.
            remote_message=f"{field} {target} was written by ctsft but also holds files ctsft did not write; {how}",
        )
    own = set(recognize)
    if own and all(n in own and (target / n).is_file() for n in names):
        return target
    how = (
        "choose a new or empty folder, or pass overwrite=True (SDK overwrite: true, CLI --overwrite) "
        "to replace the whole folder, those files included"
    )
    raise BadRequest(
        f"{field} {target} is a non-empty folder that ctsft did not write (it holds {_describe(names, target)} "
        f"and no {MARKER_FILE}); {how}",
        path=field,
        remote_message=f"{field} {target} is a non-empty folder that ctsft did not write (no {MARKER_FILE}); {how}",
    )


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
def atomic_dir(
    final: str | os.PathLike[str],
    *,
    kind: str = "directory",
    overwrite: bool = False,
    field: str = "out",
    protected: Iterable[str | os.PathLike[str] | None] = (),
    recognize: Iterable[str] = (),
) -> Iterator[Path]:
    """Yield an empty temporary directory; on success it becomes `final`, atomically.

    Before anything is built, `final` must pass `check_out_dir` (the output rule in the
    module doc; `overwrite`, `field`, `protected`, `recognize` go to it), and stale
    temporary siblings of earlier interrupted saves are swept. Fill the yielded directory
    inside the `with` block. On normal exit the marker (MARKER_FILE, recording `kind` and
    the entries written) is added, the contents are fsynced, the rule is checked again (a
    file added meanwhile is not destroyed either), and the folder replaces `final`
    (created, or swapped with an existing directory; see the module doc for the short
    window where `final` is absent). On any exception, including KeyboardInterrupt, the
    temporary directory is removed and `final` is left exactly as it was. The parent
    folder is created if missing.
    """
    if is_follower():
        # Several ranks: rank 0 writes what every rank holds. A follower still runs the
        # caller's code (so it fails where rank 0 does) into scratch space it then drops.
        with tempfile.TemporaryDirectory(prefix="ctsft-rank-scratch-") as scratch:
            yield Path(scratch)
        return
    rule = {"overwrite": overwrite, "field": field, "protected": tuple(protected), "recognize": tuple(recognize)}
    target = check_out_dir(final, **rule)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_siblings(target)
    tmp = _make_temp_dir(target)
    try:
        yield tmp
        _write_marker(tmp, kind)
        _fsync_tree(tmp)
        check_out_dir(target, **rule)
        _publish(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_marker(folder: Path, kind: str) -> None:
    from .. import __version__

    files = sorted(n for n in os.listdir(folder) if n != MARKER_FILE)
    body = {"writer": "ctsft", "kind": kind, "files": files, "runtimeVersion": __version__}
    (folder / MARKER_FILE).write_text(json.dumps(body, indent=1, sort_keys=True) + "\n", encoding="utf-8")


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
    """Replace the file `path` with `data` atomically (temp file in the same folder).
    With several ranks only rank 0 writes."""
    if is_follower():
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_siblings(target)
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
