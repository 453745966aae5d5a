"""A trained model on an external test set (paper §4.1.3, Table 5), what `geoloc evaluate` runs
(``experiments.commands.evaluate``; settings: ``geoloc_tf.run_configs.ExternalEvaluateConfig``).

The test set is read by the data pipeline's collection formats (``data_pipelines.readers.formats``,
the one the file says, or the benchmark's): a CSV (IMG_ID, LAT, LON, optional time, user, outdoor
and image path columns), YFCC100M lines, OSV-5M's test.csv (capture time, creator, admin columns;
photos read from the zips under the images folder, or as extracted ``<id>.jpg`` files) or MP16-Pro;
clearly swapped latitude/longitude columns are detected and corrected with a warning. The data set's
admin columns (OSV-5M's ``unique_*`` strings as written), for the photos that have them, are the
truth of the country / region / sub-region / city accuracy; the other photos take the
reverse-geocoded true point (``admin``). When the run directory holds its data set (``data/``), the test photographers' ids are
hashed with its salt and the report adds the rows on photos whose photographer is absent from the
run's training splits, with the photo ids shared with them, compared by Flickr photo id (``leakage``;
"unknown" where the ids name no Flickr photo), and on the photos with no training photo within
the near-duplicate radius (``near_duplicate_km``). M1 predicts every
readable image; with a run directory, M2 adds its rows when every photo has a
posting time, and M3 when the set also names users (their albums). The rows are the same as the
run's own report (same code: `evaluate_predictions`), written to `--out` (default
`RUN_DIR/eval_external/<csv name>`). An image that cannot be read is named, skipped and counted; the
others are still evaluated.

With ``benchmark`` (a name of ``geoloc_tf.evaluation.benchmarks``), the CSV must have that
benchmark's columns (else one line naming the file and the columns expected), and the report's
first table is the run's rows beside the published results on that benchmark, also in
``results.json`` under "benchmark". The convention is the config's: ``benchmarks.with_convention``
sets the benchmark's own (the command does so unless the user set one).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from data_pipelines.config import DecodeBudget
from geoloc_tf import prediction_tables
from geoloc_tf.errors import EvaluationError, InferenceError
from geoloc_tf.m2.config import DEFAULT_TOP_K
from geoloc_tf.run_configs import ExternalEvaluateConfig
from geoloc_tf.run_layout import RunLayout

if TYPE_CHECKING:
    from geoloc_tf.inference.m1_model import M1Model

log = logging.getLogger(__name__)

SPLIT = "external"


def read_test_set(
    csv_path: str,
    image_path_template: str | None = None,
    fmt: str = "auto",
    images_dir: str = ".",
    user_hasher=None,
) -> tuple[pd.DataFrame, dict]:
    """The test set's photos and the skipped-row counts, read by the collection format ``fmt``
    (``data_pipelines.readers.formats``; "auto": the one the file says). The table has the metadata
    columns, where each image is (``image_path``; ``container``/``offset``/``size`` as the readers
    give them, ``locate_images`` resolves archive members) and the data set's admin columns.

    ``user_hasher``: hashes the photographers' ids, the training data set's
    (``leakage.training_user_hasher``) to compare them with its photographers; by default one with a
    random salt (they then only group photos into albums). Raw ids are never kept. Where the photo
    id is Flickr's file name with its owner (GeoEstimation's Im2GPS / Im2GPS3k IMG_ID,
    ``data_pipelines.photo_identity``), that owner's NSID is the photographer: it is Flickr's own
    record, the one a YFCC100M or MP-16 training set hashes, while the CSV's AUTHOR is missing from
    some copies and, in GeoEstimation's Im2GPS, holds ``<secret>_<server>_<NSID>`` for the photos
    whose name has a place prefix."""
    from data_pipelines.hashing import UserHasher
    from data_pipelines.readers import COORD_SCALE, SkipLog, common
    from data_pipelines.readers.formats import ReadOptions, resolve

    (reader,) = resolve(fmt, (csv_path,))
    if reader.metadata_are_archives or not reader.needs_metadata:
        raise EvaluationError(
            f"{csv_path}: a {reader.name} collection; expected a test set in a metadata file (a CSV, "
            "YFCC100M lines, OSV-5M or MP16-Pro) for geoloc evaluate"
        )
    skips = SkipLog()
    hasher = user_hasher or UserHasher(secrets.token_hex(8))
    options = ReadOptions(images_root=os.path.realpath(images_dir))
    chunks = [
        chunk
        for _, chunk in reader.read(
            csv_path, template=image_path_template, user_hasher=hasher, skips=skips, options=options
        )
    ]
    columns = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]} if chunks else {}
    if not columns or not len(columns["photo_id"]):
        raise EvaluationError(f"{csv_path}: no usable row; skipped {dict(skips.counts)}")
    table = pd.DataFrame(
        {
            "photo_id": columns["photo_id"].astype(str),
            "user_hash": columns["user_hash"].astype(str),
            "posted_at": columns["posted_at"].astype(np.int64),
            "lat": columns["lat_e7"] / COORD_SCALE,
            "lon": columns["lon_e7"] / COORD_SCALE,
            "outdoor_prob": np.nan_to_num(columns["outdoor_prob"].astype(np.float32), nan=-1.0),
            "image_path": columns["image_path"].astype(str),
            "container": columns["container"].astype(np.int32),
            "offset": columns["offset"].astype(np.int64),
            "size": columns["size"].astype(np.int64),
            **{name: columns[name].astype(str) for name in common.ADMIN_COLUMNS},
        }
    )
    return _photographers_from_flickr_names(table, hasher), skips.to_json()


def _photographers_from_flickr_names(table: pd.DataFrame, hasher) -> pd.DataFrame:
    """``table`` with the user hash of each photo whose id names its Flickr owner replaced by that
    owner's (``read_test_set``); each distinct owner hashed once."""
    from data_pipelines.photo_identity import flickr_ids

    owners = flickr_ids(table["photo_id"])["owner"]
    named = owners.notna().to_numpy()
    if not named.any():
        return table
    hashed = {owner: hasher(owner) for owner in owners[named].unique()}
    user_hash = table["user_hash"].to_numpy(copy=True)
    user_hash[named] = owners[named].map(hashed).to_numpy(dtype=object)
    return table.assign(user_hash=user_hash)


