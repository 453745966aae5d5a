"""M1 as a LiteRT and an ONNX file: written by the export stage, checked against the SavedModel,
loaded by `geoloc predict` by suffix; without the converters, the SavedModel alone and one line
saying what to install."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from experiments.cli import main as geoloc
from geoloc_tf import errors, preprocessing
from geoloc_tf.m1 import export_check, portable
from geoloc_tf.m1.export import export_m1
from geoloc_tf.run_layout import RunLayout
from mesh import Mesh
from tests.conftest import random_mesh
from tests.geoloc_tf.conftest import jpeg
from tests.geoloc_tf.test_m1_export import gradient_model

TOP_K = 3
# Flat colours: decoded, cropped and resized they are whole levels, so the uint8 pixels of the
# portable files and the float pixels of the SavedModel and the run directory are the same.
COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (240, 240, 240), (10, 10, 10), (200, 200, 40)]


def flat_jpeg(colour, height: int = 90, width: int = 120) -> bytes:
    pixels = np.broadcast_to(np.array(colour, np.uint8), (height, width, 3))
    return tf.io.encode_jpeg(pixels, quality=95).numpy()


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A run with a mesh, an M1 whose answer depends on the photo, its SavedModel (top 3) and the
    export stage's LiteRT and ONNX files (the run has no data set: checked on noise JPEGs)."""
    from experiments.stages.export_stage import export_runtimes

    root = tmp_path_factory.mktemp("portable_run")
    layout = RunLayout(root)
    mesh = random_mesh(np.random.default_rng(5), 2000)
    mesh.save(layout.mesh)
    m1 = gradient_model(mesh.num_cells)
    layout.m1_dir.mkdir(parents=True)
    m1.save(layout.m1_model)
    export_m1(m1, mesh.imagery_centroids, str(layout.export("m1")), top_k=TOP_K)
    artifacts = export_runtimes(m1, layout, TOP_K)
    assert artifacts == {
        "m1_litert": "export/m1.tflite",
        "m1_onnx": "export/m1.onnx",
        "m1_check": "export/m1.check.json",
    }
    return root


def test_both_files_answer_as_the_saved_model_on_the_same_pixels(run):
    layout = RunLayout(run)
    saved = tf.saved_model.load(str(layout.export("m1")))
    images = tf.constant([jpeg(90, 120, 0), jpeg(75, 75, 1), jpeg(200, 100, 2), flat_jpeg(COLOURS[0])])
    pixels = preprocessing.eval_pixels_batch(images, 75)
    assert pixels.dtype == tf.uint8 and pixels.shape == (4, 75, 75, 3)
    reference = saved.serve_pixels(pixels)
    for name in ("litert", "onnx"):
        runtime = portable.load(layout.portable_export("m1", name))
        assert (runtime.image_size, runtime.top_k, runtime.num_cells) == (
            75,
            TOP_K,
            Mesh.load(layout.mesh).num_cells,
        )
        ids, probabilities = runtime(pixels.numpy())
        assert ids.shape == (4, TOP_K) and ids.dtype == np.int32
        np.testing.assert_array_equal(ids, reference["cell_ids"].numpy())
        np.testing.assert_allclose(probabilities, reference["probabilities"].numpy(), atol=1e-5)
    # the flat photo: the same pixels as the SavedModel's own JPEG path, so the same answer
    jpeg_path = saved.serve(images[3:])
    np.testing.assert_array_equal(jpeg_path["cell_ids"].numpy(), reference["cell_ids"].numpy()[3:])
    with pytest.raises(errors.InferenceError, match=r"expected \(batch, 75, 75, 3\)"):
        runtime(np.zeros((1, 64, 64, 3), np.uint8))


def test_the_check_report_and_a_file_of_another_model_failing_it(run, tmp_path):
    layout = RunLayout(run)
    report = json.loads(layout.export_check("m1").read_text())
    assert report["tolerance"] == 1e-4 and report["photos"] == export_check.PHOTOS
    assert report["source"].startswith("noise JPEGs")
    for name in ("litert", "onnx"):
        figures = report["formats"][name]
        assert figures["passed"] and figures["same_pixels"]["max_abs_diff"] <= 1e-4
        assert figures["same_pixels"]["top1_agreement"] == 1.0
        assert figures["bytes"] == layout.portable_export("m1", name).stat().st_size

    # An ONNX file of M1 with other weights: the check fails, in one line naming the file.
    other = gradient_model(portable.load(layout.portable_export("m1", "onnx")).num_cells, seed=9)
    path = portable.write(other, "onnx", tmp_path / "m1.onnx", TOP_K)
    photos = export_check.noise_photos(8)
    bad = export_check.check(layout.export("m1"), {"onnx": path}, photos, "noise")
    assert not bad["formats"]["onnx"]["passed"]
    with pytest.raises(
        errors.ExportError, match=r"^m1\.onnx: outputs differ .*\(tolerance 0\.0001\)"
    ) as raised:
        export_check.raise_on_mismatch(bad, "export/m1.check.json")
    assert "\n" not in str(raised.value)


