"""The README's main command, mesh and data stages, on the small demo: the first run fetches the two
real sources and builds the demo collection (unless the session's shared cache holds them already,
conftest.demo_data_dir); a second run downloads nothing and rebuilds nothing."""

import json
from pathlib import Path

import pytest


def files_with_mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.mark.network
def test_demo_data_stage_builds_once_then_reuses(tmp_path, demo_data_dir, run_small_demo):
    data_dir = demo_data_dir
    fresh = not any(data_dir.glob("demo_sources/*/*"))  # another test may have filled the cache

    def run(run_dir: Path):
        return run_small_demo(run_dir, "--stages=mesh,data", timeout=900)

    first = run(tmp_path / "run1")
    assert first.returncode == 0, first.stderr[-3000:]
    assert ("downloading geoclip==1.3.0" in first.stderr) == fresh
    summary = json.loads((tmp_path / "run1" / "data" / "summary.json").read_text())
    assert summary["examples_written"] == 3000 and sum(summary["skipped"].values()) == 0
    assert set(summary["splits"]) == {"m1_train", "m23_train", "m23_val"}
    mesh_summary = json.loads((tmp_path / "run1" / "mesh" / "summary.json").read_text())
    assert mesh_summary["cells_kept"] > 10
    cache = files_with_mtimes(data_dir)

    again = run(tmp_path / "run1")  # same run: every stage skipped
    assert again.returncode == 0, again.stderr[-3000:]
    assert "skipped (done already)" in again.stdout and "downloading" not in again.stderr

    other = run(tmp_path / "run2")  # new run, same cache: nothing downloaded or rebuilt
    assert other.returncode == 0, other.stderr[-3000:]
    assert "downloading" not in other.stderr and "complete already" in other.stderr
    assert files_with_mtimes(data_dir) == cache
    info = json.loads(next(data_dir.glob("demo/*/demo_info.json")).read_text())
    assert "SIMULATED" in info["warning"]
