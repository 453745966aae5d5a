"""Benchmark of using a trained model: predict, search, serve, and the predict stage in shards.

    python -m experiments.benchmarks.predict_bench [--quick] [--paper_size] [--photos=256]
        [--index_sizes=100000,1000000] [--requests=192] [--clients=8] [--json=out.json]
        [--demo_size=default|small] [--run=RUN_DIR]

Setup (not timed): a run directory in a temporary folder with a mesh (Flickr-like points,
``mesh_bench.flickr_like_points``) and an M1 with random weights: the demo's M1 (Inception-v4
layout, width 0.25, one block of each kind, 75 px; ``demo.cfg``) by default, the paper's full
Inception-v4 at 299 px with ``--paper_size``. Photos are random-texture 640x480 JPEGs (what a
phone's photo is after the usual downscale; decoding them is part of the work).

Timed, each next to a baseline measured in the same run:

- **predict latency**: one photo through ``Predictor.predict`` (decode, M1, mass sets), median
  of repeated calls after a warm-up. Baseline: the whole `geoloc predict PHOTO` command in a fresh
  process (Python and TensorFlow start, model load, the prediction), what a user waits for once.
- **predict throughput**: `geoloc predict DIR` (``predict_files.predict_files``: reading ahead,
  batches of 32, JSON records written) over ``--photos`` photos. Baseline: the same photos one
  ``Predictor.predict`` call each (batch 1).
- **search**: milliseconds per query of ``retrieval.search.nearest`` (exact L2, k = 6, 64 queries
  in a batch) over ``--index_sizes`` indexed 1536-d float32 feature vectors (M1's penultimate
  width, §appendix B). Baseline: the straightforward numpy search per query (squared distances to
  every row in blocks of 65,536 rows, then argpartition). 1 M vectors take 6.1 GB of memory.
- **predict stage**: photos/s of the run's predict stage (``predict_records.predict_splits``:
  every split of the demo's records, one part per record shard, the joins, the feature indexes;
  tracing included, as a run pays it; the best of ``--stage_rounds`` alternating rounds) under
  MirroredStrategy over 2 logical CPUs, beside the default strategy (one device) in the same
  process; then with the default strategy, features on (the demo's setting) beside features off.
  Both strategies share the process's CPU thread pools: on a 2-core host this shows what the
  replication costs, not what it gains on several GPUs.
  The records are the demo's (``--demo_size``, ingested into a temporary folder; the demo M1's
  layout with random weights) or a finished run's data and M1 (``--run``). It runs in a child
  process, which splits the CPU into 2 logical devices before TensorFlow starts.
- **join**: seconds to join the parts of every split into its table (``join_parts``, one part in
  memory at a time). Baseline: the same tables from all parts concatenated in memory with pandas
  (what the stage did before). The feature indexes' assembly (``feature_index.assemble_index``)
  is printed beside it.
- **serve**: requests/s of `geoloc serve` (``inference.server``) on loopback with ``--clients``
  concurrent clients posting JPEGs (the server batches them). Baseline: one client sending the
  same requests one after another. Also the p95 latency of the concurrent requests, beside their
  median.

Speed is never asserted by tests. ``measure`` gives the rows of the performance page
(``python -m experiments.benchmarks``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from experiments.benchmarks.mesh_bench import flickr_like_points
from experiments.benchmarks.rows import BenchmarkRow

REPO = Path(__file__).resolve().parents[2]
FEATURE_DIM = 1536  # Inception-v4's penultimate width (geoloc_tf.m1.inception_v4)
SEARCH_K = 6  # Figure 4's six neighbours
SEARCH_QUERIES = 64
BASELINE_BLOCK_ROWS = 65_536
#: Default sizes of the full and the quick run.
SIZES = {
    "full": {
        "photos": 256,
        "index_sizes": "100000,1000000",
        "requests": 192,
        "latency_repeats": 20,
        "demo_size": "default",
    },
    "quick": {
        "photos": 64,
        "index_sizes": "100000",
        "requests": 48,
        "latency_repeats": 10,
        "demo_size": "small",
    },
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks.predict_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="64 photos, a 100 k index, 48 requests, the small demo (3,000 photos) for the predict stage",
    )
    parser.add_argument(
        "--paper_size",
        action="store_true",
        help="the paper's Inception-v4 at 299 px instead of the demo's M1",
    )
    parser.add_argument(
        "--photos", type=int, default=None, help="photos in the predicted folder (default 256; --quick 64)"
    )
    parser.add_argument(
        "--index_sizes",
        default=None,
        help="comma-separated numbers of indexed feature vectors (default 100000,1000000; --quick 100000)",
    )
    parser.add_argument(
        "--requests", type=int, default=None, help="HTTP requests per load (default 192; --quick 48)"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument(
        "--latency_repeats", type=int, default=None, help="timed single-photo calls (default 20; --quick 10)"
    )
    parser.add_argument(
        "--demo_size",
        default=None,
        choices=("small", "default"),
        help="demo whose records the predict stage is timed on (default: default, 30,000 photos; --quick small)",
    )
    parser.add_argument(
        "--stage_rounds",
        type=int,
        default=2,
        help="alternating rounds of the predict stage's runs (best kept)",
    )
    parser.add_argument(
        "--run",
        default=None,
        help="time the predict stage on this finished run's data/ and m1/m1.keras instead of a demo",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    sizes = SIZES["quick" if args.quick else "full"]
    for name, value in sizes.items():  # what --quick sets; a flag given explicitly wins
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.index_sizes = [int(s) for s in str(args.index_sizes).split(",") if s.strip()]
    return args


# ---------------------------------------------------------------------- setup
def random_jpeg(rng: np.random.Generator, height: int = 480, width: int = 640) -> bytes:
    """A JPEG of smooth random texture (noise upsampled), so it compresses like a photo."""
    import tensorflow as tf

    coarse = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    pixels = tf.image.resize(coarse[None].astype(np.float32), (height, width))[0]
    return tf.io.encode_jpeg(tf.cast(pixels, tf.uint8), quality=90).numpy()


def make_run_dir(root: Path, paper_size: bool, seed: int) -> Path:
    """RUN_DIR/mesh/mesh.npz and RUN_DIR/m1/m1.keras (random weights) under ``root``."""
    import dataclasses

    from geoloc_tf.m1.inception_v4 import InceptionV4Config, build_inception_v4
    from geoloc_tf.run_layout import RunLayout
    from mesh import build_mesh

    lat, lon = flickr_like_points(200_000, seed=seed)
    mesh = build_mesh(lat, lon, refinement_limit=800, min_examples=100)  # ~ the coarse mesh's cells
    layout = RunLayout(root)
    mesh.save(layout.mesh)
    config = InceptionV4Config(num_cells=mesh.num_cells)
    if not paper_size:  # demo.cfg's M1
        config = dataclasses.replace(
            config, image_size=75, width_multiplier=0.25, num_blocks_a=1, num_blocks_b=1, num_blocks_c=1
        )
    layout.m1_dir.mkdir(parents=True, exist_ok=True)
    build_inception_v4(config).save(layout.m1_model)
    return root


def make_photos(folder: Path, count: int, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"photo_{i:05d}.jpg"
        path.write_bytes(random_jpeg(rng))
        paths.append(path)
    return paths


# ---------------------------------------------------------------------- predict
def time_predict(run_dir: Path, photos: list[Path], repeats: int) -> dict:
    from data_pipelines.config import DecodeBudget
    from geoloc_tf.inference.config import PredictFilesConfig
    from geoloc_tf.inference.m1_model import read_photo
    from geoloc_tf.inference.photo_predictor import Predictor
    from geoloc_tf.inference.predict_files import predict_files

    predictor = Predictor.load(run_dir, with_m2=False)
    side = predictor.m1.image_size
    predictor.predict([read_photo(photos[0], DecodeBudget(), side)])  # tracing
    latencies = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        predictor.predict([read_photo(photos[0], DecodeBudget(), side)])
        latencies.append(time.perf_counter() - t0)

    with open(os.devnull, "w") as sink:
        config = PredictFilesConfig(format="json", top_k=5, batch_size=32)
        predict_files(predictor, photos[:32], sink, config)  # traces the batch of 32
        t0 = time.perf_counter()
        done, failed = predict_files(predictor, photos, sink, config)
        folder_s = time.perf_counter() - t0
    if failed or done != len(photos):
        raise RuntimeError(f"predict_files: {done} predicted, {failed} failed of {len(photos)}")

    t0 = time.perf_counter()
    for path in photos:
        predictor.predict([read_photo(path, DecodeBudget(), side)])
    one_by_one_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.cli",
            "predict",
            str(photos[0]),
            f"--model={run_dir}",
            "--format=json",
        ],
        capture_output=True,
        text=True,
    )
    cli_s = time.perf_counter() - t0
    if cli.returncode != 0:
        raise RuntimeError(f"geoloc predict failed: {cli.stderr[-2000:]}")
    return {
        "latency_ms_median": 1000 * statistics.median(latencies),
        "latency_ms_min": 1000 * min(latencies),
        "cli_one_photo_s": cli_s,
        "folder_photos_per_s": len(photos) / folder_s,
        "one_by_one_photos_per_s": len(photos) / one_by_one_s,
        "predictor": predictor,
    }


# ---------------------------------------------------------------------- predict stage
#: (strategy, store_features) of each timed predict stage, in the order they run.
STAGE_RUNS = (("default", True), ("mirrored", True), ("default", False))
#: The child process: 2 logical CPUs before TensorFlow starts, then ``time_stage_child``.
STAGE_CHILD = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from experiments.benchmarks.predict_bench import time_stage_child
print("RESULT", json.dumps(time_stage_child(*sys.argv[1:])))
"""


