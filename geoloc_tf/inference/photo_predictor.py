"""Photos to locations: M1 on the pixels, the run's M2 when the posting time is known.

M1 (§3.1.2) gives a softmax over the mesh cells. When a photo comes with its posting time and the
run has a trained M2 (§3.2, Figure 3), M1's top-10 cells and the time features go through M2, whose
softmax replaces M1's for that photo; the output names the model that answered (``"m1"`` or
``"m2"``). M2 trained with the outdoor input (``M2Config.extra_inputs``) takes the photo's outdoor
probability, 0.5 ("can't tell", as in training) when none is given.

Each photo gets its top-k cells with their label points (the imagery centroids, §3.1.2, as in the
export) and the probability-mass sets of ``geoloc_tf.inference.mass`` with their areas. With a
feature index of M1's training photos (``Predictor.with_retrieval``, ``--cell_retrieval_cells``),
each photo also gets ``retrieval``: the point found by retrieval inside the answering model's top
cells (``geoloc_tf.retrieval.cell_retrieval``), beside the top cell's label point, and whether it
fell back to that label point. ``Predictor`` is shared by `geoloc predict` and `geoloc serve`.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence, TypeVar

import numpy as np

from data_pipelines import values
from geoloc_tf import errors
from geoloc_tf.inference.m1_model import M1Model
from geoloc_tf.inference.mass import DEFAULT_LEVELS, MassSets, mass_sets, mass_sets_from_probabilities
from geoloc_tf.run_layout import RunLayout

if TYPE_CHECKING:
    from geoloc_tf.m2.task import TrainedM2
    from geoloc_tf.retrieval.cell_retrieval import CellRetriever, Retrieved

log = logging.getLogger(__name__)
T = TypeVar("T")


def predict_each(
    predict: Callable[[list[T]], "Predictions"], items: list[T]
) -> tuple[list["tuple[Predictions, int] | Exception"], bool]:
    """Answers ``items`` with one call of ``predict`` (items -> their Predictions) and, when that
    call fails, with one call per item, so an item the model cannot take fails alone and the others
    are answered as if it had not been there (`geoloc serve`'s batches, `geoloc predict`'s).

    Returns, per item, (predictions, row of the item in them) or the exception its own call
    raised, and whether the batch was answered again item by item. The caller reports each
    exception its way (a 500 with the trace in the log; an error line)."""
    try:
        answer = predict(items)
        return [(answer, row) for row in range(len(items))], False
    except Exception as error:  # noqa: BLE001 - answered below, one item at a time
        if len(items) == 1:
            return [error], False
        log.warning(
            "a batch of %d photos failed (%s); answering them one at a time",
            len(items),
            errors.first_line(error),
        )
    outcomes: list[tuple[Predictions, int] | Exception] = []
    for item in items:
        try:
            outcomes.append((predict([item]), 0))
        except Exception as alone:  # noqa: BLE001 - this item's outcome; the others go on
            outcomes.append(alone)
    return outcomes, True


def parse_posted_at(text: str) -> int:
    """UTC epoch seconds of a posting time (``data_pipelines.values.posted_at``: ISO 8601 such as
    "2014-06-01T14:30:00Z" or epoch seconds; no offset means UTC, as M2's time features are,
    §3.2; within 1970..2100), else InferenceError."""
    try:
        return values.posted_at(text)
    except values.ValueProblem as problem:
        raise errors.InferenceError(f"posted_at={problem}") from None


def parse_outdoor(text: str) -> float:
    """An outdoor probability in [0, 1], in ASCII digits, else InferenceError."""
    try:
        return values.probability(text)
    except values.ValueProblem as problem:
        raise errors.InferenceError(f"outdoor={problem}") from None


@dataclasses.dataclass(frozen=True)
class Predictions:
    """The answer for n photos: which model answered, top-k cells, label points, mass sets."""

    model: np.ndarray  # str [n]: "m1" or "m2"
    top_ids: np.ndarray  # int [n, k], best first
    top_probs: np.ndarray  # float [n, k]
    top_latlon: np.ndarray  # float [n, k, 2] label points of the top cells, degrees
    mass: MassSets
    posted_at: list[int | None]
    cells_known: int  # cells with a known probability (all, or an export's top-k)
    known_mass: np.ndarray  # float [n]: probability those cells hold (1 for the full softmax)
    features: np.ndarray | None = None  # float [n, d] M1's penultimate features, when asked
    retrieval: "Retrieved | None" = None  # retrieval inside the top cells, when the predictor has it
    retrieval_cells: int = 0  # top cells it searched

    def __len__(self) -> int:
        return len(self.model)

    def record(self, row: int, name: str | None = None, top_k: int | None = None) -> dict[str, Any]:
        """The JSON-ready answer for photo ``row`` (the ``predict`` / ``serve`` output)."""
        k = self.top_ids.shape[1] if top_k is None else min(top_k, self.top_ids.shape[1])
        top = [
            {
                "rank": r + 1,
                "cell": int(self.top_ids[row, r]),
                "probability": float(self.top_probs[row, r]),
                "lat": float(self.top_latlon[row, r, 0]),
                "lon": float(self.top_latlon[row, r, 1]),
            }
            for r in range(k)
        ]
        sets = []
        for i, level in enumerate(self.mass.levels):
            size = int(self.mass.size[row, i])
            entry: dict[str, Any] = {"level": level}
            if size < 0:
                held = float(self.known_mass[row])
                entry.update(
                    num_cells=None,
                    probability=None,
                    area_km2=None,
                    cells=None,
                    note=f"unknown: the model gives only its top {self.cells_known} "
                    f"cells, holding {held:.1%} of the probability",
                )
            else:
                entry.update(
                    num_cells=size,
                    probability=float(self.mass.mass[row, i]),
                    area_km2=float(self.mass.area_km2[row, i]),
                    cells=[int(c) for c in self.mass.cells(row, i)],
                )
            sets.append(entry)
        posted = self.posted_at[row]
        record: dict[str, Any] = {
            "file": name,
            "model": str(self.model[row]),
            "posted_at": None if posted is None else values.format_posted_at(posted),
            "lat": top[0]["lat"],
            "lon": top[0]["lon"],
            "top_k": top,
            "mass_sets": sets,
        }
        if self.retrieval is not None:
            record["retrieval"] = self.retrieval_record(row)
        return record

    def retrieval_record(self, row: int) -> dict[str, Any]:
        """Retrieval inside the top cells for photo ``row``: the point, the cosine similarity and
        score of the retrieved training photo (never its id: `geoloc serve` answers strangers),
        and ``fallback`` (no neighbour in the top cells: the top cell's label point)."""
        r = self.retrieval
        assert r is not None
        fallback = bool(r.fallback[row])
        return {
            "lat": float(r.lat[row]),
            "lon": float(r.lon[row]),
            "cells": self.retrieval_cells,
            "fallback": fallback,
            "similarity": None if fallback else float(r.similarity[row]),
            "score": None if fallback else float(r.score[row]),
        }


class Predictor:
    """M1 (+ the run's M2) and the mesh, ready to answer photos; build with ``Predictor.load``."""

    def __init__(self, m1: M1Model, m2: "TrainedM2 | None" = None):
        if m1.mesh is None or m1.label_points is None:  # the label points come from the mesh
            raise errors.InferenceError(
                f"{m1.path}: no mesh for this model; pass the run's mesh (--mesh=RUN_DIR/mesh)"
            )
        self.m1 = m1
        self.label_points: np.ndarray = m1.label_points
        self.m2 = m2
        self.cell_areas_km2 = m1.mesh.cell_areas_km2
        self.m2_uses_outdoor = m2 is not None and m2.uses_outdoor
        self.retriever: "CellRetriever | None" = None

    @classmethod
    def load(
        cls, model_path: str | Path, mesh_path: str | Path | None = None, with_m2: bool = True
    ) -> "Predictor":
        """M1 from a run directory or SavedModel; the run's trained M2 (``geoloc_tf.m2.task``) if
        asked and present (a SavedModel of M1 answers with M1 alone)."""
        from geoloc_tf.m2.task import TrainedM2

        m1 = M1Model.load(model_path, mesh_path)
        m2 = None
        layout = None if m1.run_dir is None else RunLayout(m1.run_dir)
        if with_m2 and layout is not None and TrainedM2.exists(layout):
            m2 = TrainedM2.load(layout)
            if m2.num_cells != m1.num_cells:
                raise errors.InferenceError(
                    f"{layout.m2_model}: M2 has {m2.num_cells} cells, M1 "
                    f"{m1.num_cells}; expected both from the same run"
                )
        return cls(m1, m2)

    def with_retrieval(self, retriever: "CellRetriever | None", engine: str = "auto") -> "Predictor":
        """This predictor answering also by retrieval inside the top cells (``retriever``: a
        feature index of M1's training photos); itself when ``retriever`` is None. It needs M1's
        penultimate features, which only a run directory's M1 gives: an export (SavedModel, LiteRT,
        ONNX) holds neither them nor the index (``geoloc_tf.m1.export``). The index must be of
        this M1 (one probe forward pass checks the features' width)."""
        if retriever is None:
            return self
        if not self.m1.has_features:
            raise errors.InferenceError(
                f"--cell_retrieval_cells={retriever.config.cell_retrieval_cells}: {self.m1.path} is "
                "an export, which has no penultimate features for retrieval; use --model=RUN_DIR "
                "(the run directory with m1/m1.keras and its feature index)"
            )
        from geoloc_tf.inference.neighbours import NearestPhotos

        NearestPhotos(retriever.index, engine).check_model(self)
        answering = copy.copy(self)
        answering.retriever = retriever
        return answering

    @property
    def has_m2(self) -> bool:
        return self.m2 is not None

    def predict(
        self,
        images: list[np.ndarray],
        posted_at: Sequence[int | None] | None = None,
        outdoor: Sequence[float | None] | None = None,
        top_k: int = 5,
        levels: tuple[float, ...] = DEFAULT_LEVELS,
        with_features: bool = False,
    ) -> Predictions:
        """Answers a batch of photos, each as the uint8 (h, w, 3) pixels of its one decode
        (``m1_model.read_photo``, ``data_pipelines.images.decode_for_model``), of any sizes.

        ``posted_at`` (UTC epoch seconds, None = unknown) and ``outdoor`` are per photo; photos
        with a time go through M2 when the run has one. ``with_features``: also M1's penultimate
        features from the same forward pass (a run directory's M1 only), for retrieval.
        """
        n = len(images)
        times: list[int | None] = list(posted_at) if posted_at is not None else [None] * n
        model = np.full(n, "m1", dtype=object)
        full = self.m1.max_top_k >= self.m1.num_cells
        features = None
        if with_features or self.retriever is not None:
            probabilities, features = self.m1.probabilities_and_features(images)
        if full:  # a run directory, or an export of every cell
            if features is None:
                probabilities = self.m1.probabilities(images)
            with_time = np.array([t is not None for t in times], bool)
            if self.m2 is not None and with_time.any():
                rows = np.flatnonzero(with_time)
                probabilities[rows] = self._m2_probabilities(
                    self.m2,
                    probabilities[rows],
                    [t for t in times if t is not None],  # the times of `rows`, in order
                    None if outdoor is None else [outdoor[r] for r in rows.tolist()],
                )
                model[rows] = "m2"
            mass = mass_sets_from_probabilities(probabilities, self.cell_areas_km2, levels)
        else:  # an export of the top-k cells only: M2 needs M1's top-10 and the full softmax
            mass = mass_sets(*self.m1.top_k(images, self.m1.max_top_k), self.cell_areas_km2, levels)
        sorted_probs = mass.sorted_probs
        k = min(int(top_k), mass.order.shape[1])
        top_ids = mass.order[:, :k]
        retrieval, cells = None, 0
        if self.retriever is not None and features is not None:  # features come with a retriever
            cells = min(self.retriever.config.cell_retrieval_cells, mass.order.shape[1])
            retrieval = self.retriever.retrieve(features, mass.order[:, :cells], sorted_probs[:, :cells])
        return Predictions(
            model=model,
            top_ids=top_ids,
            top_probs=sorted_probs[:, :k].astype(np.float32),
            top_latlon=self.label_points[top_ids],
            mass=mass,
            posted_at=times,
            cells_known=mass.order.shape[1],
            known_mass=sorted_probs.sum(axis=1, dtype=np.float64),
            features=features if with_features else None,
            retrieval=retrieval,
            retrieval_cells=cells,
        )

    @staticmethod
    def _m2_probabilities(
        m2: "TrainedM2", m1_probabilities: np.ndarray, times: list[int], outdoor: list[float | None] | None
    ) -> np.ndarray:
        return m2.probabilities(m2.data_from_m1(m1_probabilities, times, outdoor))
