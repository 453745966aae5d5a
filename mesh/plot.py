"""PNG map of a mesh in the spirit of the paper's Figure 2.

Kept cells (those with enough photos to be classes) are drawn as red triangles, dropped cells as
thin grey outlines, over a background that shows the continents without any map data or network
access: the photo density itself (a log-scaled 2D histogram of the photos), since photos are
where people are. matplotlib is imported here only, lazily, with the Agg backend.
"""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from mesh.atomic import write_atomic
from mesh.geojson import triangle_ring

if TYPE_CHECKING:
    from mesh.mesh import Mesh


def plot_mesh(
    mesh: "Mesh",
    lat: NDArray[np.float64],
    lon: NDArray[np.float64],
    path: str | os.PathLike,
    title: str = "",
) -> None:
    """Write a Figure-2-like PNG of ``mesh`` over the density of photos ``lat, lon`` to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    fig, ax = plt.subplots(figsize=(14, 7), dpi=120)
    ax.set_facecolor("black")
    if len(lat):
        h, xe, ye = np.histogram2d(lon, lat, bins=(720, 360), range=((-180, 180), (-90, 90)))
        ax.imshow(np.log1p(h.T), origin="lower", extent=(-180, 180, -90, 90), cmap="gray",
                  interpolation="nearest", aspect="auto")
    kept, dropped = [], []
    for t in range(mesh.num_triangles):  # one polygon per cell, not per photo
        a, b, c = (mesh.vertices[mesh.triangles[t, k]] for k in range(3))
        polys = [np.asarray(p[0]) for p in triangle_ring(a, b, c)]
        (kept if mesh.triangle_class[t] >= 0 else dropped).extend(polys)
    ax.add_collection(PolyCollection(dropped, facecolors="none", edgecolors=(0.6, 0.6, 0.6, 0.5), linewidths=0.2))
    ax.add_collection(PolyCollection(kept, facecolors=(1.0, 0.0, 0.0, 0.25), edgecolors="red", linewidths=0.3))
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_xlabel("longitude (deg)")
    ax.set_ylabel("latitude (deg)")
    ax.set_title(title or f"{mesh.num_cells} kept cells (red) of {mesh.num_triangles} triangles; "
                          f"refinement limit {mesh.refinement_limit}, minimum examples {mesh.min_examples}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    write_atomic(path, lambda f: f.write(buf.getvalue()))
