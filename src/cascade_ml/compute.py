"""Where per-symbol and per-fold work runs: a dask.distributed cluster, or serially in-process.

One ``ComputeConfig`` (pipeline section ``compute:``) says where: ``scheduler: null`` starts a
``LocalCluster`` of ``n_workers`` processes with ``threads_per_worker`` threads each;
``scheduler: tcp://host:8786`` connects to a running cluster and the same code runs there;
``mode: serial`` runs every task in this process (the reference the Dask path is tested and
benchmarked against). Tasks should be coarse (a symbol's features, a whole fold), as the Dask
best practices advise, so scheduling overhead stays small against the work.

LightGBM inside a task must use only the cores its worker owns: ``worker_threads()`` tells how
many (two LightGBM processes with 2 threads each on 2 cores were 10x slower than 1 each).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

from pydantic import Field

from cascade_ml.config_base import StrictModel
from cascade_ml.errors import ConfigError

log = logging.getLogger(__name__)


class ComputeConfig(StrictModel):
    """The engine of per-symbol features/labels, evaluation folds and scoring."""

    mode: Literal["dask", "serial"] = Field(
        "dask", description="dask: a distributed cluster; serial: every task in this process.")
    scheduler: str | None = Field(
        None, description="Address of a running dask scheduler (tcp://host:8786); None starts "
        "a LocalCluster.")
    n_workers: int = Field(2, ge=1, description="LocalCluster worker processes.")
    threads_per_worker: int = Field(1, ge=1, description="Threads (and LightGBM threads) per "
                                    "worker; keep n_workers x threads <= cores.")
    memory_limit: str = Field("auto", description="LocalCluster memory limit per worker.")
    dashboard: bool = Field(False, description="Serve the dask dashboard of a LocalCluster.")


def worker_threads(default: int | None = None) -> int:
    """Cores the current task may use: its dask worker's threads, else ``default`` or all cores."""
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except (ImportError, ValueError):
        return max(1, default if default is not None else (os.cpu_count() or 1))


class Engine:
    """Maps a function over items on a dask client, or in a loop when ``client`` is None."""

    def __init__(self, client: Any | None = None, threads: int | None = None) -> None:
        self.client = client
        self.threads = threads

    @property
    def distributed(self) -> bool:
        return self.client is not None

    def map(self, fn: Callable[..., Any], items: Iterable[Any], *args: Any,
            **kwargs: Any) -> list[Any]:
        """``[fn(item, *args, **kwargs) for item in items]``, in order, on the engine.

        Large shared arguments are scattered once to every worker rather than shipped per task.
        """
        items = list(items)
        if self.client is None:
            return [fn(item, *args, **kwargs) for item in items]
        shared_args = [self._share(a) for a in args]
        shared_kwargs = {k: self._share(v) for k, v in kwargs.items()}
        futures = self.client.map(fn, items, *[[a] * len(items) for a in shared_args],
                                  pure=False, **shared_kwargs)
        return self.client.gather(futures)

    @property
    def n_workers(self) -> int:
        """Workers the engine runs tasks on (1 in-process)."""
        if self.client is None:
            return 1
        return max(1, len(self.client.scheduler_info(n_workers=-1)["workers"]))

    def each_worker(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Any]:
        """``fn(i, *args, **kwargs)`` once on every worker, pinned to it (i = 0, 1, ...); once
        in-process without a cluster. For work every worker shares, e.g. trials of one study."""
        if self.client is None:
            return [fn(0, *args, **kwargs)]
        workers = sorted(self.client.scheduler_info(n_workers=-1)["workers"])
        shared_args = [self._share(a) for a in args]
        shared_kwargs = {k: self._share(v) for k, v in kwargs.items()}
        futures = [self.client.submit(fn, i, *shared_args, workers=[w], allow_other_workers=False,
                                      pure=False, **shared_kwargs)
                   for i, w in enumerate(workers)]
        return self.client.gather(futures)

    def _share(self, value: Any) -> Any:
        import pandas as pd

        if isinstance(value, pd.DataFrame | dict) and _size(value) > 1 << 20:
            return self.client.scatter(value, broadcast=True)
        return value

    def worker_memory(self) -> dict[str, int]:
        """Peak resident memory (bytes) per worker since it started (psutil, Linux ru_maxrss)."""
        if self.client is None:
            return {"local": _peak_rss()}
        return self.client.run(_peak_rss)


def _size(value: Any) -> int:
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return int(value.memory_usage(deep=False).sum())
    if isinstance(value, dict):
        return sum(_size(v) for v in value.values())
    return int(getattr(value, "nbytes", 0))


def _peak_rss() -> int:
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


@contextmanager
def engine(cfg: ComputeConfig) -> Iterator[Engine]:
    """An ``Engine`` for the configured mode; a LocalCluster it started is closed on exit."""
    if cfg.mode == "serial":
        yield Engine(None, threads=worker_threads())
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - dask is a dependency
        raise ConfigError("compute.mode dask needs dask[distributed] installed") from exc
    if cfg.scheduler:
        try:
            client = Client(cfg.scheduler, timeout="20s")
        except OSError as exc:
            raise ConfigError(f"no dask scheduler answers at {cfg.scheduler} ({exc})",
                              "compute.scheduler") from exc
        try:
            yield Engine(client)
        finally:
            client.close()
        return
    cluster = LocalCluster(n_workers=cfg.n_workers, threads_per_worker=cfg.threads_per_worker,
                           processes=True, memory_limit=cfg.memory_limit,
                           dashboard_address=":8787" if cfg.dashboard else ":0")
    client = Client(cluster)
    try:
        log.info("dask LocalCluster: %d workers x %d threads", cfg.n_workers,
                 cfg.threads_per_worker)
        yield Engine(client, threads=cfg.threads_per_worker)
    finally:
        client.close()
        cluster.close()
