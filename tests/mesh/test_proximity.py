"""The near-duplicate screen: is any indexed point within r great-circle km of a point.

Offsets are worked out by hand: one degree of latitude (or of longitude on the equator) is
pi * R / 180 km, 111.227 km at the paper's R = 6372.795 km.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mesh.errors import InvalidCoordinatesError
from mesh.geodesy import EARTH_RADIUS_KM, great_circle_km
from mesh.proximity import PointIndex, any_within_km, chord_for_arc
from tests.mesh.conftest import clustered_points

#: Degrees of latitude per km at the paper's radius: 180 / (pi * 6372.795) = 0.0089906.
DEG_PER_KM = 180.0 / (math.pi * EARTH_RADIUS_KM)


def test_half_a_km_away_is_within_1_km_and_one_and_a_half_is_not():
    near, far = 0.5 * DEG_PER_KM, 1.5 * DEG_PER_KM
    got = any_within_km([45.0], [7.0], [45.0 + near, 45.0 - far, 45.0], [7.0, 7.0, 7.0], 1.0)
    assert got.tolist() == [True, False, True]
    # Along the equator a degree of longitude is as long as one of latitude.
    assert any_within_km([0.0], [20.0], [0.0, 0.0], [20.0 + near, 20.0 - far], 1.0).tolist() == [True, False]


def test_across_the_antimeridian():
    """Training point at longitude 179.997 on the equator: -179.999 is 0.004 degrees (0.445 km)
    away across 180, -179.99 is 0.013 degrees (1.446 km)."""
    assert any_within_km([0.0], [179.997], [0.0, 0.0], [-179.999, -179.99], 1.0).tolist() == [True, False]
    # -180 and 180 are one place (their unit vectors differ by rounding, ~1e-16): within 1 mm.
    assert any_within_km([0.0], [-180.0], [0.0], [180.0], 1e-6).tolist() == [True]


def test_at_a_pole_longitude_does_not_matter():
    """The North Pole (any longitude) and points 0.5 and 1.5 km south of it; two points 0.3 km from
    the pole on opposite meridians are 0.6 km apart over it, two 0.6 km from it 1.2 km apart."""
    lat = [90.0 - 0.5 * DEG_PER_KM, 90.0 - 1.5 * DEG_PER_KM, 90.0]
    assert any_within_km([90.0], [0.0], lat, [123.0, -45.0, 77.0], 1.0).tolist() == [True, False, True]
    assert any_within_km([90.0 - 0.3 * DEG_PER_KM], [0.0], [90.0 - 0.3 * DEG_PER_KM], [180.0], 1.0)[0]
    assert not any_within_km([90.0 - 0.6 * DEG_PER_KM], [0.0], [90.0 - 0.6 * DEG_PER_KM], [180.0], 1.0)[0]
    assert any_within_km([-90.0], [10.0], [-90.0 + 0.9 * DEG_PER_KM], [-170.0], 1.0)[0]


def test_the_earth_radius_is_the_evaluations():
    """0.9999 km of latitude at R = 6371 km is 0.9999 * 6372.795 / 6371 = 1.00018 km at the paper's
    radius: within 1 km at 6371, not at 6372.795."""
    offset = math.degrees(0.9999 / 6371.0)
    assert any_within_km([10.0], [10.0], [10.0 + offset], [10.0], 1.0, radius_km=6371.0)[0]
    assert not any_within_km([10.0], [10.0], [10.0 + offset], [10.0], 1.0)[0]


def test_chord_is_exactly_the_arc():
    """A quarter of the circumference spans the chord sqrt(2) of the unit sphere; half of it or
    more, the diameter."""
    assert chord_for_arc(math.pi * 6371.0 / 2.0, 6371.0) == pytest.approx(math.sqrt(2.0), rel=1e-15)
    assert chord_for_arc(1e9, 6371.0) == 2.0
    with pytest.raises(ValueError, match="distance_km=-1"):
        chord_for_arc(-1.0)


def test_matches_brute_force_great_circle_distances():
    """Clustered points (one cluster straddles 180 degrees) against the pairwise haversine minimum."""
    train_lat, train_lon = clustered_points(2000, seed=1)
    lat, lon = clustered_points(500, seed=2)
    nearest = great_circle_km(lat[:, None], lon[:, None], train_lat[None, :], train_lon[None, :]).min(axis=1)
    for r in (5.0, 30.0, 300.0):
        got = PointIndex(train_lat, train_lon).any_within_km(lat, lon, r)
        clear = np.abs(nearest - r) > 1e-6 * r  # none sits on the boundary in practice
        assert np.array_equal(got[clear], nearest[clear] <= r)
        assert 0 < got.sum() < len(lat) or r == 300.0


def test_edge_cases():
    index = PointIndex([], [])
    assert len(index) == 0 and index.any_within_km([1.0, 2.0], [3.0, 4.0], 1.0).tolist() == [False, False]
    everywhere = PointIndex([0.0], [0.0]).any_within_km([-90.0, 0.0], [0.0, 180.0], math.pi * EARTH_RADIUS_KM)
    assert everywhere.tolist() == [True, True]
    with pytest.raises(InvalidCoordinatesError, match="training photos: 1 point"):
        PointIndex([0.0, 91.0], [0.0, 0.0], "training photos")
