"""The report's accuracy map, `geoloc predict --map` and the query sheet's locations panel over the
basemap, checked by the colours of their pixels (a tiny mesh whose cells are all around Tokyo)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb
from matplotlib.image import imread
from PIL import Image

import mesh.plot
from mesh import basemap
from mesh.plot import LAND_COLOR, OCEAN_COLOR, cell_polygons, extent_around
from tests.conftest import MADRID, MID_ATLANTIC, WORLD, colour_at, map_frames, near, tokyo_mesh


@pytest.fixture(scope="module")
def tokyo():
    return tokyo_mesh()


@pytest.fixture
def drawn(monkeypatch):
    """The land path of every basemap drawn, by panel: (extent, number of land vertices)."""
    calls = []
    real = mesh.plot.draw_basemap

    def spy(ax, extent=None):
        before = len(ax.patches)
        real(ax, extent)
        land = ax.patches[before]  # the first patch draw_basemap adds is the land
        calls.append((extent, len(land.get_path().vertices)))

    monkeypatch.setattr(mesh.plot, "draw_basemap", spy)
    return calls


def land_vertices(resolution: str) -> int:
    return sum(len(ring) for polygon in basemap.load(resolution).land for ring in polygon)


def test_accuracy_map_over_the_basemap(tokyo, tmp_path):
    from geoloc_tf.evaluation.plots import plot_accuracy_map

    m, lat, lon = tokyo
    true_cell = m.locate(lat, lon)
    errors_km = np.zeros(len(lat))  # every photo within the threshold: every cell 100 % (yellow)
    path = tmp_path / "accuracy.png"
    plot_accuracy_map(m, true_cell, errors_km, lat, lon, 25.0, path)
    image = imread(path)
    (frame,) = map_frames(image)
    assert near(colour_at(image, frame, WORLD, *MADRID), LAND_COLOR)
    assert near(colour_at(image, frame, WORLD, *MID_ATLANTIC), OCEAN_COLOR)
    r, g, b = colour_at(image, frame, WORLD, 139.7, 35.7)
    assert r > 0.6 and g > 0.6 and b < 0.45  # viridis' yellow at 70 %, over land and haze


def test_predict_map_world_and_region(tokyo, tmp_path, drawn):
    """The world panel over the 1:110 m basemap, the region of the 50 % set over the 1:50 m one;
    the top cell (the only known probability, 80 %) drawn dark over it."""
    from geoloc_tf.inference.map_plot import plot_probability_map

    m, _, _ = tokyo
    cc = m.cell_centroids
    top = int(np.argmin(np.hypot(cc[:, 0] - 35.7, cc[:, 1] - 139.7)))
    probabilities = np.full(m.num_cells, np.nan)
    probabilities[top] = 0.8
    path = tmp_path / "predict.png"
    plot_probability_map(m, probabilities, cc[top, 0], cc[top, 1], path, mass50_cells=np.array([top]))
    (world_extent, world_land), (region_extent, region_land) = drawn
    assert world_extent is None and world_land == land_vertices("110m")
    lon0, lon1, lat0, lat1 = region_extent
    assert lon0 < cc[top, 1] < lon1 and lat0 < cc[top, 0] < lat1 and lon1 - lon0 < 90.0
    assert region_land == land_vertices("50m")
    image = imread(path)
    world, region = map_frames(image)
    assert near(colour_at(image, world, WORLD, *MADRID), LAND_COLOR)
    assert near(colour_at(image, world, WORLD, *MID_ATLANTIC), OCEAN_COLOR)
    polys, owner = cell_polygons(m)
    corner_lon, corner_lat = polys[owner.index(top)][0]
    inside = ((cc[top, 1] + corner_lon) / 2, (cc[top, 0] + corner_lat) / 2)  # away from the star
    assert colour_at(image, region, region_extent, *inside).sum() < np.sum(to_rgb(LAND_COLOR)) - 0.6


def _jpeg(colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (60, 40), colour).save(out, "JPEG")
    return out.getvalue()


def test_query_sheet_locations_panel(tmp_path, drawn):
    """Three neighbours in Spain and the query in Madrid: a regional map at 1:50 m with Spain's
    land, the Mediterranean, and the neighbours' red dots where they are."""
    from geoloc_tf.retrieval.sheet import draw_query_sheet

    neighbours = pd.DataFrame(
        {
            "rank": [1, 2, 3],
            "photo_id": ["a", "b", "c"],
            "distance": [0.1, 0.2, 0.3],
            "lat": [40.4, 41.4, 37.4],
            "lon": [-3.7, 2.2, -5.98],
            "km_from_query": [0.0, 505.0, 391.0],
        }
    )
    path = tmp_path / "sheet.png"
    images = [_jpeg("green"), None, _jpeg("blue")]
    draw_query_sheet(_jpeg("red"), neighbours, images, path, query_lat=40.4, query_lon=-3.7)
    extent = extent_around(np.array([-3.7, 2.2, -5.98, -3.7]), np.array([40.4, 41.4, 37.4, 40.4]))
    assert drawn == [(extent, land_vertices("50m"))]
    image = imread(path)
    (frame,) = map_frames(image)
    assert near(colour_at(image, frame, extent, -2.5, 39.0), LAND_COLOR)  # La Mancha
    assert near(colour_at(image, frame, extent, 1.0, 37.5), OCEAN_COLOR)  # off Cartagena
    r, g, b = colour_at(image, frame, extent, 2.2, 41.4, size=3)  # neighbour 2, Barcelona
    assert r > 0.6 and g < 0.45 and b < 0.45
