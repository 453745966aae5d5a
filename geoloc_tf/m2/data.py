"""Per-photo inputs of M2 in the form M1's predict stage stores them (sparse top-k).

A whole M2/M3 split densified to N cells would not fit in memory (2.2 M photos x 6565 cells x 4 B is
58 GB), so photos stay as M1's top-k (cell ids, probabilities) and M2's first layer densifies them
(``geoloc_tf.layers.DensifyTopK``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import ArrayLike

from geoloc_tf import errors
from geoloc_tf.layers import sparsify_top_k
from geoloc_tf.time_features import time_features

#: Names of M2's model inputs in its default ("top_k") form.
CELL_IDS, CELL_PROBS, TIME, OUTDOOR = "cell_ids", "cell_probs", "time", "outdoor"


@dataclasses.dataclass(frozen=True)
class M2Data:
    """One split of photos for M2: M1's top-k, posting time, label and optional extras.

    cell_ids:   int64 (n, k), M1's k best cells per photo (-1 where fewer were stored)
    cell_probs: float32 (n, k), their M1 probabilities (not renormalized: their sum is |p0|)
    posted_at:  int64 (n,), UTC posting time in epoch seconds (§3.2)
    labels:     int64 (n,), the true cell; None when predicting
    outdoor:    float32 (n,), outdoor probability (beyond the paper); None when not used
    """

    cell_ids: np.ndarray
    cell_probs: np.ndarray
    posted_at: np.ndarray
    labels: np.ndarray | None = None
    outdoor: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.posted_at)
        if self.cell_ids.shape != self.cell_probs.shape or self.cell_ids.ndim != 2:
            raise errors.ModelConfigError(
                f"M2Data: cell_ids {self.cell_ids.shape} and cell_probs {self.cell_probs.shape} "
                "must both be (n, k)"
            )
        for field in ("cell_ids", "labels", "outdoor"):
            value = getattr(self, field)
            if value is not None and len(value) != n:
                raise errors.ModelConfigError(
                    f"M2Data.{field}: {len(value)} rows, expected {n} (as posted_at)"
                )

    @classmethod
    def from_dense(
        cls,
        probs: ArrayLike,
        posted_at: ArrayLike,
        labels: ArrayLike | None = None,
        outdoor: ArrayLike | None = None,
        k: int = 10,
    ) -> "M2Data":
        """From full M1 softmax outputs (n, N), keeping the k best cells as the predict stage does."""
        ids, values = sparsify_top_k(probs, k)
        return cls(
            cell_ids=ids,
            cell_probs=values,
            posted_at=np.asarray(posted_at, np.int64),
            labels=None if labels is None else np.asarray(labels, np.int64),
            outdoor=None if outdoor is None else np.asarray(outdoor, np.float32),
        )

    def __len__(self) -> int:
        return len(self.posted_at)

    def known_labels(self, where: str) -> np.ndarray:
        """``labels``, for code that trains or scores; raises naming ``where`` when they are None."""
        if self.labels is None:
            raise errors.ModelConfigError(f"{where}.labels is None, expected the true cells")
        return self.labels

    def model_inputs(self, extra_inputs: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        """The dict M2's "top_k" form takes: cell ids, probabilities, §3.2 time features, extras."""
        inputs = {
            CELL_IDS: self.cell_ids.astype(np.int32),
            CELL_PROBS: self.cell_probs.astype(np.float32),
            TIME: time_features(self.posted_at),
        }
        if OUTDOOR in extra_inputs:
            if self.outdoor is None:
                raise errors.ModelConfigError("M2Data.outdoor is None but extra_inputs asks for 'outdoor'")
            inputs[OUTDOOR] = self.outdoor.astype(np.float32)[:, None]
        return inputs

    def m1_top1(self) -> np.ndarray:
        """M1's own prediction (its best cell), the baseline M2 must beat (§4.2)."""
        best = np.argmax(self.cell_probs, axis=1)
        return self.cell_ids[np.arange(len(self)), best]
