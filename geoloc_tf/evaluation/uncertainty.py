"""95 % intervals of the report's numbers: a percentile bootstrap over photographers.

Why a bootstrap: accuracy at a threshold, mean and median error and GeoScore are computed on one
sample of test photos; on 2,381 photos an accuracy of 6 % moves by about a point from one sample to
another, so differences of a few tenths between two rows say nothing by themselves. The bootstrap
redraws the test sample from itself ``samples`` times and reads the spread of each number.

Why clusters: photos of one photographer are correlated (same places, same camera, the same trip),
so they are not independent draws; resampling single photos treats 50 photos of one trip as 50
pieces of evidence and gives intervals that are too narrow. Each resample therefore draws
photographers (the ``user_hash`` of the prediction tables) with replacement and keeps all photos of
each drawn photographer (the cluster bootstrap, e.g. Davison & Hinkley 1997, "Bootstrap Methods and
their Application", §3.8; Field & Welsh 2007, "Bootstrapping clustered data", JRSS B 69(3)). A test
set that names no photographers (a CSV without a user column makes each photo its own user
"photo:<id>"; a missing hash counts the same way) has every cluster of size 1: the bootstrap is
then over photos, and the interval says "photos".

Why percentile intervals: the median and accuracies near 0 % or 100 % have skewed, bounded
sampling distributions, where a normal interval (estimate +- 1.96 standard errors) can leave
[0, 100] and is centred wrongly; the percentile interval (the 2.5th and 97.5th percentiles of the
resampled values; Efron & Tibshirani 1993, "An Introduction to the Bootstrap", ch. 13) follows the
skew and stays in range, with no extra model. The ends are ``numpy.nanpercentile`` with its default
linear interpolation between neighbouring sorted values: with 1,000 resamples, positions 24.975 and
974.025 of the sorted values (counting from 0), 0.975 of the way from the 25th to the 26th smallest
value and likewise from the 25th to the 26th largest.

What a careful reader should know: the interval is about the TEST SAMPLE -- how much the number
would move on another draw of test photographers from the same population. It does not cover the
randomness of training (initialization, data order, the split): a second seed of the same
configuration does (``experiments.seeds``). Resample b is drawn with
``numpy.random.default_rng([seed, b])``, so the same seed, photos and photographers give the same
interval bit for bit, whatever the chunking.

A paired difference of two rows (model B minus model A on the photos both tables hold, imagery minus
cell centroid, outdoor-only minus all photos) is computed on the SAME resampled photographers for
both rows, so what the two rows share cancels and the interval is of the difference itself.

How it is computed, vectorized: per photographer, the sums of every statistic (photos, hits at each
threshold, errors, GeoScores); a resample is a vector of counts (how often each photographer was
drawn: multinomial with equal probabilities), so every accuracy, mean error and GeoScore of all
resamples is one matrix product of the counts with the per-photographer sums. The median is the
weighted median of the photos, sorted once, with each photo weighted by its photographer's count:
one more matrix product finds the block of sorted photos that holds each resample's middle photo,
and only that block is read photo by photo (exactly ``np.median`` of the resampled photos).
Resamples are taken in chunks so that memory stays bounded (about ``CHUNK_ELEMENTS`` numbers at a
time) for test sets of 200,000 photos.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mesh.geodesy import photo_geoscores, threshold_key, within_thresholds

#: Coverage of every interval.
LEVEL: float = 0.95
#: How the intervals are made (recorded with each one).
METHOD = "percentile bootstrap"
#: Units resampled: photographers where the photos name them, photos where every cluster is one photo.
UNIT_PHOTOGRAPHERS, UNIT_PHOTOS = "photographers", "photos"
#: Bound on the numbers held per chunk of resamples (resamples x photographers).
CHUNK_ELEMENTS: int = 2_000_000


@dataclasses.dataclass(frozen=True)
class Bootstrap:
    """How many resamples (0: no intervals) and the seed of their random draws."""

    samples: int = 1000
    seed: int = 0

    @property
    def enabled(self) -> bool:
        return self.samples > 0


@dataclasses.dataclass(frozen=True)
class Clusters:
    """The photos' photographer index (0..num_units-1) and what the units are."""

    index: NDArray[np.int64]
    num_units: int
    unit: str


