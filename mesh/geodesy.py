"""Great-circle distances on a spherical Earth, threshold accuracy and GeoScore.

This is the one place in geoloc where distance is computed; every other package imports it.
§3.1.3 of the paper defines the evaluation distance as
``d = R * arccos(sin x1 sin x2 + cos x1 cos x2 cos(y2 - y1))`` with R = 6372.795 km.
The arccos form loses all precision for small distances (arccos of a number within 1e-16 of 1),
and the 1 km "street" threshold of Table 6 needs metre-level accuracy, so we use the
mathematically identical haversine form, which is well conditioned for small distances.

Conventions differ between published systems, so the radius and the threshold rule are arguments
(the evaluation's ``--evaluate_earth_radius_km`` and ``--evaluate_threshold_rule``): the paper uses
R = 6372.795 km and counts d <= t; GeoEstimation, OSV-5M and PLONK use haversine with R = 6371 km,
PIGEON R = 6378.137 km; OSV-5M, PLONK and PIGEON count d < t. The formula is always the haversine
great circle on a sphere (``DISTANCE_FORMULA``); GeoCLIP's WGS84 geodesic is not offered (it
differs from the sphere by up to ~0.5 %).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Radius of the Earth assumed by the paper (§3.1.3), in km.
EARTH_RADIUS_KM: float = 6372.795

#: How every distance of geoloc is computed, as the evaluation report states it.
DISTANCE_FORMULA: str = "haversine (great circle on a sphere)"

#: Threshold rules: "le" counts an error equal to a threshold as within it (the paper, §3.1.3;
#: GeoEstimation, GeoCLIP), "lt" only errors strictly below it (OSV-5M, PLONK, PIGEON).
THRESHOLD_RULES: tuple[str, ...] = ("le", "lt")

#: GeoScore (OSV-5M, Astruc et al. 2024, after the GeoGuessr game): 5000 * exp(-d / 1492.7 km)
#: per photo. Its maximum and its distance scale.
GEOSCORE_MAX: float = 5000.0
GEOSCORE_SCALE_KM: float = 1492.7

#: Error thresholds of the paper's accuracy tables (§3.1.3, Table 6): street, city, region,
#: country, continent.
ACCURACY_THRESHOLDS_KM: tuple[float, ...] = (1.0, 25.0, 200.0, 750.0, 2500.0)

#: Relative slack of the inclusive threshold test. A photo exactly 25 km from its label point in
#: exact geometry can compute as 25.000000000000004 km (haversine and coordinate rounding, ~1e-13
#: relative), and must still count at 25 km; 1e-9 relative is 25 micrometres at 25 km.
THRESHOLD_RTOL: float = 1e-9


def great_circle_km(
    lat1: ArrayLike,
    lon1: ArrayLike,
    lat2: ArrayLike,
    lon2: ArrayLike,
    radius_km: float = EARTH_RADIUS_KM,
) -> NDArray[np.float64]:
    """Great-circle distance in km between points given in degrees (arrays broadcast).

    Haversine form of the paper's §3.1.3 formula, by default with its R = 6372.795 km: identical
    values, exact for tiny distances (two identical points give 0, antipodes give pi * R).
    """
    phi1 = np.radians(np.asarray(lat1, dtype=np.float64))
    phi2 = np.radians(np.asarray(lat2, dtype=np.float64))
    dlam = np.radians(np.asarray(lon2, dtype=np.float64) - np.asarray(lon1, dtype=np.float64))
    sin_dphi = np.sin(0.5 * (phi2 - phi1))
    sin_dlam = np.sin(0.5 * dlam)
    h = sin_dphi * sin_dphi + np.cos(phi1) * np.cos(phi2) * sin_dlam * sin_dlam
    return 2.0 * float(radius_km) * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def accuracy_at_thresholds(
    distance_km: ArrayLike, thresholds_km: tuple[float, ...] = ACCURACY_THRESHOLDS_KM, rule: str = "le"
) -> dict[str, float]:
    """Percentage of distances within each threshold, keyed by ``threshold_key`` ("1", "25", ...);
    NaN for no distances. The one threshold accuracy of geoloc: M1's training log, the
    best-possible rows and the report all use it.

    ``rule="le"`` (the paper, §3.1.3: "an error threshold ... is the number of images classified
    within a distance of d") counts d <= t, inclusive up to ``THRESHOLD_RTOL``; ``rule="lt"``
    (OSV-5M, PLONK, PIGEON) counts d < t exactly, with no tolerance."""
    if rule not in THRESHOLD_RULES:
        raise ValueError(f"accuracy_at_thresholds: rule={rule!r}; expected one of {THRESHOLD_RULES}")
    d = np.asarray(distance_km, dtype=np.float64).reshape(-1)
    if d.size == 0:
        return {threshold_key(t): float("nan") for t in thresholds_km}
    hits = within_thresholds(d, thresholds_km, rule).sum(axis=0)
    return {threshold_key(t): float(100.0 * int(h) / d.size) for t, h in zip(thresholds_km, hits)}


def within_thresholds(
    distance_km: ArrayLike, thresholds_km: tuple[float, ...] = ACCURACY_THRESHOLDS_KM, rule: str = "le"
) -> NDArray[np.bool_]:
    """(num_distances, num_thresholds) booleans: whether each distance counts at each threshold
    under ``rule`` (``accuracy_at_thresholds``'s test, which the bootstrap of the evaluation reuses)."""
    if rule not in THRESHOLD_RULES:
        raise ValueError(f"within_thresholds: rule={rule!r}; expected one of {THRESHOLD_RULES}")
    d = np.asarray(distance_km, dtype=np.float64).reshape(-1, 1)
    t = np.asarray(thresholds_km, dtype=np.float64).reshape(1, -1)
    return d <= t * (1.0 + THRESHOLD_RTOL) if rule == "le" else d < t


def geoscore(distance_km: ArrayLike) -> float:
    """Mean GeoScore of the errors (km): mean of 5000 * exp(-d / 1492.7), 5000 for a perfect
    guess, 5000/e at 1492.7 km; NaN for no distances. OSV-5M's definition (Astruc et al. 2024,
    "OpenStreetView-5M", §4; their code: ``metrics/distance_based.py``, the "Geoguessr" metric of
    github.com/gastruc/osv5m), there with their haversine at R = 6371 km: the score follows
    whichever radius computed ``distance_km``."""
    d = np.asarray(distance_km, dtype=np.float64).reshape(-1)
    if d.size == 0:
        return float("nan")
    return float(np.mean(photo_geoscores(d)))


def photo_geoscores(distance_km: ArrayLike) -> NDArray[np.float64]:
    """Each photo's GeoScore, 5000 * exp(-d / 1492.7 km) (``geoscore`` is their mean)."""
    d = np.asarray(distance_km, dtype=np.float64).reshape(-1)
    return GEOSCORE_MAX * np.exp(-d / GEOSCORE_SCALE_KM)


def threshold_key(t: float) -> str:
    """The key of a threshold in accuracy dicts and results.json: 25.0 -> "25"."""
    return f"{t:g}"
