"""Runs the geoloc method, stage by stage, on a run directory.

    python -m experiments.run --flagfile=demo.cfg          # the embedded demo data set
    python -m experiments.run --flagfile=coarse.cfg --data_metadata=yfcc100m_dataset.bz2 --data_images=DIR

Stages, in order: mesh, data, m1, predict, m2, m3, evaluate, export (`--stages` picks some). The
resolved flags are written to `run_dir/config.json`; a stage whose outputs exist for the same settings
is skipped, so rerunning the same command after a crash or Ctrl-C continues where it stopped.
`--force_stages` redoes named stages. Bare flagfile names resolve to experiments/configs/.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Sequence

from experiments import flags as geoloc_flags
from experiments.config import RunConfig
from experiments.errors import ConfigError, GeolocUserError
from experiments.stages import StageOutcome, run_stages
from mesh.atomic import write_text_atomic

FLAGS = geoloc_flags.FLAGS
HELP_FLAGS = ("--help", "-help", "--helpshort", "-helpshort", "--helpfull", "-helpfull", "-h", "-?")
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

log = logging.getLogger("geoloc.run")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; `argv` excludes the program name (as argparse's). Returns the exit code."""
    argv = ["experiments.run", *(sys.argv[1:] if argv is None else argv)]
    # TensorFlow's BFC allocator on the CPU: the default one page-faults fresh memory for every
    # batch of float images, which caps the input pipeline (experiments/benchmarks/input_bench.py).
    # Set before any stage imports TensorFlow; a user's own setting wins.
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
    if any(arg in HELP_FLAGS for arg in argv[1:]):
        print(__doc__)
        print(FLAGS.get_help(include_special_flags=False))
        return 0
    current_stage = {"name": None}
    try:
        rest = geoloc_flags.parse(argv)
        if len(rest) > 1:
            raise ConfigError(f"unexpected argument(s) {' '.join(rest[1:])}; every setting is a --flag")
        if not FLAGS.run_dir:
            raise ConfigError("--run_dir is required (the presets set one)")
        config = geoloc_flags.run_config_from_flags()
        check_sources(config, FLAGS.stages)
        run_dir = Path(FLAGS.run_dir).expanduser().resolve()
        _setup_logging(run_dir)
        write_config(run_dir, config, argv)
        log.info("run directory %s; stages %s", run_dir, ", ".join(FLAGS.stages))
        outcomes = run_stages(config, run_dir, FLAGS.stages, FLAGS.force_stages,
                              on_stage_start=lambda name, why: (current_stage.update(name=name),
                                                                before_stage(config, name)))
    except GeolocUserError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        where = f" during stage {current_stage['name']}" if current_stage["name"] else ""
        print(f"\ninterrupted{where}; nothing finished was lost. Rerun the same command to resume.",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    print(summary(run_dir, outcomes))
    return 0


def check_sources(config: RunConfig, stages: Sequence[str]) -> None:
    """Cross-flag checks that single-flag validators cannot make, done before any work starts."""
    if "data" in stages and config.data.source == "metadata":
        if not config.data.metadata:
            raise ConfigError("--data_source=metadata needs --data_metadata=FILE[,FILE...] (YFCC100M or "
                              "CSV metadata) and --data_images=DIR; or use --flagfile=demo.cfg")
        missing = [path for path in config.data.metadata if not Path(path).expanduser().exists()]
        if missing:
            raise ConfigError(f"--data_metadata: file(s) not found: {', '.join(missing)}")
        if not config.data.images or not Path(config.data.images).expanduser().is_dir():
            raise ConfigError(f"--data_images: {config.data.images!r} is not a folder of photos")
    if config.mesh.coords and not Path(config.mesh.coords).expanduser().is_file():
        raise ConfigError(f"--mesh_coords: file not found: {config.mesh.coords}")
    if config.evaluate.knn_k and not config.predict.store_features:  # the M1 kNN row's index
        raise ConfigError("--evaluate_knn_k > 0 needs M1's features of every photo: add "
                          "--predict_store_features (or set --evaluate_knn_k=0)")


def before_stage(config: RunConfig, stage: str) -> None:
    """Seeds every random generator (and, with --runtime_deterministic, makes TensorFlow's ops
    deterministic), so a stage draws the same numbers in a resumed run as in a fresh one. The mesh
    stage is NumPy alone: it does not pay TensorFlow's import."""
    from experiments.determinism import prepare_stage

    prepare_stage(config.data.seed, deterministic=config.runtime.deterministic,
                  tensorflow=stage != "mesh")


def write_config(run_dir: Path, config: RunConfig, argv: Sequence[str]) -> Path:
    """Writes the resolved settings and the command line to run_dir/config.json, atomically."""
    payload = json.loads(config.to_json())
    payload["invocation"] = {
        "argv": list(argv[1:]),
        "run_dir": str(run_dir),
        "stages": list(FLAGS.stages),
        "force_stages": list(FLAGS.force_stages),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = run_dir / "config.json"
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True))
    return path


def read_config(run_dir: Path) -> RunConfig:
    """The RunConfig a run directory was made with."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise ConfigError(f"{path} not found: not a geoloc run directory")
    try:
        return RunConfig.from_json(path.read_text())
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"{path}: {error}") from None


def _setup_logging(run_dir: Path) -> None:
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    formatter = logging.Formatter("%(asctime)s %(levelname).1s %(name)s] %(message)s", "%H:%M:%S")
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in list(root.handlers):
        if getattr(handler, "_geoloc", False):
            root.removeHandler(handler)
    for handler in (logging.StreamHandler(sys.stderr), logging.FileHandler(run_dir / "logs" / "run.log")):
        handler.setFormatter(formatter)
        handler._geoloc = True  # type: ignore[attr-defined]
        root.addHandler(handler)


def summary(run_dir: Path, outcomes: list[StageOutcome]) -> str:
    """What the run did and where its results are."""
    lines = [f"geoloc run {run_dir}"]
    for outcome in outcomes:
        timing = f"{outcome.seconds:8.1f} s" if outcome.action == "ran" else "  skipped (done already)"
        lines.append(f"  {outcome.name:<9}{timing}")
    report = run_dir / "eval" / "report.md"
    if report.exists():
        lines.append(f"report:      {report}")
    if (run_dir / "tensorboard").exists():
        lines.append(f"tensorboard: tensorboard --logdir {run_dir / 'tensorboard'}")
    if (run_dir / "export").exists():
        lines.append(f"models:      {run_dir / 'export'}")
    lines.append(f"config:      {run_dir / 'config.json'}   log: {run_dir / 'logs' / 'run.log'}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