def clusters_of(users: ArrayLike) -> Clusters:
    """Photographer index of each photo from its user hash; a missing hash (None, "") is a
    photographer of its own. Units are "photos" when no photographer has two photos."""
    u = np.asarray(users, dtype=object).reshape(-1)
    missing = np.array([None], dtype=object) == u
    missing |= u == ""
    index = np.empty(u.size, np.int64)
    names, codes = np.unique(u[~missing].astype(str), return_inverse=True)
    index[~missing] = codes.reshape(-1)
    index[missing] = len(names) + np.arange(int(missing.sum()))
    num_units = len(names) + int(missing.sum())
    largest = int(np.bincount(index).max()) if index.size else 0
    return Clusters(index, num_units, UNIT_PHOTOGRAPHERS if largest > 1 else UNIT_PHOTOS)


def resample_counts(seed: int, start: int, stop: int, k: int) -> NDArray[np.int64]:
    """(stop - start, k) draw counts of resamples ``start`` to ``stop - 1``: each row draws k of the
    k units with replacement (multinomial, equal probabilities). Resample b has its own random
    stream, ``default_rng([seed, b])``, so it is the same however the resamples are chunked."""
    counts = np.empty((stop - start, k), np.int64)
    for row, b in enumerate(range(start, stop)):
        draws = np.random.default_rng([seed, b]).integers(0, k, size=k, dtype=np.int32)
        counts[row] = np.bincount(draws, minlength=k)
    return counts


