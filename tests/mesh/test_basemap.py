"""The shipped basemap: land where the continents are, sea elsewhere, no antimeridian strokes."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from mesh import basemap


def _on_land(resolution: str, lon: float, lat: float) -> bool:
    """Even-odd rule: a ray from the point towards +lon crosses land's rings an odd number of
    times (holes such as the Caspian count too)."""
    crossings = 0
    for polygon in basemap.load(resolution).land:
        for ring in polygon:
            a, b = ring[:-1], ring[1:]
            straddles = (a[:, 1] > lat) != (b[:, 1] > lat)
            with np.errstate(divide="ignore", invalid="ignore"):
                x = a[:, 0] + (lat - a[:, 1]) / (b[:, 1] - a[:, 1]) * (b[:, 0] - a[:, 0])
            crossings += int(np.count_nonzero(straddles & (x > lon)))
    return crossings % 2 == 1


# (lon, lat, on land): Madrid, Nairobi, Sydney, Sao Paulo, Denver, the South Pole, then the
# Atlantic, the Pacific, the Caspian Sea (a hole in Eurasia) and the Mediterranean.
PLACES = [
    (-3.70, 40.42, True),
    (36.82, -1.29, True),
    (151.21, -33.87, True),
    (-46.63, -23.55, True),
    (-104.99, 39.74, True),
    (0.0, -89.5, True),
    (-40.0, 30.0, False),
    (-150.0, 0.0, False),
    (50.5, 42.0, False),
    (18.0, 34.0, False),
]


@pytest.mark.parametrize("resolution", sorted(basemap.FILES))
def test_land_is_where_the_continents_are(resolution):
    found = [_on_land(resolution, lon, lat) for lon, lat, _ in PLACES]
    assert found == [expected for _, _, expected in PLACES]


@pytest.mark.parametrize("resolution", sorted(basemap.FILES))
def test_no_ring_or_border_jumps_across_the_map(resolution):
    """A segment longer than 180 deg of longitude would be a stroke across the whole map (but
    along a pole's latitude, where Antarctica is closed, it is the map's lower edge)."""
    shipped = basemap.load(resolution)
    lines = [ring for polygon in shipped.land for ring in polygon] + shipped.borders
    assert lines and shipped.borders
    for line in lines:
        assert np.all(np.abs(line[:, 0]) <= 180.0) and np.all(np.abs(line[:, 1]) <= 90.0)
        jumps = np.abs(np.diff(line[:, 0])) > 180.0
        assert np.all(np.abs(line[:-1, 1][jumps]) == 90.0)
    for polygon in shipped.land:
        for ring in polygon:
            assert np.array_equal(ring[0], ring[-1])


def test_the_page_file_stays_small_and_names_its_source():
    """The page loads the 110 m file at once: under 200 kB, about 50 kB gzipped."""
    raw = basemap.geojson_bytes("110m")
    assert len(raw) < 200_000 and len(gzip.compress(raw)) < 80_000
    assert "Natural Earth" in json.loads(raw)["properties"]["credit"]


def test_the_cut_keeps_both_sides_of_a_polygon_across_the_antimeridian():
    """A square from 170 E to 170 W becomes two pieces ending on +-180, each 10 x 10 degrees."""
    square = np.array([[170.0, 0.0], [-170.0, 0.0], [-170.0, 10.0], [170.0, 10.0], [170.0, 0.0]])
    pieces = basemap.cut_polygon([square])
    assert len(pieces) == 2
    spans = sorted((min(p[0], key=lambda q: q[0])[0], max(p[0], key=lambda q: q[0])[0]) for p in pieces)
    assert spans == [(-180.0, -170.0), (170.0, 180.0)]
