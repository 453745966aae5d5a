"""Benchmark of the evaluation: the full metric set for 2.7 M validation photos.

    python -m experiments.benchmarks.eval_bench [--photos=2700000] [--quick] [--json=out.json]

Setup (not timed): a fine-like mesh (about 6,565 cells, Table 1) built on 1 M synthetic
Flickr-like training coordinates (``mesh_bench.flickr_like_points``), then in-memory prediction
tables for 2.7 M held-out photos of the same synthetic world (appendix A: 2.7 M validation images)
for two models, "m1" and "m2", each with top-10 cell ids (the best cell right 30 % / 40 % of the
time, else a random cell) and an outdoor probability.

Timed: ``geoloc_tf.evaluation.results.evaluate_predictions`` on those tables, i.e. everything the
report's tables hold: true cells (``Mesh.locate``), per-photo errors at both label points,
accuracy at 1/25/200/750/2500 km, mean and median, outdoor-only rows, KL divergence and entropies
(appendix C), best-possible rows (``mesh.best_possible``), the most-frequent-cell baseline and the
Wilcoxon test of m2 against m1 (§4.2). The predicted cell is taken from the top-10 array as part of
the timed work. Target: <= 10 s on 2 cores, so that evaluating a full validation split never waits on Python.

The 95 % intervals (``geoloc_tf.evaluation.uncertainty``, 1,000 resamples of the photographers by
default) are left out of that figure, as the per-photo loop baseline has none: they cost about one
pass over the photos per resample and row. They are timed apart, for one row (m1, all photos) and
one paired difference (m2 - m1): ``bootstrap_row_seconds``, ``bootstrap_difference_seconds``.

With ``--report_dir``, the tables are also written as a run directory and the whole report
(``report.evaluate_run``: Parquet reading, metrics, tables, plots) is timed.

Baseline, measured in the same run: the straightforward per-photo Python loop (``math`` haversine,
threshold counting, class counting in dicts) on a sample, extrapolated linearly to all photos and
both label points and both models; plus ``scipy.stats.wilcoxon`` itself, which is the same in
both. Speed is never asserted by tests. ``measure`` gives the headline row of the performance page
(``python -m experiments.benchmarks``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

from experiments.benchmarks.mesh_bench import flickr_like_points
from experiments.benchmarks.rows import BenchmarkRow

PAPER_VAL_PHOTOS = 2_700_000  # appendix A: 12.2 M training / 2.7 M validation images
TARGET_SECONDS = 10.0


def build_world(train_points: int, refinement_limit: int, min_examples: int, seed: int):
    from mesh import build_mesh

    lat, lon = flickr_like_points(train_points, seed=seed)
    return build_mesh(lat, lon, refinement_limit, min_examples)


def synthetic_top10(mesh, true_cell: np.ndarray, hit_rate: float, rng: np.random.Generator) -> np.ndarray:
    """(n, 10) int32 top-10 ids: column 0 is the true cell with probability ``hit_rate``."""
    n = len(true_cell)
    ids = rng.integers(0, mesh.num_cells, (n, 10), dtype=np.int32)
    hit = (rng.random(n) < hit_rate) & (true_cell >= 0)
    ids[hit, 0] = true_cell[hit]
    return ids


def per_photo_loop(pred_cell, lat, lon, points, true_cell, thresholds, num_cells) -> tuple[dict, float]:
    """The baseline: one Python iteration per photo (what the vectorized code replaces)."""
    r = 6372.795
    hits = {t: 0 for t in thresholds}
    total = 0.0
    errors = []
    true_counts: dict[int, int] = {}
    pred_counts: dict[int, int] = {}
    for c, la, lo, tc in zip(pred_cell.tolist(), lat.tolist(), lon.tolist(), true_cell.tolist()):
        pla, plo = points[c]
        p1, p2 = math.radians(la), math.radians(pla)
        h = (
            math.sin((p2 - p1) / 2) ** 2
            + math.cos(p1) * math.cos(p2) * math.sin(math.radians(plo - lo) / 2) ** 2
        )
        d = 2 * r * math.asin(math.sqrt(min(1.0, h)))
        errors.append(d)
        total += d
        for t in thresholds:
            if d <= t:
                hits[t] += 1
        if tc >= 0:
            true_counts[tc] = true_counts.get(tc, 0) + 1
            pred_counts[c] = pred_counts.get(c, 0) + 1
    errors.sort()
    p_sum = sum(true_counts.values()) + num_cells
    q_sum = sum(pred_counts.values()) + num_cells
    kl = 0.0
    for k in range(num_cells):
        p = (true_counts.get(k, 0) + 1) / p_sum
        q = (pred_counts.get(k, 0) + 1) / q_sum
        kl += p * math.log(p / q)
    return {"mean": total / len(errors), "median": errors[len(errors) // 2], "kl": kl}, kl


def time_report(report_dir: str, mesh, preds: dict, top10: dict) -> dict:
    """Write the tables as Parquet run-directory files (not timed), then time ``evaluate_run``:
    reading them, the metrics, every table file and every plot."""
    import pandas as pd

    from geoloc_tf.evaluation import report, results
    from geoloc_tf.run_layout import RunLayout

    run_dir = os.path.join(report_dir, "run")
    layout = RunLayout(run_dir)
    mesh.save(layout.mesh)
    for m, p in preds.items():
        out = layout.prediction_table(m, "m23_val")
        out.parent.mkdir(parents=True, exist_ok=True)
        probs = np.full(top10[m].shape, 0.1, np.float32)
        pd.DataFrame(
            {
                "photo_id": p.photo_id,
                "user_hash": p.user_hash,
                "posted_at": p.posted_at,
                "lat": p.lat,
                "lon": p.lon,
                "outdoor_prob": p.outdoor_prob,
                "top_ids": list(top10[m]),
                "top_probs": list(probs),
                "top10_mass": probs.sum(axis=1),
            }
        ).to_parquet(out, index=False)
    t0 = time.perf_counter()
    config = report.ReportConfig(results.EvalConfig(bootstrap_samples=0))  # intervals timed apart
    report.evaluate_run(run_dir, config=config, simulated=True)
    return {"report_seconds": round(time.perf_counter() - t0, 2), "report_dir": str(layout.eval_dir)}


def run(
    photos: int,
    train_points: int,
    refinement_limit: int,
    min_examples: int,
    loop_sample: int,
    seed: int,
    report_dir: str | None = None,
) -> dict:
    from scipy import stats

    from geoloc_tf.evaluation import results, uncertainty
    from geoloc_tf.evaluation.model_predictions import ModelPredictions

    t0 = time.perf_counter()
    mesh = build_world(train_points, refinement_limit, min_examples, seed)
    lat, lon = flickr_like_points(photos, seed=seed, sample_seed=seed + 1)
    rng = np.random.default_rng(seed)
    true_cell = mesh.locate(lat, lon)
    photo_id = np.arange(photos).astype(str).astype(object)
    users = (rng.zipf(1.6, photos) % 200_000).astype(str).astype(object)
    posted = rng.integers(1_300_000_000, 1_400_000_000, photos)
    outdoor = rng.random(photos).astype(np.float32)
    top10 = {m: synthetic_top10(mesh, true_cell, rate, rng) for m, rate in (("m1", 0.30), ("m2", 0.40))}
    setup_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    preds = {
        m: ModelPredictions(m, photo_id, users, posted, lat, lon, outdoor, ids[:, 0].astype(np.int64))
        for m, ids in top10.items()
    }
    ev = results.evaluate_predictions(preds, mesh, results.EvalConfig(bootstrap_samples=0))
    ours_s = time.perf_counter() - t0

    boot = results.EvalConfig().bootstrap()
    thresholds = results.EvalConfig().thresholds_km
    t0 = time.perf_counter()
    uncertainty.summary_interval(ev.errors_km["m1"], users, thresholds, "le", boot)
    boot_row_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    uncertainty.difference_interval(ev.errors_km["m1"], ev.errors_km["m2"], users, thresholds, "le", boot)
    boot_diff_s = time.perf_counter() - t0

    # Baseline: per-photo loop on a sample, extrapolated to all photos x 2 label points x 2 models.
    sample = min(loop_sample, photos)
    points = mesh.imagery_centroids.tolist()
    cell = top10["m1"][:sample, 0]
    t0 = time.perf_counter()
    per_photo_loop(
        cell, lat[:sample], lon[:sample], points, true_cell[:sample], (1, 25, 200, 750, 2500), mesh.num_cells
    )
    loop_s = time.perf_counter() - t0
    loop_extrapolated_s = loop_s * (photos / sample) * 2 * 2

    t0 = time.perf_counter()
    stats.wilcoxon(ev.errors_km["m1"], ev.errors_km["m2"])
    wilcoxon_s = time.perf_counter() - t0
    baseline_s = loop_extrapolated_s + wilcoxon_s

    m1 = ev.results["models"]["m1"]
    extra = time_report(report_dir, mesh, preds, top10) if report_dir else {}
    return {
        **extra,
        "photos": photos,
        "cells": mesh.num_cells,
        "cpu_count": os.cpu_count(),
        "setup_seconds": round(setup_s, 2),
        "evaluate_seconds": round(ours_s, 3),
        "bootstrap_samples": boot.samples,
        "bootstrap_row_seconds": round(boot_row_s, 2),
        "bootstrap_difference_seconds": round(boot_diff_s, 2),
        "photos_per_second": photos / ours_s,
        "baseline_loop_sample": sample,
        "baseline_loop_sample_seconds": round(loop_s, 3),
        "baseline_seconds_extrapolated": round(baseline_s, 1),
        "speedup": baseline_s / ours_s,
        "target_seconds": TARGET_SECONDS,
        "meets_target": ours_s <= TARGET_SECONDS,
        "m1_accuracy_percent": m1["by_label_point"]["imagery"]["accuracy_percent"],
        "m1_kl": m1["class_bias"]["kl_divergence"],
        "wilcoxon_m2_vs_m1": {k: ev.results["wilcoxon"][0][k] for k in ("mean_difference_km", "p_value")},
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--photos", type=int, default=PAPER_VAL_PHOTOS, help="validation photos (default 2.7 M)"
    )
    parser.add_argument("--quick", action="store_true", help="270 k photos on a mesh built from 300 k points")
    parser.add_argument(
        "--train_points", type=int, default=None, help="points the mesh is built on (default 1 M)"
    )
    parser.add_argument("--refinement_limit", type=int, default=400)
    parser.add_argument("--min_examples", type=int, default=40)
    parser.add_argument(
        "--loop_sample", type=int, default=50_000, help="photos the per-photo loop baseline runs on"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument(
        "--report_dir",
        default=None,
        help="also write the tables as a run directory here and time the whole report "
        "(Parquet reading, metrics, tables, plots)",
    )
    return parser.parse_args(argv)


def sizes(args: argparse.Namespace) -> tuple[int, int, int, int]:
    """(photos, train_points, refinement_limit, min_examples); --quick: a tenth of the photos on a
    mesh built on 300 k points with limits scaled alike."""
    photos = args.photos if not args.quick or args.photos != PAPER_VAL_PHOTOS else 270_000
    train = args.train_points or (300_000 if args.quick else 1_000_000)
    limit, min_ex = (args.refinement_limit, args.min_examples)
    if args.quick and args.train_points is None:
        limit, min_ex = max(1, limit * 3 // 10), max(1, min_ex * 3 // 10)
    return photos, train, limit, min_ex


def measure(quick: bool = False) -> list[BenchmarkRow]:
    """The performance page's row: the full metric set next to the per-photo loop baseline."""
    args = parse_args(["--quick"] if quick else [])
    res = run(*sizes(args), args.loop_sample, args.seed)
    at_scale = res["photos"] >= PAPER_VAL_PHOTOS  # the target is for 2.7 M photos
    return [
        BenchmarkRow(
            "eval_bench",
            f"full metric set, {res['photos'] / 1e6:g} M photos, 2 models",
            res["evaluate_seconds"],
            "s",
            "per-photo Python loop (extrapolated) + scipy wilcoxon",
            res["baseline_seconds_extrapolated"],
            higher_is_better=False,
            target=f"<= {TARGET_SECONDS:g} s on 2.7 M photos",
            met=res["meets_target"] if at_scale else None,
        )
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    res = run(*sizes(args), args.loop_sample, args.seed, args.report_dir)
    print(
        f"evaluation benchmark: {res['photos']:,} photos, top-10 over {res['cells']:,} cells, "
        f"2 models, {res['cpu_count']} CPUs"
    )
    print(
        f"  full metric set (geoloc_tf.evaluation): {res['evaluate_seconds']:.2f} s "
        f"({res['photos_per_second'] / 1e6:.2f} M photos/s; target <= {TARGET_SECONDS:g} s: "
        f"{'met' if res['meets_target'] else 'NOT met'})"
    )
    print(
        f"  baseline, per-photo Python loop ({res['baseline_loop_sample']:,} photos in "
        f"{res['baseline_loop_sample_seconds']:.2f} s, extrapolated) + scipy wilcoxon: "
        f"{res['baseline_seconds_extrapolated']:.1f} s"
    )
    print(f"  speedup: {res['speedup']:.1f}x")
    if "report_seconds" in res:
        print(
            f"  whole report (read Parquet, metrics, tables, plots): {res['report_seconds']:.1f} s -> "
            f"{res['report_dir']}"
        )
    print(json.dumps(res, indent=2, default=float))
    if args.json:
        from mesh.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps(res, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
