"""The performance page: benchmark discovery, the machine line, the markdown table and
its place in BUILD.md between two marker comments.

Kept apart from ``__main__`` so that tests can use it on hand-made rows without running anything.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import math
import os
import pkgutil
import platform
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from experiments.benchmarks.rows import BenchmarkRow
from experiments.errors import BenchmarkError

START_MARKER = "<!-- performance-table:start -->"
END_MARKER = "<!-- performance-table:end -->"
NOT_BENCHMARKS = frozenset(
    {"rows", "hostile_files", "__main__"}
)  # and private modules (a leading underscore)
COLUMNS = ("benchmark", "figure", "value", "baseline", "baseline value", "ratio", "target", "met")


@dataclasses.dataclass(frozen=True)
class FailedBenchmark:
    """A benchmark that raised: the page says so, with the error, and the runner exits non-zero."""

    benchmark: str
    error: str


def discover(package_path: Sequence[str]) -> list[str]:
    """Names of the benchmark modules in a package folder, sorted: every public module but
    ``NOT_BENCHMARKS`` (the rows, the builders of hostile files)."""
    return sorted(
        module.name
        for module in pkgutil.iter_modules(list(package_path))
        if module.name not in NOT_BENCHMARKS and not module.name.startswith("_")
    )


def machine_description() -> str:
    """CPU model, cores, RAM, GPU(s), Python/TensorFlow/Keras/JAX/numpy versions and the date, on one line."""
    cpu = _cpu_model()
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    core_text = f"{cores} cores" if usable == cores else f"{usable} of {cores} cores usable"
    ram = _ram_gib()
    versions = ", ".join(
        f"{name} {_version(*dists)}"
        for name, dists in (
            ("TensorFlow", ("tensorflow", "tensorflow-cpu")),
            ("Keras", ("keras",)),
            ("JAX", ("jax",)),
            ("numpy", ("numpy",)),
        )
    )
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = f"load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return f"{cpu}, {core_text}, {ram}, {_gpus()}; Python {platform.python_version()}, {versions}; {date}" + (
        f", {load} at the start" if load else ""
    )


def _proc_lines(name: str) -> list[str]:
    """Lines of /proc/<name>; none where there is no /proc (not Linux)."""
    try:
        return Path("/proc", name).read_text().splitlines()
    except OSError:
        return []


def _cpu_model() -> str:
    for line in _proc_lines("cpuinfo"):
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def _ram_gib() -> str:
    for line in _proc_lines("meminfo"):
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 2**20:.0f} GiB RAM"
    return "RAM unknown"


def _gpus() -> str:
    if not shutil.which("nvidia-smi"):
        return "no GPU"
    try:
        names = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as error:
        return f"GPU unknown (nvidia-smi: {error})"
    gpus = [line.strip() for line in names.splitlines() if line.strip()]
    return "; ".join(gpus) if gpus else "no GPU"


def _version(*distributions: str) -> str:
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def format_number(value: float) -> str:
    """Three significant figures or more, thousands separated; a dash for nan."""
    if value is None or not math.isfinite(value):
        return "–"
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_table(
    results: Sequence[BenchmarkRow | FailedBenchmark], machine: str, command: str, note: str = ""
) -> str:
    """The markdown block: a line on the machine and command, then one table of every row."""
    lines = [
        f"Measured on: {machine}. Command: `{command}`." + (f" {note}" if note else ""),
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|---|---|---:|---|---:|---:|---|---|",
    ]
    for row in results:
        if isinstance(row, FailedBenchmark):
            cells = [row.benchmark, f"FAILED: {row.error}", "", "", "", "", "", ""]
        else:
            has_baseline = bool(row.baseline) and math.isfinite(row.baseline_value)
            cells = [
                row.benchmark,
                row.figure,
                f"{format_number(row.value)} {row.unit}",
                row.baseline,
                f"{format_number(row.baseline_value)} {row.unit}" if has_baseline else "",
                f"{format_number(row.ratio)}x" if math.isfinite(row.ratio) else "",
                row.target,
                {True: "yes", False: "**no**", None: ""}[row.met],
            ]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def keep_rows_not_rerun(old_block: str, new_block: str, rerun: Sequence[str]) -> str:
    """``new_block`` (a table of the benchmarks ``rerun`` only) with the rows of every other
    benchmark kept from ``old_block`` (the table it replaces), rows grouped by benchmark in name
    order, and a line under the table saying which rows are older and where they were measured:
    ``--only=... --update_build_md`` refreshes some rows without dropping the rest."""

    def parts(block: str) -> tuple[str, list[str], list[str]]:
        lines = block.strip().splitlines()
        heading = next((line for line in lines if line.startswith("Measured on:")), "")
        table = [line for line in lines if line.startswith("|")]
        return heading, table[:2], table[2:]

    old_heading, _, old_rows = parts(old_block)
    heading, header, new_rows = parts(new_block)
    bench = lambda row: row.strip("|").split("|")[0].strip()
    kept = [row for row in old_rows if bench(row) not in set(rerun)]
    if not kept:
        return new_block
    rows = sorted(new_rows + kept, key=bench)  # stable: each benchmark's rows keep their order
    names = ", ".join(dict.fromkeys(bench(row) for row in kept))
    older = old_heading.removeprefix("Measured on:").strip() or "an earlier run"
    return (
        "\n".join(
            [heading, "", *header, *rows, "", f"Rows of {names} are kept from an earlier table: {older}"]
        )
        + "\n"
    )


def replace_between_markers(document: str, block: str, where: str = "BUILD.md") -> str:
    """`document` with what lies between the start and end markers replaced by `block`."""
    start, end = _marker_span(document, where)
    head = document[: start + len(START_MARKER)]
    return f"{head}\n{block.rstrip()}\n{document[end:]}"


def between_markers(document: str, where: str = "BUILD.md") -> str:
    """What lies between the start and end markers of `document`."""
    start, end = _marker_span(document, where)
    return document[start + len(START_MARKER) : end]


def _marker_span(document: str, where: str) -> tuple[int, int]:
    start, end = document.find(START_MARKER), document.find(END_MARKER)
    if start < 0 or end < 0 or end < start or document.count(START_MARKER) != 1:
        raise BenchmarkError(
            f"{where}: expected one '{START_MARKER}' line followed by one '{END_MARKER}' line "
            f"around the performance table"
        )
    return start, end
