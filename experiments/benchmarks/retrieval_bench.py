"""Benchmark of the retrieval engines: exact search against the FAISS index (``geoloc_tf.retrieval``).

    python -m experiments.benchmarks.retrieval_bench [--sizes=100000,1000000] [--quick]
                                                     [--demo_index=RUN_DIR/index/m1_train]

For each gallery size, an index folder of synthetic 1536-d features is written, then:

- **exact**: ``FeatureIndex.search(engine="exact")`` of ``QUERIES`` queries in one batch
  (``search.nearest``: blocked float32 products over ``features.npy``, exact float64 re-rank);
  its neighbours are the truth;
- **faiss**: the same queries with ``engine="faiss"`` and the default ``AnnConfig``: build time
  (training on a sample, adding in blocks, writing ``ann/``), then queries/s of one batch (the
  index already open, features paged in: a second call) and recall@10 against exact, the share
  of the true ten nearest among the ten returned;
- bytes per photo: what must be resident in RAM to search at speed (exact: ``features.npy`` and
  ``sq_norms.npy``, 4 d + 4 bytes; faiss: the ``ann/ivfpq.faiss`` file, codes and ids, whose size
  is measured) and on disk (exact: those two files; faiss: those plus ``ann/``, because the
  re-rank reads exact distances from ``features.npy``). The photo table (ids and locations) is
  the same for both and left out.

Target at 1 M photos (the project's, the target column of BUILD.md's performance table):
recall@10 >= 0.95 at >= 20x exact's queries/s, so that an approximate index is worth building only
where it is both near-exact and far faster than exact search.

**Synthetic features, and why not iid Gaussian.** Real penultimate CNN features (Inception-v4's
1536 averages of ReLU outputs) are non-negative, concentrated near a low-dimensional set and
clustered by what the photos show; iid Gaussian vectors in 1536-d have all pairwise distances
nearly equal, so "nearest" means nothing and every approximate index looks bad. Here
(``synthetic_features``): ``CLUSTERS`` = 2000 scene clusters with centres ``mu_c ~ N(0, I_32)`` in
a ``LATENT_DIM`` = 32-d latent space, popularity ``p_c ~ c^-0.7`` (a few common scenes, a long
tail); a photo is ``z = mu_c + 0.5 N(0, I_32)``, mapped to 1536-d by one fixed random linear map
``W [32, 1536] ~ N(0, 1/32)`` plus a bias ``b ~ N(-0.5, 0.3)`` (so about a third of the units are
active), plus iid noise ``0.1 N(0, 1)`` per feature, then ``ReLU``: non-negative, sparse-ish,
intrinsic dimension 32 plus a noise floor. Queries are new draws of the same process (another
random stream), never in the gallery. Whether the recall holds on real features is checked on
the demo run's own M1 features when ``--demo_index`` is given (narrower than 1536 at the demo's
width; queries: 1,000 of its rows left out of the gallery).

Machine notes: 1 M x 1536 float32 is 5.7 GiB, written once to a temporary folder; the exact
search streams it in blocks; FAISS trains on ``AnnConfig.ann_train_photos`` evenly spaced rows and
adds in blocks of 16,384, so memory stays around 1 GB beside the page cache.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from experiments.benchmarks.rows import BenchmarkRow

DIM = 1536
LATENT_DIM = 32
CLUSTERS = 2000
QUERIES = 1000
K = 10
SIZES = (100_000, 1_000_000)
QUICK_SIZES = (20_000,)
GENERATE_ROWS = 65_536
TARGET_RECALL = 0.95
TARGET_SPEEDUP = 20.0


def synthetic_features(n: int, seed: int, stream: int, out: np.ndarray | None = None) -> np.ndarray:
    """[n, DIM] float32 features of the module docstring's model: the model's parameters come from
    ``seed``, the photos from ``stream`` (queries use another stream than the gallery). Written
    block by block into ``out`` (e.g. a memory map) when given."""
    model = np.random.default_rng(seed)
    centres = model.normal(size=(CLUSTERS, LATENT_DIM)).astype(np.float32)
    lift = (model.normal(size=(LATENT_DIM, DIM)) / math.sqrt(LATENT_DIM)).astype(np.float32)
    bias = model.normal(-0.5, 0.3, size=DIM).astype(np.float32)
    popularity = 1.0 / np.arange(1, CLUSTERS + 1) ** 0.7
    popularity /= popularity.sum()
    photos = np.random.default_rng([seed, stream])
    out = np.empty((n, DIM), np.float32) if out is None else out
    for start in range(0, n, GENERATE_ROWS):
        rows = min(GENERATE_ROWS, n - start)
        cluster = photos.choice(CLUSTERS, size=rows, p=popularity)
        latent = centres[cluster] + 0.5 * photos.standard_normal((rows, LATENT_DIM), np.float32)
        block = latent @ lift + bias
        block += 0.1 * photos.standard_normal(block.shape, np.float32)
        out[start : start + rows] = np.maximum(block, 0.0)
    return out


def write_gallery(folder: Path, features: np.ndarray):
    from geoloc_tf.retrieval.feature_index import FeatureIndex

    n = len(features)
    return FeatureIndex.write(folder, features, np.arange(n).astype(str), np.zeros(n), np.zeros(n))


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean over queries of |found ∩ truth| / k (rows of -1 count as misses)."""
    hits = (found[:, :, None] == truth[:, None, :]).any(axis=2) & (found >= 0)
    return float(hits.mean())


