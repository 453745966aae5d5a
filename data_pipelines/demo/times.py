"""SIMULATED posting times of the demo, drawn in local solar time and converted to UTC by longitude.

The paper's Figure 1 shows that the posting hour in UTC carries information about longitude: people
post during their local day, so a photo posted at 21:00 UTC is unlikely to come from longitude 0.
M2 (§3.2) uses exactly that. The demo reproduces the mechanism, not a fitted distribution:

- the local posting hour follows a daily rhythm (few posts at night, a midday plateau, an evening
  peak), see `LOCAL_HOUR_WEIGHTS`;
- weekends get more posts than weekdays (`WEEKEND_WEIGHT`);
- the summer months of the photo's hemisphere get more posts (`SEASON_AMPLITUDE`);
- local solar time is turned into UTC by subtracting longitude / 15 hours (no time zones, no
  daylight saving: solar time is what the simulation assumes people live by).

The date taken (a YFCC field the method does not use) precedes the posting by a random delay.
"""

from __future__ import annotations

import numpy as np

# Relative posting activity per local hour 0..23 (not from the paper: a plausible daily rhythm).
LOCAL_HOUR_WEIGHTS = np.array(
    [
        0.9,
        0.5,
        0.3,
        0.2,
        0.15,
        0.2,
        0.4,
        0.8,
        1.3,
        1.8,
        2.2,
        2.5,
        2.7,
        2.7,
        2.6,
        2.6,
        2.7,
        2.9,
        3.2,
        3.6,
        3.9,
        3.7,
        2.8,
        1.7,
    ]
)
WEEKEND_WEIGHT = 1.4  # relative to a weekday
SEASON_AMPLITUDE = 0.35  # +-35 % between the hemisphere's summer and winter
FIRST_DAY = np.datetime64("2006-01-01")
LAST_DAY = np.datetime64("2013-12-31")
MEAN_UPLOAD_DELAY_HOURS = 36.0


def simulate_posting_times(
    lat: np.ndarray, lon: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(posted_at UTC epoch seconds int64, taken_local as datetime64[s]) for photos at lat/lon."""
    n = len(lat)
    local_day = _draw_days(np.asarray(lat), n, rng)
    hour = rng.choice(24, size=n, p=LOCAL_HOUR_WEIGHTS / LOCAL_HOUR_WEIGHTS.sum())
    seconds_in_day = hour * 3600 + rng.integers(0, 3600, size=n)
    local = local_day.astype("datetime64[s]") + seconds_in_day.astype("timedelta64[s]")
    utc_offset_s = np.round(np.asarray(lon) / 15.0 * 3600).astype(np.int64)  # solar time: lon/15 h
    posted_at = local.astype(np.int64) - utc_offset_s
    delay_s = (rng.exponential(MEAN_UPLOAD_DELAY_HOURS, size=n) * 3600).astype(np.int64)
    taken_local = local - delay_s.astype("timedelta64[s]")
    return posted_at, taken_local


def _draw_days(lat: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Local dates with weekend and season effects, by rejection sampling (vectorized)."""
    span = int((LAST_DAY - FIRST_DAY).astype(int)) + 1
    days = np.empty(n, dtype="datetime64[D]")
    todo = np.arange(n)
    max_weight = WEEKEND_WEIGHT * (1 + SEASON_AMPLITUDE)
    while len(todo):
        candidate = FIRST_DAY + rng.integers(0, span, size=len(todo)).astype("timedelta64[D]")
        weekday = (candidate.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday: 0 = Monday
        month = candidate.astype("datetime64[M]").astype(np.int64) % 12 + 1
        summer_month = np.where(lat[todo] >= 0, 7, 1)  # July north, January south
        weight = np.where(weekday >= 5, WEEKEND_WEIGHT, 1.0) * (
            1 + SEASON_AMPLITUDE * np.cos(2 * np.pi * (month - summer_month) / 12)
        )
        accept = rng.random(len(todo)) * max_weight < weight
        days[todo[accept]] = candidate[accept]
        todo = todo[~accept]
    return days
