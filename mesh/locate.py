"""Exact, fast point location in a spherical triangulation.

Location rule (deterministic tie-breaking). A point p (the unit vector computed by
``mesh.sphere.lat_lon_to_xyz``) lies in the *closed* triangle t when its three edge tests
``n . p >= 0`` hold, n being the floating-point edge normals of ``triangulation.edge_normals``.
The answer is the **lowest-numbered** triangle containing p: a point on a shared edge or vertex
goes to the lowest-numbered triangle touching it. A point that rounding leaves outside every closed
triangle (only possible within ~1e-12 rad of a vertex) goes to the triangle whose smallest edge
test is largest (lowest number on ties). ``brute_force_locate`` implements the rule literally over
all triangles; ``Locator.locate`` gives exactly the same answers, fast.

How ``Locator`` is fast, in numpy only (no compiled code):

1. A hierarchy of latitude/longitude squares ("nodes") gives each point a starting triangle.
   Level 1: 1-degree cells. Level 2: each cut into 2^k x 2^k nodes, k chosen from the number of
   triangles in the cell. Below that, a node that no simple test answers (a "general" node, see
   2) and that is much coarser than its triangle (its side over 1/8 of the square root of the
   triangle's area, i.e. where triangles, and so photos, are dense) is cut into 4 x 4 children,
   up to 3 more levels. Points are placed by fixed-point arithmetic on their coordinates (2^24
   steps per degree): shifts and masks, one table look-up per level. Each node stores the
   triangle containing its centre.
2. Three kinds of node. A node lying wholly inside its triangle with a 1e-9 margin ("solid")
   answers its points right there, with no trigonometry and no test. A node cut by exactly one
   edge, shared by its triangle t and the neighbour t' (every other edge of t and t' misses the
   node by 1e-9), answers by one linear test in degrees, with no trigonometry: the edge test n.p
   of the unit normal is linearized at the node's centre, f(lat, lon) = a + b lat + c lon. Its
   Taylor remainder over the node is at most (h_lat + h_lon)^2 / 2 (half-sizes in radians; every
   second derivative of n.p(lat, lon) is at most 1 for a unit n), so a point with |f| above that
   bound plus the 1e-9 margin is strictly on one side and lies in exactly one closed triangle,
   t or t'. On the fine mesh and Flickr-like points ~97 % of points are answered by these two.
3. The rest (general leaves, and points too close to a one-edge node's edge) take a vectorised
   *visibility walk* (Guibas-Stolfi style; it terminates on Delaunay triangulations) from the
   node's triangle: while a point fails an edge test of its current triangle, step to the
   neighbour across the most violated edge. A point that lands strictly inside (every edge test
   above 1e-9 of the normal's length, i.e. about 6 mm from every edge) belongs to no other
   triangle. The rare rest (points on or within 6 mm of an edge or vertex) is decided by applying
   the rule to every triangle touching the one found, which contains every triangle that can
   contain the point.

Chunks of points are processed on several threads (numpy releases the GIL).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mesh.sphere import lat_lon_to_xyz, normalize, triangle_areas_sr, xyz_to_lat_lon
from mesh.triangulation import edge_normals

#: Points per task: large enough that the threads spend their time in numpy, with the GIL
#: released, rather than in the Python between numpy calls (on the fine mesh, 2 threads went
#: from 12 to 25 M points/s between 2^15 and 2^18), small enough to share the work out.
_CHUNK_MAX = 1 << 18
_CHUNK_MIN = 1 << 14
_NEAR = 1e-9  # relative margin of "strictly inside"
_WALK_TOL = 1e-13  # a walk steps across an edge only when more than this outside it
_MAX_K = 8  # at most 256 x 256 level-2 nodes per 1-degree cell
_CHILD_BITS = 2  # a split node has 2^2 x 2^2 children
_FAN = 1 << _CHILD_BITS
_CHILD_LEVELS = 3  # levels of children below the level-2 grid
_MAX_DEPTH = 16  # finest node: 2^-16 of a top cell (1.7 m at 1 degree)
_FRAC_BITS = 24  # fixed-point steps per top cell side: 2^24 (6.6 mm at 1 degree)
_FRAC_MASK = (1 << _FRAC_BITS) - 1
_PACK_BITS = 26  # a leaf row packs t + (t' + 1) * 2^26 into one float64
_PACK = 1 << _PACK_BITS
_DEPTH_BITS = 6  # a split node's row packs first child * 2^6 + child depth
#: Level-2 nodes per triangle of a mesh's query locator (``Mesh.locator``). On the fine mesh
#: (13,152 triangles, 14 M Flickr-like points, 2 threads) 4 / 16 / 64 gave 18 / 23 / 25 M points/s
#: for 37 / 38 / 47 MB of tables and 1.6 / 1.0 / 2.3 s to build; refinement, which builds a
#: locator every iteration, keeps the default 16.
QUERY_SUBCELLS_PER_TRIANGLE = 64.0


def _min_dets(nrm: NDArray[np.float64], x: NDArray, y: NDArray, z: NDArray) -> NDArray[np.float64]:
    """Smallest of the three edge tests of rows of 9 normal components (broadcasting).

    Written elementwise (no BLAS, no fused multiply-add) so every caller computes identical bits.
    """
    d0 = nrm[..., 0] * x + nrm[..., 1] * y + nrm[..., 2] * z
    d1 = nrm[..., 3] * x + nrm[..., 4] * y + nrm[..., 5] * z
    d2 = nrm[..., 6] * x + nrm[..., 7] * y + nrm[..., 8] * z
    return np.minimum(np.minimum(d0, d1), d2)


def _pick(m: NDArray[np.float64], cands: NDArray[np.int64]) -> NDArray[np.int64]:
    """The rule, given the smallest edge test ``m[i, j]`` of point i in triangle ``cands[i, j]``
    (each row ascending; invalid entries carry -inf)."""
    inside = m >= 0
    first = np.argmax(inside, axis=1)
    rows = np.arange(len(m))
    none = ~inside[rows, first]
    first[none] = np.argmax(m[none], axis=1)
    return cands[rows, first] if cands.ndim == 2 else cands[first]


def _rule(nrm: NDArray[np.float64], cands: NDArray[np.int64], p: NDArray[np.float64]) -> NDArray[np.int64]:
    """Apply the location rule to each point p[i] over its candidate row cands[i] (ascending,
    padded with -1)."""
    valid = cands >= 0
    c = np.where(valid, cands, 0)
    m = _min_dets(nrm[c], p[:, 0:1], p[:, 1:2], p[:, 2:3])
    return _pick(np.where(valid, m, -np.inf), c)


def brute_force_locate(
    xyz: NDArray[np.float64], tris: NDArray[np.integer], lat: ArrayLike, lon: ArrayLike, block: int = 512
) -> NDArray[np.int64]:
    """Reference implementation of the location rule, testing every triangle. For tests only."""
    nrm = edge_normals(xyz, np.asarray(tris))
    p = lat_lon_to_xyz(np.asarray(lat, dtype=np.float64).ravel(), np.asarray(lon, dtype=np.float64).ravel())
    out = np.empty(len(p), dtype=np.int64)
    all_t = np.arange(len(nrm), dtype=np.int64)
    for s in range(0, len(p), block):  # blocks of points, to bound memory
        q = p[s : s + block]
        m = _min_dets(nrm[None, :, :], q[:, 0:1], q[:, 1:2], q[:, 2:3])
        out[s : s + block] = _pick(m, all_t)
    return out


def _cell_sin_radius(lat0_deg: NDArray, size_deg: float | NDArray) -> NDArray[np.float64]:
    """sin of the largest angle between a lat/lon cell's centre and its points (its corners)."""
    half = np.radians(0.5 * np.asarray(size_deg, dtype=np.float64))
    phim = np.radians(lat0_deg) + half
    best = np.zeros_like(phim)
    for phi in (phim - half, phim + half):
        phi = np.clip(phi, -np.pi / 2, np.pi / 2)
        h = np.sin(0.5 * (phi - phim)) ** 2 + np.cos(phi) * np.cos(phim) * np.sin(half) ** 2
        best = np.maximum(best, 2.0 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))))
    return np.sin(np.minimum(best, np.pi / 2))


