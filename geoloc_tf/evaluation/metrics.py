"""The paper's metrics, vectorized over photos: errors, accuracy, class bias, paired tests.

- Error of a photo (§3.1.3): great-circle distance (``mesh.geodesy.great_circle_km``, the project's
  one distance) from the predicted cell's label point -- the imagery centroid or the cell centroid
  (§3.1.2, Table 3) -- to the photo's true location; for a point prediction (the kNN estimate),
  from the predicted point.
- Accuracy (§3.1.3, Tables 3-6): percentage of photos whose error is <= 1 / 25 / 200 / 750 / 2500 km
  (inclusive: an error of exactly 25 km counts at 25 km; ``rule="lt"`` counts strictly below, as
  OSV-5M, PLONK and PIGEON do), with mean and median error (Table 7) and the mean GeoScore
  (``mesh.geodesy.geoscore``: 5000 * exp(-d / 1492.7 km), OSV-5M's).
- The Earth radius of every distance is an argument (``radius_km``, default the paper's 6372.795 km;
  ``mesh.geodesy`` lists the other systems' conventions).
- Class bias (§4.2, appendix C, Table 7): KL(p || q) = sum_k p_k log(p_k / q_k), p = true class
  proportions, q = predicted class proportions, each from counts with 1 added to every one of the
  mesh's cells; Shannon entropy (nats) of both.
- Wilcoxon signed-rank test on the paired per-photo errors of two models (§4.2: M2 vs M1,
  difference 381 km, p < 1e-16), via ``scipy.stats.wilcoxon``.

Every summary says how many photos it covers (``num_photos``). Given the photos' user hashes, it
also holds the 95 % interval of each of its numbers (``uncertainty``: a percentile bootstrap over
photographers); ``difference_summary`` gives B - A of two summaries with a paired interval.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from geoloc_tf.errors import EvaluationError
from geoloc_tf.evaluation.uncertainty import Bootstrap, summary_interval
from mesh import Mesh
from mesh.geodesy import (
    ACCURACY_THRESHOLDS_KM,
    EARTH_RADIUS_KM,
    accuracy_at_thresholds,
    geoscore,
    great_circle_km,
)

#: Label points of a cell (§3.1.2): "imagery" = centre of mass of its training photos, "cell" = the
#: triangle's centroid.
LABEL_POINTS: tuple[str, ...] = ("imagery", "cell")

#: Error given to a photo without any predicted cell (id < 0, e.g. an averaging group with no stored
#: cell): half the circumference, the largest possible error, so it is a miss at every threshold
#: (here at the paper's radius; ``no_prediction_error_km`` at another).
NO_PREDICTION_ERROR_KM: float = math.pi * EARTH_RADIUS_KM


def no_prediction_error_km(radius_km: float = EARTH_RADIUS_KM) -> float:
    """Half the circumference of an Earth of ``radius_km``: the error of a photo without a prediction."""
    return math.pi * float(radius_km)


def label_points(mesh: Mesh, label_point: str) -> NDArray[np.float64]:
    """(num_cells, 2) [lat, lon] degrees of each cell's label point ("imagery" or "cell", §3.1.2)."""
    if label_point == "imagery":
        return mesh.imagery_centroids
    if label_point == "cell":
        return mesh.cell_centroids
    raise EvaluationError(f"label_point={label_point!r}; expected one of {LABEL_POINTS}")


def check_cells(cells: ArrayLike, num_cells: int, what: str) -> NDArray[np.int64]:
    """Cell ids as int64, refusing ids >= num_cells (predictions made on another mesh)."""
    c = np.asarray(cells, dtype=np.int64).reshape(-1)
    if c.size and int(c.max()) >= num_cells:
        raise EvaluationError(
            f"{what}: cell id {int(c.max())} >= the mesh's {num_cells} cells; expected predictions "
            "made with this run's mesh"
        )
    return c


