"""The other systems' conventions: Earth radius, threshold rule, GeoScore (mesh.geodesy)."""

import math

import numpy as np
import pytest

from mesh.geodesy import accuracy_at_thresholds, geoscore, great_circle_km


def test_the_radius_scales_the_distance():
    """One degree of the equator is R * pi / 180: 111.195 km at 6371 km, 111.319 km at 6378.137."""
    assert float(great_circle_km(0.0, 0.0, 0.0, 1.0, radius_km=6371.0)) == pytest.approx(111.1949, abs=1e-4)
    assert float(great_circle_km(0.0, 0.0, 0.0, 1.0, radius_km=6378.137)) == pytest.approx(111.3195, abs=1e-4)


def test_a_point_exactly_25_km_away_counts_under_le_not_under_lt():
    """Along the equator, 25 km is 25 / R radians of longitude; the computed distance is 25 km up to
    rounding, so it is within 25 km under "le" and not under "lt"."""
    lon = math.degrees(25.0 / 6371.0)
    d = great_circle_km(0.0, 0.0, 0.0, lon, radius_km=6371.0)
    assert float(d) == pytest.approx(25.0, rel=1e-12)
    assert accuracy_at_thresholds([float(d), 1.0], (25.0,), rule="le") == {"25": 100.0}
    assert accuracy_at_thresholds([float(d), 1.0], (25.0,), rule="lt") == {"25": 50.0}


def test_lt_is_strictly_below_with_no_tolerance():
    acc = accuracy_at_thresholds([25.0 * (1 - 1e-15), 25.0, 25.0 * (1 + 1e-15)], (25.0,), rule="lt")
    assert acc == {"25": pytest.approx(100.0 / 3)}


def test_the_radius_moves_a_photo_across_a_threshold():
    """The same two points 0.2245 degrees apart: 24.96 km at R = 6371, 25.01 km at R = 6382.7."""
    d_small = great_circle_km(0.0, 0.0, 0.0, 0.2245, radius_km=6371.0)
    d_large = great_circle_km(0.0, 0.0, 0.0, 0.2245, radius_km=6382.7)
    assert float(d_small) < 25.0 < float(d_large)
    assert accuracy_at_thresholds(d_small, (25.0,)) == {"25": 100.0}
    assert accuracy_at_thresholds(d_large, (25.0,)) == {"25": 0.0}


def test_an_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="rule='ge'"):
        accuracy_at_thresholds([1.0], (25.0,), rule="ge")


def test_geoscore_is_5000_at_zero_and_5000_over_e_at_1492_7_km():
    assert geoscore([0.0]) == 5000.0
    assert geoscore([1492.7]) == pytest.approx(5000.0 / math.e)
    assert geoscore([0.0, 1492.7]) == pytest.approx((5000.0 + 5000.0 / math.e) / 2)
    assert math.isnan(geoscore(np.zeros(0)))
