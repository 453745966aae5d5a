"""The model thread of `geoloc serve`: queued photos answered in batches, each request alone in its
failure.

Request handlers queue a ``Job`` and await its future; one model thread takes up to ``max_batch``
waiting photos per forward pass, waiting at most ``wait_s`` for a batch to fill. A batch whose
forward pass fails is answered again one photo at a time (``photo_predictor.predict_each``), so a photo the model cannot take fails
with its own status and the others in its batch are answered as if it had not been there. The
traceback of a failure goes to the log, never to a client.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import queue
import threading
import time
from http import HTTPStatus
from typing import Any

import numpy as np

from geoloc_tf import errors
from geoloc_tf.inference.photo_predictor import predict_each

log = logging.getLogger(__name__)


class HttpError(Exception):
    """A request answered with an error status and a JSON error body."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass
class Job:
    """A validated photo of one request, waiting for the model thread's answer."""

    image: np.ndarray  # uint8 (h, w, 3): the photo decoded once (data_pipelines.images.decode_for_model)
    posted_at: int | None
    outdoor: float | None
    top_k: int
    name: str | None
    neighbours: int = 0  # nearest indexed photos asked for (``neighbours.NearestPhotos``)
    future: concurrent.futures.Future = dataclasses.field(default_factory=concurrent.futures.Future)


def failure_status(error: BaseException) -> HttpError:
    """What a client is told when the model could not answer its photo alone: the input's fault
    (400, 415 for pixels the model's decoder refused) or the server's (500), without a trace."""
    if isinstance(error, errors.InferenceError):
        return HttpError(HTTPStatus.BAD_REQUEST, errors.first_line(error, 200))
    if type(error).__name__ == "InvalidArgumentError":  # TensorFlow's decoder refused the pixels
        return HttpError(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "the model's image decoder cannot read this photo"
        )
    return HttpError(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        "the model could not answer this photo; the server log has the details",
    )


class Batcher:
    """One model thread answering queued photos in batches of up to ``max_batch``."""

    def __init__(self, predictor, max_batch: int, wait_s: float, nearest=None):
        self.predictor, self.max_batch, self.wait_s = predictor, max(1, int(max_batch)), wait_s
        self.nearest = nearest  # neighbours.NearestPhotos, or None: no feature index
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="geoloc-model", daemon=True)
        self.requests = self.batches = self.largest_batch = self.retried_batches = 0

    def start(self) -> "Batcher":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def submit(self, job: Job) -> concurrent.futures.Future:
        """Queues ``job``; its future gets the JSON record, or an ``HttpError``."""
        self._queue.put(job)
        return job.future

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

    def _answer(self, jobs: list[Job]):
        return self.predictor.predict(
            [j.image for j in jobs],
            posted_at=[j.posted_at for j in jobs],
            outdoor=[j.outdoor for j in jobs],
            top_k=max(j.top_k for j in jobs),
            with_features=any(j.neighbours for j in jobs),
        )

    def _answer_batch(self, jobs: list[Job]) -> None:
        outcomes, retried = predict_each(self._answer, jobs)
        self.retried_batches += retried
        for job, outcome in zip(jobs, outcomes):
            if isinstance(outcome, Exception):
                log.error("prediction of one photo failed", exc_info=outcome)
                _settle(job, failure_status(outcome))
            else:
                predictions, row = outcome
                _settle(job, self._record(job, predictions, row))

    def _record(self, job: Job, predictions, row: int) -> dict[str, Any] | HttpError:
        """The JSON record of ``job``, with its nearest indexed photos when it asked for them."""
        record = predictions.record(row, job.name, job.top_k)
        if job.neighbours and self.nearest is not None and predictions.features is not None:
            try:
                record["neighbours"] = self.nearest.records(
                    predictions.features[row], job.neighbours, record["lat"], record["lon"]
                )
            except Exception as error:  # noqa: BLE001 - this job's 500; the batch goes on
                log.error("the nearest-photo search of one photo failed", exc_info=error)
                return HttpError(
                    HTTPStatus.INTERNAL_SERVER_ERROR,
                    "the search of the feature index failed; the server log has the details",
                )
        return record

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            jobs, stopping = self._take_batch(first)
            jobs = [j for j in jobs if not j.future.cancelled()]  # clients that gave up
            if not jobs:
                continue
            try:
                self._answer_batch(jobs)
            finally:
                self.requests += len(jobs)
                self.batches += 1
                self.largest_batch = max(self.largest_batch, len(jobs))
                for job in jobs:  # never leave a request waiting
                    _settle(
                        job, HttpError(HTTPStatus.INTERNAL_SERVER_ERROR, "the model thread gave no answer")
                    )


def _settle(job: Job, outcome: dict[str, Any] | HttpError) -> None:
    """Gives ``job`` its answer unless it has one (or its client gave up)."""
    if job.future.done():
        return
    try:
        if isinstance(outcome, HttpError):
            job.future.set_exception(outcome)
        else:
            job.future.set_result(outcome)
    except concurrent.futures.InvalidStateError:  # cancelled meanwhile
        pass
