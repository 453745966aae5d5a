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
    lat, lon = xyz_to_lat_lon(small_mesh.vertices[v0:v0 + 1])
    got = int(small_mesh.locate_triangles(lat, lon)[0])
    assert got in around
    assert got == brute_force_locate(small_mesh.vertices, small_mesh.triangles, lat, lon)[0]


def test_every_point_gets_a_triangle_and_classes_in_range(small_mesh):
    lat, lon = random_points(5000, seed=3)
    c = small_mesh.locate(lat, lon)
    assert c.min() >= -1 and c.max() < small_mesh.num_cells
