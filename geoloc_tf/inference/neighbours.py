"""The nearest indexed photos of a photo `geoloc serve` answers (paper appendix B, as `geoloc
search` finds them), for the page at ``/``.

The features come from the forward pass that answers the photo (``Predictor.predict`` with
``with_features``), so a request with ``neighbours=K`` costs no second pass. Each neighbour is
told by its rank, feature distance (L2 of M1's penultimate features), location and great-circle
distance from the answer's top label point; never by its photo id, file or record: the page is
for people who may reach the server, and what they see must not lead back to an owner.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from geoloc_tf import errors
from mesh.geodesy import great_circle_km

log = logging.getLogger(__name__)

#: Most neighbours one request may ask for (``neighbours=K``).
MAX_NEIGHBOURS = 50


class NearestPhotos:
    """A feature index opened for `geoloc serve`, searched with ``engine`` (``FeatureIndex.search``)."""

    def __init__(self, index, engine: str = "auto"):
        self.index = index
        self.engine = engine

    @classmethod
    def open(cls, path: str | Path, engine: str = "auto") -> "NearestPhotos":
        from geoloc_tf.retrieval.feature_index import FeatureIndex

        return cls(FeatureIndex.open(path), engine)

    def check_model(self, predictor) -> None:
        """InferenceError unless ``predictor``'s M1 gives features of the index's width (one tiny
        forward pass): an index of another model would fail every request."""
        probe = np.zeros((8, 8, 3), np.uint8)  # a decoded photo's pixels
        try:
            dim = predictor.m1.features([probe]).shape[1]
        except errors.InferenceError as error:
            raise errors.InferenceError(f"--index={self.index.root}: {error}") from None
        if dim != self.index.dim:
            raise errors.InferenceError(
                f"--index={self.index.root}: features of width {self.index.dim}, but the model gives "
                f"{dim}; expected an index built by this run's M1 (geoloc index --model=RUN_DIR)"
            )
        if len(self.index):
            self.index.search(np.zeros((1, dim), np.float32), 1, self.engine)  # builds FAISS now

    def summary(self) -> dict[str, Any]:
        """What /healthz and the page say of the index (no path)."""
        return {"photos": len(self.index), "split": self.index.meta.get("split")}

    def records(self, features: np.ndarray, k: int, lat: float, lon: float) -> list[dict[str, Any]]:
        """The ``k`` indexed photos nearest to one photo's ``features`` [d], nearest first, with
        their great-circle distance from (``lat``, ``lon``), the answer's top label point."""
        rows, distances = self.index.search(np.asarray(features, np.float32)[None, :], k, self.engine)
        found = rows[0] >= 0
        rows, distances = rows[0][found], distances[0][found]
        photos = self.index.photos.iloc[rows]
        n_lat, n_lon = photos["lat"].to_numpy(np.float64), photos["lon"].to_numpy(np.float64)
        km = great_circle_km(lat, lon, n_lat, n_lon)
        return [
            {
                "rank": i + 1,
                "distance": float(distances[i]),
                "lat": float(n_lat[i]),
                "lon": float(n_lon[i]),
                "km_from_answer": float(km[i]),
            }
            for i in range(len(rows))
        ]
