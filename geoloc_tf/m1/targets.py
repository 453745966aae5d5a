"""M1's training target smoothed over the mesh by distance: haversine label smoothing (PIGEON).

PIGEON (Haas et al. 2024, "PIGEON: Predicting Image Geolocations", CVPR 2024) trains its cell
classifier on a target spread over all cells instead of a one-hot on the photo's cell: cell i gets
``exp(-(d_i - d_min) / tau)``, normalized to sum to 1, where d_i is the great-circle distance from
cell i's label point to the photo. A near miss then costs less than a far one, which a one-hot
target cannot say: its loss is the same for the neighbouring cell as for the antipodes.

The target is made in the train step from the batch's true locations (keras.ops only, so it runs
in the TensorFlow step under tf.distribute and in the jitted JAX step alike).
"""

from __future__ import annotations

import math

from keras import ops

from mesh.geodesy import EARTH_RADIUS_KM


def haversine_targets(lat, lon, cell_lat, cell_lon, tau_km: float):
    """PIGEON's haversine-smoothed targets, [batch, cells], float32, each row summing to 1.

    ``lat``, ``lon``: the photos' true locations, degrees, [batch]; ``cell_lat``, ``cell_lon``: the
    cells' label points, degrees, [cells] (M1 uses the mesh's ``imagery_centroids``, the point the
    evaluation scores a predicted cell at); ``tau_km`` > 0: the temperature in km. Row b, column i
    is ``exp(-(d_bi - min_j d_bj) / tau_km)`` normalized over i (Haas et al. 2024).

    The distances are to the photo, not to its cell's label point: the photo is where the answer
    is, and two photos of one cell, one near its border and one at its centre, should put
    different weight on the neighbouring cell. The cell then enters only through its label
    point's distance, so as ``tau_km`` goes to 0 the target becomes a one-hot on the label point
    nearest the photo, which need not be the photo's own cell (cells are not the Voronoi regions
    of their label points); a large ``tau_km`` spreads it towards uniform. Subtracting the row's
    minimum distance before ``exp`` keeps the largest term at exp(0) = 1, so no row underflows to
    all zeros for any ``tau_km``.

    Distance: the haversine great circle of ``mesh.geodesy.great_circle_km`` (the project's one
    formula and its ``EARTH_RADIUS_KM``), written here in keras.ops, float32, to run in the graph;
    float32 rounds the coordinates to a few metres, far below any useful ``tau_km``.
    """
    radians = math.pi / 180.0
    lat = ops.expand_dims(ops.cast(lat, "float32") * radians, -1)
    lon = ops.expand_dims(ops.cast(lon, "float32") * radians, -1)
    cell_lat = ops.expand_dims(ops.cast(cell_lat, "float32") * radians, 0)
    cell_lon = ops.expand_dims(ops.cast(cell_lon, "float32") * radians, 0)
    sin_dphi = ops.sin(0.5 * (cell_lat - lat))
    sin_dlam = ops.sin(0.5 * (cell_lon - lon))
    h = sin_dphi * sin_dphi + ops.cos(lat) * ops.cos(cell_lat) * sin_dlam * sin_dlam
    distance_km = (2.0 * EARTH_RADIUS_KM) * ops.arcsin(ops.sqrt(ops.clip(h, 0.0, 1.0)))
    excess_km = distance_km - ops.min(distance_km, axis=-1, keepdims=True)
    weights = ops.exp(-excess_km / float(tau_km))
    return ops.stop_gradient(weights / ops.sum(weights, axis=-1, keepdims=True))