def time_search(index, queries: np.ndarray, engine: str, config=None) -> tuple[float, np.ndarray]:
    """(seconds, rows) of one batched search, after a warm-up call on a few queries."""
    index.search(queries[:8], K, engine, config)
    started = time.perf_counter()
    rows, _ = index.search(queries, K, engine, config)
    return time.perf_counter() - started, rows


def compare(index, queries: np.ndarray, label: str) -> dict:
    """Both engines on one opened index folder."""
    from geoloc_tf.retrieval import ann
    from geoloc_tf.retrieval.config import AnnConfig

    config = AnnConfig()
    n, d = len(index), index.dim
    exact_s, truth = time_search(index, queries, "exact")
    started = time.perf_counter()
    ann.build(index, config)
    build_s = time.perf_counter() - started
    index = type(index).open(index.root)  # a fresh process's view: reads the file written
    faiss_s, found = time_search(index, queries, "faiss", config)
    meta = json.loads((index.root / ann.ANN_DIR / ann.ANN_META).read_text())
    ann_bytes = (index.root / ann.ANN_DIR / ann.ANN_FILE).stat().st_size
    exact_bytes = 4 * d + 4
    return {
        "label": label,
        "photos": n,
        "dim": d,
        "queries": len(queries),
        "exact_qps": len(queries) / exact_s,
        "faiss_qps": len(queries) / faiss_s,
        "recall_at_10": recall_at_k(found, truth),
        "build_s": build_s,
        "train_s": meta["train_s"],
        "factory": meta["factory"],
        "train_photos": meta["train_photos"],
        "probes": ann.probes(config, n, meta["lists"]),  # ann_min_scan may scan more
        "rerank": config.ann_rerank_factor * K,
        "exact_ram_bytes_per_photo": exact_bytes,
        "faiss_ram_bytes_per_photo": ann_bytes / n,
        "exact_disk_bytes_per_photo": exact_bytes,
        "faiss_disk_bytes_per_photo": exact_bytes + ann_bytes / n,
    }


def synthetic_row(n: int, seed: int, work: Path) -> dict:
    from geoloc_tf.retrieval.feature_index import FeatureIndex

    raw = np.lib.format.open_memmap(work / f"raw-{n}.npy", mode="w+", dtype=np.float32, shape=(n, DIM))
    synthetic_features(n, seed, stream=1, out=raw)
    raw.flush()
    folder = work / f"gallery-{n}"
    write_gallery(folder, raw)
    del raw
    os.unlink(work / f"raw-{n}.npy")
    queries = synthetic_features(QUERIES, seed, stream=2)
    return compare(FeatureIndex.open(folder), queries, f"synthetic {n:,} x {DIM}")