def test_near_ties_may_swap_but_probabilities_may_not_move():
    ids = np.array([[4, 2], [1, 0]])
    probs = np.array([[0.50000, 0.49995], [0.7, 0.3]], np.float32)  # photo 0: a near-tie
    swapped = np.array([[2, 4], [1, 0]])
    figures = export_check.compare(ids, probs, swapped, probs)
    assert figures["top1_agreement"] == 0.5 and figures["top1_differs_not_near_tie"] == 0
    assert figures["max_abs_diff"] == 0.0 and export_check.passes(figures)
    moved = export_check.compare(ids, probs, ids, probs + [[0, 0], [-0.001, 0.001]])
    assert moved["max_abs_diff"] == pytest.approx(0.001, abs=1e-6) and not export_check.passes(moved)
    flipped = export_check.compare(ids, probs, np.array([[4, 2], [0, 1]]), probs)
    assert flipped["top1_differs_not_near_tie"] == 1 and not export_check.passes(flipped)


def test_predict_with_the_tflite_and_onnx_files_gives_the_run_directorys_top_cells(run, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, colour in enumerate(COLOURS):
        (folder / f"photo_{i}.jpg").write_bytes(flat_jpeg(colour, 80 + 10 * i, 120))

    def top_cells(model: Path) -> dict[str, list[int]]:
        assert geoloc(["predict", str(folder), f"--model={model}", "--format=json", "--top_k=3"]) == 0
        records = json.loads(capsys.readouterr().out)
        return {Path(r["file"]).name: [t["cell"] for t in r["top_k"]] for r in records}

    from_run = top_cells(run)
    assert len(from_run) == len(COLOURS)
    assert len({cells[0] for cells in from_run.values()}) > 1  # the answer depends on the photo
    for name in ("litert", "onnx"):
        assert top_cells(RunLayout(run).portable_export("m1", name)) == from_run  # mesh found beside


def test_without_the_converters_the_saved_model_alone_and_one_line_to_install(
    run, tmp_path, monkeypatch, caplog
):
    from experiments.stages.export_stage import export_runtimes
    from geoloc_tf.inference.m1_model import M1Model
    from geoloc_tf.saving import load_keras

    source = RunLayout(run)
    layout = RunLayout(tmp_path / "run")
    layout.export_dir.mkdir(parents=True)
    stale = layout.portable_export("m1", "onnx")
    stale.write_bytes(b"an older M1")  # a file of an older M1 must not outlive it
    for module in ("ai_edge_litert", "tf2onnx", "onnxruntime"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    assert portable.missing("onnx") == ["tf2onnx", "onnxruntime"]
    with caplog.at_level(logging.WARNING, logger="experiments.stages.export_stage"):
        assert export_runtimes(load_keras(source.m1_model), layout, TOP_K) == {}
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert line.startswith("export: M1 not written for LiteRT and ONNX (ai_edge_litert, tf2onnx, onnxruntime")
    assert line.endswith('pip install "geoloc[litert,onnx]"') and "\n" not in line
    assert not stale.exists() and sorted(p.name for p in layout.export_dir.iterdir()) == []
    with pytest.raises(errors.ExportError, match=r'onnxruntime not installed.*pip install "geoloc\[onnx\]"'):
        M1Model.load(source.portable_export("m1", "onnx"))


def test_a_model_path_is_loaded_by_its_suffix(run, tmp_path):
    from geoloc_tf.inference.m1_model import M1Model

    layout = RunLayout(run)
    model = M1Model.load(layout.portable_export("m1", "litert"))
    assert (model.image_size, model.max_top_k, model.run_dir) == (75, TOP_K, None)
    assert model.mesh is not None and model.num_cells == model.mesh.num_cells  # the run's mesh
    (tmp_path / "m1.tflite").write_bytes(b"not a model")
    with pytest.raises(errors.ExportError, match="m1.tflite: cannot be loaded by LiteRT"):
        M1Model.load(tmp_path / "m1.tflite")
    with pytest.raises(errors.ExportError, match="no such file"):
        M1Model.load(tmp_path / "gone.onnx")
