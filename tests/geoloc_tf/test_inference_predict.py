"""`geoloc predict` on real files with a tiny real run directory whose probabilities are set by
hand: M1's classifier has a zero kernel and a bias of log(p), so every photo gets the softmax p
of conftest.M1_TOP (cell 3 at 40 %, 7 at 30 %, 1 at 15 %, 9 at 10 %) whatever its pixels, and the top cells, mass sets and areas can be checked by hand."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from data_pipelines.config import DecodeBudget
from experiments.cli import main as geoloc
from geoloc_tf import errors
from tests.geoloc_tf.conftest import M1_TOP, build_tiny_run, distribution, jpeg, png


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return build_tiny_run(tmp_path_factory.mktemp("tiny_run"))


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    """One JPEG, one PNG, and a folder: 2 JPEGs (one in a subfolder), a corrupt .jpg, a note."""
    root = tmp_path_factory.mktemp("photos")
    (root / "one.jpg").write_bytes(jpeg(90, 120, 0))
    (root / "two.png").write_bytes(png(60, 80, 1))
    folder = root / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(jpeg(75, 75, 2))
    (folder / "sub" / "b.JPEG").write_bytes(jpeg(100, 50, 3))
    (folder / "broken.jpg").write_bytes(np.random.default_rng(4).bytes(2000))
    (folder / "notes.txt").write_text("not a photo\n")
    return {"jpg": root / "one.jpg", "png": root / "two.png", "folder": folder}


def test_mass_sets_by_hand():
    from geoloc_tf.inference.mass import mass_sets, mass_sets_from_probabilities

    probs = np.array([[0.1, 0.6, 0.2, 0.1], [0.25, 0.25, 0.25, 0.25]])
    areas = np.array([1.0, 10.0, 100.0, 1000.0])
    sets = mass_sets_from_probabilities(probs, areas)
    # photo 0: 0.6 (cell 1) reaches 50 %; 0.6 + 0.2 + 0.1 (cells 1, 2, then 0 by lower id) 90 %
    np.testing.assert_array_equal(sets.size, [[1, 3], [2, 4]])
    np.testing.assert_allclose(sets.mass, [[0.6, 0.9], [0.5, 1.0]])
    np.testing.assert_allclose(sets.area_km2, [[10.0, 111.0], [11.0, 1111.0]])
    assert sets.cells(0, 1).tolist() == [1, 2, 0]
    # only the top 2 cells known (0.6 + 0.2 = 0.8): the 90 % set is unknown, not guessed
    top = mass_sets(np.array([[1, 2]]), np.array([[0.6, 0.2]]), areas)
    np.testing.assert_array_equal(top.size, [[1, -1]])
    assert np.isnan(top.area_km2[0, 1]) and top.area_km2[0, 0] == 10.0


def test_m1_model_from_run_and_saved_model(run, photos):
    from geoloc_tf.inference.m1_model import M1Model, read_photo

    images = [read_photo(photos["jpg"], DecodeBudget(), 75), read_photo(photos["png"], DecodeBudget(), 75)]
    model = M1Model.load(run)
    assert (model.image_size, model.run_dir) == (75, run)
    p = distribution(model.num_cells, M1_TOP)
    probabilities, features = model.probabilities_and_features(images)
    np.testing.assert_allclose(probabilities, np.stack([p, p]), atol=1e-6)
    assert features.shape == (2, model.features(images).shape[1]) and features.dtype == np.float32
    exported = M1Model.load(run / "export" / "m1")  # the run's mesh is found from export/m1
    assert (exported.image_size, exported.num_cells, exported.run_dir) == (75, model.num_cells, None)
    ids, top = exported.top_k(images, 10)
    assert ids.tolist() == [[3, 7, 1]] * 2 and np.allclose(top, [[0.4, 0.3, 0.15]] * 2, atol=1e-6)
    with pytest.raises(errors.InferenceError, match="top 3 of"):
        exported.probabilities(images)
    with pytest.raises(errors.InferenceError, match="no penultimate features"):
        exported.features(images)
    with pytest.raises(errors.ExportError, match="neither a run directory"):
        M1Model.load(run / "mesh")


def test_read_photo_names_bad_files_and_decodes_bmp(tmp_path):
    from PIL import Image

    from geoloc_tf.inference.m1_model import read_photo

    Image.fromarray(np.full((20, 30, 3), 200, np.uint8)).convert("L").save(tmp_path / "grey.bmp")
    pixels = read_photo(tmp_path / "grey.bmp", DecodeBudget(), 75)
    assert pixels.shape == (20, 30, 3) and pixels.dtype == np.uint8  # grey comes out RGB
    np.testing.assert_array_equal(pixels, 200)
    (tmp_path / "cut.jpg").write_bytes(jpeg(64, 64, 0)[:300])  # truncated JPEG
    (tmp_path / "empty.png").write_bytes(b"")
    for name in ("cut.jpg", "empty.png", "missing.jpg"):
        with pytest.raises(errors.InferenceError, match=name):
            read_photo(tmp_path / name, DecodeBudget(), 75)


def test_predict_files_and_a_folder_with_a_corrupt_file(run, photos, capsys):
    from mesh import Mesh

    code = geoloc(
        [
            "predict",
            str(photos["jpg"]),
            str(photos["png"]),
            str(photos["folder"]),
            f"--model={run}",
            "--format=json",
            "--top_k=3",
            "--batch_size=2",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1  # one file failed
    errors_lines = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors_lines) == 1 and "broken.jpg" in errors_lines[0]
    records = json.loads(captured.out)
    assert [Path(r["file"]).name for r in records] == ["one.jpg", "two.png", "a.jpg", "b.JPEG"]
    mesh = Mesh.load(run / "mesh")
    areas = mesh.cell_areas_km2
    for record in records:
        assert record["model"] == "m1" and record["posted_at"] is None
        assert [t["cell"] for t in record["top_k"]] == [3, 7, 1]
        np.testing.assert_allclose([t["probability"] for t in record["top_k"]], [0.4, 0.3, 0.15], atol=1e-5)
        assert (record["lat"], record["lon"]) == tuple(mesh.imagery_centroids[3])
        half, most = record["mass_sets"]
        assert (half["level"], half["cells"], most["cells"]) == (0.5, [3, 7], [3, 7, 1, 9])
        assert half["probability"] >= 0.5 and most["probability"] >= 0.9
        assert half["probability"] - 0.3 < 0.5  # minimal: without its least cell it is short
        np.testing.assert_allclose(half["area_km2"], areas[3] + areas[7])
        np.testing.assert_allclose(most["area_km2"], areas[[3, 7, 1, 9]].sum())


def test_geojson_csv_and_table_outputs(run, photos, capsys):
    from mesh import Mesh

    centroid = Mesh.load(run / "mesh").imagery_centroids[3]
    assert geoloc(["predict", str(photos["jpg"]), f"--model={run}", "--format=geojson"]) == 0
    collection = json.loads(capsys.readouterr().out)
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 1
    feature = collection["features"][0]
    assert feature["geometry"] == {"type": "Point", "coordinates": [centroid[1], centroid[0]]}
    assert feature["properties"]["mass_sets"][0]["num_cells"] == 2

    assert geoloc(["predict", str(photos["jpg"]), str(photos["png"]), f"--model={run}", "--format=csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [Path(r["file"]).name for r in rows] == ["one.jpg", "two.png"]
    assert (rows[0]["top_cells"].split()[:2], rows[0]["mass50_cells"], rows[0]["mass90_cells"]) == (
        ["3", "7"],
        "2",
        "4",
    )

    assert geoloc(["predict", str(photos["jpg"]), f"--model={run}"]) == 0  # table, the default
    text = capsys.readouterr().out
    assert "(model m1)" in text and "50 % of the probability: 2 cells (70.0 %)" in text


def test_posting_time_uses_the_runs_m2(run, photos, capsys):

    assert (
        geoloc(
            [
                "predict",
                str(photos["jpg"]),
                f"--model={run}",
                "--format=json",
                "--posted_at=2014-06-01T14:30:00+02:00",
            ]
        )
        == 0
    )
    (record,) = json.loads(capsys.readouterr().out)
    assert record["model"] == "m2" and record["posted_at"] == "2014-06-01T12:30:00Z"
    assert [t["cell"] for t in record["top_k"][:2]] == [5, 2]
    assert record["mass_sets"][0]["cells"] == [5]  # 60 % in one cell
    assert geoloc(["predict", str(photos["jpg"]), f"--model={run}", "--posted_at=June"]) == 2
    assert "ISO 8601 time" in capsys.readouterr().err


def test_saved_model_answers_with_its_top_cells_and_says_what_is_unknown(run, photos, capsys):

    assert (
        geoloc(
            [
                "predict",
                str(photos["png"]),
                f"--model={run / 'export' / 'm1'}",
                "--format=json",
                "--posted_at=2014-06-01T12:00:00Z",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "has no M2" in captured.err  # the SavedModel of M1 alone: M1 answers
    (record,) = json.loads(captured.out)
    assert record["model"] == "m1" and [t["cell"] for t in record["top_k"]] == [3, 7, 1]
    half, most = record["mass_sets"]
    assert half["cells"] == [3, 7]
    assert most["num_cells"] is None and "85.0%" in most["note"]


def test_map_png(run, photos, tmp_path, capsys):

    out = tmp_path / "maps" / "guess.png"
    assert (
        geoloc(
            [
                "predict",
                str(photos["jpg"]),
                f"--model={run}",
                f"--map={out}",
                "--format=csv",
                f"--out={tmp_path / 'guess.csv'}",
            ]
        )
        == 0
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["guess.png"]
    assert (tmp_path / "guess.csv").read_text().count("\n") == 2  # header + one photo
    assert "written to" in capsys.readouterr().err


def test_progress_lines_of_a_folder_off_a_terminal(run, photos, capsys, caplog, monkeypatch):
    """--progress=on with stderr not a terminal: log lines with done/total, rate and ETA (here one
    per photo: the interval is set to 0), the failed count once a file failed; none when off."""
    import logging
    import re

    import mesh.progress

    monkeypatch.setattr(mesh.progress, "PROGRESS_EVERY_S", 0.0)
    caplog.set_level(logging.INFO, logger="mesh.progress")
    args = ["predict", str(photos["folder"]), f"--model={run}", "--format=json", "--batch_size=1"]
    assert geoloc([*args, "--progress=on"]) == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "mesh.progress"]
    assert lines, capsys.readouterr().err
    for line in lines:
        assert re.fullmatch(
            r"predict: [0-3]/3 photos \(\d+%\), [\d.]+ photos/s, ETA \d:\d\d:\d\d(, 1 failed)?", line
        ), line
    assert lines[-1].startswith("predict: 3/3 photos (100%)") and lines[-1].endswith(", 1 failed")
    assert "2 photos predicted, 1 failed" in capsys.readouterr().err
    caplog.clear()
    assert geoloc([*args, "--progress=off"]) == 1
    assert not [r for r in caplog.records if r.name == "mesh.progress"]


# ------------------------------------------------------------ retrieval inside the top cells
@pytest.fixture(scope="module")
def retrieval_index(run, photos, tmp_path_factory):
    """A feature index of two photos made from one.jpg's M1 features: row 0 the same features, in
    cell 7 (M1's second cell); row 1 the same with the second half zeroed, in cell 3 (M1's top)."""
    from geoloc_tf.inference.m1_model import M1Model, read_photo
    from geoloc_tf.retrieval.feature_index import FeatureIndex

    m1 = M1Model.load(run)
    query = m1.features([read_photo(photos["jpg"], DecodeBudget(), m1.image_size)])[0]
    other = query.copy()
    other[len(other) // 2 :] = 0.0
    points = m1.mesh.cell_centroids[[7, 3]]
    assert m1.mesh.locate(points[:, 0], points[:, 1]).tolist() == [7, 3]
    path = tmp_path_factory.mktemp("retrieval") / "m1_train"
    FeatureIndex.write(path, np.stack([query, other]), ["same", "half"], points[:, 0], points[:, 1])
    cosine = float(other @ query / np.linalg.norm(other) / np.linalg.norm(query))
    return path, points, cosine


def test_predict_with_retrieval_inside_the_top_cells(run, photos, retrieval_index, capsys):
    from mesh import Mesh

    path, points, cosine = retrieval_index
    assert cosine < 0.999  # the half-zeroed features are less similar than the identical ones
    base = ["predict", str(photos["jpg"]), f"--model={run}", f"--index={path}", "--format=json"]
    assert geoloc([*base, "--cell_retrieval_cells=1", "--engine=exact"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    # Only cell 3 is searched: the photo there, although the identical one (in cell 7) is nearer.
    retrieval = record["retrieval"]
    assert (retrieval["lat"], retrieval["lon"]) == tuple(points[1]) and not retrieval["fallback"]
    assert retrieval["cells"] == 1 and retrieval["similarity"] == pytest.approx(cosine, abs=1e-5)
    assert retrieval["score"] == pytest.approx(np.log(0.4) + cosine / 0.1, abs=1e-4)
    assert (record["lat"], record["lon"]) == tuple(Mesh.load(run / "mesh").imagery_centroids[3])
    # Cells 3 and 7 searched at temperature 0.01: log 0.3 + 1 / 0.01 against log 0.4 + cos / 0.01.
    assert geoloc([*base, "--cell_retrieval_cells=2", "--cell_retrieval_temperature=0.01"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    winner = 0 if np.log(0.3) + 100.0 > np.log(0.4) + 100.0 * cosine else 1
    assert (record["retrieval"]["lat"], record["retrieval"]["lon"]) == tuple(points[winner])
    # Without the setting there is no retrieval field.
    assert geoloc(base) == 0
    assert "retrieval" not in json.loads(capsys.readouterr().out)[0]


def test_predict_retrieval_fallback_is_flagged_and_counted(run, photos, retrieval_index, capsys):
    from mesh import Mesh

    path, _, _ = retrieval_index
    args = ["--cell_retrieval_cells=1", "--cell_retrieval_neighbours=1", "--format=csv"]
    assert geoloc(["predict", str(photos["jpg"]), f"--model={run}", f"--index={path}", *args]) == 0
    captured = capsys.readouterr()
    header, row = list(csv.reader(io.StringIO(captured.out)))
    assert header[-3:] == ["retrieval_lat", "retrieval_lon", "retrieval_fallback"]
    # The one neighbour (the identical features) lies in cell 7: the top cell's label point.
    centroid = Mesh.load(run / "mesh").imagery_centroids[3]
    assert [float(row[-3]), float(row[-2]), row[-1]] == pytest.approx([centroid[0], centroid[1], "1"])
    assert "note: 1 of 1 photos had no indexed photo of their top cells" in captured.err


def test_predict_retrieval_needs_an_index_and_a_run_directory(run, photos, retrieval_index, capsys):
    path, _, _ = retrieval_index
    photo = str(photos["jpg"])
    assert geoloc(["predict", photo, f"--model={run}", "--cell_retrieval_cells=1"]) == 2
    assert "--cell_retrieval_cells=1 needs a feature index" in capsys.readouterr().err
    export = f"--model={run / 'export' / 'm1'}"
    assert geoloc(["predict", photo, export, f"--index={path}", "--cell_retrieval_cells=1"]) == 2
    err = capsys.readouterr().err
    assert "is an export, which has no penultimate features" in err and len(err.strip().splitlines()) == 1