def demo_records(root: Path, demo_size: str) -> Path:
    """The demo's records (``--data_source=demo``), ingested into ``root``."""
    from data_pipelines.config import IngestConfig
    from data_pipelines.ingest import run_ingestion

    run_ingestion(IngestConfig(source="demo", demo_size=demo_size), str(root))
    return root


def concat_join(parts: list[Path], path: Path) -> None:
    """The baseline join: every part of a split in memory at once, concatenated by pandas."""
    import pandas as pd

    from geoloc_tf import prediction_tables

    columns = list(prediction_tables.TABLE_COLUMNS)
    frame = pd.concat([prediction_tables.read_frame(part, columns) for part in parts], ignore_index=True)
    prediction_tables.write_table(frame, path)


def time_stage_child(data_dir: str, model_path: str, out_dir: str, rounds: str) -> dict:
    """Runs in the child process (2 logical CPUs): ``rounds`` rounds of ``STAGE_RUNS`` (each
    configuration's best round kept: on a shared host the slower rounds measure other jobs), then
    the joins."""
    from data_pipelines.dataset import load
    from geoloc_tf import distribute
    from geoloc_tf.m1.predict_records import MODEL, Replicas, join_parts, predict_splits
    from geoloc_tf.retrieval.feature_index import assemble_index, index_meta
    from geoloc_tf.run_configs import PredictConfig
    from geoloc_tf.run_layout import RunLayout

    data = load(data_dir)
    photos = sum(sum(data.shard_lengths(split)) for split in data_splits(data))
    smallest = min(data_splits(data), key=lambda split: sum(data.shard_lengths(split)))
    warm_up = Replicas.of()  # TensorFlow's start and the page cache, paid by no timed run
    model = warm_up.load(model_path)
    image_size = int(model.input_shape[1])
    layout = RunLayout(Path(out_dir) / "warm_up")
    predict_splits(model, data, layout, PredictConfig(), image_size, (smallest,), replicas=warm_up)
    seconds: dict[tuple[str, bool], float] = {}
    replicas_of: dict[str, int] = {}
    for _ in range(int(rounds)):  # alternating rounds, each configuration's best kept
        for name, features in STAGE_RUNS:
            replicas = Replicas.of(None if name == "default" else distribute.make_strategy(name))
            replicas_of[name] = replicas.strategy.num_replicas_in_sync
            model = replicas.load(model_path)
            folder = Path(out_dir) / f"{name}-{'features' if features else 'top_k'}"
            shutil.rmtree(folder, ignore_errors=True)  # the previous round's
            started = time.perf_counter()
            predict_splits(
                model,
                data,
                RunLayout(folder),
                PredictConfig(store_features=features),
                image_size,
                data_splits(data),
                replicas=replicas,
            )
            took = time.perf_counter() - started
            seconds[name, features] = min(took, seconds.get((name, features), math.inf))
    stages = [
        {
            "strategy": name,
            "store_features": features,
            "replicas": replicas_of[name],
            "seconds": seconds[name, features],
            "photos_per_s": photos / seconds[name, features],
        }
        for name, features in STAGE_RUNS
    ]
    layout = RunLayout(Path(out_dir) / "default-features")  # the last round's, with features
    scratch = Path(out_dir) / "scratch"
    joins = {"parts": 0, "join_s": 0.0, "concat_s": 0.0, "index_s": 0.0}
    for split in data_splits(data):
        parts = sorted(layout.prediction_parts(MODEL, split).glob("*.parquet"))
        joins["parts"] += len(parts)
        started = time.perf_counter()
        join_parts(parts, scratch / "joined.parquet", 10)
        joins["join_s"] += time.perf_counter() - started
        started = time.perf_counter()
        concat_join(parts, scratch / "concatenated.parquet")
        joins["concat_s"] += time.perf_counter() - started
        started = time.perf_counter()
        assemble_index(parts, scratch / split, index_meta(model_path, data, split, image_size))
        joins["index_s"] += time.perf_counter() - started
    return {"photos": photos, "stages": stages, "joins": joins}


