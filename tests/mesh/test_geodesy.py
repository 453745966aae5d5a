import math

import numpy as np

from mesh.geodesy import accuracy_at_thresholds, great_circle_km


def test_one_degree_of_equator():
    d = great_circle_km(0.0, 0.0, 0.0, 1.0)
    assert round(float(d), 1) == 111.2
    assert math.isclose(float(d), 6372.795 * math.pi / 180.0, rel_tol=1e-12)


def test_one_degree_of_meridian_equals_equator():
    assert math.isclose(
        float(great_circle_km(10.0, 20.0, 11.0, 20.0)), 6372.795 * math.pi / 180, rel_tol=1e-12
    )


def test_identical_points_are_zero():
    assert great_circle_km(47.3, 8.5, 47.3, 8.5) == 0.0


def test_antipodes_are_half_circumference():
    assert math.isclose(float(great_circle_km(0.0, 0.0, 0.0, 180.0)), math.pi * 6372.795, rel_tol=1e-12)
    assert math.isclose(float(great_circle_km(90.0, 0.0, -90.0, 0.0)), math.pi * 6372.795, rel_tol=1e-12)


def test_tiny_distance_is_exact():
    # 1e-5 degree of latitude = R * pi / 180 * 1e-5 km = 1.112 m; arccos would give 0 or garbage.
    d = float(great_circle_km(45.0, 7.0, 45.00001, 7.0))
    assert math.isclose(d, 6372.795 * math.radians(1e-5), rel_tol=1e-8)


def test_across_antimeridian():
    assert math.isclose(
        float(great_circle_km(0.0, 179.5, 0.0, -179.5)), 6372.795 * math.pi / 180, rel_tol=1e-12
    )


def test_matches_arccos_form_and_broadcasts():
    rng = np.random.default_rng(0)
    lat1, lon1 = rng.uniform(-80, 80, 50), rng.uniform(-180, 180, 50)
    lat2, lon2 = rng.uniform(-80, 80, 50), rng.uniform(-180, 180, 50)
    x1, y1, x2, y2 = map(np.radians, (lat1, lon1, lat2, lon2))
    arccos = 6372.795 * np.arccos(np.sin(x1) * np.sin(x2) + np.cos(x1) * np.cos(x2) * np.cos(y2 - y1))
    np.testing.assert_allclose(great_circle_km(lat1, lon1, lat2, lon2), arccos, rtol=1e-9)
    assert great_circle_km(lat1[:, None], lon1[:, None], lat2[None, :], lon2[None, :]).shape == (50, 50)


def test_accuracy_at_thresholds():
    acc = accuracy_at_thresholds([0.5, 10.0, 100.0, 1000.0], (1.0, 25.0, 200.0, 750.0, 2500.0))
    assert acc == {"1": 25.0, "25": 50.0, "200": 75.0, "750": 75.0, "2500": 100.0}


def test_accuracy_counts_a_distance_at_the_threshold_up_to_rounding():
    """A photo exactly 25 km away whose distance rounds to 25.000000000000004 km is within 25 km;
    one a millimetre beyond is not."""
    acc = accuracy_at_thresholds([25.0 * (1 + 1e-15), 25.0 + 1e-6], (25.0,))
    assert acc == {"25": 50.0}
