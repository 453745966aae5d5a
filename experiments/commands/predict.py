"""`geoloc predict`: where were these photos taken? A trained model on image files.

    geoloc predict PHOTO.jpg DIR/ ... --model=RUN_DIR [--top_k=5] [--format=table]
    geoloc predict DIR/ --model=RUN_DIR/export/m1 --format=geojson --out=guesses.geojson
    geoloc predict DIR/ --model=RUN_DIR/export/m1.tflite      # or m1.onnx: LiteRT, ONNX Runtime
    geoloc predict PHOTO.jpg --model=RUN_DIR --posted_at=2014-06-01T14:30:00Z --map=guess.png
    geoloc predict DIR/ --model=RUN_DIR --cell_retrieval_cells=5   # + retrieval inside the top cells

For each photo: the top-k mesh cells with probability and label point, and the smallest sets of
cells holding 50 % and 90 % of the probability with their area in km2
(``geoloc_tf.inference.predict_files``). With --posted_at (UTC when no offset is given) and a run
that has M2, M2 answers (§3.2). With --cell_retrieval_cells and a feature index of M1's training
photos (--index, default the run's when `geoloc index` or --predict_store_features wrote it), each
photo also gets the point of retrieval inside the top cells (``geoloc_tf.retrieval.cell_retrieval``);
an export has neither M1's features nor the index, so that needs a run directory. Settings: ``geoloc_tf.inference.config.PredictFilesConfig``; the
model, the photos and where to write are the tool's own options. A file that is not a readable
image gets one `error:` line naming it; the others are still predicted, and the exit status is 1
when any failed (2 for a usage or model error).
"""

from __future__ import annotations

import io
import logging
import sys
import time
from pathlib import Path
from typing import IO, Any

from absl import flags

from experiments.commands import Command, require
from geoloc_tf.inference.config import PredictFilesConfig


def define_model_inputs(flag_values: flags.FlagValues) -> None:
    """--model and --mesh, as the tools that answer with a trained model take them (predict, serve,
    evaluate); --model is required."""
    flags.DEFINE_string(
        "model",
        None,
        "Run directory, an exported M1 SavedModel, or M1's LiteRT or ONNX file (.tflite, .onnx).",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "mesh",
        None,
        "The run's mesh (default: the mesh of the run that holds "
        "the model; give it for a SavedModel kept elsewhere).",
        flag_values=flag_values,
    )
    require(flag_values, "model")


def define_index_input(flag_values: flags.FlagValues, used_for: str) -> None:
    """--index, as `geoloc predict` and `geoloc serve` take it (``index_path``)."""
    flags.DEFINE_string(
        "index",
        None,
        f"Feature index {used_for} (geoloc index writes one; default: the run's index of M1's "
        "training photos if it exists; --index= (empty): none).",
        flag_values=flag_values,
    )


def index_path(model: str, index: str | None) -> Path | None:
    """The feature index `geoloc predict` and `geoloc serve` open: ``--index`` when given (empty:
    none), else the run's index of M1's training photos when ``model`` is a run directory that has
    one."""
    from data_pipelines.splits import M1_TRAIN
    from geoloc_tf.retrieval.feature_index import META_FILE
    from geoloc_tf.run_layout import RunLayout

    if index is not None:
        return Path(index) if index else None
    default = RunLayout(model).index_dir(M1_TRAIN)
    return default if (default / META_FILE).is_file() else None


def open_retrieval(config, engine: str, model: str, index: str | None, predictor):
    """``predictor`` answering also by retrieval inside the top cells when
    ``config.cell_retrieval_cells`` > 0 (``Predictor.with_retrieval``), else ``predictor``; one
    clear line when there is no index to search."""
    from experiments.commands import missing_files_are_user_errors
    from experiments.errors import ConfigError
    from geoloc_tf.retrieval.cell_retrieval import CellRetriever

    cells = config.cell_retrieval_cells
    if not cells:
        return predictor
    path = index_path(model, index)
    if path is None:
        raise ConfigError(
            f"--cell_retrieval_cells={cells} needs a feature index of M1's training photos: "
            "--index=DIR, or --model=RUN_DIR whose index/m1_train exists (geoloc index --model=RUN_DIR)"
        )
    with missing_files_are_user_errors():
        retriever = CellRetriever.open(path, predictor.m1.mesh, config, engine)
    return predictor.with_retrieval(retriever, engine)


