"""SIMULATED users of the demo: who took which real photo location.

Flickr users post very unequal numbers of photos (a few users post thousands, most post a handful),
and most of a user's photos are taken around home, with occasional trips. That structure is what the
album model (M3, §3.3) and user averaging exploit, so the demo reproduces it on the real MP-16
locations:

- photo counts per user follow a discrete log-normal law (heavy tail; median and cap are flags);
- each user has a home: a real photo location drawn uniformly from the data set (so homes follow the
  real photo density);
- a share `trip_share` of a user's photos are taken on trips: each trip goes to another real
  location drawn the same way, and its photos are the real locations nearest to it;
- every other photo is one of the real locations nearest to home.

Every real location is used by at most one photo: the demo's photo locations are the (de-duplicated)
real locations, never copies. Nearest available locations come from a k-d tree on unit vectors (the
chord distance orders points like the great-circle distance does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from mesh.sphere import lat_lon_to_xyz  # sphere geometry lives in mesh/ once


@dataclass(frozen=True)
class UserModel:
    """Parameters of the simulated users (not from the paper: chosen to look like Flickr)."""

    median_photos: float = 8.0  # median photos per user
    sigma: float = 1.1  # log-normal spread: a few users with hundreds of photos
    max_photos: int = 400
    trip_share: float = 0.15  # share of a user's photos taken on trips
    photos_per_trip: float = 4.0  # mean photos per trip (geometric)


@dataclass(frozen=True)
class SimulatedPhotos:
    """Which real location each photo took, and who took it (indices into the location table)."""

    location_index: np.ndarray  # (n,) int64 into the de-duplicated real locations
    user: np.ndarray  # (n,) int64, 0..num_users-1
    on_trip: np.ndarray  # (n,) bool


def simulate_users(
    lat: np.ndarray,
    lon: np.ndarray,
    num_photos: int,
    rng: np.random.Generator,
    model: UserModel = UserModel(),
) -> SimulatedPhotos:
    """Draws users until `num_photos` real locations are taken; see the module docstring."""
    if num_photos > len(lat):
        raise ValueError(f"{num_photos} photos asked for, only {len(lat)} real locations exist")
    tree = cKDTree(lat_lon_to_xyz(lat, lon))
    taken = np.zeros(len(lat), dtype=bool)
    locations: list[np.ndarray] = []
    users: list[np.ndarray] = []
    trips: list[np.ndarray] = []
    remaining = num_photos
    user = 0
    while remaining > 0:
        count = int(
            min(model.max_photos, max(1, round(rng.lognormal(np.log(model.median_photos), model.sigma))))
        )
        count = min(count, remaining)
        n_trip = int(rng.binomial(count, model.trip_share)) if count > 1 else 0
        picked = _nearest_free(tree, taken, int(rng.integers(len(lat))), count - n_trip)
        trip_picks: list[np.ndarray] = []
        left = n_trip
        while left > 0:
            size = min(left, int(rng.geometric(1.0 / model.photos_per_trip)))
            trip_picks.append(_nearest_free(tree, taken, int(rng.integers(len(lat))), size))
            left -= size
        chosen = np.concatenate([picked, *trip_picks]) if trip_picks else picked
        locations.append(chosen)
        users.append(np.full(len(chosen), user, dtype=np.int64))
        trips.append(np.arange(len(chosen)) >= len(picked))
        remaining -= len(chosen)
        user += 1
    return SimulatedPhotos(
        np.concatenate(locations).astype(np.int64), np.concatenate(users), np.concatenate(trips)
    )


def _nearest_free(tree: cKDTree, taken: np.ndarray, centre: int, count: int) -> np.ndarray:
    """The `count` untaken locations nearest to location `centre`; marks them taken."""
    if count <= 0:
        return np.empty(0, dtype=np.int64)
    k = max(2 * count + 16, 64)
    point = tree.data[centre]
    while True:
        k = min(k, tree.n)
        _, index = tree.query(point, k=k)
        free = index[~taken[index]][:count]
        if len(free) == count or k == tree.n:
            taken[free] = True
            return free.astype(np.int64)
        k *= 4
