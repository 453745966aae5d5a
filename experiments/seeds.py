"""Runs one configuration once per seed and says in how many seeds each of the demo's findings holds.

    python -m experiments.seeds --seeds=0,1,2 --flagfile=demo.cfg
    python -m experiments.seeds --seeds=0,1 --flagfile=demo.cfg --data_demo_size=small --runs_dir=runs/seeds_small

Every flag other than `--seeds`, `--runs_dir` and `--out` goes to `experiments.run`, which runs
seed N (`--data_seed=N`: the splits, the demo collection, the curriculum, every model's
initialization) into `RUNS_DIR/seedN`. A finished run is reused (the runner skips what is done), so
adding a seed costs one run. Runs are deterministic (`--runtime_deterministic`, on by default): a
seed's tables are the same on every rerun, so what varies here is the seed and nothing else.

The findings are read from each run's `eval/tables.json` (geoloc_tf.evaluation.tables); the result
is a Markdown table, printed and written to `--out` (default `RUNS_DIR/findings.md`).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any, Callable, Sequence, cast

from experiments.errors import ConfigError, GeolocUserError
from mesh.atomic import write_text_atomic

EXIT_USER_ERROR = 2
#: Flags this script sets for each run itself.
OWN_RUN_FLAGS = ("--run_dir", "--data_seed")
WILCOXON_P = 0.01
#: A stage line of the runner's log ("... stage m1: finished in 95.2 s").
STAGE_LINE = re.compile(r"\] stage (\w+: (?:running|finished)[^\n]*)")

#: The report's row names of the models (geoloc_tf.evaluation.predictions.MODEL_NAMES; not imported,
#: so that this script starts without pandas or TensorFlow).
M1, M2, M3 = "Inception (M1)", "Time Inputs (M2)", "User Albums Time Inputs (M3)"
MOST_FREQUENT = "Most Frequent Cell"


@dataclasses.dataclass(frozen=True)
class Options:
    seeds: tuple[int, ...]
    runs_dir: Path
    out: Path
    run_flags: tuple[str, ...]


def parse_args(argv: Sequence[str]) -> Options:
    """This script's three flags; the rest are the runner's. Raises ConfigError naming the flag."""
    seeds, runs_dir, out, run_flags = None, Path("runs/seeds"), None, []
    for arg in argv:
        name, _, value = arg.partition("=")
        if name == "--seeds":
            if not re.fullmatch(r"\d+(,\d+)*", value):
                raise ConfigError(
                    f"--seeds={value!r}: expected comma-separated non-negative integers, e.g. --seeds=0,1,2"
                )
            seeds = tuple(dict.fromkeys(int(s) for s in value.split(",")))
        elif name == "--runs_dir":
            if not value:
                raise ConfigError("--runs_dir: expected a folder that holds one run directory per seed")
            runs_dir = Path(value).expanduser()
        elif name == "--out":
            if not value:
                raise ConfigError("--out: expected the Markdown file to write the findings to")
            out = Path(value).expanduser()
        elif name in OWN_RUN_FLAGS:
            raise ConfigError(
                f"{name}: set by experiments.seeds for each seed (RUNS_DIR/seedN); use "
                "--seeds and --runs_dir instead"
            )
        else:
            run_flags.append(arg)
    if seeds is None:
        raise ConfigError("--seeds is required, e.g. --seeds=0,1,2")
    if runs_dir.exists() and not runs_dir.is_dir():
        raise ConfigError(f"--runs_dir={runs_dir}: is a file; expected a folder")
    return Options(seeds, runs_dir, out or runs_dir / "findings.md", tuple(run_flags))


def run_seed(options: Options, seed: int) -> Path:
    """Runs (or resumes) the runner for one seed in its own process; returns its run directory."""
    run_dir = options.runs_dir / f"seed{seed}"
    command = [
        sys.executable,
        "-m",
        "experiments.run",
        *options.run_flags,
        f"--data_seed={seed}",
        f"--run_dir={run_dir}",
    ]
    started = time.monotonic()
    tail: collections.deque[str] = collections.deque(maxlen=40)
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as run:
        stderr = cast(IO[str], run.stderr)  # stderr=PIPE above: a stream, never None
        for line in stderr:  # the runner's log: pass on its stage lines as progress
            tail.append(line)
            if match := STAGE_LINE.search(line):
                print(f"seed {seed}: stage {match.group(1)}", flush=True)
    if run.returncode == EXIT_USER_ERROR:  # the runner's one-line error: a flag, a run directory
        lines = "".join(tail).strip().splitlines() or ["(no message)"]
        raise ConfigError(f"seed {seed}: {lines[-1].removeprefix('error: ')}")
    if run.returncode != 0:
        raise RuntimeError(
            f"seed {seed}: experiments.run exited {run.returncode}; see "
            f"{run_dir / 'logs' / 'run.log'}\n{''.join(tail)}"
        )
    print(f"seed {seed}: done in {time.monotonic() - started:.0f} s ({run_dir})", flush=True)
    return run_dir


def read_tables(run_dir: Path) -> dict[str, dict[str, Any]]:
    """The report's tables of a run, by key (table3, table4, table6, table7, wilcoxon)."""
    path = run_dir / "eval" / "tables.json"
    if not path.exists():
        raise ConfigError(f"{path}: not found; expected a run whose evaluate stage finished")
    return {table["key"]: table for table in json.loads(path.read_text())["tables"]}


