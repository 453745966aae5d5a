"""`geoloc predict --map`: one photo's probability over the mesh cells, top guess marked.

Two panels over the basemap (``mesh.plot.world_map``, ``mesh.plot.region_map``): the world, and the
region of the 50 % mass set (the smallest set of cells holding half the probability,
``inference.mass``) and the top cell's label point, where the finer 1:50 m coastline of a small
region shows which coast or valley the model means. Each kept cell is filled by its probability (the model's softmax, §3.1.2) on a log colour
scale, so that the tail is visible next to a confident top cell; the fill is translucent and more
so where the probability is low, so the land and sea under the unlikely cells stay readable.
Cells whose probability is unknown (an export that returns only its top-k) are outlined in grey;
the 50 % mass set is outlined in blue on a white halo; the top cell's label point is a star. Cell
polygons come from ``mesh.plot.cell_polygons`` (computed once per mesh and reused for every photo
of a run).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from mesh.plot import (
    cell_polygons,
    extent_around,
    outline_cells,
    pyplot,
    region_map,
    save_figure,
    world_map,
)

if TYPE_CHECKING:
    from mesh import Mesh

#: The 50 % set's outline: a blue line on a white halo, visible on dark and light cells alike.
MASS50_COLOR = "#0050d0"


def _translucent(name: str) -> Any:
    """The first 85 % of colormap ``name`` (magma_r without its near-black end) with an alpha ramp
    from 0.12 (its low end) to 0.65 (its high end): the coastline under the likeliest cells stays
    visible."""
    from matplotlib.colors import ListedColormap

    plt = pyplot()
    colours = plt.get_cmap(name)(np.linspace(0.0, 0.85, 256))
    colours[:, 3] = np.linspace(0.12, 0.65, 256)
    return ListedColormap(colours, name=f"{name}_translucent")


def _draw_cells(
    ax: Any,
    polys: list[np.ndarray],
    probs: np.ndarray,
    inside50: np.ndarray,
    norm: Any,
    top_lat: float,
    top_lon: float,
) -> Any:
    """One panel's cells (filled by probability, unknown ones outlined), the 50 % outline and the
    star; returns the filled collection (for the colour bar)."""
    from matplotlib.collections import PolyCollection

    known = np.isfinite(probs)
    filled = PolyCollection(
        [p for p, k in zip(polys, known) if k],
        cmap=_translucent("magma_r"),
        norm=norm,
        edgecolors=(0.0, 0.0, 0.0, 0.15),
        linewidths=0.2,
    )
    filled.set_array(np.maximum(probs[known], norm.vmin))
    ax.add_collection(filled)
    outline_cells(ax, [p for p, k in zip(polys, known) if not k])
    if inside50.any():
        ring = [p for p, k in zip(polys, inside50) if k]
        for colour, width in (("white", 2.6), (MASS50_COLOR, 1.1)):
            ax.add_collection(PolyCollection(ring, facecolors="none", edgecolors=colour, linewidths=width))
    ax.plot(
        [top_lon],
        [top_lat],
        marker="*",
        markersize=18,
        color="cyan",
        markeredgecolor="black",
        linestyle="none",
        label=f"top cell label point ({top_lat:.2f}, {top_lon:.2f})",
    )
    return filled


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
    """PNG map of ``cell_probabilities`` (num_cells,), NaN where unknown, written atomically: the
    world on the left, the region of ``mass50_cells`` (or of the label point when the set is
    unknown) on the right."""
    plt = pyplot()
    from matplotlib.colors import LogNorm
    from matplotlib.lines import Line2D

    polys, owner = polygons if polygons is not None else cell_polygons(mesh)
    owner_a = np.asarray(owner, np.int64)
    probs = np.asarray(cell_probabilities, np.float64)[owner_a]
    known = np.isfinite(probs)
    top = float(np.nanmax(probs)) if known.any() else 1.0
    floor = max(top * 1e-4, 1e-12)
    norm = LogNorm(vmin=floor, vmax=max(top, 2 * floor))
    inside50 = (
        np.isin(owner_a, np.asarray(mass50_cells))
        if mass50_cells is not None and len(mass50_cells)
        else np.zeros(len(owner_a), bool)
    )
    fig, (world, region) = plt.subplots(
        1, 2, figsize=(18, 6.6), dpi=100, gridspec_kw={"width_ratios": [2.0, 1.0]}
    )
    world_map(world)
    filled = _draw_cells(world, polys, probs, inside50, norm, top_lat, top_lon)
    world.set_title("world", fontsize=9)

    corners = np.concatenate([p for p, k in zip(polys, inside50) if k] + [np.array([[top_lon, top_lat]])])
    region_map(region, extent_around(corners[:, 0], corners[:, 1]))
    _draw_cells(region, polys, probs, inside50, norm, top_lat, top_lon)
    region.set_title("the 50 % set" if inside50.any() else "around the top cell", fontsize=9)

    fig.colorbar(filled, ax=region, fraction=0.05, pad=0.02, label="cell probability (log scale)")
    handles, _ = world.get_legend_handles_labels()
    if inside50.any():
        handles.append(Line2D([], [], color=MASS50_COLOR, linewidth=1.1, label="50 % of the probability"))
    world.legend(handles=handles, loc="lower left", fontsize=8)
    fig.suptitle(title or "probability over the mesh cells")
    save_figure(fig, path, bbox_inches="tight")
