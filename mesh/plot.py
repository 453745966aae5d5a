"""PNG map of a mesh in the spirit of the paper's Figure 2.

Kept cells (those with enough photos to be classes) are drawn as red triangles, dropped cells as
thin grey outlines, over a background that shows the continents without any map data or network
access: the photo density itself (a log-scaled 2D histogram of the photos), since photos are
where people are. matplotlib is imported here only, lazily, with the Agg backend.
"""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from mesh.atomic import write_atomic
from mesh.geojson import triangle_ring
from mesh.sphere import xyz_to_lat_lon

if TYPE_CHECKING:
    from mesh.mesh import Mesh


def triangle_polygons(
    mesh: "Mesh", triangles: NDArray[np.int64] | None = None, max_segment_deg: float = 1.0
) -> tuple[list[np.ndarray], list[int]]:
    """Polygons (lon, lat) of mesh triangles (all, or the ids ``triangles``) for a map, and for
    each polygon the position in ``triangles`` of the triangle it draws.

    Vectorized over triangles (``mesh.geojson.triangle_ring`` does one triangle per call, ~1 ms
    each): every edge is cut into the same number of great-circle pieces (at most
    ``max_segment_deg`` on the longest edge, 2 to 32), longitudes are unwrapped along each ring,
    and a ring reaching beyond +-180 deg is also drawn shifted by 360 deg so the map shows it on
    both edges. The few triangles at a pole (a corner on it, or containing it) go through
    ``triangle_ring``, which handles them.
    """
    ids = np.arange(mesh.num_triangles) if triangles is None else np.asarray(triangles, np.int64)
    corners = mesh.vertices[mesh.triangles[ids]]  # (T, 3 corners, 3 xyz)
    num = len(corners)
    if num == 0:
        return [], []
    u, v = corners, np.roll(corners, -1, axis=1)  # edges a->b, b->c, c->a
    angle = np.arctan2(np.linalg.norm(np.cross(u, v), axis=-1), np.sum(u * v, axis=-1))  # (C, 3)
    steps = int(np.clip(np.ceil(np.degrees(angle.max()) / max_segment_deg), 2, 32))
    t = (np.arange(steps) / steps)[None, None, :, None]
    a = angle[:, :, None, None]
    sin_a = np.where(a > 1e-12, np.sin(a), 1.0)
    pts = np.where(
        a > 1e-12,
        (np.sin((1 - t) * a) * u[:, :, None] + np.sin(t * a) * v[:, :, None]) / sin_a,
        u[:, :, None],
    )
    lat, lon = xyz_to_lat_lon(pts.reshape(-1, 3))
    lat = lat.reshape(num, 3 * steps)
    lon = np.degrees(np.unwrap(np.radians(lon.reshape(num, 3 * steps)), axis=1))
    normals = np.cross(u, v)[:, :, 2]  # z of each edge's plane normal: all one sign = a pole inside
    at_pole = (np.abs(lat) > 90.0 - 1e-9).any(axis=1) | (normals > 0).all(axis=1) | (normals < 0).all(axis=1)
    polys, owner = [], []
    rings = np.stack([lon, lat], axis=2)
    for c in range(num):  # one polygon per triangle, not per photo
        if at_pole[c]:  # type: ignore[index]  # numpy's stub: any(axis=1) might be a scalar
            a_, b_, c_ = corners[c]
            cell_rings = [np.asarray(p[0]) for p in triangle_ring(a_, b_, c_)]
        else:
            cell_rings = [rings[c]]
        for ring in cell_rings:
            polys.append(ring)
            owner.append(c)
            for shift in (-360.0, 360.0):
                if (ring[:, 0] + shift > -180.0).any() and (ring[:, 0] + shift < 180.0).any():
                    polys.append(ring + np.array([shift, 0.0]))
                    owner.append(c)
    return polys, owner


def cell_polygons(mesh: "Mesh", max_segment_deg: float = 1.0) -> tuple[list[np.ndarray], list[int]]:
    """Polygons (lon, lat) of the kept cells and the class id of each (``triangle_polygons`` of
    the cells' triangles, in class order)."""
    return triangle_polygons(mesh, mesh.cell_triangle, max_segment_deg)


def photo_density_background(ax: Any, lat: np.ndarray, lon: np.ndarray) -> None:
    """Black map with the photos' density in grey (log scale, 0.5 degree bins): the background of
    the mesh map and the report's accuracy maps."""
    ax.set_facecolor("black")
    if len(lat):
        h, _, _ = np.histogram2d(lon, lat, bins=(720, 360), range=((-180, 180), (-90, 90)))
        ax.imshow(
            np.log1p(h.T),
            origin="lower",
            extent=(-180, 180, -90, 90),
            cmap="gray",
            interpolation="nearest",
            aspect="auto",
        )


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
    photo_density_background(ax, lat, lon)
    polys, owner = triangle_polygons(mesh)
    is_kept = mesh.triangle_class[np.asarray(owner, np.int64)] >= 0 if owner else np.zeros(0, bool)
    kept = [p for p, k in zip(polys, is_kept) if k]
    dropped = [p for p, k in zip(polys, is_kept) if not k]
    ax.add_collection(
        PolyCollection(dropped, facecolors="none", edgecolors=(0.6, 0.6, 0.6, 0.5), linewidths=0.2)
    )
    ax.add_collection(
        PolyCollection(kept, facecolors=(1.0, 0.0, 0.0, 0.25), edgecolors="red", linewidths=0.3)
    )
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_xlabel("longitude (deg)")
    ax.set_ylabel("latitude (deg)")
    ax.set_title(
        title
        or f"{mesh.num_cells} kept cells (red) of {mesh.num_triangles} triangles; "
        f"refinement limit {mesh.refinement_limit}, minimum examples {mesh.min_examples}"
    )
    save_figure(fig, path, bbox_inches="tight")


def outline_cells(ax: Any, polygons: list[np.ndarray]) -> None:
    """Cells without a value (no photo, no known probability) drawn as grey outlines on a map of
    cell values: one look for every such map (accuracy maps, `geoloc predict --map`)."""
    from matplotlib.collections import PolyCollection

    ax.add_collection(
        PolyCollection(polygons, facecolors="none", edgecolors=(0.6, 0.6, 0.6, 0.6), linewidths=0.2)
    )


def save_figure(fig: Any, path: str | os.PathLike, **savefig_options: Any) -> None:
    """Writes a matplotlib figure as a PNG atomically and closes it (every map and plot of geoloc
    goes through here)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", **savefig_options)
    plt.close(fig)
    write_atomic(path, lambda f: f.write(buf.getvalue()))