def prediction_errors_km(
    pred_cell: ArrayLike,
    lat: ArrayLike,
    lon: ArrayLike,
    points: NDArray[np.float64],
    radius_km: float = EARTH_RADIUS_KM,
) -> NDArray[np.float64]:
    """Per-photo error (km, §3.1.3) of predicting cell ``pred_cell`` for truth ``lat, lon`` (degrees).

    ``points`` is the (num_cells, 2) label-point array (``label_points``). A photo with no
    prediction (cell id < 0) gets half the circumference (``no_prediction_error_km``).
    """
    cells = check_cells(pred_cell, len(points), "prediction_errors_km")
    lat_a = np.asarray(lat, dtype=np.float64).reshape(-1)
    lon_a = np.asarray(lon, dtype=np.float64).reshape(-1)
    if not (len(cells) == len(lat_a) == len(lon_a)):
        raise EvaluationError(
            f"prediction_errors_km: {len(cells)} cells, {len(lat_a)} lat, {len(lon_a)} lon; expected equal"
        )
    missing = cells < 0
    safe = np.where(missing, 0, cells)
    d = (
        great_circle_km(lat_a, lon_a, points[safe, 0], points[safe, 1], radius_km)
        if len(points)
        else np.full(len(cells), no_prediction_error_km(radius_km))
    )
    if missing.any():
        d[missing] = no_prediction_error_km(radius_km)
    return d


def point_errors_km(
    pred_lat: ArrayLike,
    pred_lon: ArrayLike,
    lat: ArrayLike,
    lon: ArrayLike,
    radius_km: float = EARTH_RADIUS_KM,
) -> NDArray[np.float64]:
    """Per-photo error (km, §3.1.3) of a point prediction (a place, e.g. the kNN estimate, rather
    than a cell's label point); a photo without one (NaN) gets half the circumference."""
    arrays = [np.asarray(a, dtype=np.float64).reshape(-1) for a in (pred_lat, pred_lon, lat, lon)]
    if len({a.size for a in arrays}) != 1:
        raise EvaluationError(
            f"point_errors_km: {[a.size for a in arrays]} values; expected as many predicted points as photos"
        )
    plat, plon, tlat, tlon = arrays
    d = great_circle_km(plat, plon, tlat, tlon, radius_km)
    d[np.isnan(d)] = no_prediction_error_km(radius_km)
    return d


def error_summary(
    errors_km: ArrayLike,
    thresholds_km: tuple[float, ...] = ACCURACY_THRESHOLDS_KM,
    rule: str = "le",
    users: ArrayLike | None = None,
    bootstrap: Bootstrap | None = None,
) -> dict[str, Any]:
    """Accuracy (%) at each threshold (``rule``: "le" inclusive, the paper's; "lt" strictly below),
    mean and median error, mean GeoScore (``mesh.geodesy.geoscore``) and the photo count.

    Given the photos' user hashes (``users``), the summary also holds ``interval``: the 95 %
    interval of each number and how it was made (``uncertainty.summary_interval``: bootstrap over
    photographers, or photos where none has two), None when ``bootstrap`` is off or absent."""
    d = np.asarray(errors_km, dtype=np.float64).reshape(-1)
    summary: dict[str, Any] = {
        "num_photos": int(d.size),
        "accuracy_percent": accuracy_at_thresholds(d, tuple(thresholds_km), rule),
        "mean_km": float(d.mean()) if d.size else float("nan"),
        "median_km": float(np.median(d)) if d.size else float("nan"),
        "geoscore": geoscore(d),
    }
    if users is not None:
        u = np.asarray(users, dtype=object).reshape(-1)
        if u.size != d.size:
            raise EvaluationError(
                f"error_summary: {d.size} errors and {u.size} user hashes; expected one per photo"
            )
        summary["interval"] = (
            summary_interval(d, u, thresholds_km, rule, bootstrap) if bootstrap is not None else None
        )
    return summary


def difference_summary(
    a: dict[str, Any], b: dict[str, Any], interval: dict[str, Any] | None
) -> dict[str, Any]:
    """B - A of every number of two ``error_summary`` results (same keys), with the paired
    interval of the difference (``uncertainty.difference_interval``) or None."""
    return {
        "num_photos_a": a["num_photos"],
        "num_photos_b": b["num_photos"],
        "accuracy_percent": {k: b["accuracy_percent"][k] - v for k, v in a["accuracy_percent"].items()},
        **{key: b[key] - a[key] for key in ("mean_km", "median_km", "geoscore")},
        "interval": interval,
    }


def class_proportions(cells: ArrayLike, num_cells: int) -> NDArray[np.float64]:
    """Proportions of each of ``num_cells`` classes after adding 1 to every count (appendix C:
    "1 is added to the counts prior to calculating proportions as an adjustment for 0 count
    issues"). Ids < 0 are ignored."""
    c = check_cells(cells, num_cells, "class_proportions")
    counts = np.bincount(c[c >= 0], minlength=num_cells).astype(np.float64) + 1.0
    return counts / counts.sum()