def demo_row(index_dir: Path, work: Path) -> dict:
    """The demo run's M1 features: the last ``QUERIES`` rows (every ``step``-th) are queries, the
    rest the gallery."""
    from geoloc_tf.retrieval.feature_index import FeatureIndex

    source = FeatureIndex.open(index_dir)
    n = len(source)
    take = min(QUERIES, n // 10)
    query_rows = np.linspace(0, n - 1, take).round().astype(np.int64)
    keep = np.setdiff1d(np.arange(n), query_rows)
    gallery = write_gallery(work / "demo", np.asarray(source.features[keep]))
    return compare(
        gallery, np.asarray(source.features[query_rows]), f"demo M1 features {len(keep):,} x {source.dim}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks.retrieval_bench")
    parser.add_argument("--quick", action="store_true", help=f"one size, {QUICK_SIZES[0]:,} photos")
    parser.add_argument("--sizes", default=None, help="comma-separated gallery sizes")
    parser.add_argument("--demo_index", default=None, help="a run's index/m1_train folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    args.sizes = (
        tuple(int(s) for s in args.sizes.split(",")) if args.sizes else QUICK_SIZES if args.quick else SIZES
    )
    return args


def run(args: argparse.Namespace) -> list[dict]:
    results = []
    with tempfile.TemporaryDirectory(prefix="retrieval_bench-") as tmp:
        for n in args.sizes:
            results.append(synthetic_row(n, args.seed, Path(tmp)))
            print(json.dumps(results[-1], default=float), file=sys.stderr, flush=True)
        if args.demo_index:
            results.append(demo_row(Path(args.demo_index), Path(tmp)))
    return results


def rows(results: list[dict]) -> list[BenchmarkRow]:
    out = []
    for r in results:
        speedup = r["faiss_qps"] / r["exact_qps"]
        met = r["recall_at_10"] >= TARGET_RECALL and speedup >= TARGET_SPEEDUP
        out += [
            BenchmarkRow(
                "retrieval_bench",
                f"faiss {r['factory']} + re-rank {r['rerank']}, "
                f"{r['probes']} probes, {r['label']}, batch of {r['queries']:,}, "
                f"recall@10 {r['recall_at_10']:.3f}",
                r["faiss_qps"],
                "queries/s",
                "exact search (search.nearest)",
                r["exact_qps"],
                target=f">= {TARGET_SPEEDUP:.0f}x at recall@10 >= {TARGET_RECALL}",
                met=met if r["photos"] >= 1_000_000 else None,
            ),
            BenchmarkRow(
                "retrieval_bench",
                f"faiss RAM per photo, {r['label']} (disk: {r['faiss_disk_bytes_per_photo']:,.0f} B "
                f"with features.npy for the re-rank)",
                r["faiss_ram_bytes_per_photo"],
                "bytes",
                "exact: features + norms",
                r["exact_ram_bytes_per_photo"],
                higher_is_better=False,
            ),
            BenchmarkRow(
                "retrieval_bench",
                f"faiss build (train {r['train_photos']:,} photos, add all), {r['label']}",
                r["build_s"],
                "s",
            ),
        ]
    return out


def measure(quick: bool = False) -> list[BenchmarkRow]:
    return rows(run(parse_args(["--quick"] if quick else [])))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    for r in results:
        print(
            f"{r['label']}: exact {r['exact_qps']:.0f} queries/s; faiss {r['faiss_qps']:.0f} queries/s "
            f"({r['faiss_qps'] / r['exact_qps']:.1f}x), recall@10 {r['recall_at_10']:.3f}, build "
            f"{r['build_s']:.0f} s (training {r['train_s']:.0f} s), {r['factory']}, bytes/photo RAM "
            f"{r['faiss_ram_bytes_per_photo']:.0f} vs {r['exact_ram_bytes_per_photo']}, disk "
            f"{r['faiss_disk_bytes_per_photo']:.0f} vs {r['exact_disk_bytes_per_photo']}"
        )
    for row in rows(results):
        print(row)
    if args.json:
        from mesh.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps(results, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
