"""The report's PNG figures (matplotlib, Agg backend, no network; each written atomically).

- Figure 1: true longitude vs UTC hour of posting, box plots, one random photo per user (§3.2:
  "we limit users to one image selected at random to decouple any user effects from time of day").
- Figure 2: the mesh (``mesh.plot.plot_mesh``: kept cells in red over the basemap and the photo
  density).
- Error CDF of every model on one chart, log km axis, thresholds marked (§3.1.3).
- World map of accuracy per cell: each kept cell coloured by the share of its photos (true location
  in the cell) predicted within a threshold, over the basemap (``mesh.plot.world_map``) and the
  density of the predicted locations; cells without photos outlined.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from mesh.geodesy import EARTH_RADIUS_KM
from mesh.plot import cell_polygons, outline_cells, photo_density, pyplot, save_figure, world_map

if TYPE_CHECKING:
    from mesh import Mesh


def one_photo_per_user(user_hash: NDArray, seed: int = 0) -> NDArray[np.int64]:
    """Row indices of one photo chosen at random for each user (vectorized: shuffle, first per user)."""
    users = np.asarray(user_hash)
    perm = np.random.default_rng(seed).permutation(len(users))
    _, first = np.unique(users[perm], return_index=True)
    return np.sort(perm[first])


def utc_hour(posted_at: NDArray[np.int64]) -> NDArray[np.int64]:
    """UTC hour of day (0-23) of epoch seconds."""
    return (np.asarray(posted_at, dtype=np.int64) // 3600) % 24


def plot_longitude_by_hour(
    user_hash: NDArray,
    posted_at: NDArray[np.int64],
    lon: NDArray[np.float64],
    path: str | os.PathLike,
    seed: int = 0,
    title: str = "",
) -> int:
    """Figure 1; returns the number of photos (users) plotted."""
    plt = pyplot()
    rows = one_photo_per_user(user_hash, seed)
    hours = utc_hour(np.asarray(posted_at)[rows])
    lons = np.asarray(lon, dtype=np.float64)[rows]
    present = [h for h in range(24) if (hours == h).any()]
    fig, ax = plt.subplots(figsize=(12, 5), dpi=100)
    if present:
        ax.boxplot([lons[hours == h] for h in present], positions=present, widths=0.6, showfliers=False)
    ax.set_xlim(-0.7, 23.7)
    ax.set_xticks(range(24), labels=[str(h) for h in range(24)])  # boxplot set labels for its boxes only
    ax.set_ylim(-180, 180)
    ax.set_xlabel("hour of posting (UTC)")
    ax.set_ylabel("true longitude (deg)")
    ax.set_title(
        title or f"Figure 1: true longitude vs UTC posting hour ({len(rows):,} photos, one per user)"
    )
    save_figure(fig, path, bbox_inches="tight")
    return int(len(rows))


def plot_error_cdf(
    errors_km: dict[str, NDArray[np.float64]],
    thresholds_km: list[float],
    path: str | os.PathLike,
    title: str = "",
) -> None:
    """Share of photos with error <= d against d (log axis) for every model, thresholds dashed.

    Each curve is evaluated at 400 log-spaced distances (``searchsorted`` on the sorted errors), so
    2.7 M photos per model cost one sort, not 2.7 M plotted points.
    """
    plt = pyplot()
    grid = np.logspace(-1, np.log10(np.pi * EARTH_RADIUS_KM), 400)
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=100)
    for name, d in errors_km.items():
        s = np.sort(np.asarray(d, dtype=np.float64))
        if s.size:
            ax.plot(
                grid, 100.0 * np.searchsorted(s, grid, side="right") / s.size, label=f"{name} ({s.size:,})"
            )
    for t in thresholds_km:
        ax.axvline(t, color="grey", linestyle="--", linewidth=0.7)
        ax.text(t, 101, f"{t:g} km", rotation=90, va="bottom", ha="center", fontsize=7, color="grey")
    ax.set_xscale("log")
    ax.set_xlim(grid[0], grid[-1])
    ax.set_ylim(0, 100)
    ax.set_xlabel("error (km, log scale)")
    ax.set_ylabel("photos within error (%)")
    ax.set_title(title or "Error CDF of every model", pad=28)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    save_figure(fig, path, bbox_inches="tight")


def cell_accuracy(
    true_cell: NDArray[np.int64], errors_km: NDArray[np.float64], num_cells: int, threshold_km: float
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """(accuracy % per cell, photos per cell) over photos whose true location is in the cell; NaN
    for cells without photos. Photos in dropped cells are left out."""
    t = np.asarray(true_cell, dtype=np.int64)
    keep = t >= 0
    n = np.bincount(t[keep], minlength=num_cells)
    hit = np.bincount(
        t[keep], weights=(np.asarray(errors_km)[keep] <= threshold_km).astype(np.float64), minlength=num_cells
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(n > 0, 100.0 * hit / np.maximum(n, 1), np.nan)
    return acc, n


def plot_accuracy_map(
    mesh: "Mesh",
    true_cell: NDArray[np.int64],
    errors_km: NDArray[np.float64],
    lat: NDArray[np.float64],
    lon: NDArray[np.float64],
    threshold_km: float,
    path: str | os.PathLike,
    title: str = "",
    polygons: tuple[list[np.ndarray], list[int]] | None = None,
) -> None:
    """World map of accuracy at ``threshold_km`` per kept cell, over the basemap and the log photo
    density of ``lat, lon`` (the predicted locations). Cells are translucent (alpha 0.7) with dark
    edges, so the coastline shows through and a yellow cell stays distinct from the light land.
    ``polygons``: ``cell_polygons(mesh)``, computed once when several maps share a mesh."""
    plt = pyplot()
    from matplotlib.collections import PolyCollection

    acc, n = cell_accuracy(true_cell, errors_km, mesh.num_cells, threshold_km)
    fig, ax = plt.subplots(figsize=(14, 7), dpi=100)
    world_map(ax)
    photo_density(ax, lat, lon)
    polys, owner = polygons if polygons is not None else cell_polygons(mesh)
    owner_a = np.asarray(owner, dtype=np.int64)
    with_photos = n[owner_a] > 0 if owner_a.size else np.zeros(0, bool)
    cmap = plt.get_cmap("viridis")
    filled = PolyCollection(
        [p for p, w in zip(polys, with_photos) if w],
        cmap=cmap,
        edgecolors=(0.1, 0.1, 0.1, 0.5),
        linewidths=0.2,
        alpha=0.7,
    )
    filled.set_array(acc[owner_a[with_photos]])
    filled.set_clim(0.0, 100.0)
    ax.add_collection(filled)
    outline_cells(ax, [p for p, w in zip(polys, with_photos) if not w])
    fig.colorbar(filled, ax=ax, fraction=0.025, pad=0.01, label=f"photos within {threshold_km:g} km (%)")
    ax.set_title(
        title or f"Accuracy at {threshold_km:g} km per cell ({int((n > 0).sum())} cells with photos)"
    )
    save_figure(fig, path, bbox_inches="tight")
