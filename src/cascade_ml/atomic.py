"""Write-then-rename helpers: a killed process leaves the old file (or folder) or the new one.

Every file the project writes (store partitions, derived tables, manifests, reports) goes through
``atomic_file`` (model bundle folders through ``staged_dir``) so the rule lives in one place.

A killed write leaves its temp file or folder behind. Every temp name starts with
``.tmp-<host>-<pid>-`` (``temp_prefix``): the host tag and the writer's pid make it provable that
a leftover is ours and that its writer is dead, so ``sweep_temps`` (run by every writer on its
own folder, and by stores on start) removes only those.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

TEMP_NAME = re.compile(r"^\.tmp-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-")
# temp files of the project before the names carried a pid (mkstemp's 8 random characters)
_LEGACY_TEMP = re.compile(r"^\.tmp-[a-z0-9_]{8}(\.[A-Za-z0-9]+)?$")
LEGACY_TEMP_AGE_S = 3600.0  # no write of the project takes an hour: older legacy temps are dead
_OLD = "-old"  # replace_dir's name for the folder it moves aside


@functools.cache
def host_tag() -> str:
    """Eight hex digits naming this machine (folders may be shared between machines)."""
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def temp_prefix() -> str:
    """The start of every temp name this process makes: ``.tmp-<host>-<pid>-``."""
    return f".tmp-{host_tag()}-{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def is_stale_temp(path: Path, now: float | None = None) -> bool:
    """True for a temp file or folder of this module whose writer is provably gone: made on
    this machine by a pid that is no longer alive (a pid reused by a live process keeps it),
    or an old-style temp file untouched for an hour."""
    name = path.name
    match = TEMP_NAME.match(name)
    if match is not None:
        return match["host"] == host_tag() and not _pid_alive(int(match["pid"]))
    if _LEGACY_TEMP.match(name) and path.is_file():
        try:
            age = (now or time.time()) - path.stat().st_mtime
        except FileNotFoundError:
            return False
        return age > LEGACY_TEMP_AGE_S
    return False


def sweep_temps(folder: str | Path, *, recursive: bool = False) -> list[Path]:
    """Remove the stale temps (``is_stale_temp``) in ``folder`` (and below it when
    ``recursive``; symlinked folders are not entered). Returns what was removed.

    A folder ``replace_dir`` had moved aside (``<prefix><name>-old``) whose writer died before
    the new one took its place goes back to ``<name>``: the reader finds the old version."""
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    now = time.time()
    for dirpath, dirnames, filenames in os.walk(folder):
        base = Path(dirpath)
        for name in [*dirnames, *filenames]:
            if not name.startswith(".tmp-"):
                continue
            path = base / name
            if not is_stale_temp(path, now):
                continue
            try:
                if _restore_moved_aside(path):
                    pass
                elif path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            except OSError:  # a read-only folder (a server reading a store) keeps it
                continue
            removed.append(path)
        dirnames[:] = [d for d in dirnames if recursive and not d.startswith(".tmp-")]
        if not recursive:
            break
    return removed


def _restore_moved_aside(path: Path) -> bool:
    match = TEMP_NAME.match(path.name)
    if match is None or not path.name.endswith(_OLD) or not path.is_dir():
        return False
    target = path.with_name(path.name[match.end():-len(_OLD)])
    if target.exists():
        return False
    os.replace(path, target)
    return True


_SWEPT: set[Path] = set()


def sweep_once(folder: str | Path) -> list[Path]:
    """``sweep_temps(folder, recursive=True)`` the first time this process opens ``folder``
    (a store's root): the tree is walked once per process, not at every open."""
    key = Path(folder).resolve()
    if key in _SWEPT:
        return []
    _SWEPT.add(key)
    return sweep_temps(key, recursive=True)


@contextmanager
def atomic_file(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Yield a handle on a temp file beside ``path``; on success fsync and rename it over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_temps(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(), suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, payload: object) -> None:
    """Atomically write ``payload`` as indented, key-sorted JSON."""
    with atomic_file(path, "w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True, default=str)


def read_json(path: str | Path) -> Any | None:
    """The JSON document at ``path``, or None when it does not exist or is unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


@contextmanager
def staged_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temp folder beside ``path``; on success swap it into ``path``
    (``replace_dir``), on failure remove it, so a reader sees the old folder or the new one."""
    path = Path(path)
    with temp_dir(path.parent, path.name) as tmp:
        yield tmp
        replace_dir(tmp, path)


@contextmanager
def temp_dir(parent: str | Path, label: str) -> Iterator[Path]:
    """Yield a new temp folder in ``parent`` (stale ones there are swept first); it is removed
    on the way out unless it was renamed away."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    sweep_temps(parent)
    tmp = Path(tempfile.mkdtemp(prefix=f"{temp_prefix()}{label}-", dir=parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_dir(tmp: Path, path: Path) -> None:
    """Swap a finished temp folder into ``path``; the old folder is removed only afterwards."""
    old = None
    if path.exists():
        old = path.with_name(f"{temp_prefix()}{path.name}{_OLD}")
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
