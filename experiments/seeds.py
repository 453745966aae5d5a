"""Runs one configuration once per seed and says in how many seeds each of the demo's findings holds.

    python -m experiments.seeds --seeds=0,1,2 --flagfile=demo.cfg
    python -m experiments.seeds --seeds=0,1 --flagfile=demo.cfg --data_demo_size=small --runs_dir=runs/seeds_small

Every flag other than `--seeds`, `--runs_dir` and `--out` goes to `experiments.run`, which runs
seed N (`--data_seed=N`: the splits, the demo collection, the curriculum, every model's
initialization) into `RUNS_DIR/seedN`. A finished run is reused (the runner skips what is done), so
adding a seed costs one run. Runs are deterministic (`--runtime_deterministic`, on by default): a
seed's tables are the same on every rerun, so what varies here is the seed and nothing else.

The findings are read from each run's `eval/tables.json` (geoloc_tf.evaluation.tables): its
"differences" table, the paired differences X - Y of the report with their 95 % intervals
(geoloc_tf.evaluation.uncertainty: a bootstrap over the test photographers, both rows on the same
resampled photographers). A finding "X above Y" holds in a seed only when, at each threshold it
names, the interval of X - Y lies above 0: a positive point difference whose interval reaches 0 or
below does not hold, as the test sample does not tell it from no difference. The two "X >= Y"
findings (imagery vs cell centroid, outdoor vs all photos) hold on the same condition, except that
an interval of exactly [0, 0] (the two rows equal in every resample, e.g. both 0 % at 1 km) counts
as the tie that ">=" allows. "M3 lower mean error than M2" holds when the interval of M3 - M2 mean
error lies below 0. A difference over no photos (tables.json writes its NaN as null, e.g. an
outdoor-only row of a run with no outdoor photo) does not hold, and the cell says "no photos". Each
cell gives the difference and its interval where the finding fails, or where it holds most narrowly;
the Wilcoxon p-value is shown as information (it treats photos as independent, which photos of one
photographer are not). The seeds cover what the intervals do not:
the randomness of training.

Improvements are measured the same way, against the seed's own run ("the base run"):

- `--variant=NAME:FLAGS` (repeatable) runs every seed a second time with FLAGS added (one
  argument; flags separated by spaces, e.g. `--variant="smoothing:--m1_label_smoothing_km=250
  --stages=mesh,data,m1,predict"`) into `RUNS_DIR/NAME/seedN`. The variant's M1 is
  compared with the base run's M1 on the test photos both scored, paired by photo and
  photographer (`geoloc_tf.evaluation.compare.run_differences`, as `geoloc compare` does); the
  variant needs only its predict stage, so `--stages=mesh,data,m1,predict` saves training M2 and
  M3 on a variant that may not be kept.
- `--row=NAME:MODEL` (repeatable) names an improvement that is a row of the base run's own
  report (e.g. `--row=retrieval:m1_cell_retrieval`): MODEL - M1 from its "differences" table.

An improvement "helps" at 25 km, at 200 km or in GeoScore in a seed when the 95 % interval of its
difference from M1 lies above 0 there. The improvement table says in how many seeds it helps at
each, with each seed's difference and interval.

The result is a Markdown table (two with improvements), printed and written to `--out` (default
`RUNS_DIR/findings.md`).
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
from typing import IO, Any, Callable, NamedTuple, Sequence, cast

from experiments.errors import ConfigError, GeolocUserError
from geoloc_tf.run_layout import TABLES_FILE, RunLayout
from mesh.atomic import write_text_atomic

EXIT_USER_ERROR = 2
#: Flags this script sets for each run itself.
OWN_RUN_FLAGS = ("--run_dir", "--data_seed")
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
    variants: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (name, extra flags)
    rows: tuple[tuple[str, str], ...] = ()  # (name, model folder of the base run)


#: A variant's or a row's name: a folder name under RUNS_DIR.
IMPROVEMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _named(flag: str, value: str, what: str) -> tuple[str, str]:
    """``NAME:REST`` of ``--variant`` / ``--row``; ConfigError naming the flag otherwise."""
    name, colon, rest = value.partition(":")
    if not colon or not IMPROVEMENT_NAME.fullmatch(name) or not rest.strip() or name.startswith("seed"):
        raise ConfigError(
            f"{flag}={value!r}: expected NAME:{what}, NAME made of letters, digits, '_', '.', '-' "
            "(not starting with 'seed')"
        )
    return name, rest.strip()


def parse_args(argv: Sequence[str]) -> Options:
    """This script's three flags; the rest are the runner's. Raises ConfigError naming the flag."""
    seeds, runs_dir, out, run_flags = None, Path("runs/seeds"), None, []
    variants: list[tuple[str, tuple[str, ...]]] = []
    rows: list[tuple[str, str]] = []
    for arg in argv:
        name, _, value = arg.partition("=")
        if name == "--variant":
            variant, flags = _named(name, value, "FLAGS")
            extra = tuple(flags.split())
            if bad := [f for f in extra if not f.startswith("--") or f.partition("=")[0] in OWN_RUN_FLAGS]:
                raise ConfigError(
                    f"--variant={value!r}: {bad[0]!r} is not a runner flag it may set; expected "
                    "--name=value flags other than --run_dir and --data_seed"
                )
            variants.append((variant, extra))
        elif name == "--row":
            rows.append(_named(name, value, "MODEL"))
        elif name == "--seeds":
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
    names = [n for n, _ in variants] + [n for n, _ in rows]
    if len(set(names)) != len(names):
        raise ConfigError(f"--variant/--row: names {names} repeat; expected one name per improvement")
    return Options(
        seeds, runs_dir, out or runs_dir / "findings.md", tuple(run_flags), tuple(variants), tuple(rows)
    )


def run_seed(options: Options, seed: int, variant: tuple[str, tuple[str, ...]] | None = None) -> Path:
    """Runs (or resumes) the runner for one seed in its own process, with a variant's flags after
    the base ones; returns its run directory (``RUNS_DIR/seedN`` or ``RUNS_DIR/NAME/seedN``)."""
    run_dir = options.runs_dir / f"seed{seed}"
    extra: tuple[str, ...] = ()
    if variant is not None:
        run_dir = options.runs_dir / variant[0] / f"seed{seed}"
        extra = variant[1]
    command = [
        sys.executable,
        "-m",
        "experiments.run",
        *options.run_flags,
        *extra,
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
            f"{RunLayout(run_dir).log_file}\n{''.join(tail)}"
        )
    print(f"seed {seed}: done in {time.monotonic() - started:.0f} s ({run_dir})", flush=True)
    return run_dir


def read_tables(run_dir: Path) -> dict[str, dict[str, Any]]:
    """The report's tables of a run, by key (table3, table4, table6, table7, wilcoxon)."""
    path = RunLayout(run_dir).eval_tables
    if not path.exists():
        raise ConfigError(f"{path}: not found; expected a run whose evaluate stage finished")
    return {table["key"]: table for table in json.loads(path.read_text())["tables"]}


