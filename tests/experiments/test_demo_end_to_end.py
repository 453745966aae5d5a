"""The README's main command on the small demo, through every stage, as a user runs it.

One subprocess run of `python -m experiments.run --flagfile=demo.cfg --data_demo_size=small`
with M2's and M3's epoch caps lowered (about 3 minutes on 2 cores; CI runs it), then checks on the run directory a person can redo by
hand: a record for each of the 8 stages, 3000 photos in the data set, M1's step count from its
history and checkpoint, the row counts of every prediction table, the report's model rows, the
SavedModels, and the final summary's pointers. Model quality is not asserted: the demo's model
settings are tuned elsewhere.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from experiments.stages import STAGES

DEMO_SMALL_PHOTOS = 3000  # data_pipelines.demo.generate.SIZES["small"]
# Row labels of the report's Table 6 (geoloc_tf.evaluation): the three models of the paper, the
# best possible accuracy of the mesh and the most-frequent-cell baseline.
REPORT_ROWS = (
    "Inception (M1)",
    "Time Inputs (M2)",
    "User Albums Time Inputs (M3)",
    "Best Possible",
    "Most Frequent Cell",
)


def table_first_cells(markdown: str) -> list[str]:
    """The first cell of every body row of every markdown table."""
    cells = []
    for line in markdown.splitlines():
        if line.startswith("|") and not re.fullmatch(r"\|[-:| ]+\|", line.strip()):
            cells.append(line.strip("|").split("|")[0].strip())
    return cells


#: M2's and M3's early-stopping caps, lower than demo.cfg's.
SHORTER = ("--m2_max_epochs=4", "--m3_max_epochs=2")


def m1_checkpoint_step(m1_dir: Path) -> int:
    """The step of M1's latest checkpoint (its folder, ckpt-<step>)."""
    from geoloc_tf.m1.checkpoints import latest_checkpoint

    return int(latest_checkpoint(m1_dir / "checkpoints").name.split("-")[1])


@pytest.mark.network
def test_small_demo_runs_every_stage_and_reports(tmp_path, run_small_demo):
    run_dir = (tmp_path / "demo_small").resolve()
    # M2's and M3's early-stopping caps lowered (M1 trains as the demo does: its steps are
    # checked): model quality is not asserted here, and CI's time is bounded.
    result = run_small_demo(run_dir, *SHORTER)
    assert result.returncode == 0, result.stderr[-5000:]

    # Every stage ran and left its record; every artifact it names exists.
    names = [stage.name for stage in STAGES]
    assert names == ["mesh", "data", "m1", "predict", "m2", "m3", "evaluate", "export"]
    for name in names:
        record = json.loads((run_dir / "stages" / f"{name}.json").read_text())
        missing = [path for path in record["artifacts"].values() if not (run_dir / path).exists()]
        assert record["stage"] == name and not missing, (name, missing)

    # The data set: every demo photo written, none skipped, the three splits add up.
    summary = json.loads((run_dir / "data" / "summary.json").read_text())
    assert summary["lines_read"] == summary["examples_written"] == DEMO_SMALL_PHOTOS
    assert sum(summary["skipped"].values()) == 0
    splits = summary["splits"]
    assert set(splits) == {"m1_train", "m23_train", "m23_val"}
    assert sum(splits.values()) == DEMO_SMALL_PHOTOS

    # M1 trained the configured epochs (appendix A.1: one Adagrad cycle of `cycle_epochs` per
    # alpha, then the SGD epochs), each of full global batches, and its checkpoint is at the end.
    m1 = json.loads((run_dir / "config.json").read_text())["sections"]["m1"]
    history = json.loads((run_dir / "m1" / "history.json").read_text())
    epochs = len(m1["alpha_schedule"]) * m1["cycle_epochs"] + m1["sgd_epochs"]
    assert [record["epoch"] for record in history] == list(range(epochs))
    for record in history:
        assert record["steps"] == record["examples"] // m1["global_batch_size"] > 0, record
    total_steps = sum(record["steps"] for record in history)
    assert history[-1]["global_step"] == total_steps == m1_checkpoint_step(run_dir / "m1")
    assert (run_dir / "m1" / "m1.keras").stat().st_size > 0

    # Prediction tables: M1 on every split; M2, M3 and the averaging baselines on M2/M3's splits.
    expected_rows = {
        "m1": splits,
        "m2": {s: splits[s] for s in ("m23_train", "m23_val")},
        "m3": {s: splits[s] for s in ("m23_train", "m23_val")},
        "user_averaging": {"m23_val": splits["m23_val"]},
        "album_averaging": {"m23_val": splits["m23_val"]},
    }
    for model, tables in expected_rows.items():
        for split, rows in tables.items():
            table = pd.read_parquet(
                run_dir / "predictions" / model / f"{split}.parquet", columns=["photo_id"]
            )
            assert len(table) == rows and table["photo_id"].is_unique, (model, split)

    # The report: marked as simulated data, with a row for each model and baseline.
    report = (run_dir / "eval" / "report.md").read_text()
    assert "SIMULATED DATA" in report
    rows = table_first_cells(report)
    for label in REPORT_ROWS:
        assert any(label in row for row in rows), f"no report row with {label!r}"
    assert (run_dir / "eval" / "results.json").exists()

    for model in ("m1", "m2", "m3"):
        assert (run_dir / "export" / model / "saved_model.pb").is_file(), model

    # The summary printed at the end points to the report, TensorBoard and the exported models.
    out = result.stdout
    for name in names:
        assert re.search(rf"^  {name} +\d+\.\d s$", out, re.MULTILINE), f"stage {name} not reported as run"
    assert f"report:      {run_dir / 'eval' / 'report.md'}" in out
    assert f"tensorboard: tensorboard --logdir {run_dir / 'tensorboard'}" in out
    assert f"models:      {run_dir / 'export'}" in out

    # The same command again: every stage is done already, nothing runs.
    again = run_small_demo(run_dir, *SHORTER, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("skipped (done already)") == len(names)