def locate_images(table: pd.DataFrame, fmt: str, images_dir: str) -> tuple[pd.DataFrame, list, list[str]]:
    """Where each test photo's image is. For a format whose images sit in archives found by key
    (OSV-5M's zips, MP16-Pro's tar parts), each row's member in the archives under ``images_dir``
    (first archive wins for a key found twice, as the ingestion does); a row whose key is in none is
    named and left out. With no archive there at all, the photos are read as the extracted files
    ``<key>.jpg``, or the key itself where it already names an image file (OSV-5M's own loader unpacks
    its zips so; MP16-Pro's keys end in ``.jpg``). Returns the rows, the archives and the
    messages for the rows left out."""
    from data_pipelines.readers import SkipLog, common
    from data_pipelines.readers.formats import get

    reader = get(fmt)
    if reader.index_archives is None:
        return table, [], []
    index = reader.index_archives(os.path.realpath(images_dir), SkipLog())
    if not index.archives:
        log.info("no archive under %s: reading the photos as <key>.jpg files", images_dir)
        return table.assign(image_path=table["image_path"].map(common.default_image_path)), [], []
    located, found = index.locate(table)
    missing = [
        f"{images_dir}: member {key} is in none of the {len(index.archives)} archives"
        for key in table.loc[~found, "image_path"]
    ]
    if reader.placeholders:  # MP16-Pro: placeholders of deleted photos are left out as ingestion does
        from data_pipelines.archives import PLACEHOLDER_MAX_BYTES, split_placeholders

        located, placeholders = split_placeholders(located)
        missing += [
            f"{images_dir}: member {key} is a placeholder of a deleted photo (at most "
            f"{PLACEHOLDER_MAX_BYTES} bytes), not the photo"
            for key in placeholders["image_path"]
        ]
    return located, list(index.archives), missing


class TestImages:
    """Reads the test photos as M1 (input ``side``) takes them, decoded once within ``budget``
    (``m1_model.decode_photo``): plain files under ``images_dir`` (``container`` -1) or archive
    members (``locate_images``); an unreadable one raises an InferenceError naming it."""

    def __init__(self, images_dir: Path, archives: list, budget: DecodeBudget, side: int):
        from data_pipelines.archives import ArchiveReader

        self.images_dir, self.budget, self.side = images_dir, budget, side
        self.archives = ArchiveReader(archives)

    def read(self, row) -> np.ndarray:
        """The uint8 (h, w, 3) pixels of one row (a named tuple or Series with image_path,
        container, offset, size)."""
        from data_pipelines.ingest.image_files import ImageSkipped
        from geoloc_tf.inference.m1_model import decode_photo, read_photo

        if row.container < 0:
            return read_photo(self.images_dir / row.image_path, self.budget, self.side)
        try:
            data = self.archives.read(int(row.container), row.image_path, int(row.offset), int(row.size))
        except ImageSkipped as skipped:
            raise InferenceError(f"{skipped.detail}; cannot read it as a photo") from None
        return decode_photo(data, f"{self.images_dir}: member {row.image_path}", self.budget, self.side)

    def close(self) -> None:
        self.archives.close()