#: Where a run's tables lack the intervals (``--evaluate_bootstrap_samples=0``).
NO_INTERVAL = "no interval: the run was evaluated with --evaluate_bootstrap_samples=0"

#: Where a difference covers no photos (tables.json writes its NaN as null: an outdoor-only row of a
#: run with no outdoor photo).
NO_PHOTOS = "no photos"


class Difference(NamedTuple):
    """A difference B - A at one column: its value (None where the rows hold no photos) and the ends
    of its 95 % interval (None without one); ``intervals``: whether the run's tables carry intervals
    at all (False: evaluated with the bootstrap off)."""

    value: float | None
    lo: float | None
    hi: float | None
    intervals: bool


def _difference(tables: dict, b: str, a: str) -> dict[str, Difference]:
    """The report's paired difference B - A (its "differences" table: rows B, A, then each number
    with ``<column> lo`` and ``<column> hi``), by column: accuracy columns keyed by their threshold
    ("25" for "City 25 km"), "mean" and "median" for the errors."""
    table = tables.get("differences")
    if table is None:
        raise ConfigError(
            f"{TABLES_FILE}: no 'differences' table; expected a run evaluated by this version of geoloc "
            "(rerun its evaluate stage)"
        )
    columns = table["columns"]
    intervals = any(column.endswith(" lo") for column in columns)
    for row in table["rows"]:
        if row[0].endswith(b) and row[1].endswith(a):
            out = {}
            for i, column in enumerate(columns):
                if m := re.search(r"(\d+(?:\.\d+)?) km$", column):
                    key = f"{float(m.group(1)):g}"
                elif column in ("Mean (km)", "Median (km)"):
                    key = column.split()[0].lower()
                else:
                    continue
                ends = [
                    row[columns.index(f"{column} {e}")] if f"{column} {e}" in columns else None
                    for e in ("lo", "hi")
                ]
                out[key] = Difference(row[i], ends[0], ends[1], intervals)
            return out
    raise ConfigError(
        f"differences: no row {b!r} - {a!r}; expected a run with M1, M2 and M3 (and outdoor probabilities)"
    )


def _shown(where: str, d: Difference, km: bool = False) -> str:
    value, lo, hi, intervals = d
    if value is None:
        return f"{where}: {NO_PHOTOS}"
    if lo is None or hi is None:
        return f"{where}: {value:+.2f}, {NO_INTERVAL if not intervals else 'no interval'}"
    if km:
        return f"{where}: {value:+,.0f} km [{lo:,.0f}, {hi:,.0f}]"
    return f"{where}: {value:+.2f} [{lo:.2f}, {hi:.2f}]"


