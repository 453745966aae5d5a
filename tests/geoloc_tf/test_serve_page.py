"""The page of `geoloc serve` and the routes it uses: the static files, /basemap.geojson, /cells
and the nearest indexed photos of /predict, on loopback with the hand-set tiny run of
conftest.build_tiny_run (every photo: cell 3 at 40 %, cell 7 at 30 %, cell 1 at 15 %, cell 9 at
10 %; 50 % set {3, 7}, 90 % set {3, 7, 1, 9}; M2 answers cell 5).

The browser tests drive Debian's chromium (/usr/bin/chromium) through Playwright, never a
downloaded browser. Without chromium or Playwright they skip, saying why, except where
GEOLOC_BROWSER_TESTS=required (CI, .ci/run), where they fail.
"""

from __future__ import annotations

import http.client
import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.geoloc_tf.conftest import build_tiny_run, jpeg
from tests.geoloc_tf.test_inference_server import multipart, request


def decoded(photo: bytes) -> np.ndarray:
    """The pixels the server's model gets for ``photo`` (decoded once, for the tiny run's 75 px)."""
    from data_pipelines import images
    from data_pipelines.config import DecodeBudget

    return images.decode_for_model(photo, DecodeBudget(), 75)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MAX_BODY = 200_000
INDEXED = 10  # photos in the test's feature index


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    from geoloc_tf.inference.photo_predictor import Predictor

    return Predictor.load(build_tiny_run(tmp_path_factory.mktemp("tiny_run"), export=False))


@pytest.fixture(scope="module")
def index_dir(predictor, tmp_path_factory) -> Path:
    """A feature index of INDEXED photos made by the run's M1, at lat 10 i, lon 20 i."""
    from geoloc_tf.retrieval.feature_index import FeatureIndex

    features = predictor.m1.features([decoded(jpeg(60, 60, 100 + i)) for i in range(INDEXED)])
    path = tmp_path_factory.mktemp("index") / "m1_train"
    FeatureIndex.write(
        path,
        features,
        [f"photo{i}" for i in range(INDEXED)],
        [10.0 * i for i in range(INDEXED)],
        [20.0 * i for i in range(INDEXED)],
        meta={"model": "/private/run/m1/m1.keras", "split": "m1_train"},
    )
    return path


def _start(predictor, nearest=None):
    from geoloc_tf.inference.config import ServerConfig
    from geoloc_tf.inference.server import start_server

    config = ServerConfig(port=0, max_body_bytes=MAX_BODY, max_batch=8, batch_wait_ms=20.0, top_k=3)
    return start_server(predictor, config, nearest)


@pytest.fixture(scope="module")
def server(predictor):
    from geoloc_tf.inference.server import stop_server

    running = _start(predictor)
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def indexed_server(predictor, index_dir):
    from geoloc_tf.inference.neighbours import NearestPhotos
    from geoloc_tf.inference.server import stop_server

    nearest = NearestPhotos.open(index_dir, "exact")
    nearest.check_model(predictor)
    running = _start(predictor, nearest)
    yield running
    stop_server(running)


def get(server, path: str) -> tuple[int, dict[str, str], bytes]:
    host, port = server.host_port
    conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def predict(server, photo: bytes, **fields: str) -> tuple[int, dict]:
    body, content_type = multipart(
        {"image": (photo, "photo.jpg"), **{k: (v.encode(), None) for k, v in fields.items()}}
    )
    return request(server, "POST", "/predict", body, {"Content-Type": content_type})


