"""The 95 % intervals of the evaluation: a percentile bootstrap over photographers (``uncertainty``).

Small cases a person can check: two photographers, one always right and one always wrong; one
photographer's photos all alike; a model against itself; the bootstrap off.
"""

from __future__ import annotations

import numpy as np
import pytest

from geoloc_tf.evaluation import metrics, uncertainty
from geoloc_tf.evaluation.uncertainty import Bootstrap, clusters_of

TH = (25.0, 750.0)


def test_two_photographers_give_only_the_three_hand_computed_accuracies():
    """A: 1 photo at 0 km (right), B: 3 photos at 10,000 km (wrong). A resample draws 2 photographers:
    AA (probability 1/4): 100 %; AB (1/2): 1 of 4 photos right, 25 %; BB (1/4): 0 %."""
    errors = np.array([0.0, 10_000.0, 10_000.0, 10_000.0])
    users = np.array(["A", "B", "B", "B"], dtype=object)
    clusters = clusters_of(users)
    assert (clusters.num_units, clusters.unit) == (2, "photographers")
    (stats,) = uncertainty.resampled_statistics([(errors, None)], clusters, TH, "le", Bootstrap(2000, 0))
    acc = stats["accuracy_percent"][:, 0]
    assert set(np.unique(acc)) == {0.0, 25.0, 100.0}
    share = {v: float(np.mean(acc == v)) for v in (0.0, 25.0, 100.0)}
    assert share[25.0] == pytest.approx(0.5, abs=0.05) and share[0.0] == pytest.approx(0.25, abs=0.05)
    # the mean error follows the same draws: AA 0 km, AB 7,500 km, BB 10,000 km
    expected_mean = np.select([acc == 100.0, acc == 25.0], [0.0, 7_500.0], 10_000.0)
    assert np.array_equal(stats["mean_km"], expected_mean)
    # median: AA 0; AB: photos 0, 10,000, 10,000, 10,000 -> 10,000; BB 10,000
    assert np.array_equal(stats["median_km"], np.where(acc == 100.0, 0.0, 10_000.0))
    interval = uncertainty.summary_interval(errors, users, TH, "le", Bootstrap(2000, 0))
    assert interval["accuracy_percent"]["25"] == [0.0, 100.0]
    assert interval["unit"] == "photographers" and interval["num_units"] == 2


def test_resampled_numbers_equal_error_summary_of_the_resampled_photos():
    """The matrix-product accuracies, mean, GeoScore and the blockwise weighted median are exactly
    ``error_summary`` of each resample written out photo by photo."""
    rng = np.random.default_rng(3)
    errors = np.round(rng.exponential(1_000.0, 300))
    users = np.array([f"u{i}" for i in rng.integers(0, 23, 300)], dtype=object)
    clusters = clusters_of(users)
    (stats,) = uncertainty.resampled_statistics([(errors, None)], clusters, TH, "le", Bootstrap(40, 7))
    counts = uncertainty.resample_counts(7, 0, 40, clusters.num_units)
    for b in range(40):
        photos = np.repeat(errors, counts[b][clusters.index])
        ref = metrics.error_summary(photos, TH, "le")
        assert stats["median_km"][b] == ref["median_km"]
        assert stats["mean_km"][b] == pytest.approx(ref["mean_km"], rel=1e-12)
        assert stats["geoscore"][b] == pytest.approx(ref["geoscore"], rel=1e-12)
        assert list(stats["accuracy_percent"][b]) == pytest.approx(list(ref["accuracy_percent"].values()))


def test_correlated_photos_of_one_photographer_widen_the_interval():
    """10 photographers with 20 photos each, all of one photographer at the same error: the photo
    bootstrap treats them as 200 independent photos and gives a narrower interval."""
    rng = np.random.default_rng(0)
    per_user = rng.choice([10.0, 5_000.0], size=10)
    errors = np.repeat(per_user, 20)
    users = np.repeat(np.array([f"u{i}" for i in range(10)], dtype=object), 20)
    photos = np.array([f"photo:{i}" for i in range(200)], dtype=object)  # a CSV without photographers
    by_user = uncertainty.summary_interval(errors, users, TH, "le", Bootstrap(1000, 0))
    by_photo = uncertainty.summary_interval(errors, photos, TH, "le", Bootstrap(1000, 0))
    assert by_photo["unit"] == "photos" and by_photo["num_units"] == 200
    width = lambda i: i["accuracy_percent"]["25"][1] - i["accuracy_percent"]["25"][0]  # noqa: E731
    assert width(by_user) > 2 * width(by_photo)


def test_same_seed_same_interval_other_seed_other_draws():
    rng = np.random.default_rng(1)
    errors = rng.exponential(1_000.0, 200)
    users = np.array([f"u{i % 30}" for i in range(200)], dtype=object)
    a = uncertainty.summary_interval(errors, users, TH, "le", Bootstrap(300, 5))
    assert a == uncertainty.summary_interval(errors, users, TH, "le", Bootstrap(300, 5))
    assert a != uncertainty.summary_interval(errors, users, TH, "le", Bootstrap(300, 6))
    assert (a["samples"], a["seed"], a["level"]) == (300, 5, 0.95)


