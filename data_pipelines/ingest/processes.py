"""The process pool of both ingestion phases (metadata files, then image shards)."""

from __future__ import annotations

import concurrent.futures
import multiprocessing


def spawn_pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    """A pool of `workers` processes started with spawn, not fork: the parent may hold TensorFlow
    threads (tests, the runner), which fork breaks."""
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn")
    )
