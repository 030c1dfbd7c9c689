"""Write-then-rename helpers: a killed process leaves the old file (or folder) or the new one.

Every file the project writes (store partitions, derived tables, manifests, reports) goes through
``atomic_file`` (model bundle folders through ``staged_dir``) so the rule lives in one place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_file(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Yield a handle on a temp file beside ``path``; on success fsync and rename it over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        yield tmp
        replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_dir(tmp: Path, path: Path) -> None:
    """Swap a finished temp folder into ``path``; the old folder is removed only afterwards."""
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}-old-{os.getpid()}")
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
