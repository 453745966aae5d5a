"""`python -m experiments.seeds`: its flags, and the findings it reads from hand-made report tables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import seeds
from experiments.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
PREFIX = "mesh 120/15 "  # the report prefixes every row with the mesh's name
THRESHOLDS = ("Street 1 km", "City 25 km", "Region 200 km", "Country 750 km", "Continent 2500 km")
NUMBERS = (*THRESHOLDS, "Mean (km)", "Median (km)", "GeoScore")


def differences(rows: dict[tuple[str, str], tuple[tuple[float, float, float], ...]], intervals=True) -> dict:
    """The report's "differences" table as tables.json holds it: B, A, photos, then each number
    (5 accuracies, mean, median, GeoScore) followed by its "lo" and "hi" columns (none when the
    run's bootstrap was off)."""
    columns = ["B", "A", "Photos B", "Photos A"]
    for n in NUMBERS:
        columns += [n, f"{n} lo", f"{n} hi"] if intervals else [n]
    out = []
    for (b, a), values in rows.items():
        row: list = [PREFIX + b, PREFIX + a, 100, 100]
        for v in values:
            row += list(v) if intervals else [v[0]]
        out.append(row)
    return {"key": "differences", "columns": columns, "rows": out}


def clear(d: float) -> tuple[float, float, float]:
    """A difference d whose interval excludes 0 (d +- 40 % of d)."""
    return (d, d - 0.4 * abs(d), d + 0.4 * abs(d))


ZERO = (0.0, 0.0, 0.0)  # equal in every resample
ERRORS_CLOSER = (clear(-300.0), clear(-50.0), clear(20.0))  # mean, median (km), GeoScore


def run_tables(
    m3_m2: tuple | None = None, m3_mean: tuple = clear(-200.0), m3_p: float = 1e-3, intervals: bool = True
) -> dict:
    """A run where every finding holds (M1 < M2 < M3, outdoor above all) unless told otherwise."""
    above = (ZERO, clear(1.0), clear(5.0), clear(5.0), clear(5.0))
    rows = {
        (seeds.M2, seeds.M1): (*above, *ERRORS_CLOSER),
        (seeds.M3, seeds.M2): (*(m3_m2 or above[:5]), m3_mean, clear(-50.0), clear(20.0)),
        (seeds.M1, seeds.MOST_FREQUENT): (*above, *ERRORS_CLOSER),
    }
    for m in (seeds.M1, seeds.M2, seeds.M3):
        rows[(f"{m}, imagery centroid", f"{m}, cell centroid")] = (*above, *ERRORS_CLOSER)
        rows[(f"{m}, outdoor only", f"{m}, all photos")] = (*above, *ERRORS_CLOSER)
    wilcoxon = [
        [f"{b} vs {a}", 100, 90, 50.0, 10.0, 100.0, p, f"{b} lower error than {a}"]
        for b, a, p in ((seeds.M2, seeds.M1, 1e-5), (seeds.M3, seeds.M2, m3_p))
    ]
    return {"differences": differences(rows, intervals), "wilcoxon": {"key": "wilcoxon", "rows": wilcoxon}}


def findings(tables: dict) -> dict[str, tuple[bool, str]]:
    return {statement: test(tables) for statement, test in seeds.FINDINGS}


def test_findings_count_the_seeds_where_each_holds():
    straddles = (ZERO, clear(1.0), clear(5.0), (0.8, -0.3, 1.9), clear(5.0))  # 750 km: +0.8 [-0.30, 1.90]
    text = seeds.findings_table(
        {0: run_tables(), 1: run_tables(m3_m2=straddles, m3_mean=(-120.0, -400.0, 60.0))}
    )
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines()[2:]}
    assert len(rows) == len(seeds.FINDINGS)
    assert "2 of 2 seeds" in rows["M2 above M1 (200, 750, 2500 km)"]
    m3_row = rows["M3 above M2 (25, 200, 750, 2500 km)"]
    assert "1 of 2 seeds" in m3_row and "no (750 km: +0.80 [-0.30, 1.90])" in m3_row
    mean_row = rows["M3 lower mean error than M2"]
    assert "1 of 2 seeds" in mean_row and "no (mean: -120 km [-400, 60]; Wilcoxon p 0.001)" in mean_row
    assert "2 of 2 seeds" in rows["M1 above the most-frequent-cell baseline (750 and 2500 km)"]


