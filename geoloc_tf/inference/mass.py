"""Probability-mass sets: the smallest set of cells holding 50 % / 90 % of a photo's probability.

A top-1 cell with its probability says little when the model hesitates between continents; the
smallest set of cells whose probabilities add up to a level, and the area it covers, is an honest
statement of the uncertainty (the classification view of §3.1: each cell is a region of the
Earth). The smallest such set is always the most probable cells taken best first until the level
is reached, so one sort per photo answers every level, vectorized over the batch.

When only the top-k cells are known (an exported SavedModel returns k of them) and they hold less
than a level, the set for that level is unknown and reported as such, never guessed.
"""

from __future__ import annotations

import dataclasses

import numpy as np

#: Probability levels reported by `geoloc predict` (50 % and 90 % of the mass).
DEFAULT_LEVELS: tuple[float, ...] = (0.5, 0.9)


@dataclasses.dataclass(frozen=True)
class MassSets:
    """The mass sets of n photos at L levels.

    order:     int [n, m] cell ids by decreasing probability (m = cells known, best first)
    sorted_probs: float [n, m] their probabilities
    size:      int [n, L] cells in the smallest set reaching each level; -1 when unknown
    mass:      float [n, L] the probability the set holds (>= the level); NaN when unknown
    area_km2:  float [n, L] the set's total area; NaN when unknown
    """

    levels: tuple[float, ...]
    order: np.ndarray
    sorted_probs: np.ndarray
    size: np.ndarray
    mass: np.ndarray
    area_km2: np.ndarray

    def cell_probabilities(self, row: int, num_cells: int) -> np.ndarray:
        """float [num_cells] probabilities of photo ``row`` by cell id, NaN where unknown."""
        out = np.full(num_cells, np.nan)
        out[self.order[row]] = self.sorted_probs[row]
        return out

    def cells(self, row: int, level: int) -> np.ndarray:
        """Cell ids of photo ``row``'s set at ``levels[level]`` (empty when unknown)."""
        return self.order[row, : max(int(self.size[row, level]), 0)]


def mass_sets(
    cell_ids: np.ndarray,
    probabilities: np.ndarray,
    cell_areas_km2: np.ndarray,
    levels: tuple[float, ...] = DEFAULT_LEVELS,
) -> MassSets:
    """Mass sets from cells sorted best first (``cell_ids``, ``probabilities``: [n, m]).

    ``m`` may be every cell (the full softmax: every level is reached) or only the top-k.
    """
    ids = np.asarray(cell_ids, np.int64)
    probs = np.asarray(probabilities, np.float64)
    areas = np.asarray(cell_areas_km2, np.float64)
    n, m = probs.shape
    cumulative = np.cumsum(probs, axis=1)  # [n, m]
    cumulative_area = np.cumsum(areas[ids], axis=1)
    wanted = np.asarray(levels, np.float64)[None, :, None]  # [1, L, 1]
    size = (cumulative[:, None, :] < wanted).sum(axis=2) + 1  # [n, L]: first index reaching it
    known = size <= m
    last = np.minimum(size, m) - 1
    rows = np.arange(n)[:, None]
    mass = np.where(known, cumulative[rows, last] if m else np.nan, np.nan)
    area = np.where(known, cumulative_area[rows, last] if m else np.nan, np.nan)
    return MassSets(
        tuple(float(v) for v in levels), ids, np.asarray(probabilities), np.where(known, size, -1), mass, area
    )


def mass_sets_from_probabilities(
    probabilities: np.ndarray, cell_areas_km2: np.ndarray, levels: tuple[float, ...] = DEFAULT_LEVELS
) -> MassSets:
    """Mass sets of full softmax outputs [n, num_cells] (ties: lowest cell id first)."""
    probs = np.asarray(probabilities)
    order = np.argsort(-probs, axis=1, kind="stable")
    return mass_sets(order, np.take_along_axis(probs, order, axis=1), cell_areas_km2, levels)