def _chunked_counts(k: int, bootstrap: Bootstrap) -> Iterator[tuple[int, int, NDArray[np.int64]]]:
    """All ``bootstrap.samples`` resamples of k units in chunks of about ``CHUNK_ELEMENTS`` counts:
    (first resample, one past the last, their ``resample_counts``)."""
    chunk = max(1, CHUNK_ELEMENTS // max(k, 1))
    for start in range(0, bootstrap.samples, chunk):
        stop = min(bootstrap.samples, start + chunk)
        yield start, stop, resample_counts(bootstrap.seed, start, stop, k)


#: Bound on the photographers x blocks matrix of the median's first step (see ``_Summary``).
BLOCK_ELEMENTS: int = 4_000_000


@dataclasses.dataclass(frozen=True)
class _Summary:
    """One row's photos prepared for resampling: per-cluster sums, the photos sorted by error, and
    for the median, how many photos of each cluster lie below each block boundary of the sorted
    photos (blocks of ``block`` photos): a resample's count below every boundary is then one matrix
    product, and only the block holding the median is read photo by photo."""

    sums: NDArray[np.float64]  # (k, 3 + T): photos, errors, GeoScores, hits at each threshold
    sorted_errors: NDArray[np.float64]
    sorted_clusters: NDArray[np.int64]
    below: NDArray[np.float64]  # (k, blocks + 1): photos of each cluster ranked below block g's start
    block: int


def _prepare(errors: NDArray[np.float64], index: NDArray[np.int64], k: int, thresholds, rule) -> _Summary:
    columns = np.column_stack(
        [
            np.ones(errors.size),
            errors,
            photo_geoscores(errors),
            within_thresholds(errors, tuple(thresholds), rule).astype(np.float64),
        ]
    )
    sums = np.zeros((k, columns.shape[1]))
    np.add.at(sums, index, columns)
    order = np.argsort(errors, kind="stable")
    n = errors.size
    # about sqrt(256 n / k) blocks balances the matrix product (resamples x k x blocks) against
    # reading one block per resample photo by photo (resamples x n / blocks)
    blocks = int(max(1, min(np.sqrt(256.0 * n / max(k, 1)), BLOCK_ELEMENTS // max(k, 1))))
    block = max(1, -(-n // blocks))
    blocks = max(1, -(-n // block))
    in_block = np.bincount(index[order] * blocks + np.arange(n) // block, minlength=k * blocks)
    below = np.zeros((k, blocks + 1))
    below[:, 1:] = np.cumsum(in_block.reshape(k, blocks), axis=1)
    return _Summary(sums, errors[order], index[order], below, block)


def _weighted_medians(w: NDArray[np.int64], wf: NDArray[np.float64], s: _Summary) -> NDArray[np.float64]:
    """Median of each resample (row of cluster counts ``w``; ``wf`` the same as floats), as
    ``np.median`` of the resampled photos would give: the mean of the two middle photos when the
    resample's count is even."""
    n = s.sorted_errors.size
    if n == 0:
        return np.full(len(w), np.nan)
    counts_below = np.rint(wf @ s.below).astype(np.int64)  # (b, blocks + 1), exact integers
    total = counts_below[:, -1]
    flat_w = w.reshape(-1)
    row_start = (np.arange(len(w)) * w.shape[1])[:, None]
    offsets = np.arange(s.block)

    def at(position: NDArray[np.int64]) -> NDArray[np.float64]:
        # the position-th (0-based) resampled photo lies in the block where the count first exceeds it
        g = (counts_below[:, 1:] <= position[:, None]).sum(axis=1)
        g = np.minimum(g, counts_below.shape[1] - 2)
        ranks = g[:, None] * s.block + offsets
        inside = ranks < n
        ranks = np.minimum(ranks, n - 1)
        weights = np.where(inside, flat_w.take(row_start + s.sorted_clusters[ranks]), 0)
        cum = counts_below[np.arange(len(w)), g][:, None] + np.cumsum(weights, axis=1)
        j = (cum <= position[:, None]).sum(axis=1)
        return s.sorted_errors[np.minimum(g * s.block + j, n - 1)]

    positions = np.maximum(total - 1, 0) // 2, np.maximum(total, 0) // 2
    med = 0.5 * (at(positions[0]) + at(positions[1]))
    return np.where(total > 0, med, np.nan)


def resampled_statistics(
    rows: Sequence[tuple[NDArray[np.float64], NDArray[np.bool_] | None]],
    clusters: Clusters,
    thresholds_km: Sequence[float],
    rule: str,
    bootstrap: Bootstrap,
) -> list[dict[str, NDArray[np.float64]]]:
    """Every statistic of each row under the same ``bootstrap.samples`` resamples of ``clusters``.

    ``rows``: (per-photo errors in km over the photos of ``clusters``, mask of the row's photos or
    None for all). Returns, per row, "accuracy_percent" (samples, thresholds), "mean_km",
    "median_km" and "geoscore" (samples,); NaN in a resample that holds none of the row's photos.
    """
    k, t = clusters.num_units, len(thresholds_km)
    prepared = []
    for errors, mask in rows:
        e = np.asarray(errors, dtype=np.float64).reshape(-1)
        idx = clusters.index if mask is None else clusters.index[mask]
        prepared.append(_prepare(e if mask is None else e[mask], idx, k, thresholds_km, rule))
    b_total = bootstrap.samples
    out = [
        {
            "accuracy_percent": np.empty((b_total, t)),
            "mean_km": np.empty(b_total),
            "median_km": np.empty(b_total),
            "geoscore": np.empty(b_total),
        }
        for _ in rows
    ]
    for start, stop, w in _chunked_counts(k, bootstrap):
        wf = w.astype(np.float64)
        for s, o in zip(prepared, out):
            totals = wf @ s.sums  # (b, 3 + T)
            with np.errstate(invalid="ignore", divide="ignore"):
                per_photo = totals[:, 1:] / totals[:, :1]
            o["mean_km"][start:stop] = per_photo[:, 0]
            o["geoscore"][start:stop] = per_photo[:, 1]
            o["accuracy_percent"][start:stop] = 100.0 * per_photo[:, 2:]
            o["median_km"][start:stop] = _weighted_medians(w, wf, s)
    return out


def _bounds(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """(2, ...) percentile ends; NaN where no resample had a value."""
    tail = 100.0 * (1.0 - LEVEL) / 2.0
    finite = np.isfinite(values).any(axis=0)
    if not np.all(finite):
        values = np.where(finite, values, 0.0)
    with np.errstate(invalid="ignore"):
        ends = np.nanpercentile(values, [tail, 100.0 - tail], axis=0)
    return np.where(finite, ends, np.nan)


def _record_header(clusters: Clusters, bootstrap: Bootstrap) -> dict[str, Any]:
    """How an interval was made, as every interval record says it."""
    return {
        "level": LEVEL,
        "method": METHOD,
        "unit": clusters.unit,
        "num_units": int(clusters.num_units),
        "samples": int(bootstrap.samples),
        "seed": int(bootstrap.seed),
    }


def interval_record(
    stats: dict[str, NDArray[np.float64]],
    clusters: Clusters,
    thresholds_km: Sequence[float],
    bootstrap: Bootstrap,
) -> dict[str, Any]:
    """The JSON-able interval of one row (or one difference) from its resampled statistics."""
    acc = _bounds(stats["accuracy_percent"])
    pair = lambda a: [float(a[0]), float(a[1])]  # noqa: E731
    return {
        **_record_header(clusters, bootstrap),
        "accuracy_percent": {threshold_key(t): pair(acc[:, i]) for i, t in enumerate(thresholds_km)},
        **{key: pair(_bounds(stats[key])) for key in ("mean_km", "median_km", "geoscore")},
    }


def summary_interval(
    errors_km: ArrayLike,
    users: ArrayLike,
    thresholds_km: Sequence[float],
    rule: str,
    bootstrap: Bootstrap,
) -> dict[str, Any] | None:
    """The 95 % interval of every number of ``metrics.error_summary`` for these photos (their
    errors and user hashes); None when the bootstrap is off or there are no photos."""
    e = np.asarray(errors_km, dtype=np.float64).reshape(-1)
    if not bootstrap.enabled or e.size == 0:
        return None
    clusters = clusters_of(users)
    (stats,) = resampled_statistics([(e, None)], clusters, thresholds_km, rule, bootstrap)
    return interval_record(stats, clusters, thresholds_km, bootstrap)


def difference_interval(
    errors_a_km: ArrayLike,
    errors_b_km: ArrayLike,
    users: ArrayLike,
    thresholds_km: Sequence[float],
    rule: str,
    bootstrap: Bootstrap,
    mask_a: ArrayLike | None = None,
    mask_b: ArrayLike | None = None,
) -> dict[str, Any] | None:
    """The 95 % interval of B - A for every number of ``metrics.error_summary``, both rows
    computed on the same resampled photographers (paired). The photos are the same for both
    (``users`` per photo); ``mask_a`` / ``mask_b`` restrict a row to part of them (outdoor only).
    None when the bootstrap is off or there are no photos."""
    a = np.asarray(errors_a_km, dtype=np.float64).reshape(-1)
    b = np.asarray(errors_b_km, dtype=np.float64).reshape(-1)
    if not bootstrap.enabled or a.size == 0:
        return None
    clusters = clusters_of(users)
    masks = [None if m is None else np.asarray(m, dtype=bool).reshape(-1) for m in (mask_a, mask_b)]
    sa, sb = resampled_statistics([(a, masks[0]), (b, masks[1])], clusters, thresholds_km, rule, bootstrap)
    diff = {key: sb[key] - sa[key] for key in sa}
    return interval_record(diff, clusters, thresholds_km, bootstrap)


def rate_intervals(
    hits: ArrayLike, counted: ArrayLike | None, users: ArrayLike, bootstrap: Bootstrap
) -> dict[str, Any] | None:
    """95 % intervals of percentages of photos right (e.g. country / region / sub-region / city
    accuracy, one column each): ``hits`` (photos, columns) booleans, ``counted`` which photos count
    in each column (None: all), the photos' user hashes. The same resampling as
    ``summary_interval``; "percent" holds [lo, hi] per column. None when the bootstrap is off or
    there are no photos."""
    h = np.asarray(hits, dtype=bool)
    if not bootstrap.enabled or len(h) == 0:
        return None
    h = h.reshape(len(h), -1)
    c = np.ones_like(h) if counted is None else np.asarray(counted, dtype=bool).reshape(h.shape)
    clusters = clusters_of(users)
    k, columns = clusters.num_units, h.shape[1]
    sums = np.zeros((k, 2 * columns))
    np.add.at(sums, clusters.index, np.hstack([c, h & c]).astype(np.float64))
    rates = np.empty((bootstrap.samples, columns))
    for start, stop, w in _chunked_counts(k, bootstrap):
        totals = w.astype(np.float64) @ sums
        with np.errstate(invalid="ignore", divide="ignore"):
            rates[start:stop] = 100.0 * totals[:, columns:] / totals[:, :columns]
    ends = _bounds(rates)
    return {
        **_record_header(clusters, bootstrap),
        "percent": [[float(ends[0, j]), float(ends[1, j])] for j in range(columns)],
    }
