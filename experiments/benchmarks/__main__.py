"""The performance page: every benchmark of this package, one markdown table.

    python -m experiments.benchmarks                     # full sizes (tens of minutes on 2 cores)
    python -m experiments.benchmarks --quick             # quick sizes
    python -m experiments.benchmarks --quick=m1_bench    # quick sizes for some, full for the rest
    python -m experiments.benchmarks --only=mesh_bench,eval_bench --out=perf.md
    python -m experiments.benchmarks --update_build_md   # the table in BUILD.md, between its markers

Each public module of experiments/benchmarks (not `rows`, not private ones) is imported and its
`measure(quick=...)` called (the protocol: experiments/benchmarks/rows.py); each returns its
headline figures next to a baseline measured in the same run. A benchmark that fails gets a row
saying so, with its error; the others still run and the exit status is 1. The table starts with a
line describing the machine. Speed is measured here, never asserted by tests.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from experiments import benchmarks
from experiments.benchmarks import _page
from experiments.benchmarks.rows import BenchmarkRow
from experiments.errors import BenchmarkError, GeolocUserError
from mesh.atomic import write_text_atomic

BUILD_MD = Path(__file__).resolve().parents[2] / "BUILD.md"
ALL = "all"
SHARED_MACHINE_NOTE = (
    "Timings on a machine shared with other jobs are noisy; compare a figure "
    "with its baseline from the same run, not across runs."
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--quick",
        nargs="?",
        const=ALL,
        default="",
        help="quick sizes: for every benchmark, or for those named (comma-separated)",
    )
    parser.add_argument("--only", default="", help="comma-separated benchmark modules to run")
    parser.add_argument("--out", default=None, help="also write the table to this markdown file")
    parser.add_argument(
        "--update_build_md",
        action="store_true",
        help=f"replace the table between the markers in {BUILD_MD.name} (with "
        "--only: those benchmarks' rows; the others' are kept, marked as older)",
    )
    return parser.parse_args(argv)


def selected(names: str, available: Sequence[str], flag: str) -> list[str]:
    """The benchmarks a comma-separated flag value names (all for ALL), in discovery order."""
    if names == ALL:
        return list(available)
    wanted = {name.strip() for name in names.split(",") if name.strip()}
    unknown = sorted(wanted - set(available))
    if unknown:
        raise BenchmarkError(
            f"{flag}: unknown benchmark(s) {', '.join(unknown)}; expected some of {', '.join(available)}"
        )
    return [name for name in available if name in wanted]


def command_line(args: argparse.Namespace) -> str:
    """The command that makes this table (without --out / --update_build_md)."""
    flags = [
        f"--quick={args.quick}" if args.quick not in ("", ALL) else "--quick" * (args.quick == ALL),
        f"--only={args.only}" if args.only else "",
    ]
    return " ".join(["python -m experiments.benchmarks", *filter(None, flags)])


def run_one(name: str, quick: bool) -> list[BenchmarkRow] | list[_page.FailedBenchmark]:
    """Imports benchmark `name` and calls its measure(); a failure becomes one FailedBenchmark."""
    try:
        module = importlib.import_module(f"{benchmarks.__name__}.{name}")
        if not callable(getattr(module, "measure", None)):
            raise TypeError(f"{module.__file__} has no measure(quick) function (see rows.py)")
        rows = list(module.measure(quick=quick))
        if not rows or not all(isinstance(row, BenchmarkRow) for row in rows):
            raise TypeError(f"{name}.measure returned {rows!r}; expected a list of BenchmarkRow")
        return rows
    except Exception as error:  # noqa: BLE001  a failed benchmark must not stop the others
        traceback.print_exc()
        return [_page.FailedBenchmark(name, f"{type(error).__name__}: {error}")]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # TensorFlow's BFC allocator on the CPU, as `python -m experiments.run` sets it (input_bench's
    # docstring says why); read once, when the first benchmark imports TensorFlow.
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
    try:
        available = _page.discover(benchmarks.__path__)
        names = selected(args.only or ALL, available, "--only")
        quick = set(selected(args.quick, available, "--quick")) if args.quick else set()
        machine = _page.machine_description()
        print(
            f"[benchmarks] {len(names)} to run: "
            f"{', '.join(n + (' (quick)' if n in quick else '') for n in names)}\n"
            f"[benchmarks] machine: {machine}",
            flush=True,
        )
        results: list = []
        started = time.monotonic()
        for name in names:
            print(f"[benchmarks] {name}: running", flush=True)
            t0 = time.monotonic()
            rows = run_one(name, name in quick)
            state = "FAILED" if isinstance(rows[0], _page.FailedBenchmark) else f"{len(rows)} rows"
            print(f"[benchmarks] {name}: {state} in {time.monotonic() - t0:.1f} s", flush=True)
            results.extend(rows)
        table = _page.render_table(results, machine, command_line(args), SHARED_MACHINE_NOTE)
        print(f"[benchmarks] all done in {time.monotonic() - started:.0f} s\n\n{table}", flush=True)
        if args.out:
            write_text_atomic(args.out, table)
            print(f"[benchmarks] table written to {args.out}")
        if args.update_build_md:
            document = BUILD_MD.read_text()
            if args.only:  # refresh these rows, keep the others
                table = _page.keep_rows_not_rerun(_page.between_markers(document), table, names)
            write_text_atomic(BUILD_MD, _page.replace_between_markers(document, table))
            print(f"[benchmarks] table replaced in {BUILD_MD}")
    except GeolocUserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    failed = [row.benchmark for row in results if isinstance(row, _page.FailedBenchmark)]
    if failed:
        print(f"[benchmarks] failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
