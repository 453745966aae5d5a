"""The classification mesh: kept triangles are the classes of every model (§3.1.1, Table 1).

``build_mesh`` runs the paper's adaptive refinement; ``Mesh`` answers which class a photo belongs
to, gives each class its two label points (§3.1.2: the triangle's centroid and the "center-of-mass"
of its training imagery), saves/loads itself and exports GeoJSON.

File format (``Mesh.save``), version 1: one ``.npz`` file (numpy, no pickle) holding
``format`` ("geoloc-mesh"), ``format_version`` (1), ``vertices`` (V, 3) float64 unit vectors,
``triangles`` (T, 3) int64 counter-clockwise vertex indices, ``triangle_counts`` (T,) int64 photos
per triangle, ``cell_triangle`` (C,) int64 triangle of class c (ascending), ``imagery_xyz`` (C, 3)
float64 spherical-mean unit vectors, ``params`` int64 [refinement_limit, min_examples, init_grid]
and ``info`` (a JSON string with build statistics). Readers refuse a higher ``format_version``.
"""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mesh.atomic import write_atomic
from mesh.errors import MeshError, MeshFormatError
from mesh.geodesy import EARTH_RADIUS_KM
from mesh.locate import QUERY_SUBCELLS_PER_TRIANGLE, Locator
from mesh.sphere import check_lat_lon, lat_lon_to_xyz, normalize, triangle_areas_sr, xyz_to_lat_lon

FORMAT_NAME = "geoloc-mesh"
FORMAT_VERSION = 1
#: The files of a mesh folder (``mesh.build.write_mesh_outputs``): the mesh itself (``Mesh.save``),
#: its kept cells as GeoJSON, the build summary and a Figure-2-like map (a run's mesh/,
#: ``geoloc build-mesh --out``).
MESH_FILE = "mesh.npz"
GEOJSON_FILE = "mesh.geojson"
SUMMARY_FILE = "summary.json"
PLOT_FILE = "mesh.png"
_POINT_CHUNK = 1 << 20


