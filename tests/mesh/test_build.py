"""Refinement invariants, dropped cells, centroids (also across 180 degrees), populate."""

import numpy as np
import pytest

from mesh import build_mesh
from mesh.errors import InvalidCoordinatesError
from mesh.sphere import lat_lon_to_xyz, xyz_to_lat_lon


def test_refinement_invariant(small_mesh, points):
    lat, lon = points
    tri = small_mesh.locate_triangles(lat, lon)
    counts = np.bincount(tri, minlength=small_mesh.num_triangles)
    assert np.array_equal(counts, small_mesh.triangle_counts)
    assert counts.max() <= 400  # no triangle above the refinement limit
    assert small_mesh.counts.min() >= 40  # no kept cell below the minimum
    dropped = np.setdiff1d(np.arange(small_mesh.num_triangles), small_mesh.cell_triangle)
    assert np.all(counts[dropped] < 40)  # and every cell below it was dropped
    assert small_mesh.info["refinement_iterations"] > 0


def test_classes_are_numbered_densely(small_mesh, points):
    c = small_mesh.locate(*points)
    assert set(np.unique(c[c >= 0])) == set(range(small_mesh.num_cells))
    assert np.array_equal(np.bincount(c[c >= 0], minlength=small_mesh.num_cells), small_mesh.counts)


def test_dropped_photos_get_minus_one(small_mesh, points):
    lat, lon = points
    tri = small_mesh.locate_triangles(lat, lon)
    c = small_mesh.locate(lat, lon)
    in_dropped = small_mesh.triangle_counts[tri] < small_mesh.min_examples
    assert in_dropped.any()
    assert np.all(c[in_dropped] == -1)
    assert np.all(c[~in_dropped] >= 0)


def test_imagery_centroid_is_spherical_mean(small_mesh, points):
    lat, lon = points
    c = small_mesh.locate(lat, lon)
    k = int(np.argmax(small_mesh.counts))
    p = lat_lon_to_xyz(lat[c == k], lon[c == k]).mean(axis=0)
    want = np.array(xyz_to_lat_lon(p / np.linalg.norm(p)))
    np.testing.assert_allclose(small_mesh.imagery_centroids[k], want, atol=1e-9)
    assert small_mesh.cell_centroids.shape == small_mesh.imagery_centroids.shape == (small_mesh.num_cells, 2)


def test_centroids_across_antimeridian():
    # Photos within 0.3 degrees of 180 (on both sides): a naive mean of longitudes would be ~0.
    rng = np.random.default_rng(5)
    lat = -45.0 + rng.uniform(-0.3, 0.3, 3000)  # the initial grid has a triangle across 180 here
    lon = 180.0 + rng.uniform(-0.3, 0.3, 3000)
    lon = (lon + 180.0) % 360.0 - 180.0
    m = build_mesh(lat, lon, refinement_limit=10_000, min_examples=1, init_grid=11)
    assert m.num_cells >= 1
    assert np.all(np.abs(m.imagery_centroids[:, 1]) > 179.5)
    assert np.all(np.abs(m.imagery_centroids[:, 0] + 45.0) < 0.3)
    # the cell straddling 180 has its geometric centroid near 180 too
    straddling = [
        k
        for k in range(m.num_cells)
        if (lon[m.locate(lat, lon) == k] > 0).any() and (lon[m.locate(lat, lon) == k] < 0).any()
    ]
    assert straddling
    assert all(abs(m.cell_centroids[k, 1]) > 170 for k in straddling)


def test_unsplittable_duplicates_terminate(make_points):
    lat = np.concatenate([np.full(3000, 51.5), make_points(2000, 1)[0]])
    lon = np.concatenate([np.full(3000, -0.12), make_points(2000, 1)[1]])
    m = build_mesh(lat, lon, refinement_limit=1000, min_examples=10, init_grid=11)
    assert m.info["unsplittable_triangles"] == 1
    assert m.counts.max() == 3000 + np.count_nonzero(
        m.locate(lat[3000:], lon[3000:]) == m.locate([51.5], [-0.12])[0]
    )


def test_populate_recounts_without_refining(small_mesh, make_points):
    lat, lon = make_points(8000, seed=9)
    p = small_mesh.populate(lat, lon)
    assert np.array_equal(p.triangles, small_mesh.triangles)
    assert np.array_equal(p.cell_triangle, small_mesh.cell_triangle)
    tri = small_mesh.locate_triangles(lat, lon)
    assert np.array_equal(p.triangle_counts, np.bincount(tri, minlength=small_mesh.num_triangles))
    c = p.locate(lat, lon)
    k = int(np.argmax(p.counts))
    q = lat_lon_to_xyz(lat[c == k], lon[c == k]).sum(axis=0)
    np.testing.assert_allclose(p.imagery_centroids[k], xyz_to_lat_lon(q), atol=1e-9)
    r = small_mesh.populate(lat, lon, min_examples=20)
    assert np.all(r.counts >= 20)
    assert r.num_cells == np.count_nonzero(p.triangle_counts >= 20)


def test_bad_coordinates_are_rejected():
    with pytest.raises(InvalidCoordinatesError, match="out of range"):
        build_mesh([0.0, 91.0], [0.0, 0.0], 10, 1)
    with pytest.raises(InvalidCoordinatesError, match="same length"):
        build_mesh([0.0, 1.0], [0.0], 10, 1)
