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

1. A two-level latitude/longitude grid gives a starting triangle: 1 degree cells, each cut into
   2^k x 2^k sub-cells with k chosen from the number of triangles in the cell (dense cities get
   fine sub-cells), each sub-cell storing the triangle that contains its centre. Two look-ups.
   A sub-cell lying wholly inside its triangle with a 1e-9 margin ("solid") answers its points
   right there, with no trigonometry and no test.
2. A vectorised *visibility walk* (Guibas-Stolfi style; it terminates on Delaunay triangulations):
   while a point fails an edge test of its current triangle, step to the neighbour across the
   most violated edge. Starting triangles are usually the answer or next to it.
   A sub-cell cut by exactly one edge, shared by its triangle t and the neighbour t' (every other
   edge of t and t' misses the sub-cell by 1e-9), answers by one linear test in degrees, with no
   trigonometry: the edge test n.p of the unit normal is linearized at the sub-cell centre,
   f(lat, lon) = a + b lat + c lon. Its Taylor remainder over the sub-cell is at most
   (h_lat + h_lon)^2 / 2 (half-sizes in radians; every second derivative of n.p(lat, lon) is at most
   1 for a unit n), so a point with |f| above that bound plus the 1e-9 margin is strictly on one
   side and lies in exactly one closed triangle, t or t'. The rest take the general path below.
3. A point that lands strictly inside (every edge test above 1e-9 of the normal's length, i.e.
   about 6 mm from every edge) belongs to no other triangle. The rare rest (points on or within
   6 mm of an edge or vertex) is decided by applying the rule to every triangle touching the one
   found, which contains every triangle that can contain the point.

Chunks of points are processed on several threads (numpy releases the GIL).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mesh.sphere import lat_lon_to_xyz, normalize, xyz_to_lat_lon
from mesh.triangulation import edge_normals

