"""A child process for the kill tests: opens one store the way the project does, and pauses at
a chosen moment (the N-th SQL statement, or the N-th rename) so the test can ``kill -9`` it
exactly there. Prints ``paused`` when it waits to be killed, ``done <statements>`` otherwise.

Usage: ``python killable.py KIND TARGET PAUSE_AT`` with KIND one of mlflow, optuna, book (TARGET
a SQLite file; PAUSE_AT a statement number, 0 = never), file, bundle (TARGET a file or folder;
PAUSE_AT a rename number), files (TARGET a folder: writes forever, killed at a random moment).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def _pause() -> None:
    print("paused", flush=True)
    time.sleep(600)


def pause_at_statement(n: int) -> list[int]:
    """Count every SQL statement of every engine; wait to be killed before the ``n``-th."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    count = [0]

    def before(*_args) -> None:  # noqa: ANN002 - SQLAlchemy's event signature
        count[0] += 1
        if count[0] == n:
            _pause()

    event.listen(Engine, "before_cursor_execute", before)
    return count


def pause_at_rename(n: int) -> None:
    """Wait to be killed before the ``n``-th ``os.replace`` of this process."""
    real, count = os.replace, [0]

    def replace(src, dst):  # noqa: ANN001, ANN202 - os.replace's signature
        count[0] += 1
        if count[0] == n:
            _pause()
        return real(src, dst)

    os.replace = replace


def main(kind: str, target: Path, pause: int) -> None:
    if kind in {"mlflow", "optuna", "book"}:
        count = pause_at_statement(pause)
        url = f"sqlite:///{target}"
        if kind == "mlflow":
            from cascade_ml.tracking import TrackingConfig, connect

            connect(TrackingConfig(uri=url, artifact_root=target.parent / "artifacts"), "killed")
        elif kind == "optuna":
            import optuna

            from cascade_ml.sqlstore import rdb_storage

            optuna.create_study(study_name="killed", storage=rdb_storage(url),
                                load_if_exists=True)
        else:
            from cascade_ml.trading.book import PaperBook

            PaperBook(url, initial_cash=10_000.0).close()
        print(f"done {count[0]}", flush=True)
        return
    from cascade_ml.atomic import atomic_file, staged_dir

    payload = os.urandom(1 << 20)
    if kind == "files":  # rewrite a few files for ever: the test kills at a random moment
        while True:
            for i in range(3):
                with atomic_file(target / f"part-{i}.bin") as handle:
                    handle.write(payload)
    pause_at_rename(pause)
    if kind == "file":
        with atomic_file(target) as handle:
            handle.write(payload)
    else:  # a bundle folder: two files, then the folder swap (two renames)
        with staged_dir(target) as tmp:
            (tmp / "a.bin").write_bytes(payload)
            (tmp / "bundle.json").write_text('{"version": "new"}')
    print("done 0", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]))
