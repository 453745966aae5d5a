"""Maps of geoloc: the basemap under every map, and the mesh map in the spirit of the paper's Figure 2.

Every matplotlib map of geoloc (this mesh map, the report's accuracy maps, `geoloc predict --map`,
the locations panel of `geoloc search --sheet`) draws ``draw_basemap`` first: a light sea, light
land, the coastline and the borders of ``mesh.basemap`` (shipped, offline), and the credit line.
On the mesh map, kept cells (those with enough photos to be classes) are red triangles and dropped
cells thin grey outlines; where the photos are is a translucent dark haze over the land
(``photo_density``), so the map shows both the coastline and the photos. matplotlib is imported
here only, lazily, with the Agg backend.
"""

from __future__ import annotations

import functools
import io
import os
import textwrap
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from mesh import basemap
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


#: The basemap's colours: a light sea and light neutral land, so that cells coloured on top of them
#: stay readable; a thin darker coastline and thinner, lighter borders.
OCEAN_COLOR = "#d4e6f1"
LAND_COLOR = "#efebe2"
COAST_COLOR = "#5f7382"
BORDER_COLOR = "#a9a39a"

#: A map whose extent spans less than this (degrees, the longer side) draws the 1:50 m basemap. The
#: 1:110 m coastline has a vertex every 0.8 deg (median; 1.7 deg at the 90th percentile): about
#: 3 px on a 14-inch world map, but 6-13 px on a 7-inch map 90 deg wide, where its corners show. The
#: 1:50 m one (a vertex every 0.1 deg, 60 000 vertices against 5 000) stays under a pixel there; on
#: a world map its detail is under half a pixel and only costs the 0.4 s of loading it once.
REGIONAL_SPAN_DEG = 90.0


def basemap_resolution(extent: tuple[float, float, float, float] | None) -> str:
    """ "50m" for an extent (lon0, lon1, lat0, lat1) under ``REGIONAL_SPAN_DEG`` on its longer
    side, else "110m" (the whole world: ``extent`` None)."""
    if extent is None:
        return "110m"
    lon0, lon1, lat0, lat1 = extent
    return "50m" if max(abs(lon1 - lon0), abs(lat1 - lat0)) < REGIONAL_SPAN_DEG else "110m"


@functools.cache
def _basemap_paths(resolution: str) -> tuple[Any, Any, Any]:
    """matplotlib paths (land, coastline, borders) of ``mesh.basemap.load(resolution)``, built once.

    Land is one compound path: a hole (the Caspian Sea) is wound against its outer ring, so it stays
    open under the non-zero rule matplotlib fills with. The coastline is the rings without the
    edges the basemap added (cuts along lon +-180, Antarctica closed along lat -90), which are not
    coasts and would show as strokes on a map of the Pacific.
    """
    from matplotlib.path import Path

    shipped = basemap.load(resolution)
    rings = [ring for polygon in shipped.land for ring in polygon]
    land = Path.make_compound_path(*(Path(ring, closed=True) for ring in rings))
    coast = [run for ring in rings for run in _coast_runs(ring)]
    return land, _lines_path(coast), _lines_path(shipped.borders)


def _coast_runs(ring: np.ndarray) -> list[np.ndarray]:
    """The runs of consecutive coastline edges of ``ring`` (edges along lon +-180 or lat -90 left
    out)."""
    a, b = ring[:-1], ring[1:]
    real = ~(((np.abs(a[:, 0]) == 180.0) & (a[:, 0] == b[:, 0])) | ((a[:, 1] <= -90.0) & (b[:, 1] <= -90.0)))
    if real.all():
        return [ring]
    edges = np.flatnonzero(real)
    runs = np.split(edges, np.flatnonzero(np.diff(edges) > 1) + 1)
    return [ring[run[0] : run[-1] + 2] for run in runs if len(run)]


def _lines_path(lines: list[np.ndarray]) -> Any:
    """One matplotlib path of open polylines (strokes, no fill)."""
    from matplotlib.path import Path

    vertices = np.concatenate(lines)
    codes = np.full(len(vertices), Path.LINETO, dtype=Path.code_type)
    codes[np.cumsum([0] + [len(line) for line in lines[:-1]])] = Path.MOVETO
    return Path(vertices, codes)


def draw_basemap(ax: Any, extent: tuple[float, float, float, float] | None = None) -> None:
    """Sea, land, borders and coastline of ``mesh.basemap`` under everything else on ``ax`` (a map
    in plain lon/lat degrees), and its credit (``mesh.basemap.CREDIT``) small in the lower right
    corner.

    ``extent`` (lon0, lon1, lat0, lat1) is what the map will show, None for the whole world: it
    picks the resolution (``basemap_resolution``). The caller sets the limits; drawing the basemap
    changes neither the limits nor the data limits (its artists are added without autoscaling).
    """
    from matplotlib.patches import PathPatch

    land, coast, borders = _basemap_paths(basemap_resolution(extent))
    ax.set_facecolor(OCEAN_COLOR)
    for artist in (
        PathPatch(land, facecolor=LAND_COLOR, edgecolor="none", zorder=0.1),
        PathPatch(borders, fill=False, edgecolor=BORDER_COLOR, linewidth=0.3, zorder=0.2),
        PathPatch(coast, fill=False, edgecolor=COAST_COLOR, linewidth=0.5, zorder=0.3),
    ):
        ax.add_artist(artist)
    ax.text(
        0.995,
        0.006,
        textwrap.fill(basemap.CREDIT, 56),  # two short lines: it fits a small panel too
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize=5,
        color="#555555",
        linespacing=1.0,
        zorder=5,
    )