_CHUNK = 1 << 15
_NEAR = 1e-9  # relative margin of "strictly inside"
_WALK_TOL = 1e-13  # a walk steps across an edge only when more than this outside it
_MAX_K = 8  # at most 256 x 256 sub-cells per 1-degree cell
#: Sub-cells per triangle of a mesh's query locator (``Mesh.locator``). Finer grids leave more
#: points in "solid" sub-cells: on the fine mesh, 64 instead of 16 took locate from 8.6 to ~10 M
#: points/s for 3.6x the table memory (73 MB) and ~1.6 s more to build; refinement, which builds a
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

        cen = normalize(self.xyz[self.tris].sum(axis=1))
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
        self.top_deg, self.nrows0, self.ncols0 = top_deg, nrows, ncols
        clat = np.degrees(np.arcsin(np.clip(cen[:, 2], -1, 1)))
        clon = np.degrees(np.arctan2(cen[:, 1], cen[:, 0]))
        r = np.clip(((clat + 90.0) / top_deg).astype(np.int64), 0, nrows - 1)
        c = np.clip(((clon + 180.0) / top_deg).astype(np.int64), 0, ncols - 1)
        top = r * ncols + c
        n_in = np.bincount(top, minlength=nrows * ncols)
        k = np.ceil(np.log(np.maximum(per_tri * n_in, 1.0)) / np.log(4.0)).astype(np.int64)
        k = np.clip(k, 0, _MAX_K)
        self._fill_grid(k)

    def _fill_grid(self, k: NDArray[np.int64]) -> None:
        """Sub-cells 2^k x 2^k per top cell; each stores the triangle holding its centre."""
        top_deg, ncols = self.top_deg, self.ncols0
        size = 4**k
        total = int(size.sum())
        top_off = (np.cumsum(size) - size).astype(np.int64)
        cell = np.repeat(np.arange(k.size, dtype=np.int64), size)
        local = np.arange(total, dtype=np.int64) - top_off[cell]
        side = 2**k[cell]
        sub_r, sub_c = local // side, local % side
        lat = -90.0 + ((cell // ncols) + (sub_r + 0.5) / side) * top_deg
        lon = -180.0 + ((cell % ncols) + (sub_c + 0.5) / side) * top_deg
        del cell, local, sub_r, sub_c
        p = lat_lon_to_xyz(lat, lon)
        _, start = self._tree.query(p, workers=-1)
        self.top_k = k.astype(np.int64)
        self.top_off = top_off
        sub_tri = self._walk(p, start.astype(np.int64))[0]
        # A sub-cell lying wholly inside its triangle, 1e-9 clear of every edge, is "solid": its
        # points need no test at all. Encoded as t >= 0; other sub-cells store -(t + 1).
        sub_size = top_deg / side
        sin_r = _cell_sin_radius(lat - 0.5 * sub_size, sub_size) * (1 + 1e-9) + _NEAR
        w = self._walk_tab[sub_tri]
        solid = np.ones(total, dtype=bool)
        for e in range(3):
            solid &= w[:, 3 * e] * p[:, 0] + w[:, 3 * e + 1] * p[:, 1] + w[:, 3 * e + 2] * p[:, 2] > sin_r
        self.sub_tri = np.where(solid, sub_tri, -sub_tri - 1)
        self.solid_share = float(solid.mean()) if total else 0.0
        self._fill_one_edge(p, lat, lon, sub_tri, ~solid, sin_r, np.radians(0.5 * sub_size))

    def _fill_one_edge(self, p: NDArray[np.float64], lat: NDArray[np.float64],
                       lon: NDArray[np.float64], sub_tri: NDArray[np.int64],
                       candidate: NDArray[np.bool_], sin_r: NDArray[np.float64],
                       half_rad: NDArray[np.float64]) -> None:
        """Sub-cells cut by one shared edge only: the linear test of step 1 (module docstring).

        Per sub-cell: ``one_other`` (t', or -1 where the test does not apply), the coefficients
        a, b, c of f(lat, lon) in degrees, and ``one_margin``; f > margin means t, < -margin t'.
        """
        total = len(sub_tri)
        self.one_other = np.full(total, -1, dtype=np.int64)
        self.one_a = np.zeros(total)
        self.one_b = np.zeros(total)
        self.one_c = np.zeros(total)
        self.one_margin = np.zeros(total)
        s = np.flatnonzero(candidate)
        if s.size == 0:
            self.one_edge_share = 0.0
            return
        t, pc, r = sub_tri[s], p[s], sin_r[s]
        w = self._walk_tab[t].reshape(-1, 3, 3)
        clear = np.einsum("nij,nj->ni", w, pc) > r[:, None]  # edge misses the sub-cell's cap
        single = clear.sum(axis=1) == 2
        e = np.argmin(clear, axis=1)
        other = self.neighbors[3 * t + e]
        w2 = self._walk_tab[other].reshape(-1, 3, 3)
        clear2 = np.einsum("nij,nj->ni", w2, pc) > r[:, None]
        shared = self.neighbors.reshape(-1, 3)[other] == t[:, None]  # t's edge, seen from t'
        single &= np.all(clear2 | shared, axis=1) & (shared.sum(axis=1) == 1)
        s, t, e, other, pc = s[single], t[single], e[single], other[single], pc[single]
        n = w[single, e]  # unit normal, n.p >= 0 on t's side
        phi, lam = np.radians(lat[s]), np.radians(lon[s])
        d_phi = np.stack([-np.sin(phi) * np.cos(lam), -np.sin(phi) * np.sin(lam), np.cos(phi)], 1)
        d_lam = np.stack([-np.cos(phi) * np.sin(lam), np.cos(phi) * np.cos(lam),
                          np.zeros_like(phi)], 1)
        deg = np.pi / 180.0
        g_phi = np.einsum("ni,ni->n", n, d_phi) * deg  # df / dlat (degrees)
        g_lam = np.einsum("ni,ni->n", n, d_lam) * deg
        f0 = np.einsum("ni,ni->n", n, pc)
        self.one_other[s] = other
        self.one_a[s] = f0 - g_phi * lat[s] - g_lam * lon[s]
        self.one_b[s] = g_phi
        self.one_c[s] = g_lam
        h = half_rad[s] if np.ndim(half_rad) else np.full(s.size, float(half_rad))
        # Taylor remainder + the float error of p (as the walk's "strictly inside" margin) + the
        # rounding of a + b lat + c lon (|a|, |b lat|, |c lon| are at most a few units).
        self.one_margin[s] = 0.5 * (2.0 * h) ** 2 * (1.0 + 1e-6) + _NEAR + 1e-14
        self.one_edge_share = float(s.size / total)

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
    def locate(self, lat: ArrayLike, lon: ArrayLike, xyz: NDArray[np.float64] | None = None,
               relabel: NDArray[np.int64] | None = None) -> NDArray[np.int64]:
        """Triangle index of each point (degrees; lat in [-90, 90], lon in [-180, 180]).

        ``xyz``: the points' unit vectors from ``lat_lon_to_xyz`` if the caller already has them
        (refinement locates the same photos many times); they must be exactly those vectors.
        ``relabel``: if given, ``relabel[triangle]`` is returned instead (e.g. the class of each
        triangle), applied chunk by chunk while the chunk is in cache.
        """
        lat_a = np.ascontiguousarray(np.asarray(lat, dtype=np.float64).ravel())
        lon_a = np.ascontiguousarray(np.asarray(lon, dtype=np.float64).ravel())
        out = np.empty(lat_a.size, dtype=np.int64)
        bounds = [(s, min(s + _CHUNK, lat_a.size)) for s in range(0, lat_a.size, _CHUNK)]

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

    def _start(self, lat: NDArray[np.float64], lon: NDArray[np.float64]
               ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """(sub-cell index of each point, its longitude with 180 E written as -180)."""
        lonn = np.where(lon >= 180.0, lon - 360.0, lon)  # 180 E is 180 W
        inv = 1.0 / self.top_deg
        fr = (lat + 90.0) * inv
        fc = (lonn + 180.0) * inv
        r = fr.astype(np.int64)
        np.clip(r, 0, self.nrows0 - 1, out=r)
        c = fc.astype(np.int64)
        np.clip(c, 0, self.ncols0 - 1, out=c)
        top = r * self.ncols0 + c
        k = np.take(self.top_k, top)
        side = np.left_shift(1, k)
        sr = ((fr - r) * side).astype(np.int64)
        sc = ((fc - c) * side).astype(np.int64)
        np.clip(sr, 0, side - 1, out=sr)
        np.clip(sc, 0, side - 1, out=sc)
        return np.take(self.top_off, top) + sr * side + sc, lonn

    def _locate_chunk(self, lat: NDArray[np.float64], lon: NDArray[np.float64], p: NDArray[np.float64] | None) -> NDArray[np.int64]:
        sub, lonn = self._start(lat, lon)
        v = np.take(self.sub_tri, sub)
        todo = np.flatnonzero(v < 0)
        if todo.size == 0:
            return v
        sub_todo = np.take(sub, todo)
        other = np.take(self.one_other, sub_todo)
        one = np.flatnonzero(other >= 0)
        if one.size:
            at, st = np.take(todo, one), np.take(sub_todo, one)
            f = np.take(self.one_a, st)
            f += np.take(self.one_b, st) * np.take(lat, at)
            f += np.take(self.one_c, st) * np.take(lonn, at)
            margin = np.take(self.one_margin, st)
            side_t = f > margin
            decided = side_t | (f < -margin)
            answer = np.where(side_t, -np.take(v, at) - 1, np.take(other, one))
            v[at[decided]] = answer[decided]
            todo = np.flatnonzero(v < 0)
            if todo.size == 0:
                return v
        if todo.size < v.size:
            p = lat_lon_to_xyz(np.take(lat, todo), np.take(lon, todo)) if p is None else np.take(p, todo, axis=0)
            v[todo] = self._locate_rest(p, np.take(v, todo))
            return v
        p = lat_lon_to_xyz(lat, lon) if p is None else p
        return self._locate_rest(p, v)

    def _locate_rest(self, p: NDArray[np.float64], v: NDArray[np.int64]) -> NDArray[np.int64]:
        """Points of non-solid sub-cells: walk from the sub-cell's triangle, settle near edges."""
        t, near = self._walk(p, -v - 1)
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
