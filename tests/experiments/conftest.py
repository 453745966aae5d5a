"""Shared by the tests that run the README's main command on the small demo as a subprocess.

The demo's two sources (fetched from the package registry) and the generated demo collection are
cached in one folder for the whole test session, so CI downloads and renders them once: the
folder is `$GEOLOC_DATA_DIR` when set (a CI cache, or a developer's own cache), else a pytest
temporary folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# The README's main command on the small demo (the run directory is added per test).
SMALL_DEMO_COMMAND = (
    sys.executable,
    "-m",
    "experiments.run",
    "--flagfile=demo.cfg",
    "--data_demo_size=small",
)


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's demo cache: $GEOLOC_DATA_DIR if set, else one temporary folder."""
    configured = os.environ.get("GEOLOC_DATA_DIR")
    if configured:
        path = Path(configured).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("geoloc_data")


@pytest.fixture(scope="session")
def demo_env(demo_data_dir: Path) -> dict[str, str]:
    """Environment of a `python -m experiments.run` subprocess that uses the session's cache."""
    return {
        **os.environ,
        "GEOLOC_DATA_DIR": str(demo_data_dir),
        "PYTHONPATH": str(REPO),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


@pytest.fixture(scope="session")
def run_small_demo(demo_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess]:
    """`run_small_demo(run_dir, *flags)`: the small demo's main command, to completion."""

    def run(run_dir: Path, *flags: str, timeout: float = 1200) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*SMALL_DEMO_COMMAND, f"--run_dir={run_dir}", *flags],
            cwd=REPO,
            env=demo_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


@pytest.fixture
def run_config():
    """Makes a valid RunConfig from the given sections: the defaults plus the demo as data source
    (the default source, a user's metadata files, needs files)."""
    from experiments.config import SECTIONS, RunConfig

    def make(**sections):
        sections.setdefault("data", SECTIONS["data"](source="demo"))
        return RunConfig(**sections)

    return make