def predict_m1(
    model: "M1Model",
    table: pd.DataFrame,
    images: TestImages,
    batch_size: int,
    top_k: int = DEFAULT_TOP_K,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, list[str]]:
    """M1's top-k for every readable image; returns the kept rows, ids, probs, unreadable files."""
    kept, ids, probs, unreadable = [], [], [], []
    batch_rows: list[int] = []
    batch_bytes: list[np.ndarray] = []

    def flush():
        if batch_bytes:
            i, p = model.top_k(batch_bytes, top_k)
            ids.append(i)
            probs.append(p)
            kept.extend(batch_rows)
            batch_rows.clear()
            batch_bytes.clear()

    for row, photo in enumerate(table.itertuples(index=False)):
        try:
            data = images.read(photo)  # rejects non-images here, naming the file
        except InferenceError as error:
            unreadable.append(str(error))
            log.warning("skipped %s", error)
            continue
        batch_rows.append(row)
        batch_bytes.append(data)
        if len(batch_bytes) == batch_size:
            flush()
    flush()
    if not kept:
        raise EvaluationError(f"no readable image under {images.images_dir} for the {len(table)} rows")
    return (table.iloc[kept].reset_index(drop=True), np.concatenate(ids), np.concatenate(probs), unreadable)


def scene_outdoor_probabilities(
    table: pd.DataFrame,
    images: TestImages,
    scene_model: str,
    io_labels: str,
    image_size: int = 224,
    input_range: tuple[float, float] = (0.0, 1.0),
    batch_size: int = 32,
) -> dict[str, float]:
    """photo_id -> outdoor probability from a user's scene classifier (Table 4, §4.1.2): the
    softmax mass on the classes its Places365-style IO file marks outdoor (2). The photos are
    those ``predict_m1`` kept, read again through the image decoder (at M1's scale, which is at
    least the classifier's for a side up to 342 px)."""
    import tensorflow as tf

    from geoloc_tf.evaluation.outdoor import load_scene_model, scene_outdoor_probs

    low, high = input_range

    def batches():
        for start in range(0, len(table), batch_size):
            decoded = [
                tf.image.resize(images.read(photo), [image_size, image_size]) / 255.0
                for photo in table.iloc[start : start + batch_size].itertuples(index=False)
            ]
            yield (tf.stack(decoded).numpy() * (high - low) + low).astype(np.float32)

    probs = scene_outdoor_probs(load_scene_model(scene_model), batches(), io_labels)
    return dict(zip(table["photo_id"], probs.astype(float)))


def evaluate_external(
    model_path: str,
    csv_path: str,
    images_dir: str,
    out_dir: str | None = None,
    mesh_path: str | None = None,
    image_path_template: str | None = None,
    config: ExternalEvaluateConfig | None = None,
    scene_model: str | None = None,
    scene_io_labels: str | None = None,
    benchmark: str | None = None,
) -> dict:
    """Predicts and evaluates an external test set; returns {'report': path, ...} and counts.

    With `scene_model` and `scene_io_labels`, the outdoor-only rows use the scene classifier's
    outdoor probability instead of the CSV's outdoor column. With `benchmark`, see the module
    docstring."""
    import mesh as mesh_lib
    from data_pipelines.photo_identity import numeric_ids_are_flickr
    from data_pipelines.readers import common, formats
    from geoloc_tf.evaluation import benchmarks
    from geoloc_tf.evaluation.model_predictions import load_predictions
    from geoloc_tf.evaluation.report import ReportConfig, write_report
    from geoloc_tf.evaluation.results import EvalConfig, evaluate_predictions
    from geoloc_tf.inference.m1_model import M1Model

    if scene_model and not scene_io_labels:
        raise EvaluationError("--scene_model needs --scene_io_labels (Places365 IO file)")
    bench = benchmarks.get_benchmark(benchmark) if benchmark else None
    if bench:
        benchmarks.check_header(csv_path, bench)
    config = config or ExternalEvaluateConfig()
    top_k, batch_size = config.predict.top_k, config.batch_size

    model_dir = Path(model_path)
    run = RunLayout(model_dir)
    mesh_file = Path(mesh_path) if mesh_path else run.mesh
    if not (mesh_file.exists() or (mesh_file / mesh_lib.MESH_FILE).exists()):
        raise EvaluationError(f"no mesh at {mesh_file}; pass --mesh=RUN_DIR/mesh with a SavedModel")
    mesh = mesh_lib.Mesh.load(mesh_file)
    out = RunLayout(Path(out_dir) if out_dir else run.eval_external(Path(csv_path).stem))
    fmt = formats.resolve(bench.format if bench else "auto", (csv_path,))[0].name
    training, hasher = _training_photos(run)
    table, skipped = read_test_set(csv_path, image_path_template, fmt, images_dir, hasher)
    table, archives, missing = locate_images(table, fmt, images_dir)
    model = M1Model.load(model_dir, mesh_file)
    images = TestImages(Path(images_dir), archives, config.decode.within(config.max_pixels), model.image_size)
    try:
        kept, ids, probs, unreadable = predict_m1(model, table, images, batch_size, top_k)
        outdoor = None
        if scene_model and scene_io_labels:  # one without the other was refused above
            low, high = config.scene_input_range
            outdoor = scene_outdoor_probabilities(
                kept, images, scene_model, scene_io_labels, config.scene_image_size, (low, high), batch_size
            )
    finally:
        images.close()
    unreadable = missing + unreadable
    tables = {
        "m1": str(
            prediction_tables.write_table(
                prediction_tables.table_from_top_k(kept, ids, probs), out.prediction_table("m1", SPLIT)
            )
        )
    }
    tables.update(_metadata_models(run, out, mesh, kept, ids, probs, top_k))
    # The set's admin columns ("" where it names none: those photos take the geocoded true point).
    admin_truth = kept[["photo_id", *common.ADMIN_COLUMNS]]
    eval_config = EvalConfig.from_settings(config.evaluate, split=SPLIT)
    numeric_flickr = numeric_ids_are_flickr(fmt) or (bench is not None and bench.flickr)
    evaluation = evaluate_predictions(
        load_predictions(tables), mesh, eval_config, outdoor, admin_truth, training, numeric_flickr
    )
    if bench:
        used = benchmarks.used_convention(evaluation.results)
        evaluation = dataclasses.replace(
            evaluation, results={**evaluation.results, "benchmark": benchmarks.benchmark_results(bench, used)}
        )
    written = write_report(
        evaluation,
        mesh,
        out.root,
        ReportConfig(evaluation=eval_config),
        simulated=simulated_sources(run, csv_path),
        notice=f"External test set {Path(csv_path).name} ({fmt}): {len(kept)} photos "
        f"evaluated, {len(unreadable)} unreadable images skipped, rows "
        f"skipped by reason {skipped['counts'] or 'none'}.",
    )
    return {**written, "photos": len(kept), "unreadable": unreadable, "skipped_rows": skipped}


