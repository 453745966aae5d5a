"""The performance page on hand-made rows: discovery, the table, BUILD.md's markers.

No benchmark runs here: speed is measured by hand, never in tests.
"""

from __future__ import annotations

import math

import pytest

from experiments import benchmarks
from experiments.benchmarks import _page
from experiments.benchmarks.__main__ import main, run_one, selected
from experiments.benchmarks.rows import BenchmarkRow
from experiments.errors import BenchmarkError

LOCATE = BenchmarkRow(
    "mesh_bench",
    "fine mesh locate, 14 M points",
    8.0,
    "M points/s",
    "h3 per-point loop",
    0.5,
    target=">= 10 M points/s",
    met=False,
)
EVAL = BenchmarkRow(
    "eval_bench",
    "full metric set",
    4.0,
    "s",
    "per-photo loop",
    1200.0,
    higher_is_better=False,
    target="<= 10 s",
    met=True,
)
INGEST = BenchmarkRow("input_bench", "ingestion", 1234.5, "photos/s")


def table_body(markdown: str) -> list[list[str]]:
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip().strip("|").split(" | ")] for line in rows[1:]]


def test_discovery_finds_the_benchmark_modules_and_skips_the_others(tmp_path):
    for name in ("a_bench.py", "b_bench.py", "rows.py", "__main__.py", "_page.py", "__init__.py"):
        (tmp_path / name).write_text("")
    assert _page.discover([str(tmp_path)]) == ["a_bench", "b_bench"]
    found = _page.discover(benchmarks.__path__)
    assert {"mesh_bench", "input_bench", "eval_bench", "m1_bench"} <= set(found)
    assert not {"rows", "hostile_files", "__main__", "_page"} & set(found)


def test_every_benchmark_module_has_measure():
    import importlib
    import inspect

    for name in _page.discover(benchmarks.__path__):
        measure = importlib.import_module(f"experiments.benchmarks.{name}").measure
        assert list(inspect.signature(measure).parameters) == ["quick"], name


def test_ratio_is_times_better_than_the_baseline():
    assert LOCATE.ratio == 16.0  # 8 / 0.5, a rate
    assert EVAL.ratio == 300.0  # 1200 s / 4 s, a time
    assert math.isnan(INGEST.ratio)


def test_table_has_one_row_per_figure_and_the_machine_line():
    failed = _page.FailedBenchmark("m1_bench", "RuntimeError: out of memory | 2 GiB")
    table = _page.render_table([LOCATE, EVAL, INGEST, failed], "Some CPU, 2 cores", "python -m x", "Noisy.")
    assert table.splitlines()[0] == "Measured on: Some CPU, 2 cores. Command: `python -m x`. Noisy."
    assert table_body(table) == [
        [
            "mesh_bench",
            "fine mesh locate, 14 M points",
            "8.00 M points/s",
            "h3 per-point loop",
            "0.50 M points/s",
            "16.0x",
            ">= 10 M points/s",
            "**no**",
        ],
        ["eval_bench", "full metric set", "4.00 s", "per-photo loop", "1,200 s", "300x", "<= 10 s", "yes"],
        ["input_bench", "ingestion", "1,234 photos/s", "", "", "", "", ""],
        ["m1_bench", "FAILED: RuntimeError: out of memory \\| 2 GiB", "", "", "", "", "", ""],
    ]


