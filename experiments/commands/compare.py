"""`geoloc compare RUN_DIR [RUN_DIR ...]`: the runs' accuracy, error and bias side by side.

    geoloc compare runs/coarse runs/fine runs/fineP [--labels=coarse,fine,fineP] [--out=DIR]

Reads each run's `eval/results.json` (written by the evaluate stage) and prints the runs side by side;
with two runs or more, also the paired differences of each later run from the first on the test
photos both scored, with their 95 % intervals (read from the runs' prediction tables: e.g. M1 with
and without a setting, same seed). With --out it writes compare.md, compare.csv and
compare_differences.csv (``geoloc_tf.evaluation.compare``). It has no settings: the runs, their
column labels and the output folder are its inputs.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from absl import flags

from experiments.commands import Command, missing_files_are_user_errors


def _define_inputs(flag_values: flags.FlagValues) -> None:
    flags.DEFINE_list(
        "labels",
        None,
        "Column labels, one per run (default: the runs' folder names).",
        flag_values=flag_values,
    )
    flags.DEFINE_string("out", None, "Folder to write compare.md and compare.csv.", flag_values=flag_values)


def _run(_: dict[str, Any], inputs: flags.FlagValues, runs: list[str]) -> int:
    from geoloc_tf.evaluation.compare import compare_runs

    with missing_files_are_user_errors():
        paths: list[str | os.PathLike] = list(runs)
        tables, files = compare_runs(paths, inputs.out, inputs.labels)
    print("\n\n".join(table.to_markdown() for table in tables))
    for path in files.values():
        print(f"wrote {path}", file=sys.stderr)
    return 0


COMMAND = Command(
    name="compare",
    summary="Put several runs' results side by side (accuracy, error, bias).",
    define_inputs=_define_inputs,
    positional="RUN_DIR [RUN_DIR ...]",
    run=_run,
)