def _define_inputs(flag_values: flags.FlagValues) -> None:
    define_model_inputs(flag_values)
    define_index_input(flag_values, "searched by retrieval inside the top cells (--cell_retrieval_cells)")
    flags.DEFINE_string(
        "posted_at",
        None,
        "ISO 8601 posting time of the photos (UTC if no offset): M2 answers.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "outdoor",
        None,
        "Outdoor probability of the photos in [0, 1], for an M2 trained with it.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "map",
        None,
        "PNG of the probability over the mesh cells (one per photo: MAP-<photo>.png).",
        flag_values=flag_values,
    )
    flags.DEFINE_string("out", None, "Write here (atomically) instead of stdout.", flag_values=flag_values)


def _run(configs: dict[str, Any], inputs: flags.FlagValues, paths: list[str]) -> int:
    from geoloc_tf.inference.formats import escaped
    from geoloc_tf.inference.photo_predictor import Predictor, parse_outdoor, parse_posted_at
    from geoloc_tf.inference.predict_files import IMAGE_SUFFIXES, collect_image_paths, predict_files
    from mesh.atomic import write_atomic
    from mesh.progress import Progress, shown

    config: PredictFilesConfig = configs[""]
    logging.basicConfig(level=logging.WARNING, format="%(levelname).1s %(name)s] %(message)s")
    posted_at = None if inputs.posted_at is None else parse_posted_at(inputs.posted_at)
    outdoor = None if inputs.outdoor is None else parse_outdoor(inputs.outdoor)
    files, missing, skipped = collect_image_paths(paths)  # missing: every path that cannot be a photo
    predictor = Predictor.load(inputs.model, inputs.mesh, with_m2=posted_at is not None)
    predictor = open_retrieval(config.cell_retrieval, config.engine, inputs.model, inputs.index, predictor)
    for line in missing:
        print(f"error: {line}", file=sys.stderr)
    if not files:
        print(f"error: no image file in {escaped(' '.join(paths))}", file=sys.stderr)
        return 1
    if posted_at is not None and not predictor.has_m2:
        print(
            f"note: {inputs.model} has no M2 (a run directory's trained M2): M1 answers and "
            "--posted_at is not used",
            file=sys.stderr,
        )
    if outdoor is not None and not predictor.m2_uses_outdoor:
        print("note: --outdoor is not used (no M2 trained with the outdoor input)", file=sys.stderr)
    if skipped:
        print(
            f"note: {skipped} file(s) without an image suffix ({', '.join(sorted(IMAGE_SUFFIXES))}"
            ") or hidden were left out of the directories",
            file=sys.stderr,
        )
    show = shown(config.progress, any(Path(p).is_dir() for p in paths))
    # Off a terminal, a line every few seconds through logging (this command logs warnings only
    # otherwise); the closing summary below says the rest.
    logging.getLogger("mesh.progress").setLevel(logging.INFO)
    progress = Progress(len(files), "photos", "predict", enabled=show, final_line=False)
    started = time.monotonic()

    def run(out: IO[str]) -> tuple[int, int]:
        return predict_files(
            predictor,
            files,
            out,
            config,
            posted_at,
            outdoor,
            Path(inputs.map) if inputs.map else None,
            progress,
        )

    if inputs.out:
        counts: list[tuple[int, int]] = []

        def write(raw) -> None:
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            counts.append(run(text))
            text.flush()
            text.detach()

        write_atomic(inputs.out, write)
        done, failed = counts[0]
    else:
        done, failed = run(sys.stdout)
    progress.close()
    failed += len(missing)
    seconds = time.monotonic() - started
    if failed or show or inputs.out:
        print(
            f"{done} photos predicted, {failed} failed ({done / max(seconds, 1e-9):.1f} "
            f"photos/s){f'; written to {inputs.out}' if inputs.out else ''}",
            file=sys.stderr,
        )
    return 1 if failed else 0


COMMAND = Command(
    name="predict",
    summary="Locate photos with a trained model: top cells, and the cells holding 50 % and 90 % "
    "of the probability with their areas.",
    sections={"": PredictFilesConfig},
    define_inputs=_define_inputs,
    positional="PHOTO_OR_DIR [PHOTO_OR_DIR ...]",
    run=_run,
)