def test_machine_description_names_cpu_cores_and_versions(monkeypatch):
    """On a made-up machine: each figure of the line is the one /proc, the affinity mask,
    nvidia-smi and the installed distributions give, the RAM converted from kB to GiB."""
    import importlib.metadata
    import re
    import subprocess

    proc = {
        "cpuinfo": ["processor\t: 0", "model name\t: Test CPU 9000"],
        "meminfo": ["MemTotal:       25165824 kB"],  # 24 x 2**20 kB
    }
    monkeypatch.setattr(_page, "_proc_lines", lambda name: proc.get(name, []))
    monkeypatch.setattr(_page.os, "cpu_count", lambda: 8)
    monkeypatch.setattr(_page.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(_page.os, "getloadavg", lambda: (1.5, 0.0, 0.0), raising=False)
    monkeypatch.setattr(_page.shutil, "which", lambda name: f"/usr/bin/{name}")
    smi = "NVIDIA H100 80GB HBM3, 81559 MiB\n"
    monkeypatch.setattr(_page.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, smi, ""))
    monkeypatch.setattr(_page.platform, "python_version", lambda: "3.11.7")
    versions = {"tensorflow-cpu": "2.21.0", "keras": "3.15.1", "numpy": "2.4.6"}  # no JAX

    def version(name):
        if name not in versions:
            raise importlib.metadata.PackageNotFoundError(name)
        return versions[name]

    monkeypatch.setattr(_page.importlib.metadata, "version", version)
    line = _page.machine_description()
    head, date = line.split("; ")[:2], line.split("; ")[2]
    assert head == [
        "Test CPU 9000, 2 of 8 cores usable, 24 GiB RAM, NVIDIA H100 80GB HBM3, 81559 MiB",
        "Python 3.11.7, TensorFlow 2.21.0, Keras 3.15.1, JAX not installed, numpy 2.4.6",
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC, load average 1\.5 at the start", date)


def test_build_md_table_is_replaced_between_the_markers_only():
    document = (
        "# Build\n\n## Benchmarks\nintro\n"
        + _page.START_MARKER
        + "\nold table\n"
        + _page.END_MARKER
        + "\n\n## Next\nkept\n"
    )
    updated = _page.replace_between_markers(document, "| new | table |\n")
    assert updated == (
        "# Build\n\n## Benchmarks\nintro\n"
        + _page.START_MARKER
        + "\n| new | table |\n"
        + _page.END_MARKER
        + "\n\n## Next\nkept\n"
    )
    assert _page.replace_between_markers(updated, "| new | table |\n") == updated  # idempotent


def test_rerunning_some_benchmarks_keeps_the_rows_of_the_others():
    old = _page.render_table([EVAL, INGEST, LOCATE], "old box; 2026-01-01 10:00 UTC", "all")
    faster = BenchmarkRow("input_bench", "ingestion", 2000.0, "photos/s")
    new = _page.render_table([faster], "new box; 2026-01-02 11:00 UTC", "--only=input_bench")
    merged = _page.keep_rows_not_rerun(old, new, ["input_bench"])
    assert [row[:3] for row in table_body(merged)] == [
        ["eval_bench", "full metric set", "4.00 s"],
        ["input_bench", "ingestion", "2,000 photos/s"],
        ["mesh_bench", "fine mesh locate, 14 M points", "8.00 M points/s"],
    ]
    assert merged.startswith("Measured on: new box; 2026-01-02 11:00 UTC.")
    assert merged.rstrip().endswith(
        "Rows of eval_bench, mesh_bench are kept from an earlier table: "
        "old box; 2026-01-01 10:00 UTC. Command: `all`."
    )
    # Rerunning every benchmark of the old table keeps nothing.
    assert _page.keep_rows_not_rerun(old, new, ["eval_bench", "input_bench", "mesh_bench"]) == new
    document = "intro\n" + _page.START_MARKER + "\n" + old + _page.END_MARKER + "\n"
    assert _page.between_markers(document).strip() == old.strip()


@pytest.mark.parametrize(
    "document",
    ["no markers", _page.END_MARKER + "\n" + _page.START_MARKER, _page.START_MARKER * 2 + _page.END_MARKER],
)
def test_build_md_without_proper_markers_is_an_error(document):
    with pytest.raises(BenchmarkError, match="BUILD.md: expected one"):
        _page.replace_between_markers(document, "table")


def test_the_repository_build_md_has_the_markers():
    from experiments.benchmarks.__main__ import BUILD_MD

    assert _page.replace_between_markers(BUILD_MD.read_text(), "x")


def test_only_and_quick_name_known_benchmarks():
    available = ["eval_bench", "mesh_bench"]
    assert selected("mesh_bench", available, "--only") == ["mesh_bench"]
    assert selected("all", available, "--quick") == available
    with pytest.raises(BenchmarkError, match="--only: unknown benchmark\\(s\\) nope"):
        selected("mesh_bench,nope", available, "--only")
    assert main(["--only=nope"]) == 2


def test_a_failing_benchmark_becomes_a_failed_row(monkeypatch):
    from experiments.benchmarks import mesh_bench

    def broken(quick: bool = False):
        raise RuntimeError("no memory")

    monkeypatch.setattr(mesh_bench, "measure", broken)
    assert run_one("mesh_bench", quick=True) == [
        _page.FailedBenchmark("mesh_bench", "RuntimeError: no memory")
    ]


def test_main_writes_the_table_and_exits_1_when_a_benchmark_failed(tmp_path, monkeypatch):
    import experiments.benchmarks.__main__ as runner

    build_md = tmp_path / "BUILD.md"
    build_md.write_text(f"# Build\n{_page.START_MARKER}\nold\n{_page.END_MARKER}\nafter\n")
    calls = []

    def fake_run_one(name: str, quick: bool):
        calls.append((name, quick))
        return [EVAL] if name == "eval_bench" else [_page.FailedBenchmark(name, "OSError: disk")]

    monkeypatch.setattr(runner, "BUILD_MD", build_md)
    monkeypatch.setattr(runner._page, "discover", lambda path: ["eval_bench", "mesh_bench"])
    monkeypatch.setattr(runner, "run_one", fake_run_one)
    out = tmp_path / "perf.md"
    assert runner.main(["--quick=eval_bench", f"--out={out}", "--update_build_md"]) == 1
    assert calls == [("eval_bench", True), ("mesh_bench", False)]
    table = out.read_text()
    assert "Command: `python -m experiments.benchmarks --quick=eval_bench`" in table
    assert [row[:2] for row in table_body(table)] == [
        ["eval_bench", "full metric set"],
        ["mesh_bench", "FAILED: OSError: disk"],
    ]
    assert build_md.read_text() == f"# Build\n{_page.START_MARKER}\n{table}{_page.END_MARKER}\nafter\n"