# ---------------------------------------------------------------------- routes, without a browser
def test_the_page_its_files_and_the_basemap_are_served_with_their_types(server):
    from mesh.basemap import geojson_bytes

    status, headers, body = get(server, "/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert b'src="/page.js"' in body and b'href="/page.css"' in body
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    status, headers, body = get(server, "/page.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript") and b"/predict" in body
    status, headers, _ = get(server, "/page.css")
    assert status == 200 and headers["content-type"].startswith("text/css")
    status, headers, body = get(server, "/basemap.geojson")
    assert status == 200 and headers["content-type"] == "application/geo+json"
    assert body == geojson_bytes("110m")


@pytest.mark.parametrize(
    "path",
    [
        "/static/page.js",
        "/static/../server.py",
        "/%2e%2e/%2e%2e/setup.py",
        "/page.js/../../server.py",
        "/..%2fserver.py",
        "/index.html",
        "//etc/passwd",
    ],
)
def test_no_other_file_is_reachable(server, path):
    status, headers, body = get(server, path)
    assert status == 404 and headers["content-type"] == "application/json"
    payload = json.loads(body)
    assert "GET / (the page)" in payload["error"] and "GET /cells" in payload["error"]


def test_a_wrong_method_names_the_endpoints(server):
    status, payload = request(server, "POST", "/", b"x", {"Content-Type": "image/jpeg"})
    assert status == 405 and "GET / (the page)" in payload["error"]


def test_cells_are_the_mesh_polygons_in_the_order_asked(server, predictor):
    from mesh.geojson import mesh_to_geojson

    whole = mesh_to_geojson(predictor.m1.mesh)["features"]  # one feature per cell, by class id
    status, headers, body = get(server, "/cells?ids=7,3,7")
    assert status == 200 and headers["content-type"] == "application/geo+json"
    features = json.loads(body)["features"]
    assert [f["properties"]["class_id"] for f in features] == [7, 3, 7]
    assert features[1]["geometry"] == json.loads(json.dumps(whole[3]["geometry"]))


@pytest.mark.parametrize(
    "ids,words",
    [
        ("", "got 0 cell ids"),
        ("3,x", "'x': expected an integer"),
        ("-1", "'-1': expected an integer"),
        ("3,,7", "'': expected an integer"),
        ("\u0663", "expected an integer in ASCII digits"),
        (",".join(["1"] * 1001), "got 1001 cell ids; expected 1..1000"),
    ],
)
def test_bad_cell_ids_get_400_naming_them(server, ids, words):
    from urllib.parse import quote

    status, _, body = get(server, f"/cells?ids={quote(ids)}")
    assert status == 400 and words in json.loads(body)["error"], json.loads(body)


def test_a_cell_id_past_the_mesh_gets_400(server, predictor):
    n = predictor.m1.num_cells
    status, _, body = get(server, f"/cells?ids={n}")
    assert status == 400 and f"expected an integer in 0..{n - 1}" in json.loads(body)["error"]


def test_neighbours_are_the_nearest_features_without_ids_or_paths(indexed_server, predictor, index_dir):
    from geoloc_tf.retrieval.feature_index import FeatureIndex
    from mesh.geodesy import great_circle_km

    photo = jpeg(70, 70, 103)  # the photo of index row 3, cropped differently
    status, record = predict(indexed_server, photo, neighbours="4")
    assert status == 200 and [t["cell"] for t in record["top_k"]] == [3, 7, 1]
    index = FeatureIndex.open(index_dir)
    query = predictor.m1.features([decoded(photo)])[0]
    by_hand = np.sqrt(((np.asarray(index.features) - query) ** 2).sum(axis=1))
    nearest = np.argsort(by_hand)[:4]
    neighbours = record["neighbours"]
    assert [n["rank"] for n in neighbours] == [1, 2, 3, 4]
    np.testing.assert_allclose([n["distance"] for n in neighbours], by_hand[nearest], rtol=1e-4, atol=1e-4)
    assert [n["lat"] for n in neighbours] == [10.0 * i for i in nearest]
    km = great_circle_km(record["lat"], record["lon"], 10.0 * nearest, 20.0 * nearest)
    np.testing.assert_allclose([n["km_from_answer"] for n in neighbours], km, rtol=1e-6)
    text = json.dumps(record)
    assert "photo" not in text.replace('"photo.jpg"', "") and "/private" not in text
    health = request(indexed_server, "GET", "/healthz")[1]
    assert health["index"] == {"photos": INDEXED, "split": "m1_train"} and "/private" not in json.dumps(
        health
    )


def test_neighbours_without_an_index_or_out_of_range_get_400(server, indexed_server):
    status, payload = predict(server, jpeg(40, 40, 1), neighbours="3")
    assert status == 400 and "no feature index" in payload["error"]
    status, payload = predict(indexed_server, jpeg(40, 40, 1), neighbours="51")
    assert status == 400 and payload["error"].startswith("neighbours=")
    status, record = predict(server, jpeg(40, 40, 1))
    assert status == 200 and "neighbours" not in record
    assert request(server, "GET", "/healthz")[1]["index"] is None


def test_an_index_of_another_model_is_refused_at_start(predictor, tmp_path):
    from geoloc_tf import errors
    from geoloc_tf.inference.neighbours import NearestPhotos
    from geoloc_tf.retrieval.feature_index import FeatureIndex

    FeatureIndex.write(tmp_path / "other", np.zeros((2, 4)), ["a", "b"], [0.0, 1.0], [0.0, 1.0])
    with pytest.raises(errors.InferenceError, match="features of width 4, but the model gives"):
        NearestPhotos.open(tmp_path / "other").check_model(predictor)


def test_serve_finds_the_runs_index_unless_told_otherwise(tmp_path):
    from experiments.commands.serve import index_path
    from geoloc_tf.retrieval.feature_index import FeatureIndex

    assert index_path(str(tmp_path), None) is None
    FeatureIndex.write(tmp_path / "index" / "m1_train", np.zeros((1, 4)), ["a"], [0.0], [0.0])
    assert index_path(str(tmp_path), None) == tmp_path / "index" / "m1_train"
    assert index_path(str(tmp_path), "") is None
    assert index_path(str(tmp_path), "/elsewhere") == Path("/elsewhere")


def test_serve_answers_with_retrieval_inside_the_top_cells(predictor, tmp_path):
    """The index: a photo's own features in cell 7 (M1's second cell) and half of them in cell 3
    (its top cell); with one top cell searched the answer's retrieval point is the cell-3 photo's,
    without its id; the shared predictor is left without retrieval."""
    from geoloc_tf.inference.server import stop_server
    from geoloc_tf.retrieval.cell_retrieval import CellRetriever
    from geoloc_tf.retrieval.config import CellRetrievalConfig
    from geoloc_tf.retrieval.feature_index import FeatureIndex

    photo = jpeg(64, 64, 300)
    query = predictor.m1.features([decoded(photo)])[0]
    half = np.where(np.arange(len(query)) < len(query) // 2, query, 0.0)
    points = predictor.m1.mesh.cell_centroids[[7, 3]]
    FeatureIndex.write(tmp_path / "index", np.stack([query, half]), ["p7", "p3"], points[:, 0], points[:, 1])
    config = CellRetrievalConfig(cell_retrieval_cells=1)
    retriever = CellRetriever.open(tmp_path / "index", predictor.m1.mesh, config, "exact")
    answering = predictor.with_retrieval(retriever, "exact")
    assert predictor.retriever is None and answering.retriever is retriever
    running = _start(answering)
    try:
        status, record = predict(running, photo)
    finally:
        stop_server(running)
    assert status == 200 and [t["cell"] for t in record["top_k"]] == [3, 7, 1]
    retrieval = record["retrieval"]
    assert (retrieval["lat"], retrieval["lon"]) == pytest.approx(tuple(points[1]))
    assert retrieval["fallback"] is False and retrieval["cells"] == 1
    cosine = half @ query / np.linalg.norm(half) / np.linalg.norm(query)
    assert retrieval["similarity"] == pytest.approx(cosine, abs=1e-5)
    assert "p3" not in json.dumps(record)


# ---------------------------------------------------------------------- in a real browser
@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Debian's headless chromium with a fresh profile, driven by Playwright."""
    required = os.environ.get("GEOLOC_BROWSER_TESTS") == "required"
    missing = []
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append('Playwright (pip install -e ".[test]")')
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if missing:
        message = f"the browser tests need {' and '.join(missing)}"
        if required:
            pytest.fail(f"{message}; GEOLOC_BROWSER_TESTS=required", pytrace=False)
        pytest.skip(message)
    with sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1100},
        )
        yield context
        context.close()


