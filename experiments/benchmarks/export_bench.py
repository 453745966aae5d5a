"""Export benchmark: M1's size on disk and CPU speed as a SavedModel, a LiteRT and an ONNX file.

    python -m experiments.benchmarks.export_bench [--quick] [--run=RUN_DIR] [--paper_size]
        [--rounds=20] [--json=out.json]

Setup (not timed): M1 (the demo's layout with random weights, ``predict_bench.make_run_dir``; the
paper's Inception-v4 at 299 px with ``--paper_size``; or a finished run's trained M1 with ``--run``,
which is only read) written into a temporary folder the way the export stage writes it: the
SavedModel (``geoloc_tf.m1.export``) and ``m1.tflite`` and ``m1.onnx`` (``geoloc_tf.m1.portable``).

Measured on the same random uint8 pixels at M1's input side, in alternating rounds (each format
once per round, so the load of a shared host falls on all three alike):

- **size**: bytes on disk (the SavedModel's whole folder; each file).
- **latency, batch 1**: the median of ``--rounds`` calls after a warm-up.
- **throughput, batch 32**: images/s of the best of the rounds.

The SavedModel runs its ``serve_pixels`` endpoint in TensorFlow (the same function the files hold);
LiteRT runs with ai-edge-litert's interpreter (XNNPACK), ONNX Runtime with its CPU provider, both
on every usable core, as TensorFlow. The SavedModel is the baseline of each row. Speed is never
asserted by tests; ``measure`` gives the rows of the performance page.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from experiments.benchmarks.rows import BenchmarkRow
from experiments.errors import BenchmarkError

SAVED_MODEL = "saved_model"
BATCH = 32
#: Rounds of the full and the quick run.
ROUNDS = {"full": 20, "quick": 4}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks.export_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help=f"{ROUNDS['quick']} rounds")
    parser.add_argument("--run", default=None, help="a finished run whose trained M1 to export (read only)")
    parser.add_argument(
        "--paper_size",
        action="store_true",
        help="the paper's Inception-v4 at 299 px instead of the demo's M1",
    )
    parser.add_argument("--rounds", type=int, default=None, help=f"timed rounds (default {ROUNDS['full']})")
    parser.add_argument("--top_k", type=int, default=5, help="cells returned (the export stage's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = ROUNDS["quick" if args.quick else "full"]
    return args


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def write_exports(args: argparse.Namespace, root: Path) -> tuple[dict[str, Path], str]:
    """The SavedModel and both files of M1 under ``root``; ``{format: path}`` and what M1 is."""
    from experiments.benchmarks.predict_bench import make_run_dir
    from geoloc_tf.m1 import portable
    from geoloc_tf.m1.export import export_m1
    from geoloc_tf.run_layout import RunLayout
    from geoloc_tf.saving import load_keras
    from mesh import Mesh

    absent = [name for name in portable.FORMATS if portable.missing(name)]
    if absent:
        raise BenchmarkError(
            f"export_bench: the converters of {', '.join(absent)} are not installed; "
            f"{portable.install_hint([portable.FORMATS[name].extra for name in absent])}"
        )
    if args.run:
        source, what = RunLayout(args.run), f"the trained M1 of {args.run}"
    else:
        source = RunLayout(make_run_dir(root / "run", args.paper_size, args.seed))
        what = f"{'the paper' if args.paper_size else 'the demo'}'s M1 layout, random weights"
    m1 = load_keras(source.m1_model)
    out = RunLayout(root / "out")
    export_m1(m1, Mesh.load(source.mesh).imagery_centroids, str(out.export("m1")), top_k=args.top_k)
    paths = {SAVED_MODEL: out.export("m1")}
    for name in portable.FORMATS:
        paths[name] = portable.write(m1, name, out.portable_export("m1", name), args.top_k)
    side, cells = int(m1.input_shape[1]), int(m1.output_shape[-1])
    return paths, f"{what}: {side} px, {cells} cells, {m1.count_params() / 1e6:.2f} M parameters"


def runners(paths: dict[str, Path]) -> dict:
    """``{format: pixels -> (cell ids, probabilities) as numpy}``."""
    import tensorflow as tf

    from geoloc_tf.m1 import portable

    loaded = tf.saved_model.load(str(paths[SAVED_MODEL]))

    def saved_model(pixels: np.ndarray):
        out = loaded.serve_pixels(tf.constant(pixels))
        return out["cell_ids"].numpy(), out["probabilities"].numpy()

    return {SAVED_MODEL: saved_model, **{name: portable.load(paths[name]) for name in portable.FORMATS}}


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="export_bench-") as tmp:
        paths, model = write_exports(args, Path(tmp))
        sizes = {
            name: folder_bytes(path) if path.is_dir() else path.stat().st_size for name, path in paths.items()
        }
        run_fns = runners(paths)
        side = next(r.image_size for name, r in run_fns.items() if name != SAVED_MODEL)
        pixels = np.random.default_rng(args.seed).integers(0, 256, (BATCH, side, side, 3), dtype=np.uint8)
        for fn in run_fns.values():  # warm-up: tracing, allocation of both batch sizes
            for _ in range(2):
                fn(pixels[:1])
                fn(pixels)
        one: dict[str, list[float]] = {name: [] for name in run_fns}
        many: dict[str, list[float]] = {name: [] for name in run_fns}
        for _ in range(args.rounds):
            for name, fn in run_fns.items():
                started = time.perf_counter()
                fn(pixels[:1])
                one[name].append(time.perf_counter() - started)
                started = time.perf_counter()
                fn(pixels)
                many[name].append(time.perf_counter() - started)
    return {
        "model": model,
        "rounds": args.rounds,
        "formats": {
            name: {
                "bytes": sizes[name],
                "latency_ms_batch1": 1000 * statistics.median(one[name]),
                "images_per_s_batch32": BATCH / min(many[name]),
            }
            for name in run_fns
        },
    }


def rows(result: dict) -> list[BenchmarkRow]:
    from geoloc_tf.m1 import portable

    base = result["formats"][SAVED_MODEL]
    out = []
    for name, spec in portable.FORMATS.items():
        figures = result["formats"][name]
        out += [
            BenchmarkRow(
                "export_bench",
                f"M1 {spec.label} file ({spec.suffix}) size",
                figures["bytes"] / 1e6,
                "MB",
                "SavedModel folder",
                base["bytes"] / 1e6,
                higher_is_better=False,
            ),
            BenchmarkRow(
                "export_bench",
                f"M1 {spec.label} latency, batch 1, CPU",
                figures["latency_ms_batch1"],
                "ms",
                "SavedModel (TensorFlow)",
                base["latency_ms_batch1"],
                higher_is_better=False,
            ),
            BenchmarkRow(
                "export_bench",
                f"M1 {spec.label} throughput, batch {BATCH}, CPU",
                figures["images_per_s_batch32"],
                "img/s",
                "SavedModel (TensorFlow)",
                base["images_per_s_batch32"],
            ),
        ]
    return out


def measure(quick: bool = False) -> list[BenchmarkRow]:
    """The performance page's rows: size, batch-1 latency and batch-32 throughput of the LiteRT
    and ONNX files of the demo's M1, each beside the SavedModel's in the same run."""
    return rows(run(parse_args(["--quick"] if quick else [])))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    print(f"export benchmark: {result['model']}; {result['rounds']} rounds")
    print(f"  {'format':<12} {'size MB':>9} {'batch 1 ms':>11} {f'batch {BATCH} img/s':>16}")
    for name, figures in result["formats"].items():
        print(
            f"  {name:<12} {figures['bytes'] / 1e6:>9.2f} {figures['latency_ms_batch1']:>11.2f} "
            f"{figures['images_per_s_batch32']:>16.1f}"
        )
    if args.json:
        from mesh.atomic import write_json_atomic

        write_json_atomic(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