class Locator:
    """Point location in a spherical triangulation (see the module docstring for rule and method).

    ``xyz``: (V, 3) unit vectors; ``tris``: (T, 3) counter-clockwise triangles covering the sphere.
    """

    def __init__(
        self,
        xyz: NDArray[np.float64],
        tris: NDArray[np.integer],
        top_deg: float = 1.0,
        subcells_per_triangle: float = 16.0,
        threads: int | None = None,
    ) -> None:
        self.xyz = np.ascontiguousarray(xyz, dtype=np.float64)
        self.tris = np.ascontiguousarray(tris, dtype=np.int64)
        self.threads = threads or min(os.cpu_count() or 1, 8)
        self.subcells_per_triangle = float(subcells_per_triangle)
        T = len(self.tris)
        nrm = edge_normals(self.xyz, self.tris)
        self.normals = nrm
        unit = nrm.reshape(T, 3, 3) / np.linalg.norm(nrm.reshape(T, 3, 3), axis=2, keepdims=True)
        self._walk_tab = np.ascontiguousarray(unit.reshape(T, 9))
        self.neighbors = self._neighbors()
        self.vertex_tris = self._vertex_tris()
        from scipy.spatial import cKDTree  # lazily: keeps "import mesh" fast

        if T >= _PACK:
            raise ValueError(f"{T} triangles; the locator supports fewer than {_PACK}")
        corners = self.xyz[self.tris]
        cen = normalize(corners.sum(axis=1))
        # Length scale of each triangle (radians): the square root of its area.
        self._tri_scale = np.sqrt(triangle_areas_sr(corners[:, 0], corners[:, 1], corners[:, 2]))
        del corners
        self._tree = cKDTree(cen)
        self._build_grid(cen, top_deg, subcells_per_triangle)

    # ------------------------------------------------------------------ build
    def _neighbors(self) -> NDArray[np.int64]:
        """(T*3,) triangle across edge k of triangle t, at index 3t + k (edge k: v_k -> v_k+1)."""
        V = np.int64(len(self.xyz))
        src = self.tris.reshape(-1)
        dst = self.tris[:, [1, 2, 0]].reshape(-1)
        key = src * V + dst
        rev = dst * V + src
        order = np.argsort(key)
        pos = np.searchsorted(key[order], rev)
        pos = np.clip(pos, 0, key.size - 1)
        if not np.array_equal(key[order][pos], rev):
            raise RuntimeError("triangulation is not a closed oriented surface (unmatched edge)")
        return (order[pos] // 3).astype(np.int64)

    def _vertex_tris(self) -> NDArray[np.int64]:
        """(V, max degree) triangles around each vertex, ascending, padded with -1."""
        T = len(self.tris)
        v = self.tris.reshape(-1)
        t = np.repeat(np.arange(T, dtype=np.int64), 3)
        order = np.lexsort((t, v))
        v, t = v[order], t[order]
        deg = np.bincount(v, minlength=len(self.xyz))
        start = np.cumsum(deg) - deg
        out = np.full((len(self.xyz), int(deg.max())), -1, dtype=np.int64)
        out[v, np.arange(v.size) - start[v]] = t
        return out

    def _build_grid(self, cen: NDArray[np.float64], top_deg: float, per_tri: float) -> None:
        nrows, ncols = int(round(180.0 / top_deg)), int(round(360.0 / top_deg))
        if abs(nrows * top_deg - 180.0) > 1e-9 or abs(ncols * top_deg - 360.0) > 1e-9:
            raise ValueError(f"top_deg={top_deg}: expected a divisor of 180 degrees")
        self.top_deg, self.nrows0, self.ncols0 = top_deg, nrows, ncols
        clat = np.degrees(np.arcsin(np.clip(cen[:, 2], -1, 1)))
        clon = np.degrees(np.arctan2(cen[:, 1], cen[:, 0]))
        r = np.clip(((clat + 90.0) / top_deg).astype(np.int64), 0, nrows - 1)
        c = np.clip(((clon + 180.0) / top_deg).astype(np.int64), 0, ncols - 1)
        top = r * ncols + c
        n_in = np.bincount(top, minlength=nrows * ncols)
        k = np.ceil(np.log(np.maximum(per_tri * n_in, 1.0)) / np.log(4.0)).astype(np.int64)
        k = np.clip(k, 0, _MAX_K)
        # Fixed-point coordinates: 2^_FRAC_BITS steps per top cell side (see ``_start``).
        self._q_scale = 2.0**_FRAC_BITS / top_deg
        self._q_max_lat = nrows * 2**_FRAC_BITS - 1
        self._q_max_lon = ncols * 2**_FRAC_BITS - 1
        self._fill_grid(k)

    def _fill_grid(self, k: NDArray[np.int64]) -> None:
        """Level-2 nodes (2^k x 2^k per top cell), then child levels under general nodes."""
        top_deg, ncols = self.top_deg, self.ncols0
        size = 4**k
        total = int(size.sum())
        top_off = (np.cumsum(size) - size).astype(np.int64)
        cell = np.repeat(np.arange(k.size, dtype=np.int64), size)
        local = np.arange(total, dtype=np.int64) - top_off[cell]
        side = 2 ** k[cell]
        sub_r, sub_c = local // side, local % side
        lat0 = -90.0 + ((cell // ncols) + sub_r / side) * top_deg  # south-west corners
        lon0 = -180.0 + ((cell % ncols) + sub_c / side) * top_deg
        depth = k[cell]
        del cell, local, sub_r, sub_c, side
        self.top_k = k.astype(np.int64)
        self.top_shift = (_FRAC_BITS - k).astype(np.int64)
        self.top_off = top_off
        p = lat_lon_to_xyz(lat0 + 0.5 * top_deg / 2.0**depth, lon0 + 0.5 * top_deg / 2.0**depth)
        _, start = self._tree.query(p, workers=-1)
        del p
        codes, rows = [], []
        level = self._classify(lat0, lon0, depth, start.astype(np.int64))
        first_node, n_rows = 0, 0
        solid_level2 = np.count_nonzero(level["solid"])
        for depth_level in range(_CHILD_LEVELS + 1):
            split = self._split_mask(level) if depth_level < _CHILD_LEVELS else None
            code, row, child = self._encode(level, split, first_node, n_rows)
            codes.append(code)
            rows.append(row)
            self.levels = depth_level + 1
            first_node += code.size
            n_rows += len(row)
            if child is None:
                break
            level = self._classify(child["lat0"], child["lon0"], child["depth"], child["start"])
        self.node_code = np.concatenate(codes)
        self.node_rows = np.ascontiguousarray(np.concatenate(rows))
        self.num_level2_nodes = total
        self.solid_share = float(solid_level2 / total) if total else 0.0

    def _classify(
        self,
        lat0: NDArray[np.float64],
        lon0: NDArray[np.float64],
        depth: NDArray[np.int64],
        start: NDArray[np.int64],
    ) -> dict[str, NDArray]:
        """Triangle of each node's centre, whether the node is solid, and its one-edge test.

        A node is the lat/lon square [lat0, lat0 + s) x [lon0, lon0 + s), s = top_deg / 2^depth.
        Solid: wholly inside its triangle, 1e-9 clear of every edge (no test needed for its points).
        One-edge: cut by exactly one edge shared by its triangle t and the neighbour t' (every other
        edge of t and t' misses the node by 1e-9); answered by the linear test of step 2 (module
        docstring). ``other`` is t' or -1; ``f`` holds (a, b, c) of f(lat, lon) divided by its
        margin, so |f| > 1 decides.
        """
        size_deg = self.top_deg / 2.0**depth
        lat = lat0 + 0.5 * size_deg
        lon = lon0 + 0.5 * size_deg
        p = lat_lon_to_xyz(lat, lon)
        tri = self._walk(p, start)[0]
        sin_r = _cell_sin_radius(lat0, size_deg) * (1 + 1e-9) + _NEAR
        w = self._walk_tab[tri].reshape(-1, 3, 3)
        clear = np.einsum("nij,nj->ni", w, p) > sin_r[:, None]  # edge misses the node's cap
        solid = clear.all(axis=1)
        other = np.full(tri.size, -1, dtype=np.int64)
        f = np.zeros((tri.size, 3))
        s = np.flatnonzero(clear.sum(axis=1) == 2)
        if s.size:
            t, pc, r = tri[s], p[s], sin_r[s]
            e = np.argmin(clear[s], axis=1)
            o = self.neighbors[3 * t + e]
            w2 = self._walk_tab[o].reshape(-1, 3, 3)
            clear2 = np.einsum("nij,nj->ni", w2, pc) > r[:, None]
            shared = self.neighbors.reshape(-1, 3)[o] == t[:, None]  # t's edge, seen from t'
            single = np.all(clear2 | shared, axis=1) & (shared.sum(axis=1) == 1)
            s, t, e, o, pc = s[single], t[single], e[single], o[single], pc[single]
            n = w[s, e]  # unit normal, n.p >= 0 on t's side
            phi, lam = np.radians(lat[s]), np.radians(lon[s])
            d_phi = np.stack([-np.sin(phi) * np.cos(lam), -np.sin(phi) * np.sin(lam), np.cos(phi)], 1)
            d_lam = np.stack([-np.cos(phi) * np.sin(lam), np.cos(phi) * np.cos(lam), np.zeros_like(phi)], 1)
            deg = np.pi / 180.0
            g_phi = np.einsum("ni,ni->n", n, d_phi) * deg  # df / dlat (degrees)
            g_lam = np.einsum("ni,ni->n", n, d_lam) * deg
            f0 = np.einsum("ni,ni->n", n, pc)
            h = np.radians(0.5 * size_deg[s])
            # Taylor remainder + the float error of p (as the walk's "strictly inside" margin) +
            # the rounding of a + b lat + c lon (|a|, |b lat|, |c lon| are at most a few units).
            margin = 0.5 * (2.0 * h) ** 2 * (1.0 + 1e-6) + _NEAR + 1e-14
            other[s] = o
            f[s, 0] = (f0 - g_phi * lat[s] - g_lam * lon[s]) / margin
            f[s, 1] = g_phi / margin
            f[s, 2] = g_lam / margin
        return dict(lat0=lat0, lon0=lon0, depth=depth, tri=tri, solid=solid, other=other, f=f)

    def _split_mask(self, level: dict[str, NDArray]) -> NDArray[np.bool_]:
        """General nodes (neither solid nor one-edge) that get 4 x 4 children: those much
        coarser than their triangle, where triangles are small, i.e. where photos are dense.

        A node is split while its side exceeds 1/8 of the square root of its triangle's area
        (about 64 nodes per triangle, the density of ``subcells_per_triangle``) and it is not
        yet at ``_MAX_DEPTH``.
        """
        general = ~level["solid"] & (level["other"] < 0)
        side_rad = np.radians(self.top_deg / 2.0 ** level["depth"])
        coarse = side_rad > 0.125 * self._tri_scale[level["tri"]]
        return general & coarse & (level["depth"] + _CHILD_BITS <= _MAX_DEPTH)

    def _encode(
        self, level: dict[str, NDArray], split: NDArray[np.bool_] | None, first_node: int, first_row: int
    ) -> tuple[NDArray[np.int64], NDArray[np.float64], dict | None]:
        """Codes of a level's nodes, their rows, and the children of split nodes.

        Node code: t >= 0 for a solid node of triangle t; -(r + 1) for any other node, r being
        its row in ``node_rows`` = (a, b, c, packed). packed >= 0: a leaf, t + (t' + 1) * 2^26
        (t' = -1 and a = b = c = 0 where the linear test does not apply); packed < 0: a split node,
        -(1 + first child * 2^_DEPTH_BITS + child depth), its 4 x 4 children stored row-major.
        """
        tri, other = level["tri"], level["other"]
        n = tri.size
        code = tri.copy()
        ns = np.flatnonzero(~level["solid"])
        code[ns] = -(first_row + np.arange(ns.size, dtype=np.int64)) - 1
        row = np.zeros((ns.size, 4))
        row[:, :3] = level["f"][ns]
        row[:, 3] = tri[ns] + (other[ns] + 1) * float(_PACK)
        sp = np.flatnonzero(split) if split is not None else np.zeros(0, dtype=np.int64)
        if sp.size == 0:
            return code, row, None
        child_depth = level["depth"][sp] + _CHILD_BITS
        first_child = first_node + n + _FAN * _FAN * np.arange(sp.size, dtype=np.int64)
        split_rows = np.searchsorted(ns, sp)
        row[split_rows, :3] = 0.0
        row[split_rows, 3] = -(1.0 + first_child * float(1 << _DEPTH_BITS) + child_depth)
        csize = self.top_deg / 2.0**child_depth
        i = np.arange(_FAN * _FAN)
        cr, cc = i // _FAN, i % _FAN
        child = dict(
            lat0=(level["lat0"][sp, None] + cr[None, :] * csize[:, None]).ravel(),
            lon0=(level["lon0"][sp, None] + cc[None, :] * csize[:, None]).ravel(),
            depth=np.repeat(child_depth, _FAN * _FAN),
            start=np.repeat(tri[sp], _FAN * _FAN),
        )
        return code, row, child

    # ------------------------------------------------------------------ walking
    def _walk(self, p: NDArray[np.float64], t: NDArray[np.int64], max_steps: int = 10000):
        """Visibility walk from triangles ``t``; returns (triangle containing p, near-edge mask).

        Uses unit edge normals: a decision here only needs to be right when the point is more
        than 1e-9 from the edge; closer points are flagged ``near`` and settled by the rule.
        """
        t = t.copy()
        near = np.zeros(len(t), dtype=bool)
        x, y, z = p[:, 0], p[:, 1], p[:, 2]
        tab, nb = self._walk_tab, self.neighbors
        active = None
        ta = t
        for _ in range(max_steps):  # walk steps, not points
            w = np.take(tab, ta, axis=0)
            if active is None:
                xa, ya, za = x, y, z
            else:
                xa, ya, za = np.take(x, active), np.take(y, active), np.take(z, active)
            d0 = w[:, 0] * xa + w[:, 1] * ya + w[:, 2] * za
            d1 = w[:, 3] * xa + w[:, 4] * ya + w[:, 5] * za
            d2 = w[:, 6] * xa + w[:, 7] * ya + w[:, 8] * za
            dmin = np.minimum(np.minimum(d0, d1), d2)
            # Step only across an edge the point is clearly outside of (by more than rounding):
            # a point in the ~1e-16 gap rounding leaves at a vertex would otherwise circle it.
            nr = (dmin < _NEAR) & (dmin >= -_WALK_TOL)
            if nr.any():
                near[nr.nonzero()[0] if active is None else active[nr]] = True
            out = np.flatnonzero(dmin < -_WALK_TOL)
            if out.size == 0:
                return t, near
            d0, d1, d2 = d0[out], d1[out], d2[out]
            e = np.where(d0 <= d1, np.where(d0 <= d2, 0, 2), np.where(d1 <= d2, 1, 2))
            ta = np.take(nb, 3 * np.take(ta, out) + e)
            active = out if active is None else np.take(active, out)
            t[active] = ta
        # Never reached on a valid triangulation; answer by brute force rather than fail.
        near[active] = False
        t[active] = brute_force_locate(self.xyz, self.tris, *xyz_to_lat_lon(p[active]))
        return t, near

    # ------------------------------------------------------------------ query
    def locate(
        self,
        lat: ArrayLike,
        lon: ArrayLike,
        xyz: NDArray[np.float64] | None = None,
        relabel: NDArray[np.int64] | None = None,
    ) -> NDArray[np.int64]:
        """Triangle index of each point (degrees; lat in [-90, 90], lon in [-180, 180]).

        ``xyz``: the points' unit vectors from ``lat_lon_to_xyz`` if the caller already has them
        (refinement locates the same photos many times); they must be exactly those vectors.
        ``relabel``: if given, ``relabel[triangle]`` is returned instead (e.g. the class of each
        triangle), applied chunk by chunk while the chunk is in cache.
        """
        lat_a = np.ascontiguousarray(np.asarray(lat, dtype=np.float64).ravel())
        lon_a = np.ascontiguousarray(np.asarray(lon, dtype=np.float64).ravel())
        out = np.empty(lat_a.size, dtype=np.int64)
        chunk = int(np.clip(-(-lat_a.size // self.threads), _CHUNK_MIN, _CHUNK_MAX))
        bounds = [(s, min(s + chunk, lat_a.size)) for s in range(0, lat_a.size, chunk)]

        def work(se: tuple[int, int]) -> None:
            s, e = se
            tri = self._locate_chunk(lat_a[s:e], lon_a[s:e], None if xyz is None else xyz[s:e])
            out[s:e] = tri if relabel is None else np.take(relabel, tri)

        if len(bounds) <= 1 or self.threads <= 1:
            for se in bounds:
                work(se)
        else:
            with ThreadPoolExecutor(self.threads) as ex:
                list(ex.map(work, bounds))
        return out

    def _start(
        self, lat: NDArray[np.float64], lon: NDArray[np.float64]
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """(level-2 node of each point, its fixed-point latitude and longitude).

        Fixed point: q = floor((lat + 90) * 2^_FRAC_BITS / top_deg), clamped to the last row
        (lat = 90; lon = 180 goes to the last column, where the nodes' tests use lon = 180 too).
        The top cell is q >> _FRAC_BITS, the node inside it the next k bits, a child level the
        next 2 bits: no clipping is needed below the top level.
        """
        s = self._q_scale
        qa = np.multiply(lat, s).__iadd__(90.0 * s).astype(np.int64)
        np.minimum(qa, self._q_max_lat, out=qa)
        qo = np.multiply(lon, s).__iadd__(180.0 * s).astype(np.int64)
        np.minimum(qo, self._q_max_lon, out=qo)
        top = np.right_shift(qa, _FRAC_BITS)
        top *= self.ncols0
        top += np.right_shift(qo, _FRAC_BITS)
        shift = np.take(self.top_shift, top)
        k = np.take(self.top_k, top)
        node = np.take(self.top_off, top)
        r = np.bitwise_and(qa, _FRAC_MASK)
        r >>= shift
        r <<= k
        node += r
        c = np.bitwise_and(qo, _FRAC_MASK)
        c >>= shift
        node += c
        return node, qa, qo

    def _locate_chunk(
        self, lat: NDArray[np.float64], lon: NDArray[np.float64], p: NDArray[np.float64] | None
    ) -> NDArray[np.int64]:
        node, qa, qo = self._start(lat, lon)
        v = np.take(self.node_code, node)
        todo = np.flatnonzero(v < 0)
        walk_at, walk_from = [], []
        while todo.size:
            rows = np.take(self.node_rows, -np.take(v, todo) - 1, axis=0)
            packed = rows[:, 3]
            f = rows[:, 1] * np.take(lat, todo)
            f += rows[:, 2] * np.take(lon, todo)
            f += rows[:, 0]
            leaf = packed >= 0
            code = packed.astype(np.int64)
            t = np.bitwise_and(code, _PACK - 1)
            side_t = f > 1.0
            side_o = f < -1.0
            v[todo] = np.where(side_o, np.right_shift(code, _PACK_BITS) - 1, t)
            rest = leaf & ~(side_t | side_o)
            if rest.any():
                walk_at.append(todo[rest])
                walk_from.append(t[rest])
            if leaf.all():
                break
            parent = np.flatnonzero(~leaf)
            at = todo[parent]
            pc = -code[parent] - 1
            depth = np.bitwise_and(pc, (1 << _DEPTH_BITS) - 1)
            sh = _FRAC_BITS - depth
            child = np.right_shift(pc, _DEPTH_BITS)
            child += np.left_shift(np.bitwise_and(np.right_shift(np.take(qa, at), sh), _FAN - 1), _CHILD_BITS)
            child += np.bitwise_and(np.right_shift(np.take(qo, at), sh), _FAN - 1)
            cv = np.take(self.node_code, child)
            v[at] = cv
            todo = at[cv < 0]
        if walk_at:
            todo, start = np.concatenate(walk_at), np.concatenate(walk_from)
            q = (
                lat_lon_to_xyz(np.take(lat, todo), np.take(lon, todo))
                if p is None
                else np.take(p, todo, axis=0)
            )
            v[todo] = self._locate_rest(q, start)
        return v

    def _locate_rest(self, p: NDArray[np.float64], start: NDArray[np.int64]) -> NDArray[np.int64]:
        """Points of general nodes: walk from the node's triangle, settle near edges."""
        t, near = self._walk(p, start)
        if near.any():
            i = np.flatnonzero(near)
            t[i] = self._settle(p[i], t[i])
        return t

    def _settle(self, p: NDArray[np.float64], t: NDArray[np.int64]) -> NDArray[np.int64]:
        """The rule over every triangle touching ``t`` (all that can hold a point this close)."""
        cands = np.concatenate([self.vertex_tris[self.tris[t, k]] for k in range(3)], axis=1)
        big = np.iinfo(np.int64).max
        cands = np.sort(np.where(cands < 0, big, cands), axis=1)  # pads sort last
        cands[cands == big] = -1
        return _rule(self.normals, cands, p)