def open_page(browser, server):
    page = browser.new_page()
    outside = []
    page.on(  # the photo's preview is a blob: URL of the page itself
        "request", lambda r: None if r.url.startswith((server.url, "blob:")) else outside.append(r.url)
    )
    page.goto(server.url + "/")
    page.wait_for_selector("#locate:not([disabled])")
    page.wait_for_selector("#map[data-state=basemap]")
    page.outside_requests = outside  # type: ignore[attr-defined]
    return page


def upload(page, name: str, content: bytes, mime: str = "image/jpeg") -> None:
    page.set_input_files("#photo", files=[{"name": name, "mimeType": mime, "buffer": content}])


def pixel(page, lat: float, lon: float) -> list[int]:
    """The map's RGBA where the page draws (lat, lon)."""
    return page.evaluate(
        """([lat, lon]) => {
            const [x, y] = window.geolocMap.project(lon, lat).map(Math.round);
            return Array.from(document.getElementById("map").getContext("2d").getImageData(x, y, 1, 1).data);
        }""",
        [lat, lon],
    )


def test_the_page_shows_the_answer_of_predict_on_the_map(browser, server, tmp_path):
    photo = jpeg(120, 160, 7)
    status, expected = predict(server, photo)
    assert status == 200
    page = open_page(browser, server)
    upload(page, "holiday.jpg", photo)
    page.wait_for_selector("#map[data-state=answer]", timeout=60_000)
    top = page.locator("#top-cell")
    assert top.get_attribute("data-cell") == str(expected["top_k"][0]["cell"]) == "3"
    assert float(top.get_attribute("data-lat")) == expected["lat"]
    assert float(top.get_attribute("data-lon")) == expected["lon"]
    assert page.locator("#model").get_attribute("data-model") == "M1"
    rows = page.locator("#probabilities tbody tr")
    assert rows.count() == 3  # the server's default k (top_k=3), which the page takes from /healthz
    cells = [int(rows.nth(i).get_attribute("data-cell")) for i in range(3)]
    probabilities = [float(rows.nth(i).get_attribute("data-probability")) for i in range(3)]
    assert cells == [t["cell"] for t in expected["top_k"]] == [3, 7, 1]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0
    assert abs(probabilities[0] - 0.4) < 1e-5
    # Drawn: the 90 % set's four cells, the 50 % set's two, the three top cells' outlines; they
    # span more than half the world, so the view stays the whole world.
    assert page.locator("#map").get_attribute("data-cells-drawn") == str(4 + 2 + 3)
    assert page.locator("#map").get_attribute("data-view") == "-180.00,180.00,-90.00,90.00"
    # Inside cell 9 (90 % set only): shaded orange over the basemap a fresh page shows there.
    cell9 = json.loads(get(server, "/cells?ids=9")[2])["features"][0]["properties"]
    where = (cell9["cell_centroid_lat"], cell9["cell_centroid_lon"])
    shaded, plain = pixel(page, *where), pixel(open_page(browser, server), *where)
    assert shaded != plain and shaded[0] > shaded[2], (shaded, plain)
    assert "no feature index" in page.locator("#no-index").inner_text()
    assert page.outside_requests == []  # type: ignore[attr-defined]
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    print(f"screenshot: {tmp_path / 'page.png'}")