class Mesh:
    """A triangulation of the sphere whose kept triangles ("cells") are classes 0..num_cells-1.

    Triangles holding fewer than ``min_examples`` photos are dropped: not classes, and
    ``locate`` returns -1 for points in them (§3.1.1). Class ids follow triangle order.
    """

    def __init__(
        self,
        vertices: NDArray[np.float64],
        triangles: NDArray[np.int64],
        triangle_counts: NDArray[np.int64],
        cell_triangle: NDArray[np.int64],
        imagery_xyz: NDArray[np.float64],
        refinement_limit: int,
        min_examples: int,
        init_grid: int = 31,
        info: dict[str, Any] | None = None,
        locator: Locator | None = None,
    ) -> None:
        self.vertices = np.ascontiguousarray(vertices, dtype=np.float64)
        self.triangles = np.ascontiguousarray(triangles, dtype=np.int64)
        self.triangle_counts = np.asarray(triangle_counts, dtype=np.int64)
        self.cell_triangle = np.asarray(cell_triangle, dtype=np.int64)
        self.refinement_limit = int(refinement_limit)
        self.min_examples = int(min_examples)
        self.init_grid = int(init_grid)
        self.info: dict[str, Any] = dict(info or {})
        self._locator = locator
        T = len(self.triangles)
        self.triangle_class = np.full(T, -1, dtype=np.int64)
        self.triangle_class[self.cell_triangle] = np.arange(len(self.cell_triangle))
        a, b, c = (self.vertices[self.triangles[self.cell_triangle, k]] for k in range(3))
        self._cell_xyz = normalize(a + b + c) if len(self.cell_triangle) else np.zeros((0, 3))
        imagery_xyz = np.asarray(imagery_xyz, dtype=np.float64).reshape(-1, 3)
        empty = np.linalg.norm(imagery_xyz, axis=1) == 0  # a cell without photos: use its centroid
        self._imagery_xyz = np.where(empty[:, None], self._cell_xyz, imagery_xyz)

    # ------------------------------------------------------------------ properties
    @property
    def num_cells(self) -> int:
        """Number of kept cells, i.e. classes (Table 1 "Cell Count")."""
        return int(len(self.cell_triangle))

    @property
    def num_triangles(self) -> int:
        """All triangles, kept and dropped."""
        return int(len(self.triangles))

    @property
    def counts(self) -> NDArray[np.int64]:
        """(num_cells,) photos per kept cell (from the build or the last ``populate``)."""
        return self.triangle_counts[self.cell_triangle]

    @property
    def cell_centroids(self) -> NDArray[np.float64]:
        """(num_cells, 2) [lat, lon] degrees: the triangle's centroid (mean of its corner unit
        vectors, projected to the sphere) -- the "cell centroid" label point of Table 6."""
        return np.stack(xyz_to_lat_lon(self._cell_xyz), axis=1)

    @property
    def imagery_centroids(self) -> NDArray[np.float64]:
        """(num_cells, 2) [lat, lon] degrees: spherical mean of the cell's photos (mean unit vector,
        renormalised), §3.1.2's "center-of-mass" label point; the cell centroid if it has none."""
        return np.stack(xyz_to_lat_lon(self._imagery_xyz), axis=1)

    @property
    def imagery_xyz(self) -> NDArray[np.float64]:
        return self._imagery_xyz

    @property
    def cell_areas_km2(self) -> NDArray[np.float64]:
        """(num_cells,) area of each kept cell in km2: the spherical excess of its triangle
        (``mesh.sphere.triangle_areas_sr``) times R^2, R = 6372.795 km (§3.1.3). All the
        triangles of a mesh sum to 4 pi R^2."""
        a, b, c = (self.vertices[self.triangles[self.cell_triangle, k]] for k in range(3))
        return triangle_areas_sr(a, b, c) * EARTH_RADIUS_KM**2

    @property
    def locator(self) -> Locator:
        if self._locator is None:
            self._locator = Locator(
                self.vertices, self.triangles, subcells_per_triangle=QUERY_SUBCELLS_PER_TRIANGLE
            )
        return self._locator

    # ------------------------------------------------------------------ queries
    def locate_triangles(self, lat: ArrayLike, lon: ArrayLike) -> NDArray[np.int64]:
        """Triangle index of each point (all triangles; rule in ``mesh.locate``)."""
        lat_a, lon_a = check_lat_lon(lat, lon, "locate")
        return self.locator.locate(lat_a, lon_a)

    def locate(self, lat: ArrayLike, lon: ArrayLike) -> NDArray[np.int64]:
        """Class id of each point (degrees), -1 for points in dropped cells.

        Exact: agrees with a brute-force containment test everywhere, including edges, vertices,
        poles and the antimeridian; ties go to the lowest-numbered triangle (``mesh.locate``).
        """
        lat_a, lon_a = check_lat_lon(lat, lon, "locate")
        return self.locator.locate(lat_a, lon_a, relabel=self.triangle_class)

    def populate(self, lat: ArrayLike, lon: ArrayLike, min_examples: int | None = None) -> "Mesh":
        """A mesh with the same triangles, recounted and with imagery centroids recomputed from
        other photos, **without refining** (Figure 2: the coarse mesh was built on 2M photos and
        then populated with all training data).

        With ``min_examples=None`` the kept cells (and class ids) stay as they are; with a number,
        cells are re-selected by the new counts and renumbered.
        """
        lat_a, lon_a = check_lat_lon(lat, lon, "populate")
        tri = self.locator.locate(lat_a, lon_a)
        counts = np.bincount(tri, minlength=self.num_triangles).astype(np.int64)
        if min_examples is None:
            cell_triangle = self.cell_triangle
            min_ex = self.min_examples
        else:
            min_ex = int(min_examples)
            cell_triangle = np.flatnonzero(counts >= min_ex)
        imagery = _imagery_xyz(lat_a, lon_a, tri, cell_triangle, self.num_triangles)
        info = dict(self.info, populated_with=int(lat_a.size))
        return Mesh(
            self.vertices,
            self.triangles,
            counts,
            cell_triangle,
            imagery,
            self.refinement_limit,
            min_ex,
            self.init_grid,
            info,
            self._locator,
        )

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write the mesh to ``path`` (format in the module docstring), atomically."""
        arrays = dict(
            format=np.array(FORMAT_NAME),
            format_version=np.array(FORMAT_VERSION, dtype=np.int64),
            vertices=self.vertices,
            triangles=self.triangles,
            triangle_counts=self.triangle_counts,
            cell_triangle=self.cell_triangle,
            imagery_xyz=self._imagery_xyz,
            params=np.array([self.refinement_limit, self.min_examples, self.init_grid], dtype=np.int64),
            info=np.array(json.dumps(self.info, sort_keys=True)),
        )
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # type: ignore[arg-type]  # numpy's stub: ** could reach allow_pickle
        write_atomic(path, lambda f: f.write(buf.getvalue()))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Mesh":
        """Read a mesh written by ``save``; a directory means ``<dir>/mesh.npz``."""
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, MESH_FILE)
        if not os.path.exists(path):
            raise MeshFormatError(f"{path}: no such mesh file; expected a file written by Mesh.save")
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
            # a .npz is a zip whose members each hold a CRC-32 that zipfile checks while reading:
            # a truncated or altered file is refused here (mesh.integrity)
            raise MeshFormatError(
                f"{path}: not a readable mesh file ({str(e).splitlines()[0] if str(e) else type(e).__name__}: "
                "truncated or damaged); rebuild it with `geoloc build-mesh` or the run's mesh stage"
            ) from None
        if str(data.get("format", "")) != FORMAT_NAME or "format_version" not in data:
            raise MeshFormatError(f"{path}: not a geoloc mesh file (field 'format' != {FORMAT_NAME!r})")
        version = int(data["format_version"])
        if version > FORMAT_VERSION:
            raise MeshFormatError(
                f"{path}: mesh format version {version} is newer than this geoloc supports "
                f"(<= {FORMAT_VERSION}); upgrade geoloc to read it"
            )
        missing = [
            k
            for k in ("vertices", "triangles", "triangle_counts", "cell_triangle", "imagery_xyz", "params")
            if k not in data
        ]
        if missing:
            raise MeshFormatError(f"{path}: mesh file lacks field(s) {missing}")
        limit, min_ex, init = (int(v) for v in data["params"])
        info = json.loads(str(data["info"])) if "info" in data else {}
        return cls(
            data["vertices"],
            data["triangles"],
            data["triangle_counts"],
            data["cell_triangle"],
            data["imagery_xyz"],
            limit,
            min_ex,
            init,
            info,
        )

    def to_geojson(self, include_dropped: bool = False) -> dict[str, Any]:
        """GeoJSON FeatureCollection of the cells (see ``mesh.geojson``)."""
        from mesh.geojson import mesh_to_geojson

        return mesh_to_geojson(self, include_dropped=include_dropped)

    def __repr__(self) -> str:
        return (
            f"Mesh(num_cells={self.num_cells}, num_triangles={self.num_triangles}, "
            f"refinement_limit={self.refinement_limit}, min_examples={self.min_examples})"
        )


def _imagery_xyz(
    lat: NDArray[np.float64],
    lon: NDArray[np.float64],
    tri: NDArray[np.int64],
    cell_triangle: NDArray[np.int64],
    num_triangles: int,
) -> NDArray[np.float64]:
    """Spherical mean direction of the photos of each kept cell (zero vector for an empty cell)."""
    cls = np.full(num_triangles, -1, dtype=np.int64)
    cls[cell_triangle] = np.arange(len(cell_triangle))
    sums = np.zeros((len(cell_triangle), 3))
    for s in range(0, lat.size, _POINT_CHUNK):  # chunks bound memory at 14M photos
        lab = cls[tri[s : s + _POINT_CHUNK]]
        keep = lab >= 0
        p = lat_lon_to_xyz(lat[s : s + _POINT_CHUNK][keep], lon[s : s + _POINT_CHUNK][keep])
        for k in range(3):
            sums[:, k] += np.bincount(lab[keep], weights=p[:, k], minlength=len(cell_triangle))
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return np.where(norms > 0, sums / np.where(norms > 0, norms, 1.0), 0.0)


def build_mesh(
    lat: ArrayLike, lon: ArrayLike, refinement_limit: int, min_examples: int, init_grid: int = 31
) -> Mesh:
    """Build the adaptive Delaunay mesh of §3.1.1 from training photo coordinates (degrees).

    Start from the ``init_grid`` x ``init_grid`` equal-area grid; split every triangle holding more
    than ``refinement_limit`` photos and re-triangulate until none does; drop triangles with fewer
    than ``min_examples`` photos. Table 1 presets: ``mesh.presets.PRESETS``.
    """
    from mesh.refine import refine

    if int(refinement_limit) < 1:
        raise MeshError(f"refinement_limit must be >= 1 (got {refinement_limit})")
    if int(min_examples) < 0:
        raise MeshError(f"min_examples must be >= 0 (got {min_examples})")
    lat_a, lon_a = check_lat_lon(lat, lon, "build_mesh")
    if lat_a.size == 0:
        raise MeshError("build_mesh: no points; expected training photo coordinates")
    t0 = time.perf_counter()
    r = refine(lat_a, lon_a, int(refinement_limit), int(init_grid))
    counts = np.bincount(r.point_tri, minlength=len(r.tris)).astype(np.int64)
    cell_triangle = np.flatnonzero(counts >= int(min_examples))
    imagery = _imagery_xyz(lat_a, lon_a, r.point_tri, cell_triangle, len(r.tris))
    info = {
        "built_with": int(lat_a.size),
        "refinement_iterations": r.iterations,
        "unsplittable_triangles": r.unsplittable,
        "build_seconds": round(time.perf_counter() - t0, 3),
    }
    return Mesh(
        r.xyz,
        r.tris,
        counts,
        cell_triangle,
        imagery,
        int(refinement_limit),
        int(min_examples),
        int(init_grid),
        info,
        r.locator,
    )
