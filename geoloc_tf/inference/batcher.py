"""The model thread of `geoloc serve`: queued photos answered in batches.

Handler threads queue a ``Job`` and wait; one model thread takes up to ``max_batch`` waiting photos
per forward pass, waiting at most ``wait_s`` for a batch to fill.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from http import HTTPStatus
from typing import Any

from geoloc_tf.inference.http_request import HttpError, Job

log = logging.getLogger(__name__)


class Batcher:
    """One model thread answering queued photos in batches of up to ``max_batch``."""

    def __init__(self, predictor, max_batch: int, wait_s: float):
        self.predictor, self.max_batch, self.wait_s = predictor, max(1, int(max_batch)), wait_s
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="geoloc-model", daemon=True)
        self.requests = self.batches = self.largest_batch = 0

    def start(self) -> "Batcher":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def submit(self, job: Job, timeout_s: float) -> dict[str, Any]:
        """Queues ``job`` and waits for its answer."""
        self._queue.put(job)
        if not job.done.wait(timeout_s):
            raise HttpError(
                HTTPStatus.SERVICE_UNAVAILABLE,
                f"no answer within {timeout_s:.0f} s; the server is overloaded",
            )
        if job.error is not None:
            raise HttpError(HTTPStatus.INTERNAL_SERVER_ERROR, f"prediction failed: {job.error}")
        if job.result is None:  # the model thread stopped without answering (e.g. interrupted)
            raise HttpError(
                HTTPStatus.INTERNAL_SERVER_ERROR, "prediction failed: the model thread gave no answer"
            )
        return job.result

    def _take_batch(self, first: Job) -> tuple[list[Job], bool]:
        jobs, deadline = [first], time.monotonic() + self.wait_s
        while len(jobs) < self.max_batch:
            try:
                job = self._queue.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            jobs.append(job)
        return jobs, False

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            jobs, stopping = self._take_batch(first)
            try:
                answer = self.predictor.predict(
                    [j.image for j in jobs],
                    posted_at=[j.posted_at for j in jobs],
                    outdoor=[j.outdoor for j in jobs],
                    top_k=max(j.top_k for j in jobs),
                )
                for row, job in enumerate(jobs):
                    job.result = answer.record(row, job.name, job.top_k)
            except Exception as error:  # noqa: BLE001 - answered to each request as a 500
                log.exception("batch of %d photos failed", len(jobs))
                for job in jobs:
                    job.error = error
            finally:
                self.requests += len(jobs)
                self.batches += 1
                self.largest_batch = max(self.largest_batch, len(jobs))
                for job in jobs:
                    job.done.set()