def data_splits(data) -> tuple[str, ...]:
    from data_pipelines import splits

    return tuple(split for split in splits.SPLITS if data.shard_lengths(split))


def time_stage(root: Path, args: argparse.Namespace) -> dict:
    """The predict stage on the demo's records (or ``--run``'s), in a child process."""
    from geoloc_tf.run_layout import RunLayout

    if args.run:
        run = RunLayout(args.run)
        data_dir, model_path = run.data_dir, run.m1_model
        source = f"the run {args.run} (its data and trained M1)"
    else:
        data_dir = demo_records(root / "demo_data", args.demo_size)
        model_path = RunLayout(make_run_dir(root / "stage_run", False, args.seed)).m1_model
        source = f"the {args.demo_size} demo (demo M1 layout, random weights)"
    script = root / "stage_child.py"
    script.write_text(STAGE_CHILD)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    env.pop("TF_CONFIG", None)
    child = subprocess.run(
        [
            sys.executable,
            str(script),
            str(data_dir),
            str(model_path),
            str(root / "stage_out"),
            str(args.stage_rounds),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    if child.returncode != 0:
        raise RuntimeError(f"predict stage child failed: {child.stderr[-3000:]}")
    line = next(l for l in child.stdout.splitlines() if l.startswith("RESULT "))
    kind = "demo" if "demo" in str(args.run or "demo") else "run"
    return {"source": source, "kind": kind, **json.loads(line[len("RESULT ") :])}


# ---------------------------------------------------------------------- search
def naive_search(features: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """The baseline: squared distances of one query to every row (blocks bound the memory)."""
    distances = np.empty(len(features), np.float32)
    for start in range(0, len(features), BASELINE_BLOCK_ROWS):
        block = features[start : start + BASELINE_BLOCK_ROWS]
        diff = block - query
        distances[start : start + len(block)] = np.einsum("ij,ij->i", diff, diff)
    part = np.argpartition(distances, k)[:k]
    return part[np.argsort(distances[part])]


def time_search(n: int, seed: int) -> dict:
    from geoloc_tf.retrieval.search import nearest, squared_norms

    rng = np.random.default_rng(seed)
    features = np.empty((n, FEATURE_DIM), np.float32)
    for start in range(0, n, 100_000):  # ReLU'd features: non-negative, in bounded chunks
        rows = min(100_000, n - start)
        features[start : start + rows] = np.abs(rng.standard_normal((rows, FEATURE_DIM), np.float32))
    picked = rng.choice(n, SEARCH_QUERIES, replace=False)
    queries = features[picked] + 0.01 * rng.standard_normal((SEARCH_QUERIES, FEATURE_DIM), np.float32)
    norms = squared_norms(features)
    nearest(features, queries[:2], SEARCH_K, index_sq_norms=norms)  # warm the caches
    t0 = time.perf_counter()
    found, _ = nearest(features, queries, SEARCH_K, index_sq_norms=norms)
    batched_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    nearest(features, queries[:1], SEARCH_K, index_sq_norms=norms)
    single_s = time.perf_counter() - t0
    baseline_queries = 8
    t0 = time.perf_counter()
    for row in range(baseline_queries):
        naive = naive_search(features, queries[row], SEARCH_K)
        if naive[0] != found[row, 0]:
            raise RuntimeError(f"search disagrees with the naive baseline on query {row}")
    baseline_s = time.perf_counter() - t0
    if not np.array_equal(found[:, 0], picked):
        raise RuntimeError("search did not find the perturbed photo itself first")
    return {
        "indexed": n,
        "ms_per_query_batched": 1000 * batched_s / SEARCH_QUERIES,
        "ms_single_query": 1000 * single_s,
        "baseline_ms_per_query": 1000 * baseline_s / baseline_queries,
        "index_gb": features.nbytes / 1e9,
    }


# ---------------------------------------------------------------------- serve
def time_serve(predictor, photos: list[Path], requests: int, clients: int) -> dict:
    from geoloc_tf.inference.server import ServerConfig, start_server, stop_server

    bodies = [p.read_bytes() for p in photos]
    server = start_server(predictor, ServerConfig(port=0, max_batch=32, batch_wait_ms=5.0))
    host, port = server.host_port
    failures: list[str] = []
    latencies: list[float] = []

    def send(count: int, offset: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=300)
        for i in range(count):
            started = time.perf_counter()
            conn.request(
                "POST",
                "/predict",
                body=bodies[(offset + i) % len(bodies)],
                headers={"Content-Type": "image/jpeg"},
            )
            response = conn.getresponse()
            response.read()
            latencies.append(time.perf_counter() - started)
            if response.status != 200:
                failures.append(f"HTTP {response.status}")
        conn.close()

    try:
        send(4, 0)  # warm-up (tracing of the batch sizes a single client sends)
        t0 = time.perf_counter()
        send(requests, 0)
        sequential_s = time.perf_counter() - t0
        per_client = max(1, requests // clients)
        latencies.clear()  # the concurrent requests' latencies only
        threads = [threading.Thread(target=send, args=(per_client, c * per_client)) for c in range(clients)]
        t0 = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        concurrent_s = time.perf_counter() - t0
        largest = server.batcher.largest_batch
    finally:
        stop_server(server)
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return {
        "sequential_requests_per_s": requests / sequential_s,
        "concurrent_requests_per_s": per_client * clients / concurrent_s,
        "clients": clients,
        "latency_ms_median": 1000 * statistics.median(latencies),
        "latency_ms_p95": 1000 * float(np.percentile(latencies, 95)),
        "largest_batch": largest,
    }


# ---------------------------------------------------------------------- driver
def run(args: argparse.Namespace) -> dict:
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
    with tempfile.TemporaryDirectory(prefix="predict_bench_") as tmp:
        root = Path(tmp)
        run_dir = make_run_dir(root / "run", args.paper_size, args.seed)
        photos = make_photos(root / "photos", args.photos, args.seed)
        predict = time_predict(run_dir, photos, args.latency_repeats)
        predictor = predict.pop("predictor")
        serve = time_serve(predictor, photos, args.requests, args.clients)
        stage = time_stage(root, args)
    search = [time_search(n, args.seed) for n in args.index_sizes]
    return {
        "model": "paper Inception-v4 299 px" if args.paper_size else "demo M1 (75 px, width 0.25)",
        "cells": predictor.m1.num_cells,
        "cpu_count": os.cpu_count(),
        "photos": len(photos),
        "predict": predict,
        "serve": serve,
        "search": search,
        "stage": stage,
    }


def rows(res: dict) -> list[BenchmarkRow]:
    p, s = res["predict"], res["serve"]
    out = [
        BenchmarkRow(
            "predict_bench",
            f"predict latency, 1 photo, {res['model']}",
            p["latency_ms_median"],
            "ms",
            "`geoloc predict PHOTO` in a fresh process",
            1000 * p["cli_one_photo_s"],
            higher_is_better=False,
        ),
        BenchmarkRow(
            "predict_bench",
            f"`geoloc predict DIR`, {res['photos']} 640x480 JPEGs",
            p["folder_photos_per_s"],
            "photos/s",
            "one photo per call (batch 1)",
            p["one_by_one_photos_per_s"],
        ),
        BenchmarkRow(
            "predict_bench",
            f"`geoloc serve`, p95 latency with {s['clients']} concurrent clients",
            s["latency_ms_p95"],
            "ms",
            "median latency, same requests",
            s["latency_ms_median"],
            higher_is_better=False,
        ),
        BenchmarkRow(
            "predict_bench",
            f"`geoloc serve`, {s['clients']} concurrent clients",
            s["concurrent_requests_per_s"],
            "requests/s",
            "one client, sequential",
            s["sequential_requests_per_s"],
        ),
    ]
    out += stage_rows(res["stage"])
    for search in res["search"]:
        out.append(
            BenchmarkRow(
                "predict_bench",
                f"search, {search['indexed']:,} x {FEATURE_DIM} index, k={SEARCH_K}, "
                f"batches of {SEARCH_QUERIES}",
                search["ms_per_query_batched"],
                "ms/query",
                "numpy distances to every row, per query",
                search["baseline_ms_per_query"],
                higher_is_better=False,
            )
        )
    return out


def stage_rows(stage: dict) -> list[BenchmarkRow]:
    """The predict stage's rows: mirrored vs default, features on vs off, the join."""
    runs = {(r["strategy"], r["store_features"]): r for r in stage["stages"]}
    one, mirrored, top_k = runs["default", True], runs["mirrored", True], runs["default", False]
    joins, photos = stage["joins"], f"{stage['photos']:,} {stage['kind']} photos"
    return [
        BenchmarkRow(
            "predict_bench",
            f"predict stage, {photos}, mirrored over {mirrored['replicas']} logical CPUs",
            mirrored["photos_per_s"],
            "photos/s",
            "default strategy (one device), same process",
            one["photos_per_s"],
        ),
        BenchmarkRow(
            "predict_bench",
            f"predict stage, {photos}, with M1 features (indexes)",
            one["photos_per_s"],
            "photos/s",
            "top-k cells only",
            top_k["photos_per_s"],
        ),
        BenchmarkRow(
            "predict_bench",
            f"join of {joins['parts']} shard parts into the split tables",
            joins["join_s"],
            "s",
            "all parts in memory, pandas concat",
            joins["concat_s"],
            higher_is_better=False,
        ),
    ]


def measure(quick: bool = False) -> list[BenchmarkRow]:
    return rows(run(parse_args(["--quick"] if quick else [])))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    res = run(args)
    p, s = res["predict"], res["serve"]
    print(f"predict benchmark: {res['model']}, {res['cells']} cells, {res['cpu_count']} CPUs")
    print(
        f"  predict latency, one photo: {p['latency_ms_median']:.1f} ms median "
        f"({p['latency_ms_min']:.1f} ms best); the whole `geoloc predict PHOTO` command "
        f"in a fresh process: {p['cli_one_photo_s']:.1f} s"
    )
    print(
        f"  `geoloc predict DIR` ({res['photos']} photos, batches of 32): "
        f"{p['folder_photos_per_s']:.1f} photos/s; one per call: "
        f"{p['one_by_one_photos_per_s']:.1f} photos/s "
        f"({p['folder_photos_per_s'] / p['one_by_one_photos_per_s']:.1f}x)"
    )
    for search in res["search"]:
        print(
            f"  search {search['indexed']:,} x {FEATURE_DIM} ({search['index_gb']:.1f} GB): "
            f"{search['ms_per_query_batched']:.2f} ms/query in batches of {SEARCH_QUERIES}, "
            f"{search['ms_single_query']:.1f} ms for a single query; naive numpy "
            f"{search['baseline_ms_per_query']:.1f} ms/query "
            f"({search['baseline_ms_per_query'] / search['ms_per_query_batched']:.1f}x)"
        )
    print(
        f"  serve: {s['concurrent_requests_per_s']:.1f} requests/s with {s['clients']} "
        f"clients (largest batch {s['largest_batch']}; latency median "
        f"{s['latency_ms_median']:.0f} ms, p95 {s['latency_ms_p95']:.0f} ms); one sequential client "
        f"{s['sequential_requests_per_s']:.1f} requests/s "
        f"({s['concurrent_requests_per_s'] / s['sequential_requests_per_s']:.1f}x)"
    )
    stage = res["stage"]
    print(f"  predict stage on {stage['source']}, {stage['photos']:,} photos, every split:")
    for r in stage["stages"]:
        print(
            f"    {r['strategy']:<9} ({r['replicas']} replica(s)), features "
            f"{'on ' if r['store_features'] else 'off'}: {r['photos_per_s']:.0f} photos/s ({r['seconds']:.1f} s)"
        )
    joins, total = stage["joins"], stage["stages"][0]["seconds"]
    print(
        f"    join of {joins['parts']} parts into the tables: {joins['join_s']:.2f} s "
        f"({100 * joins['join_s'] / total:.1f} % of the stage; pandas concat of all parts "
        f"{joins['concat_s']:.2f} s); feature indexes {joins['index_s']:.2f} s"
    )
    if args.json:
        from mesh.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps(res, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