def entropy_nats(p: ArrayLike) -> float:
    """Shannon entropy -sum p log p in nats (Table 7); zero entries contribute 0."""
    p = np.asarray(p, dtype=np.float64)
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum())


def kl_divergence(p: ArrayLike, q: ArrayLike) -> float:
    """KL(p || q) = sum_k p_k log(p_k / q_k) in nats (appendix C); needs q > 0 where p > 0."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.shape != q.shape:
        raise EvaluationError(f"kl_divergence: p {p.shape} and q {q.shape}; expected equal shapes")
    nz = p > 0
    if (q[nz] <= 0).any():
        raise EvaluationError("kl_divergence: q is 0 where p > 0; expected the +1 count adjustment")
    return float((p[nz] * np.log(p[nz] / q[nz])).sum())


def class_bias(true_cell: ArrayLike, pred_cell: ArrayLike, num_cells: int) -> dict[str, Any]:
    """Table 7's class-bias columns for one model (appendix C).

    p = proportions of the true cells, q = proportions of the predicted cells, both with +1 on all
    ``num_cells`` counts. Photos whose true location lies in a dropped cell (true id -1) have no
    class, so they are left out of BOTH p and q (the comparison stays over the same photos); so are
    photos without a prediction (id -1). ``num_photos`` counts the photos used.
    """
    t = check_cells(true_cell, num_cells, "class_bias(true)")
    q_cells = check_cells(pred_cell, num_cells, "class_bias(pred)")
    if len(t) != len(q_cells):
        raise EvaluationError(f"class_bias: {len(t)} true and {len(q_cells)} predicted cells; expected equal")
    use = (t >= 0) & (q_cells >= 0)
    p = class_proportions(t[use], num_cells)
    q = class_proportions(q_cells[use], num_cells)
    return {
        "num_photos": int(use.sum()),
        "num_cells": int(num_cells),
        "kl_divergence": kl_divergence(p, q),
        "entropy_true_nats": entropy_nats(p),
        "entropy_pred_nats": entropy_nats(q),
    }


def wilcoxon_paired(
    errors_a_km: ArrayLike, errors_b_km: ArrayLike, name_a: str = "A", name_b: str = "B"
) -> dict[str, Any]:
    """Wilcoxon signed-rank test of model B against model A on paired per-photo errors (§4.2).

    The difference is ``error_a - error_b`` per photo: positive means B is closer to the truth (the
    paper's "mu2 - mu1 = 381 ... in favor of using time-inputs" is this mean with A = M1, B = M2).
    Zero differences are dropped as in Wilcoxon's original test (scipy ``zero_method='wilcox'``);
    ``num_nonzero`` says how many remain. Two-sided p-value.
    """
    a = np.asarray(errors_a_km, dtype=np.float64).reshape(-1)
    b = np.asarray(errors_b_km, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise EvaluationError(f"wilcoxon_paired: {a.size} and {b.size} errors; expected the same photos")
    diff = a - b
    nonzero = int(np.count_nonzero(diff))
    if nonzero == 0:
        statistic, p_value = float("nan"), 1.0
    else:
        result = stats.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided")
        statistic, p_value = float(result.statistic), float(result.pvalue)
    mean_diff = float(diff.mean()) if diff.size else float("nan")
    if not diff.size or mean_diff == 0:
        direction = "no difference"
    elif mean_diff > 0:
        direction = f"{name_b} lower error than {name_a}"
    else:
        direction = f"{name_a} lower error than {name_b}"
    return {
        "model_a": name_a,
        "model_b": name_b,
        "num_photos": int(diff.size),
        "num_nonzero": nonzero,
        "mean_difference_km": mean_diff,
        "median_difference_km": float(np.median(diff)) if diff.size else float("nan"),
        "statistic": statistic,
        "p_value": p_value,
        "direction": direction,
    }


def most_frequent_cell(mesh: Mesh) -> int:
    """The cell holding the most training photos (``mesh.counts``: the build's or the last
    ``populate``'s photos): the "always predict the commonest cell" baseline. Ties: lowest id."""
    if mesh.num_cells == 0:
        raise EvaluationError("most_frequent_cell: the mesh has no kept cells")
    return int(np.argmax(mesh.counts))
