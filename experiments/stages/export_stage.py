"""Stage `export`: SavedModels of M1 (JPEG bytes in), M2 and M3 (M1's top-k + posting time in), each
returning the top-k cells, their probabilities and the predicted lat/lon (imagery centroids, §3.1.2);
and M1 for other runtimes, ``export/m1.tflite`` (LiteRT) and ``export/m1.onnx`` (uint8 pixels in,
top-k cells and probabilities out; ``geoloc_tf.m1.portable``), each checked against the SavedModel
on the run's validation photos (``geoloc_tf.m1.export_check``; the figures in
``export/m1.check.json``).

A format whose converter or runtime is not installed (the extras ``litert`` and ``onnx`` of
setup.py) is left out with one warning saying what to install: the SavedModels are written all the
same. A file that does not match the SavedModel fails the stage.
"""

from __future__ import annotations

import logging
from pathlib import Path

from experiments.config import RunConfig

log = logging.getLogger(__name__)


def run(config: RunConfig, run_dir: Path) -> dict[str, str]:
    from geoloc_tf.m1.export import export_m1
    from geoloc_tf.m2.task import TrainedM2
    from geoloc_tf.m3.task import TrainedM3
    from geoloc_tf.run_layout import RunLayout
    from geoloc_tf.saving import load_keras
    from mesh import Mesh

    layout = RunLayout(run_dir)
    points = Mesh.load(layout.mesh).imagery_centroids
    k = config.export.top_k
    m1 = load_keras(layout.m1_model)
    export_m1(m1, points, str(layout.export("m1")), top_k=k)
    TrainedM2.load(layout).export(points, layout.export("m2"), k)
    TrainedM3.load(layout).export(points, layout.export("m3"), k)
    artifacts = {name: layout.relative(layout.export(name)) for name in ("m1", "m2", "m3")}
    return {**artifacts, **export_runtimes(m1, layout, k)}


def export_runtimes(m1, layout, top_k: int) -> dict[str, str]:
    """M1 as a LiteRT and an ONNX file where their extras are installed, checked against the
    SavedModel at ``layout.export("m1")``; the artifacts written (files of a format not written
    now are removed: they would be of an older M1)."""
    from data_pipelines.ingest.layout import SUMMARY_FILE
    from geoloc_tf.m1 import export_check, portable
    from mesh.atomic import write_json_atomic

    absent = {name: portable.missing(name) for name in portable.FORMATS}
    files = {name: layout.portable_export("m1", name) for name in portable.FORMATS if not absent[name]}
    left_out = [name for name in portable.FORMATS if absent[name]]
    for name in left_out:
        layout.portable_export("m1", name).unlink(missing_ok=True)
    if left_out:
        log.warning(
            "export: M1 not written for %s (%s not installed); to have them: %s",
            " and ".join(portable.FORMATS[name].label for name in left_out),
            ", ".join(module for name in left_out for module in absent[name]),
            portable.install_hint([portable.FORMATS[name].extra for name in left_out]),
        )
    check_path = layout.export_check("m1")
    if not files:
        check_path.unlink(missing_ok=True)
        log.info("export: M1 written as a SavedModel only")
        return {}
    for name, path in files.items():
        portable.write(m1, name, path, top_k)
    if (layout.data_dir / SUMMARY_FILE).exists():
        photos = export_check.validation_photos(layout.data_dir, export_check.PHOTOS)
        source = "the run's validation photos (m23_val)"
    else:
        photos, source = (
            export_check.noise_photos(export_check.PHOTOS),
            "noise JPEGs (no data set in the run)",
        )
    report = export_check.check(layout.export("m1"), files, photos, source)
    write_json_atomic(check_path, report)
    export_check.raise_on_mismatch(report, layout.relative(check_path))
    figures = "; ".join(
        f"{portable.FORMATS[name].label} max |dp| {f['same_pixels']['max_abs_diff']:.2g} on the same "
        f"pixels, {f['end_to_end']['max_abs_diff']:.2g} end to end (top-1 agreement "
        f"{100 * f['end_to_end']['top1_agreement']:.1f} %)"
        for name, f in report["formats"].items()
    )
    log.info(
        "export: M1 written as a SavedModel, %s; checked on %d photos: %s (%s)",
        ", ".join(f"{portable.FORMATS[name].label} ({path.name})" for name, path in files.items()),
        report["photos"],
        figures,
        layout.relative(check_path),
    )
    return {
        **{f"m1_{name}": layout.relative(path) for name, path in files.items()},
        "m1_check": layout.relative(check_path),
    }