def _accuracy(table: dict[str, Any], model: str, flag: bool) -> dict[float, float]:
    """Accuracy (%) by threshold (km) of the row of `model` whose second column (imagery centroid,
    outdoor only) is `flag`."""
    km = {
        i: float(m.group(1))
        for i, column in enumerate(table["columns"])
        if (m := re.search(r"(\d+(?:\.\d+)?) km$", column))
    }
    for row in table["rows"]:
        if model in row[0] and row[1] is flag:
            return {threshold: row[i] for i, threshold in km.items()}
    raise ConfigError(
        f"{table['key']}: no row for {model!r} ({table['columns'][1]}={flag}); "
        "expected a run with M1, M2 and M3"
    )


def _above(
    a: dict[float, float], b: dict[float, float], thresholds: Sequence[float], strict: bool = True
) -> tuple[bool, str]:
    """Whether `a` is above (`strict`) or at least `b` at every threshold, and the first where not."""
    for t in thresholds:
        if (a[t] <= b[t]) if strict else (a[t] < b[t]):
            return False, f"{t:g} km: {a[t]:.2f} vs {b[t]:.2f}"
    return True, ""


def _wilcoxon(tables: dict, better: str, worse: str) -> tuple[bool, str]:
    """Whether `better` has lower errors than `worse` with p < WILCOXON_P."""
    for name, *_, p_value, direction in tables["wilcoxon"]["rows"]:
        if better in name and worse in name:
            holds = p_value < WILCOXON_P and direction.startswith(f"{better} lower error")
            return holds, f"p {p_value:.2g}" + ("" if direction.startswith(better) else ", other way")
    return False, "not tested"


def _imagery_centroid(tables: dict) -> tuple[bool, str]:
    for model in (M1, M2, M3):
        holds, where = _above(
            _accuracy(tables["table3"], model, True),
            _accuracy(tables["table3"], model, False),
            (1.0, 25.0),
            strict=False,
        )
        if not holds:
            return False, f"{model} {where}"
    return True, ""


def _m1_above_most_frequent(tables: dict) -> tuple[bool, str]:
    return _above(
        _accuracy(tables["table6"], M1, False),
        _accuracy(tables["table6"], MOST_FREQUENT, False),
        (750.0, 2500.0),
    )


def _m2_above_m1(tables: dict) -> tuple[bool, str]:
    holds, where = _above(
        _accuracy(tables["table6"], M2, False), _accuracy(tables["table6"], M1, False), (200.0, 750.0, 2500.0)
    )
    significant, p_value = _wilcoxon(tables, M2, M1)
    return holds and significant, ", ".join(filter(None, (where, p_value)))


def _m3_above_m2(tables: dict) -> tuple[bool, str]:
    return _above(
        _accuracy(tables["table6"], M3, False),
        _accuracy(tables["table6"], M2, False),
        (25.0, 200.0, 750.0, 2500.0),
    )


def _outdoor_above_all(tables: dict) -> tuple[bool, str]:
    for model in (M1, M2, M3):
        outdoor, everything = (
            _accuracy(tables["table4"], model, True),
            _accuracy(tables["table4"], model, False),
        )
        holds, where = _above(outdoor, everything, tuple(outdoor), strict=False)
        if not holds:
            return False, f"{model} {where}"
    return True, ""


#: The README's findings: (statement, test on a run's tables -> (holds, detail)).
FINDINGS: tuple[tuple[str, Callable[[dict], tuple[bool, str]]], ...] = (
    ("Imagery centroid >= cell centroid as label point (M1, M2, M3; 1 and 25 km)", _imagery_centroid),
    ("M1 above the most-frequent-cell baseline (750 and 2500 km)", _m1_above_most_frequent),
    (f"M2 above M1 (200, 750, 2500 km), Wilcoxon p < {WILCOXON_P:g}", _m2_above_m1),
    ("M3 above M2 (25, 200, 750, 2500 km)", _m3_above_m2),
    (f"M3 lower errors than M2, Wilcoxon p < {WILCOXON_P:g}", lambda tables: _wilcoxon(tables, M3, M2)),
    ("Outdoor-only rows >= all-photo rows (M1, M2, M3; every threshold)", _outdoor_above_all),
)


def findings_table(tables_by_seed: dict[int, dict]) -> str:
    """Markdown: each finding, in how many seeds it holds, and per seed yes/no (with why not)."""
    seeds = list(tables_by_seed)
    lines = [
        "| Finding | Holds in | " + " | ".join(f"seed {s}" for s in seeds) + " |",
        "|---|---|" + "---|" * len(seeds),
    ]
    for statement, test in FINDINGS:
        results = [test(tables) for tables in tables_by_seed.values()]
        cells = [("yes" if holds else "no") + (f" ({detail})" if detail else "") for holds, detail in results]
        count = sum(holds for holds, _ in results)
        lines.append(f"| {statement} | {count} of {len(seeds)} seeds | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; `argv` excludes the program name. Returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(arg in ("-h", "--help", "-help") for arg in argv):
        print(__doc__)
        return 0
    try:
        options = parse_args(argv)
        try:
            options.runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(
                f"--runs_dir={options.runs_dir}: cannot be made a folder ({error.strerror})"
            ) from None
        tables_by_seed = {}
        for number, seed in enumerate(options.seeds, 1):
            print(
                f"seed {seed} ({number} of {len(options.seeds)}): python -m experiments.run "
                f"{' '.join(options.run_flags)} --data_seed={seed} "
                f"--run_dir={options.runs_dir / f'seed{seed}'}",
                flush=True,
            )
            tables_by_seed[seed] = read_tables(run_seed(options, seed))
    except GeolocUserError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    table = findings_table(tables_by_seed)
    command = " ".join(["python -m experiments.seeds", *argv])
    write_text_atomic(options.out, f"Findings of `{command}`\n\n{table}")
    print(table + f"\nwritten to {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