def _above(
    diffs: Sequence[tuple[str, dict[str, Difference]]], thresholds: Sequence[float], at_least: bool = False
) -> tuple[bool, str]:
    """Whether X - Y lies above 0 at every threshold of every (name, difference): its 95 % interval
    excludes 0 from below. `at_least` (an "X >= Y" finding) also accepts an interval of [0, 0],
    where the two rows agree in every resample (both 0 % at 1 km, say): a tie, which ">=" allows,
    where any other interval touching 0 does not show X >= Y. The detail is the first place where
    the finding fails, else the weakest (lowest interval end) place where it holds."""
    weakest: tuple[float, str] | None = None
    for name, diff in diffs:
        for t in thresholds:
            d = diff[f"{t:g}"]
            where = f"{name} {t:g} km".strip()
            if d.value is None or d.lo is None or d.hi is None:
                return False, _shown(where, d)
            lo, hi = d.lo, d.hi
            if at_least and lo == 0.0 and hi == 0.0:
                continue
            if lo <= 0.0:
                return False, _shown(where, d)
            if weakest is None or lo < weakest[0]:
                weakest = (lo, _shown(where, d))
    return True, weakest[1] if weakest else "equal in every resample"


def _wilcoxon_p(tables: dict, better: str, worse: str) -> str:
    """The Wilcoxon p-value of `better` against `worse` (information only: it treats photos as
    independent, which photos of one photographer are not)."""
    for name, *_, p_value, direction in tables["wilcoxon"]["rows"]:
        if better in name and worse in name:
            return f"Wilcoxon p {p_value:.2g}" + (
                "" if direction.startswith(f"{better} lower") else ", other way"
            )
    return "Wilcoxon not tested"


def _short(model: str) -> str:
    """ "M3" for "User Albums Time Inputs (M3)"."""
    m = re.search(r"\((M\d)\)$", model)
    return m.group(1) if m else model


def _imagery_centroid(tables: dict) -> tuple[bool, str]:
    diffs = [
        (_short(m), _difference(tables, f"{m}, imagery centroid", f"{m}, cell centroid"))
        for m in (M1, M2, M3)
    ]
    return _above(diffs, (1.0, 25.0), at_least=True)


def _m1_above_most_frequent(tables: dict) -> tuple[bool, str]:
    return _above([("", _difference(tables, M1, MOST_FREQUENT))], (750.0, 2500.0))


def _m2_above_m1(tables: dict) -> tuple[bool, str]:
    holds, detail = _above([("", _difference(tables, M2, M1))], (200.0, 750.0, 2500.0))
    return holds, f"{detail}; {_wilcoxon_p(tables, M2, M1)}"


def _m3_above_m2(tables: dict) -> tuple[bool, str]:
    return _above([("", _difference(tables, M3, M2))], (25.0, 200.0, 750.0, 2500.0))


def _m3_lower_mean_error(tables: dict) -> tuple[bool, str]:
    """M3 - M2 mean error: holds when its interval lies below 0."""
    d = _difference(tables, M3, M2)["mean"]
    holds = d.value is not None and d.hi is not None and d.hi < 0.0
    return holds, f"{_shown('mean', d, km=True)}; {_wilcoxon_p(tables, M3, M2)}"


def _outdoor_above_all(tables: dict) -> tuple[bool, str]:
    diffs = [(_short(m), _difference(tables, f"{m}, outdoor only", f"{m}, all photos")) for m in (M1, M2, M3)]
    thresholds = tuple(float(k) for k in diffs[0][1] if k not in ("mean", "median"))
    return _above(diffs, thresholds, at_least=True)


#: The README's findings: (statement, test on a run's tables -> (holds, detail)).
FINDINGS: tuple[tuple[str, Callable[[dict], tuple[bool, str]]], ...] = (
    ("Imagery centroid >= cell centroid as label point (M1, M2, M3; 1 and 25 km)", _imagery_centroid),
    ("M1 above the most-frequent-cell baseline (750 and 2500 km)", _m1_above_most_frequent),
    ("M2 above M1 (200, 750, 2500 km)", _m2_above_m1),
    ("M3 above M2 (25, 200, 750, 2500 km)", _m3_above_m2),
    ("M3 lower mean error than M2", _m3_lower_mean_error),
    ("Outdoor-only rows >= all-photo rows (M1, M2, M3; every threshold)", _outdoor_above_all),
)


def findings_table(tables_by_seed: dict[int, dict]) -> str:
    """Markdown: each finding, in how many seeds it holds, and per seed yes/no with the difference
    and its 95 % interval where it fails (or holds most narrowly)."""
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