def test_chunking_does_not_change_the_interval(monkeypatch):
    rng = np.random.default_rng(2)
    errors = rng.exponential(1_000.0, 150)
    users = np.array([f"u{i % 40}" for i in range(150)], dtype=object)
    whole = uncertainty.summary_interval(errors, users, TH, "le", Bootstrap(100, 0))
    monkeypatch.setattr(uncertainty, "CHUNK_ELEMENTS", 100)  # 2 resamples a chunk
    assert uncertainty.summary_interval(errors, users, TH, "le", Bootstrap(100, 0)) == whole


def test_a_model_against_itself_differs_by_zero_in_every_resample():
    rng = np.random.default_rng(4)
    errors = rng.exponential(1_000.0, 120)
    users = np.array([f"u{i % 12}" for i in range(120)], dtype=object)
    d = uncertainty.difference_interval(errors, errors, users, TH, "le", Bootstrap(200, 0))
    assert d["accuracy_percent"] == {"25": [0.0, 0.0], "750": [0.0, 0.0]}
    assert d["mean_km"] == d["median_km"] == d["geoscore"] == [0.0, 0.0]


def test_paired_difference_is_narrower_than_the_rows_it_subtracts():
    """B = A with 10 % of the photos moved from wrong to right: both rows vary a lot with the
    photographers drawn, their difference (same draws for both) little."""
    rng = np.random.default_rng(5)
    users = np.array([f"u{i % 25}" for i in range(500)], dtype=object)
    a = np.where(rng.random(500) < 0.4, 10.0, 5_000.0)
    b = a.copy()
    b[rng.choice(np.flatnonzero(a > 25), 50, replace=False)] = 10.0
    boot = Bootstrap(1000, 0)
    diff = uncertainty.difference_interval(a, b, users, TH, "le", boot)
    row = uncertainty.summary_interval(a, users, TH, "le", boot)
    lo, hi = diff["accuracy_percent"]["25"]
    assert 0 < lo <= 10.0 <= hi  # the point difference is 10 points
    assert hi - lo < row["accuracy_percent"]["25"][1] - row["accuracy_percent"]["25"][0]


def test_outdoor_rows_are_resampled_with_the_photos_they_are_part_of():
    """Outdoor-only minus all photos: the outdoor photos are a subset of the same photographers."""
    errors = np.array([10.0, 10.0, 5_000.0, 5_000.0])
    users = np.array(["A", "A", "B", "B"], dtype=object)
    outdoor = np.array([True, False, False, False])  # only A's first photo is outdoor
    d = uncertainty.difference_interval(errors, errors, users, TH, "le", Bootstrap(500, 0), mask_b=outdoor)
    # resamples: AA -> 100 - 100 = 0; AB -> 100 - 50 = 50; BB -> no outdoor photo: left out
    assert d["accuracy_percent"]["25"] == [0.0, 50.0]


def test_bootstrap_off_gives_no_interval_but_the_numbers():
    errors, users = np.array([1.0, 30.0]), np.array(["A", "B"], dtype=object)
    off = metrics.error_summary(errors, TH, "le", users=users, bootstrap=Bootstrap(0, 0))
    assert off["interval"] is None and off["accuracy_percent"] == {"25": 50.0, "750": 100.0}
    assert "interval" not in metrics.error_summary(errors, TH, "le")  # callers without users: as before
    on = metrics.error_summary(errors, TH, "le", users=users, bootstrap=Bootstrap(50, 0))
    assert on["interval"]["unit"] == "photos" and on["interval"]["num_units"] == 2


def test_missing_user_hashes_are_photographers_of_their_own():
    c = clusters_of(np.array(["a", None, "", "a"], dtype=object))
    assert c.num_units == 3 and c.unit == "photographers"
    assert c.index[0] == c.index[3] and len(set(c.index[1:3])) == 2


def test_rate_intervals_of_admin_levels_by_hand():
    """Country right for both photographers' photos, city right only for A's one photo: resamples
    AA, AB, BB give city 100, 25 and 0 %; country always 100 %. B's photos have no city truth at
    all in a second column, which then counts only A's photo."""
    users = np.array(["A", "B", "B", "B"], dtype=object)
    hits = np.array([[True, True, True], [True, False, False], [True, False, False], [True, False, False]])
    counted = np.array([[True, True, True], [True, True, False], [True, True, False], [True, True, False]])
    r = uncertainty.rate_intervals(hits, counted, users, Bootstrap(2000, 0))
    assert r["percent"][0] == [100.0, 100.0] and r["percent"][1] == [0.0, 100.0]
    assert r["percent"][2] == [100.0, 100.0]  # only A's photo counts; BB resamples have none: left out
    assert (
        r["unit"] == "photographers"
        and uncertainty.rate_intervals(hits, None, users, Bootstrap(0, 0)) is None
    )


def test_admin_intervals_of_no_photos_are_none():
    """A model with no photos (an empty table) has no admin-level interval, not an error."""
    none = np.zeros((0, 4), dtype=bool)
    assert (
        uncertainty.rate_intervals(none, none, np.array([], dtype=object), uncertainty.Bootstrap(100, 0))
        is None
    )