def _training_photos(run: RunLayout):
    """The run's training photos and a hasher of user ids with its data set's salt, when the run
    directory holds its data set (``data/``); else (None, None): no photographer-disjoint rows and
    no near-duplicate rows."""
    from data_pipelines.ingest.layout import METADATA_FILE
    from geoloc_tf.evaluation.leakage import read_training_photos, training_user_hasher

    if not (run.data_dir / METADATA_FILE).is_file():
        return None, None
    return read_training_photos(run.data_dir), training_user_hasher(run.data_dir)


def simulated_sources(run: RunLayout, csv_path: str) -> bool:
    """True when the run was trained on the demo collection (its config.json says source=demo) or
    the test set is one of the demo's layouts (a demo_info.json beside it): then the report says
    SIMULATED at its top, as the run's own report does."""
    from data_pipelines.demo.generate import INFO_FILE

    if (Path(csv_path).parent / INFO_FILE).exists():
        return True
    try:
        sections = json.loads(run.config.read_text())["sections"]
    except (OSError, ValueError, KeyError, TypeError):  # a SavedModel without its run folder
        return False
    return isinstance(sections, dict) and sections.get("data", {}).get("source") == "demo"


def _metadata_models(
    run: RunLayout, out: RunLayout, mesh, table: pd.DataFrame, ids: np.ndarray, probs: np.ndarray, top_k: int
) -> dict[str, str]:
    """M2 (every photo has a posting time) and M3 (and users) rows, when the run has the models."""
    from geoloc_tf.m2.task import TrainedM2, photo_data
    from geoloc_tf.m3.task import TrainedM3

    if (table["posted_at"] < 0).any() or not TrainedM2.exists(run):
        return {}
    tables = {}
    m2 = TrainedM2.load(run)
    if ids.shape[1] < m2.config.top_k:
        return {}
    data = photo_data(table, ids, probs, mesh, m2.config)
    m2_ids, m2_probs = m2.top_k(data, top_k)
    tables["m2"] = str(
        prediction_tables.write_table(
            prediction_tables.table_from_top_k(table, m2_ids, m2_probs), out.prediction_table("m2", SPLIT)
        )
    )
    has_users = table["user_hash"].duplicated().any()  # some user has 2+ photos: albums exist
    if has_users and TrainedM3.exists(run):
        m3 = TrainedM3.load(run)
        m3_ids, m3_probs = m3.top_k(data, m3.albums(table), top_k)
        tables["m3"] = str(
            prediction_tables.write_table(
                prediction_tables.table_from_top_k(table, m3_ids, m3_probs), out.prediction_table("m3", SPLIT)
            )
        )
    return tables