def test_a_photo_dropped_on_the_page_is_located(browser, server):
    page = open_page(browser, server)
    photo = list(jpeg(64, 96, 10))
    transfer = page.evaluate_handle(
        """(bytes) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], "dropped.jpg", { type: "image/jpeg" }));
            return transfer;
        }""",
        photo,
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    page.wait_for_selector("#map[data-state=answer]", timeout=60_000)
    assert page.locator("#top-cell").get_attribute("data-cell") == "3"
    assert page.locator("#drop-text").inner_text() == "dropped.jpg"


def test_a_posting_time_gets_m2(browser, server):
    page = open_page(browser, server)
    page.fill("#posted-at", "2014-06-01T14:30:00")
    upload(page, "holiday.jpg", jpeg(80, 80, 8))
    page.wait_for_selector("#map[data-state=answer]", timeout=60_000)
    assert page.locator("#model").get_attribute("data-model") == "M2"
    assert page.locator("#top-cell").get_attribute("data-cell") == "5"
    assert "2014-06-01T14:30:00Z" in page.locator("#model").inner_text()


@pytest.mark.parametrize(
    "name,content,words",
    [
        ("notes.txt", b"a shopping list, not a photo", "415: notes.txt"),
        ("huge.jpg", b"\xff\xd8" + b"x" * (MAX_BODY + 10), "413: body of"),
    ],
)
def test_the_servers_refusal_is_shown_in_the_page(browser, server, name, content, words, tmp_path):
    page = open_page(browser, server)
    upload(page, name, content)
    error = page.locator("#error")
    error.wait_for(state="visible", timeout=60_000)
    assert words in error.inner_text()
    assert page.locator("#answer").is_hidden()
    page.screenshot(path=str(tmp_path / "refused.png"))
    # A photo after the refusal is answered, and the error goes away.
    upload(page, "photo.jpg", jpeg(64, 64, 9))
    page.wait_for_selector("#map[data-state=answer]", timeout=60_000)
    assert page.locator("#error").is_hidden()


def test_the_page_lists_the_nearest_indexed_photos(browser, indexed_server, tmp_path):
    page = open_page(browser, indexed_server)
    assert page.locator("#no-index").is_hidden()
    assert f"{INDEXED} indexed photos" in page.locator("#server-status").inner_text()
    upload(page, "holiday.jpg", jpeg(70, 70, 103))
    page.wait_for_selector("#neighbours tbody tr", timeout=60_000)
    rows = page.locator("#neighbours tbody tr")
    assert rows.count() == 6
    distances = [float(rows.nth(i).get_attribute("data-distance")) for i in range(6)]
    assert distances == sorted(distances)
    assert "photo1" not in page.content() and "/private" not in page.content()
    page.screenshot(path=str(tmp_path / "page_index.png"), full_page=True)
    print(f"screenshot: {tmp_path / 'page_index.png'}")
