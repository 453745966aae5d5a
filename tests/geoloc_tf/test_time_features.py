"""§3.2 time features for known timestamps, and numpy / TensorFlow agreement."""

import datetime as dt

import numpy as np
import tensorflow as tf

from geoloc_tf.time_features import calendar_fields, time_features

NEW_YEAR_2017 = 1483228800  # 2017-01-01 00:00:00 UTC, a Sunday


def test_new_year_2017_is_sunday_midnight_january():
    np.testing.assert_allclose(
        time_features(NEW_YEAR_2017), [-11.5 / 24, (1 - 3.5) / 7, (1 - 6.5) / 12], rtol=1e-6
    )


def test_known_timestamps():
    # 2017-07-15 13:30 UTC is a Saturday (day 7) in July (month 7).
    saturday = int(dt.datetime(2017, 7, 15, 13, 30, tzinfo=dt.timezone.utc).timestamp())
    np.testing.assert_allclose(
        time_features(saturday), [(13 - 11.5) / 24, (7 - 3.5) / 7, (7 - 6.5) / 12], rtol=1e-6
    )
    # One second before 2017 is 23:59:59 on Saturday 31 December.
    assert [int(v) for v in calendar_fields(np.int64(NEW_YEAR_2017 - 1))] == [23, 7, 12]
    # Leap day and a date before 1970 (negative epoch seconds).
    leap = int(dt.datetime(2016, 2, 29, 5, tzinfo=dt.timezone.utc).timestamp())
    assert [int(v) for v in calendar_fields(np.int64(leap))] == [5, 2, 2]  # a Monday
    moon = int(dt.datetime(1969, 7, 20, 20, 17, tzinfo=dt.timezone.utc).timestamp())
    assert [int(v) for v in calendar_fields(np.int64(moon))] == [20, 1, 7]  # a Sunday


def test_matches_python_datetime_on_random_times():
    rng = np.random.default_rng(7)
    seconds = rng.integers(-2_000_000_000, 4_000_000_000, 500)
    hour, day, month = calendar_fields(seconds)
    dates = [dt.datetime.fromtimestamp(int(s), dt.timezone.utc) for s in seconds]
    np.testing.assert_array_equal(hour, [d.hour for d in dates])
    np.testing.assert_array_equal(day, [d.isoweekday() % 7 + 1 for d in dates])  # Sunday = 1
    np.testing.assert_array_equal(month, [d.month for d in dates])


def test_numpy_and_tensorflow_agree_exactly():
    rng = np.random.default_rng(3)
    seconds = rng.integers(0, 2_500_000_000, (50, 4))
    from_numpy = time_features(seconds)

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.int64)])
    def serving(posted_at):
        return time_features(posted_at)

    from_graph = serving(tf.constant(seconds)).numpy()
    assert from_numpy.dtype == np.float32 and from_numpy.shape == (50, 4, 3)
    np.testing.assert_array_equal(from_numpy, from_graph)
