"""The paper's metrics against values a person can check by hand (§3.1.3, §4.2, appendix C)."""

import math

import numpy as np
import pytest
from scipy import stats

from geoloc_tf.errors import EvaluationError
from geoloc_tf.evaluation import metrics
from mesh.geodesy import EARTH_RADIUS_KM, accuracy_at_thresholds, great_circle_km

R = EARTH_RADIUS_KM


def destination(lat, lon, bearing_rad, distance_km):
    """The inverse (direct) problem on the sphere: the point ``distance_km`` from (lat, lon) along
    ``bearing_rad``. Standard formulas: phi2 = asin(sin phi1 cos d + cos phi1 sin d cos theta), ..."""
    d = distance_km / R
    p1, l1 = np.radians(lat), np.radians(lon)
    p2 = np.arcsin(np.sin(p1) * np.cos(d) + np.cos(p1) * np.sin(d) * np.cos(bearing_rad))
    l2 = l1 + np.arctan2(np.sin(bearing_rad) * np.sin(d) * np.cos(p1), np.cos(d) - np.sin(p1) * np.sin(p2))
    return np.degrees(p2), (np.degrees(l2) + 180.0) % 360.0 - 180.0


def test_distances_identical_antipodal_and_one_degree():
    assert great_circle_km(48.85, 2.35, 48.85, 2.35) == 0.0
    assert great_circle_km(0.0, 0.0, 0.0, 180.0) == pytest.approx(math.pi * R, rel=1e-12)  # 20,020.74 km
    assert great_circle_km(90.0, 0.0, -90.0, 0.0) == pytest.approx(math.pi * R, rel=1e-12)
    assert great_circle_km(10.0, 20.0, 11.0, 20.0) == pytest.approx(
        R * math.pi / 180.0, rel=1e-12
    )  # 111.23 km


def test_prediction_errors_use_the_predicted_cells_label_point():
    points = np.array([[0.0, 0.0], [0.0, 90.0]])  # two label points a quarter circle apart
    d = metrics.prediction_errors_km([0, 1, -1], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], points)
    np.testing.assert_allclose(
        d, [0.0, math.pi * R / 2, math.pi * R], rtol=1e-12
    )  # -1: no prediction, a miss
    with pytest.raises(EvaluationError, match="cell id 2 >= the mesh's 2 cells"):
        metrics.prediction_errors_km([2], [0.0], [0.0], points)


def test_threshold_is_inclusive_for_points_exactly_25_km_apart():
    rng = np.random.default_rng(3)
    lat = rng.uniform(-70, 70, 500)
    lon = rng.uniform(-180, 180, 500)
    label_lat, label_lon = destination(lat, lon, rng.uniform(0, 2 * math.pi, 500), 25.0)
    points = np.stack([label_lat, label_lon], axis=1)  # photo i predicted as cell i, 25 km away
    d = metrics.prediction_errors_km(np.arange(500), lat, lon, points)
    np.testing.assert_allclose(d, 25.0, rtol=1e-11)
    acc = metrics.error_summary(d)["accuracy_percent"]
    assert acc == {"1": 0.0, "25": 100.0, "200": 100.0, "750": 100.0, "2500": 100.0}
    # Just outside (1 m more) does not count; exactly 25.0 and 1.0 do.
    assert accuracy_at_thresholds([25.001, 25.0, 1.0, 0.999])["25"] == 75.0
    assert accuracy_at_thresholds([25.001, 25.0, 1.0, 0.999])["1"] == 50.0


def test_error_summary_mean_median_and_count():
    s = metrics.error_summary([0.5, 10.0, 30.0, 1000.0])
    assert s["num_photos"] == 4
    assert s["mean_km"] == pytest.approx(260.125)
    assert s["median_km"] == pytest.approx(20.0)
    assert s["accuracy_percent"] == {"1": 25.0, "25": 50.0, "200": 75.0, "750": 75.0, "2500": 100.0}
    assert math.isnan(metrics.error_summary([])["mean_km"])


def test_kl_and_entropy_with_the_plus_one_rule_on_three_classes():
    # True cells 0, 0, 1 (a 4th photo lies in a dropped cell, -1: no class, left out of p AND q).
    # Predicted 0, 0, 0 (and 2 for the dropped photo, ignored).
    # Counts +1: p = (2+1, 1+1, 0+1)/6 = (1/2, 1/3, 1/6); q = (3+1, 0+1, 0+1)/6 = (2/3, 1/6, 1/6).
    # KL(p||q) = 1/2 ln((1/2)/(2/3)) + 1/3 ln((1/3)/(1/6)) + 1/6 ln(1) = 1/2 ln(3/4) + 1/3 ln 2 = 0.087208
    # H(p) = 1/2 ln 2 + 1/3 ln 3 + 1/6 ln 6 = 1.011404;  H(q) = 2/3 ln(3/2) + 1/3 ln 6 = 0.867563
    b = metrics.class_bias([0, 0, 1, -1], [0, 0, 0, 2], num_cells=3)
    assert b["num_photos"] == 3
    assert b["kl_divergence"] == pytest.approx(0.5 * math.log(0.75) + math.log(2) / 3, rel=1e-12)
    assert b["kl_divergence"] == pytest.approx(0.087208, abs=1e-6)
    assert b["entropy_true_nats"] == pytest.approx(
        math.log(2) / 2 + math.log(3) / 3 + math.log(6) / 6, rel=1e-12
    )
    assert b["entropy_pred_nats"] == pytest.approx(2 / 3 * math.log(1.5) + math.log(6) / 3, rel=1e-12)
    np.testing.assert_allclose(metrics.class_proportions([0, 0, 1], 3), [1 / 2, 1 / 3, 1 / 6])
    assert metrics.class_bias([0, 1, 2], [0, 1, 2], 3)["kl_divergence"] == 0.0  # q = p: best possible


def test_wilcoxon_equals_scipy_and_reports_the_paired_difference():
    a = np.array([10.0, 20.0, 30.0, 40.0])
    b = np.array([5.0, 25.0, 10.0, 20.0])  # a - b = 5, -5, 20, 20
    w = metrics.wilcoxon_paired(a, b, "m1", "m2")
    assert w["mean_difference_km"] == 10.0 and w["median_difference_km"] == 12.5
    assert w["direction"] == "m2 lower error than m1" and w["num_photos"] == 4 and w["num_nonzero"] == 4
    ref = stats.wilcoxon(a, b)
    assert w["statistic"] == ref.statistic and w["p_value"] == ref.pvalue

    rng = np.random.default_rng(0)
    e1 = rng.gamma(2.0, 1500.0, 3000)
    e2 = np.where(rng.random(3000) < 0.3, e1, e1 * rng.uniform(0.6, 1.2, 3000))  # 30 % ties -> zeros dropped
    w = metrics.wilcoxon_paired(e1, e2, "m1", "m2")
    ref = stats.wilcoxon(e1, e2, zero_method="wilcox")
    assert w["statistic"] == ref.statistic and w["p_value"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert w["num_nonzero"] == int(np.count_nonzero(e1 - e2)) and w["p_value"] < 1e-16
    assert metrics.wilcoxon_paired(a, a)["p_value"] == 1.0  # identical errors: nothing to test
