"""`geoloc compare RUN_DIR [RUN_DIR ...]`: the runs' accuracy, error and bias side by side.

    geoloc compare runs/coarse runs/fine runs/fineP [--labels=coarse,fine,fineP] [--out=DIR]

Reads each run's `eval/results.json` (written by the evaluate stage), prints one markdown table and,
with --out, writes it as compare.md and compare.csv.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from geoloc_tf.errors import EvaluationError
from geoloc_tf.evaluation.compare import compare_runs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="geoloc compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories (or eval dirs, or results.json)")
    parser.add_argument("--labels", default=None, help="comma-separated column labels, one per run")
    parser.add_argument("--out", default=None, help="folder to write compare.md and compare.csv")
    args = parser.parse_args(argv)
    labels = args.labels.split(",") if args.labels else None
    try:
        table, files = compare_runs(args.runs, args.out, labels)
    except (EvaluationError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(table.to_markdown())
    for path in files.values():
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
