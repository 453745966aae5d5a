"""`geoloc predict --map`: one photo's probability over the mesh cells, top guess marked.

Each kept cell is filled by its probability (the model's softmax, §3.1.2), on a log colour scale so
that the tail is visible next to a confident top cell; cells whose probability is unknown (an
export that returns only its top-k) are outlined in grey; the 50 % mass set is outlined in white;
the top cell's label point is a star. Cell polygons come from ``mesh.plot.cell_polygons``
(computed once per mesh and reused for every photo of a run).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from geoloc_tf.evaluation.plots import _pyplot, _save
from mesh.plot import cell_polygons, outline_cells

if TYPE_CHECKING:
    from mesh import Mesh


def plot_probability_map(
    mesh: "Mesh",
    cell_probabilities: np.ndarray,
    top_lat: float,
    top_lon: float,
    path: str | os.PathLike,
    title: str = "",
    mass50_cells: np.ndarray | None = None,
    polygons: tuple[list[np.ndarray], list[int]] | None = None,
) -> None:
    """PNG map of ``cell_probabilities`` (num_cells,), NaN where unknown, written atomically."""
    plt = _pyplot()
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import LogNorm

    polys, owner = polygons if polygons is not None else cell_polygons(mesh)
    owner_a = np.asarray(owner, np.int64)
    probs = np.asarray(cell_probabilities, np.float64)[owner_a]
    known = np.isfinite(probs)
    fig, ax = plt.subplots(figsize=(14, 7), dpi=100)
    ax.set_facecolor("black")
    floor = max(float(np.nanmax(probs)) * 1e-4, 1e-12) if known.any() else 1e-12
    filled = PolyCollection(
        [p for p, k in zip(polys, known) if k],
        cmap=plt.get_cmap("magma"),
        norm=LogNorm(vmin=floor, vmax=max(float(np.nanmax(probs)), 2 * floor) if known.any() else 1.0),
        edgecolors=(1, 1, 1, 0.15),
        linewidths=0.15,
    )
    filled.set_array(np.maximum(probs[known], floor))
    ax.add_collection(filled)
    outline_cells(ax, [p for p, k in zip(polys, known) if not k])
    if mass50_cells is not None and len(mass50_cells):
        inside = np.isin(owner_a, np.asarray(mass50_cells))
        ax.add_collection(
            PolyCollection(
                [p for p, k in zip(polys, inside) if k], facecolors="none", edgecolors="white", linewidths=0.8
            )
        )
    ax.plot(
        [top_lon],
        [top_lat],
        marker="*",
        markersize=18,
        color="cyan",
        markeredgecolor="black",
        label=f"top cell label point ({top_lat:.2f}, {top_lon:.2f})",
    )
    fig.colorbar(filled, ax=ax, fraction=0.025, pad=0.01, label="cell probability (log scale)")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_xlabel("longitude (deg)")
    ax.set_ylabel("latitude (deg)")
    ax.set_title(title or "probability over the mesh cells")
    _save(fig, path)