#: Where an improvement is judged: (column title, key of the difference record).
IMPROVEMENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("25 km", "25"),
    ("200 km", "200"),
    ("GeoScore", "geoscore"),
)


def _at(record: dict[str, Any], key: str) -> Difference:
    """One number of a difference record (``results["differences"]`` schema) with its interval."""
    interval = record.get("interval")
    if key == "geoscore":
        value, ends = record.get("geoscore"), (interval or {}).get("geoscore")
    else:
        value, ends = (
            record["accuracy_percent"].get(key),
            (interval or {}).get("accuracy_percent", {}).get(key),
        )
    lo, hi = ends if ends else (None, None)
    return Difference(value, lo, hi, interval is not None)


def row_difference(run_dir: Path, model: str) -> dict[str, Any]:
    """The base run's own paired difference MODEL - M1 (its results.json "differences")."""
    path = RunLayout(run_dir).eval_results
    if not path.exists():
        raise ConfigError(f"{path}: not found; expected a run whose evaluate stage finished")
    for record in json.loads(path.read_text()).get("differences") or []:
        if record["kind"] == "models" and record["a"]["model"] == "m1" and record["b"]["model"] == model:
            return record
    raise ConfigError(
        f"{path}: no difference {model} - m1; expected a run whose report has the {model!r} row "
        "(is its setting on?)"
    )


def variant_difference(base: Path, variant: Path) -> dict[str, Any]:
    """The variant run's M1 - the base run's M1 on the test photos both scored, paired."""
    from geoloc_tf.errors import EvaluationError
    from geoloc_tf.evaluation.compare import run_differences

    try:
        found = run_differences([base, variant], ["base", "variant"], models=["m1"])
    except EvaluationError as error:
        raise ConfigError(f"{variant}: {error}") from None
    if not found:
        raise ConfigError(f"{variant}: no M1 prediction table to compare with {base}")
    return found[0]


def improvements_table(differences: dict[str, dict[int, dict[str, Any]]]) -> str:
    """Markdown: each improvement, in how many seeds it helps at 25 km, 200 km and in GeoScore, and
    each seed's difference from M1 with its 95 % interval."""
    seeds = list(next(iter(differences.values()))) if differences else []
    titles = [title for title, _ in IMPROVEMENT_COLUMNS]
    lines = [
        "| Improvement | "
        + " | ".join(f"helps at {t}" for t in titles)
        + " | "
        + " | ".join(f"seed {s}: 25 km / 200 km / GeoScore" for s in seeds)
        + " |",
        "|---|" + "---|" * (len(titles) + len(seeds)),
    ]
    for name, by_seed in differences.items():
        counts = []
        for _, key in IMPROVEMENT_COLUMNS:
            helps = sum(1 for r in by_seed.values() if (d := _at(r, key)).lo is not None and d.lo > 0.0)
            counts.append(f"{helps} of {len(by_seed)} seeds")
        cells = []
        for record in by_seed.values():
            parts = []
            for _, key in IMPROVEMENT_COLUMNS:
                value, lo, hi, _ = _at(record, key)
                if value is None:
                    parts.append(NO_PHOTOS)
                elif lo is None or hi is None:
                    parts.append(f"{value:+.2f} (no interval)")
                else:
                    parts.append(f"{value:+.2f} [{lo:.2f}, {hi:.2f}]")
            cells.append(" / ".join(parts))
        lines.append(f"| {name} | " + " | ".join(counts) + " | " + " | ".join(cells) + " |")
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
        improvements: dict[str, dict[int, dict[str, Any]]] = {name: {} for name, _ in options.variants}
        improvements.update({name: {} for name, _ in options.rows})
        for number, seed in enumerate(options.seeds, 1):
            print(
                f"seed {seed} ({number} of {len(options.seeds)}): python -m experiments.run "
                f"{' '.join(options.run_flags)} --data_seed={seed} "
                f"--run_dir={options.runs_dir / f'seed{seed}'}",
                flush=True,
            )
            base = run_seed(options, seed)
            tables_by_seed[seed] = read_tables(base)
            for name, model in options.rows:
                improvements[name][seed] = row_difference(base, model)
            for variant in options.variants:
                print(f"seed {seed}, variant {variant[0]}: {' '.join(variant[1])}", flush=True)
                improvements[variant[0]][seed] = variant_difference(base, run_seed(options, seed, variant))
    except GeolocUserError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    table = findings_table(tables_by_seed)
    if improvements:
        table += "\nImprovements, each against M1 of the same seed's base run (paired differences, 95 % intervals):\n\n"
        table += improvements_table(improvements)
    command = " ".join(["python -m experiments.seeds", *argv])
    write_text_atomic(options.out, f"Findings of `{command}`\n\n{table}")
    print(table + f"\nwritten to {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
