"""`python -m experiments.seeds`: its flags, and the findings it reads from hand-made report tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from experiments import seeds
from experiments.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
KM = (1.0, 25.0, 200.0, 750.0, 2500.0)
COLUMNS = (
    "Model",
    "Flag",
    "Photos",
    "Street 1 km",
    "City 25 km",
    "Region 200 km",
    "Country 750 km",
    "Continent 2500 km",
)


def table(key: str, rows: list[tuple[str, object, tuple[float, ...]]]) -> dict:
    """A report table as tables.json holds it: name, the flag column, photos, accuracy by threshold."""
    return {
        "key": key,
        "columns": list(COLUMNS),
        "rows": [[f"mesh 120/15 {name}", flag, 100, *acc] for name, flag, acc in rows],
    }


def run_tables(m2_p: float = 1e-5, m3_p: float = 1e-3, m3: tuple = (0, 9, 19, 39, 59)) -> dict:
    """A run where every finding holds (M1 < M2 < M3, outdoor above all) unless told otherwise."""
    m1, m2 = (0, 5, 10, 30, 50), (0, 6, 15, 35, 55)
    cell = (0, 1, 2, 3, 4)
    outdoor = lambda acc: tuple(a + 1 for a in acc)  # noqa: E731
    models = ((seeds.M1, m1), (seeds.M2, m2), (seeds.M3, m3))
    return {
        "table3": table(
            "table3", [row for name, acc in models for row in ((name, False, cell), (name, True, acc))]
        ),
        "table4": table(
            "table4",
            [row for name, acc in models for row in ((name, False, acc), (name, True, outdoor(acc)))],
        ),
        "table6": table(
            "table6",
            [
                *((name, False, acc) for name, acc in models),
                ("Most Frequent Cell (cell 3)", False, (0, 2, 5, 20, 40)),
            ],
        ),
        "wilcoxon": {
            "key": "wilcoxon",
            "rows": [
                [
                    f"{seeds.M2} vs {seeds.M1}",
                    100,
                    90,
                    50.0,
                    10.0,
                    100.0,
                    m2_p,
                    f"{seeds.M2} lower error than {seeds.M1}",
                ],
                [
                    f"{seeds.M3} vs {seeds.M2}",
                    100,
                    90,
                    50.0,
                    10.0,
                    100.0,
                    m3_p,
                    f"{seeds.M3} lower error than {seeds.M2}",
                ],
            ],
        },
    }


def test_findings_count_the_seeds_where_each_holds():
    text = seeds.findings_table(
        {
            0: run_tables(),
            1: run_tables(m3_p=0.02, m3=(0, 9, 19, 35, 59)),  # M3 level with M2 at 750 km, p too high
        }
    )
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines()[2:]}
    assert len(rows) == len(seeds.FINDINGS)
    assert "2 of 2 seeds" in rows["M2 above M1 (200, 750, 2500 km), Wilcoxon p < 0.01"]
    m3_row = rows["M3 above M2 (25, 200, 750, 2500 km)"]
    assert "1 of 2 seeds" in m3_row and "no (750 km: 35.00 vs 35.00)" in m3_row
    assert "1 of 2 seeds" in rows["M3 lower errors than M2, Wilcoxon p < 0.01"]
    assert "2 of 2 seeds" in rows["M1 above the most-frequent-cell baseline (750 and 2500 km)"]


def test_a_significant_test_the_other_way_is_not_the_finding():
    tables = run_tables()
    tables["wilcoxon"]["rows"][0][-1] = f"{seeds.M1} lower error than {seeds.M2}"
    holds, detail = dict((s, t(tables)) for s, t in seeds.FINDINGS)[
        "M2 above M1 (200, 750, 2500 km), Wilcoxon p < 0.01"
    ]
    assert not holds and "other way" in detail


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--flagfile=demo.cfg"], "--seeds is required"),
        (["--seeds=0,x"], "--seeds='0,x': expected comma-separated non-negative integers"),
        (["--seeds=0", "--run_dir=runs/a"], "--run_dir: set by experiments.seeds"),
        (["--seeds=0", "--data_seed=3"], "--data_seed: set by experiments.seeds"),
    ],
)
def test_bad_flags_name_the_flag(argv, expected):
    with pytest.raises(ConfigError) as error:
        seeds.parse_args(argv)
    assert str(error.value).startswith(expected)


def test_bad_runner_flag_is_one_line_and_exit_2(tmp_path):
    """The runner refuses the flag before any stage; the script says so in one line."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.seeds",
            "--seeds=0",
            "--m2_dropout=2",
            "--flagfile=demo.cfg",
            f"--runs_dir={tmp_path}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: seed 0: flag --m2_dropout=2.0: must be < 1.0"
    assert not (tmp_path / "seed0" / "mesh").exists()