def test_a_positive_difference_whose_interval_straddles_0_does_not_hold():
    tables = run_tables(m3_m2=(ZERO, (0.5, -0.1, 1.1), clear(5.0), clear(5.0), clear(5.0)))
    holds, detail = findings(tables)["M3 above M2 (25, 200, 750, 2500 km)"]
    assert not holds and detail == "25 km: +0.50 [-0.10, 1.10]"
    holds, detail = findings(run_tables())["M3 above M2 (25, 200, 750, 2500 km)"]
    assert holds and detail == "25 km: +1.00 [0.60, 1.40]"  # where it holds most narrowly


def test_at_least_findings_accept_a_tie_in_every_resample_but_not_an_interval_touching_0():
    """Imagery vs cell centroid at 1 km: [0, 0] (both rows 0 % in every resample) is the tie
    ">=" allows; [0, 0.5] is not evidence that imagery is at least as good."""
    tables = run_tables()
    holds, detail = findings(tables)[
        "Imagery centroid >= cell centroid as label point (M1, M2, M3; 1 and 25 km)"
    ]
    assert holds and detail == "M1 25 km: +1.00 [0.60, 1.40]"
    row = next(r for r in tables["differences"]["rows"] if r[0].endswith(f"{seeds.M2}, imagery centroid"))
    row[4:7] = [0.2, 0.0, 0.5]  # Street 1 km of M2: +0.2 [0.0, 0.5]
    holds, detail = findings(tables)[
        "Imagery centroid >= cell centroid as label point (M1, M2, M3; 1 and 25 km)"
    ]
    assert not holds and detail == "M2 1 km: +0.20 [0.00, 0.50]"


def test_wilcoxon_p_is_information_and_a_test_the_other_way_is_marked():
    tables = run_tables(m3_p=0.4)
    holds, detail = findings(tables)["M3 lower mean error than M2"]
    assert holds and detail == "mean: -200 km [-280, -120]; Wilcoxon p 0.4"  # p high, interval below 0
    tables["wilcoxon"]["rows"][0][-1] = f"{seeds.M1} lower error than {seeds.M2}"
    holds, detail = findings(tables)["M2 above M1 (200, 750, 2500 km)"]
    assert holds and detail.endswith("Wilcoxon p 1e-05, other way")


def test_without_intervals_no_finding_holds():
    text = seeds.findings_table({0: run_tables(intervals=False)})
    assert "0 of 1 seeds" in text and "1 of 1" not in text
    assert seeds.NO_INTERVAL in text


def test_a_difference_over_no_photos_does_not_hold_and_says_so():
    """tables.json writes a NaN difference as null: M1's outdoor-only row of a run whose test
    photos hold no outdoor photo. The finding does not hold there, for want of photos; the other
    findings of the same run, with their intervals, are read as before."""
    tables = run_tables()
    row = next(r for r in tables["differences"]["rows"] if r[0].endswith(f"{seeds.M1}, outdoor only"))
    row[3:] = [None] * len(row[3:])
    holds, detail = findings(tables)["Outdoor-only rows >= all-photo rows (M1, M2, M3; every threshold)"]
    assert not holds and detail == "M1 1 km: no photos"
    text = seeds.findings_table({0: tables})
    assert "| 0 of 1 seeds | no (M1 1 km: no photos) |" in text
    assert seeds.NO_INTERVAL not in text and text.count("1 of 1 seeds") == len(seeds.FINDINGS) - 1