def photo_density(ax: Any, lat: np.ndarray, lon: np.ndarray) -> None:
    """Where the photos are, as a translucent dark haze over the basemap (0.5 degree bins, log
    scale: one photo a faint tint, the densest bin nearly opaque; bins without photos left clear so
    the land and sea show): the mesh map and the report's accuracy maps."""
    from matplotlib.colors import ListedColormap

    if not len(lat):
        return
    h, _, _ = np.histogram2d(lon, lat, bins=(720, 360), range=((-180, 180), (-90, 90)))
    level = np.log1p(h.T)
    haze = np.zeros((256, 4))
    haze[:, :3] = (0.12, 0.10, 0.22)
    haze[:, 3] = np.linspace(0.25, 0.9, 256)
    ax.imshow(
        np.ma.masked_equal(level, 0.0),
        origin="lower",
        extent=(-180, 180, -90, 90),
        cmap=ListedColormap(haze),
        vmin=0.0,
        vmax=max(float(level.max()), 1e-9),
        interpolation="nearest",
        aspect="auto",
        zorder=0.5,
    )


def plot_mesh(
    mesh: "Mesh",
    lat: NDArray[np.float64],
    lon: NDArray[np.float64],
    path: str | os.PathLike,
    title: str = "",
) -> None:
    """Write a Figure-2-like PNG of ``mesh`` to ``path``: kept cells red, dropped cells outlined,
    over the basemap and the density of photos ``lat, lon``."""
    from matplotlib.collections import PolyCollection

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(14, 7), dpi=120)
    world_map(ax)
    photo_density(ax, lat, lon)
    polys, owner = triangle_polygons(mesh)
    is_kept = mesh.triangle_class[np.asarray(owner, np.int64)] >= 0 if owner else np.zeros(0, bool)
    outline_cells(ax, [p for p, k in zip(polys, is_kept) if not k])
    ax.add_collection(
        PolyCollection(
            [p for p, k in zip(polys, is_kept) if k],
            facecolors=(0.9, 0.0, 0.0, 0.22),
            edgecolors=(0.8, 0.0, 0.0, 0.9),
            linewidths=0.35,
        )
    )
    ax.set_title(
        title
        or f"{mesh.num_cells} kept cells (red) of {mesh.num_triangles} triangles; "
        f"refinement limit {mesh.refinement_limit}, minimum examples {mesh.min_examples}"
    )
    save_figure(fig, path, bbox_inches="tight")


def world_map(ax: Any) -> None:
    """``ax`` as a map of the whole world in lon/lat degrees over the basemap: every world map of
    geoloc starts here."""
    draw_basemap(ax)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_xlabel("longitude (deg)")
    ax.set_ylabel("latitude (deg)")


#: A regional map shows its points padded by this share of their spread on each side, and at least
#: this many degrees of latitude (one point, or a single small cell, with its surroundings).
REGION_PAD = 0.25
REGION_MIN_SPAN_DEG = 8.0


def extent_around(lon: np.ndarray, lat: np.ndarray) -> tuple[float, float, float, float]:
    """(lon0, lon1, lat0, lat1) around the points ``lon, lat`` (degrees; those beyond +-180 or
    +-90, such as shifted copies of cells, are left out): padded by ``REGION_PAD``, at least
    ``REGION_MIN_SPAN_DEG`` high and as wide on the ground (the longitude span grows by
    1 / cos(latitude)), within the world."""
    lon, lat = np.asarray(lon, np.float64).ravel(), np.asarray(lat, np.float64).ravel()
    inside = (np.abs(lon) <= 180.0) & (np.abs(lat) <= 90.0)
    lon, lat = lon[inside], lat[inside]
    half_lat = max((lat.max() - lat.min()) * (0.5 + REGION_PAD), REGION_MIN_SPAN_DEG / 2)
    mid_lat = (lat.max() + lat.min()) / 2
    half_lon = max((lon.max() - lon.min()) * (0.5 + REGION_PAD), half_lat / _cos_lat(mid_lat))
    mid_lon = (lon.max() + lon.min()) / 2
    return (
        float(max(mid_lon - half_lon, -180.0)),
        float(min(mid_lon + half_lon, 180.0)),
        float(max(mid_lat - half_lat, -90.0)),
        float(min(mid_lat + half_lat, 90.0)),
    )


def _cos_lat(lat: float) -> float:
    """cos(latitude), at least 0.2 (a map near a pole is stretched at most 5 times)."""
    return float(max(np.cos(np.radians(lat)), 0.2))


def region_map(ax: Any, extent: tuple[float, float, float, float]) -> None:
    """``ax`` as a map of ``extent`` (lon0, lon1, lat0, lat1) over the basemap, a degree of
    longitude drawn cos(latitude) as wide as one of latitude (true shapes at the middle latitude):
    every regional map of geoloc starts here."""
    draw_basemap(ax, extent)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect(1.0 / _cos_lat((extent[2] + extent[3]) / 2))
    ax.set_xlabel("longitude (deg)")


def outline_cells(ax: Any, polygons: list[np.ndarray]) -> None:
    """Cells without a value (dropped, no photo, no known probability) drawn as dark grey outlines,
    visible over land and sea: one look for every map of cells (the mesh map, accuracy maps,
    `geoloc predict --map`)."""
    from matplotlib.collections import PolyCollection

    ax.add_collection(
        PolyCollection(polygons, facecolors="none", edgecolors=(0.25, 0.25, 0.3, 0.45), linewidths=0.25)
    )


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (files only, no display): every map and plot of geoloc
    draws through it. Imported when called, so that importing mesh never costs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike, **savefig_options: Any) -> None:
    """Writes a matplotlib figure as a PNG atomically and closes it (every map and plot of geoloc
    goes through here)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", **savefig_options)
    plt.close(fig)
    write_atomic(path, lambda f: f.write(buf.getvalue()))
