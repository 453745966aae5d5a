"""Posting-time features of M2 (paper §3.2), one definition for numpy, TensorFlow and Keras.

§3.2: "Time of posting is turned into a tuple of numeric input as
T_i = ((Hour(t_i) - 11.5)/24, (DayOfWeek(t_i) - 3.5)/7, (Month(t_i) - 6.5)/12)", with the hour of
the day 0-23, the day of the week 1-7 "starting with Sunday as 1" and the month 1-12 "starting with
January as 1". "Year is specifically omitted ... because this would not generalize to new data
posted in the future." Times are UTC: Figure 1 plots longitude against "Hour of Day UTC", and the
UTC hour is what carries longitude (local hour minus longitude / 15).

The calendar arithmetic is written once, with integer ``//`` and ``%`` only (floor semantics in both
numpy, TensorFlow and JAX), and the features are looked up in shared float32 tables, so the training
data (numpy), the serving signatures (a TF graph) and ``geoloc_tf.layers.PostingTimeFeatures`` (keras.ops
on any backend) get identical numbers; ``tests/geoloc_tf/test_time_features.py`` checks numpy against
TF bit for bit, ``tests/geoloc_tf/test_backends.py`` the layer on TensorFlow and JAX.

Only the table lookup and the stacking differ between array libraries, so ``features_from_seconds``
takes them as arguments. TF graphs (``tf.function``, tf.data) keep TF ops whatever Keras' backend is:
on the JAX backend keras.ops make JAX arrays, which a TF graph cannot hold. This module never imports
TensorFlow itself; a ``tf.Tensor`` can only reach it from code that already did.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import numpy as np
from numpy.typing import ArrayLike

#: Centres and spans of §3.2: (value - centre) / span for hour, day of week, month.
HOUR_CENTRE, HOUR_SPAN = 11.5, 24.0
DAY_CENTRE, DAY_SPAN = 3.5, 7.0
MONTH_CENTRE, MONTH_SPAN = 6.5, 12.0

#: Number of time features appended to M2's input (the "+3" of Table 2's N + 4).
NUM_TIME_FEATURES = 3

_SECONDS_PER_DAY = 86_400
# 1970-01-01 was a Thursday, day 5 when Sunday is 1.
_EPOCH_DAY_OF_WEEK_OFFSET = 4


def calendar_fields(posted_at: Any) -> tuple[Any, Any, Any]:
    """(hour 0-23, day of week 1-7 with Sunday = 1, month 1-12) of UTC epoch seconds.

    Works on int64 numpy arrays, tf tensors and JAX arrays alike: only ``+ - * // %`` are used, which
    floor in all three libraries, so times before 1970 are handled too. The month comes from the
    proleptic Gregorian "civil from days" algorithm (H. Hinnant, chrono-Compatible Low-Level Date
    Algorithms), which needs integer arithmetic only.
    """
    days = posted_at // _SECONDS_PER_DAY
    hour = (posted_at % _SECONDS_PER_DAY) // 3600
    day_of_week = (days + _EPOCH_DAY_OF_WEEK_OFFSET) % 7 + 1
    z = days + 719_468  # days since 0000-03-01
    era = z // 146_097
    day_of_era = z - era * 146_097
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_from_march = (5 * day_of_year + 2) // 153  # 0 = March ... 11 = February
    month = month_from_march + 3 - 12 * (month_from_march // 10)
    return hour, day_of_week, month


# The three features as float32 tables indexed by hour 0-23, day of week - 1, month - 1. Every
# array library looks values up here rather than computing them, so the two paths give identical
# bits (TF's graph optimizer may turn a division by a constant into a multiplication, which can
# change the last bit of a float32 result).
HOUR_FEATURE = ((np.arange(24) - HOUR_CENTRE) / HOUR_SPAN).astype(np.float32)
DAY_FEATURE = ((np.arange(1, 8) - DAY_CENTRE) / DAY_SPAN).astype(np.float32)
MONTH_FEATURE = ((np.arange(1, 13) - MONTH_CENTRE) / MONTH_SPAN).astype(np.float32)


def features_from_seconds(
    posted_at: Any, lookup: Callable[[np.ndarray, Any], Any], stack: Callable[[list[Any]], Any]
) -> Any:
    """T_i of §3.2 from integer epoch seconds in any array library: (..., 3).

    ``lookup(table, index)`` gathers a float32 numpy table at integer indices and ``stack(parts)``
    stacks the three (...,) results on a new last axis, both in the library of ``posted_at``.
    """
    hour, day_of_week, month = calendar_fields(posted_at)
    return stack(
        [lookup(HOUR_FEATURE, hour), lookup(DAY_FEATURE, day_of_week - 1), lookup(MONTH_FEATURE, month - 1)]
    )


def time_features(posted_at: ArrayLike | Any) -> np.ndarray | Any:
    """T_i of §3.2 for UTC posting times in epoch seconds: shape (..., 3), float32.

    A ``tf.Tensor`` (eager or inside a ``tf.function`` / serving signature / tf.data) gives a
    ``tf.Tensor``; anything else is read as a numpy int64 array and gives a numpy array. Both paths
    run the same code (``features_from_seconds``), so they agree exactly.
    """
    tf = sys.modules.get("tensorflow")  # no tf.Tensor exists unless TensorFlow is imported
    if tf is not None and isinstance(posted_at, (tf.Tensor, tf.Variable)):
        seconds = tf.cast(posted_at, tf.int64)
        return features_from_seconds(
            seconds,
            lambda table, index: tf.gather(tf.constant(table), index),
            lambda parts: tf.stack(parts, axis=-1),
        )
    seconds = np.asarray(posted_at, dtype=np.int64)
    return features_from_seconds(
        seconds, lambda table, index: table[index], lambda parts: np.stack(parts, axis=-1)
    )
