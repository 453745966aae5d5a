"""``locate`` equals the brute-force containment rule on random and adversarial points."""

import numpy as np
import pytest

from mesh.locate import Locator, brute_force_locate
from mesh.sphere import xyz_to_lat_lon


def adversarial_points(mesh) -> tuple[np.ndarray, np.ndarray]:
    """Vertices, points on edges, poles, the antimeridian and grid-cell boundaries."""
    v, t = mesh.vertices, mesh.triangles
    lat_v, lon_v = xyz_to_lat_lon(v)
    e = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
    parts_lat, parts_lon = [lat_v], [lon_v]
    for s in (0.5, 0.25, 1e-9):  # on great-circle edges (mid, quarter, next to a vertex)
        p = (1 - s) * v[e[:, 0]] + s * v[e[:, 1]]
        la, lo = xyz_to_lat_lon(p)
        parts_lat.append(la)
        parts_lon.append(lo)
    k = np.linspace(-180, 180, 73)
    parts_lat += [np.full(73, 90.0), np.full(73, -90.0)]  # poles, any longitude
    parts_lon += [k, k]
    la = np.linspace(-90, 90, 361)
    for lo in (180.0, -180.0, np.nextafter(180.0, 0), np.nextafter(-180.0, 0), 0.0):
        parts_lat.append(la)
        parts_lon.append(np.full(la.size, lo))
    g_lat, g_lon = np.meshgrid(np.arange(-90, 91, 1.0), np.arange(-180, 181, 7.5) + 1 / 64)
    parts_lat.append(g_lat.ravel())
    parts_lon.append(g_lon.ravel())
    lat, lon = np.concatenate(parts_lat), np.concatenate(parts_lon)
    return np.clip(lat, -90, 90), np.clip(lon, -180, 180)


def random_points(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    return np.degrees(np.arcsin(rng.uniform(-1, 1, n))), rng.uniform(-180, 180, n)


def test_locate_equals_brute_force_random_and_adversarial(small_mesh):
    lat_r, lon_r = random_points(100_000)
    lat_a, lon_a = adversarial_points(small_mesh)
    lat, lon = np.concatenate([lat_r, lat_a]), np.concatenate([lon_r, lon_a])
    expected = brute_force_locate(small_mesh.vertices, small_mesh.triangles, lat, lon)
    got = small_mesh.locate_triangles(lat, lon)
    assert np.array_equal(got, expected)
    assert np.array_equal(small_mesh.locate(lat, lon), small_mesh.triangle_class[expected])


@pytest.mark.parametrize("threads", [1, 2])
def test_fresh_locator_is_exact_and_deterministic(small_mesh, threads):
    lat, lon = adversarial_points(small_mesh)
    loc = Locator(small_mesh.vertices, small_mesh.triangles, threads=threads, subcells_per_triangle=1.0)
    expected = brute_force_locate(small_mesh.vertices, small_mesh.triangles, lat, lon)
    assert np.array_equal(loc.locate(lat, lon), expected)


def test_ties_go_to_lowest_triangle(small_mesh):
    # A vertex belongs to every triangle around it; the rule picks the lowest-numbered one.
    v0 = 0
    around = np.flatnonzero((small_mesh.triangles == v0).any(axis=1))
    lat, lon = xyz_to_lat_lon(small_mesh.vertices[v0 : v0 + 1])
    got = int(small_mesh.locate_triangles(lat, lon)[0])
    assert got in around
    assert got == brute_force_locate(small_mesh.vertices, small_mesh.triangles, lat, lon)[0]


def test_every_point_gets_a_triangle_and_classes_in_range(small_mesh):
    lat, lon = random_points(5000, seed=3)
    c = small_mesh.locate(lat, lon)
    assert c.min() >= -1 and c.max() < small_mesh.num_cells


def test_dense_city_uses_child_levels_and_stays_exact():
    # A city 2 km across: triangles far smaller than the level-2 nodes, so general nodes get
    # 4 x 4 children. Queries: new photos of the city, points on node boundaries of every depth
    # (multiples of 2^-14 degree), the mesh's vertices and points on its edges near the city.
    from mesh import build_mesh

    rng = np.random.default_rng(5)
    n = 30_000
    lat = np.concatenate(
        [48.85 + rng.standard_normal(n) * 0.02, np.degrees(np.arcsin(rng.uniform(-1, 1, 1000)))]
    )
    lon = np.concatenate([2.35 + rng.standard_normal(n) * 0.03, rng.uniform(-180, 180, 1000)])
    m = build_mesh(lat, lon, refinement_limit=100, min_examples=10, init_grid=11)
    loc = m.locator
    assert loc.levels >= 3 and loc.node_code.size > loc.num_level2_nodes
    q_lat = [48.85 + rng.standard_normal(20_000) * 0.02]
    q_lon = [2.35 + rng.standard_normal(20_000) * 0.03]
    step = 2.0**-14
    g_lat, g_lon = np.meshgrid(48.85 + step * np.arange(-200, 200, 3), 2.35 + step * np.arange(-200, 200, 3))
    q_lat.append(np.round(g_lat.ravel() / step) * step)
    q_lon.append(np.round(g_lon.ravel() / step) * step)
    v_lat, v_lon = xyz_to_lat_lon(m.vertices)
    city = (np.abs(v_lat - 48.85) < 0.2) & (np.abs(v_lon - 2.35) < 0.2)
    q_lat.append(v_lat[city])
    q_lon.append(v_lon[city])
    e = m.triangles[city[m.triangles].all(axis=1)][:, [0, 1]]
    mid_lat, mid_lon = xyz_to_lat_lon(0.5 * (m.vertices[e[:, 0]] + m.vertices[e[:, 1]]))
    q_lat.append(mid_lat)
    q_lon.append(mid_lon)
    lat_q, lon_q = np.concatenate(q_lat), np.concatenate(q_lon)
    expected = brute_force_locate(m.vertices, m.triangles, lat_q, lon_q)
    assert np.array_equal(loc.locate(lat_q, lon_q), expected)
