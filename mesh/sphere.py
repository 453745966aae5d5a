"""Unit-sphere helpers: degree <-> unit vector conversion, angles, spherical means and areas.

Public functions take and return degrees; radians live only inside the functions.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mesh.errors import InvalidCoordinatesError

_CHECK_CHUNK = 1 << 16


def check_lat_lon(
    lat: ArrayLike, lon: ArrayLike, what: str = "coordinates"
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return ``lat, lon`` as flat float64 arrays, or raise if they are not usable.

    Latitude must lie in [-90, 90] and longitude in [-180, 180] (degrees), all finite, same length.
    """
    lat_a = np.ascontiguousarray(np.asarray(lat, dtype=np.float64).reshape(-1))
    lon_a = np.ascontiguousarray(np.asarray(lon, dtype=np.float64).reshape(-1))
    if lat_a.shape != lon_a.shape:
        raise InvalidCoordinatesError(
            f"{what}: lat has {lat_a.size} values but lon has {lon_a.size}; expected the same length"
        )
    # In cache-sized chunks (on 14 M points one whole-array pass per test cost a quarter of the
    # time of locating them). NaN and infinities fail the range tests, so those suffice.
    for start in range(0, lat_a.size, _CHECK_CHUNK):
        a, b = lat_a[start : start + _CHECK_CHUNK], lon_a[start : start + _CHECK_CHUNK]
        if (np.abs(a) <= 90.0).all() and (np.abs(b) <= 180.0).all():
            continue
        bad = ~((np.abs(lat_a) <= 90.0) & (np.abs(lon_a) <= 180.0))
        i = int(np.flatnonzero(bad)[0])
        raise InvalidCoordinatesError(
            f"{what}: {int(bad.sum())} point(s) out of range, first at index {i}: "
            f"lat={lat_a[i]!r}, lon={lon_a[i]!r}; expected finite lat in [-90, 90] and lon in [-180, 180] degrees"
        )
    return lat_a, lon_a


def lat_lon_to_xyz(lat: ArrayLike, lon: ArrayLike) -> NDArray[np.float64]:
    """Unit vectors, shape (n, 3), for points given in degrees.

    This exact function is used both by point location and by the brute-force reference, so the
    two see bit-identical vectors.
    """
    phi = np.radians(np.asarray(lat, dtype=np.float64))
    lam = np.radians(np.asarray(lon, dtype=np.float64))
    cos_phi = np.cos(phi)
    out = np.empty(phi.shape + (3,), dtype=np.float64)
    out[..., 0] = cos_phi * np.cos(lam)
    out[..., 1] = cos_phi * np.sin(lam)
    out[..., 2] = np.sin(phi)
    return out


def xyz_to_lat_lon(xyz: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Degrees ``(lat, lon)`` of (not necessarily unit) vectors, shape (..., 3)."""
    v = np.asarray(xyz, dtype=np.float64)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    lat = np.degrees(np.arctan2(z, np.hypot(x, y)))
    lon = np.degrees(np.arctan2(y, x))
    return lat, lon


def normalize(v: ArrayLike) -> NDArray[np.float64]:
    """Rows of ``v`` scaled to unit length."""
    a = np.asarray(v, dtype=np.float64)
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def angle_rad(u: ArrayLike, v: ArrayLike) -> NDArray[np.float64]:
    """Angle between vectors (radians), accurate for tiny and near-pi angles (atan2 form)."""
    a = np.asarray(u, dtype=np.float64)
    b = np.asarray(v, dtype=np.float64)
    return np.arctan2(np.linalg.norm(np.cross(a, b), axis=-1), np.sum(a * b, axis=-1))


def triangle_areas_sr(a: ArrayLike, b: ArrayLike, c: ArrayLike) -> NDArray[np.float64]:
    """Areas (steradians) of spherical triangles with unit-vector corners (Van Oosterom-Strackee).

    tan(E/2) = |a.(b x c)| / (1 + a.b + b.c + c.a); the whole sphere is 4 pi.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    num = np.abs(np.sum(a * np.cross(b, c), axis=-1))
    den = 1.0 + np.sum(a * b, axis=-1) + np.sum(b * c, axis=-1) + np.sum(c * a, axis=-1)
    return 2.0 * np.arctan2(num, den)