def test_a_run_without_the_differences_table_is_one_clear_error():
    with pytest.raises(ConfigError, match="no 'differences' table"):
        seeds.findings_table({0: {"wilcoxon": {"rows": []}}})


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--flagfile=demo.cfg"], "--seeds is required"),
        (["--seeds=0,x"], "--seeds='0,x': expected comma-separated non-negative integers"),
        (["--seeds=0", "--run_dir=runs/a"], "--run_dir: set by experiments.seeds"),
        (["--seeds=0", "--data_seed=3"], "--data_seed: set by experiments.seeds"),
        (["--seeds=0", "--variant=smooth"], "--variant='smooth': expected NAME:FLAGS"),
        (["--seeds=0", "--variant=seed1:--m1_sgd_epochs=2"], "--variant='seed1:--m1_sgd_epochs=2': expected"),
        (
            ["--seeds=0", "--variant=a:m1_sgd_epochs=2"],
            "--variant='a:m1_sgd_epochs=2': 'm1_sgd_epochs=2' is not",
        ),
        (["--seeds=0", "--variant=a:--data_seed=2"], "--variant='a:--data_seed=2': '--data_seed=2' is not"),
        (["--seeds=0", "--row=r:m1_x", "--variant=r:--x=1"], "--variant/--row: names ['r', 'r'] repeat"),
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


def test_variants_and_rows_are_parsed_apart_from_the_runner_flags():
    options = seeds.parse_args(
        [
            "--seeds=0,1",
            "--flagfile=demo.cfg",
            "--variant=smooth:--m1_label_smoothing_km=250 --stages=mesh,data,m1",
            "--row=retrieval:m1_cell_retrieval",
        ]
    )
    assert options.run_flags == ("--flagfile=demo.cfg",)
    assert options.variants == (("smooth", ("--m1_label_smoothing_km=250", "--stages=mesh,data,m1")),)
    assert options.rows == (("retrieval", "m1_cell_retrieval"),)


def _record(diffs: dict[str, tuple[float, float, float]]) -> dict:
    """A difference record (results.json schema) from {key: (value, lo, hi)}."""
    return {
        "accuracy_percent": {k: v[0] for k, v in diffs.items() if k != "geoscore"},
        "geoscore": diffs["geoscore"][0],
        "interval": {
            "accuracy_percent": {k: [v[1], v[2]] for k, v in diffs.items() if k != "geoscore"},
            "geoscore": [diffs["geoscore"][1], diffs["geoscore"][2]],
        },
    }


def test_an_improvement_helps_where_its_interval_lies_above_0():
    table = seeds.improvements_table(
        {
            "smooth": {
                0: _record({"25": (1.0, 0.2, 1.8), "200": (2.0, -0.1, 4.0), "geoscore": (40.0, 10.0, 70.0)}),
                1: _record({"25": (0.5, 0.1, 0.9), "200": (3.0, 1.0, 5.0), "geoscore": (-5.0, -20.0, 10.0)}),
            }
        }
    )
    row = next(line for line in table.splitlines() if line.startswith("| smooth"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:4] == ["2 of 2 seeds", "1 of 2 seeds", "1 of 2 seeds"]
    assert cells[4] == "+1.00 [0.20, 1.80] / +2.00 [-0.10, 4.00] / +40.00 [10.00, 70.00]"


def test_a_row_improvement_is_read_from_the_base_runs_differences(tmp_path):
    (tmp_path / "eval").mkdir()
    record = {
        "kind": "models",
        "a": {"model": "m1"},
        "b": {"model": "m1_cell_retrieval"},
        **_record({"25": (1.0, 0.2, 1.8), "200": (2.0, 1.0, 3.0), "geoscore": (4.0, 1.0, 7.0)}),
    }
    other = {**record, "b": {"model": "m2"}}
    (tmp_path / "eval" / "results.json").write_text(json.dumps({"differences": [other, record]}))
    assert seeds.row_difference(tmp_path, "m1_cell_retrieval") is not None
    assert seeds.row_difference(tmp_path, "m1_cell_retrieval")["b"]["model"] == "m1_cell_retrieval"
    with pytest.raises(ConfigError, match="no difference m3 - m1"):
        seeds.row_difference(tmp_path, "m3")
