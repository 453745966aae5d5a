"""Runs the geoloc method, stage by stage, on a run directory.

    python -m experiments.run --flagfile=demo.cfg          # the embedded demo data set
    python -m experiments.run --flagfile=coarse.cfg --data_metadata=yfcc100m_dataset.bz2 --data_images=DIR

Stages, in order: mesh, data, m1, predict, m2, m3, evaluate, export (`--stages` picks some). The
resolved flags are written to `run_dir/config.json`; a stage whose outputs exist for the same settings
is skipped, so rerunning the same command after a crash or Ctrl-C continues where it stopped.
`--force_stages` redoes named stages. Bare flagfile names resolve to experiments/configs/.

Keras runs on TensorFlow (the default) or JAX (`KERAS_BACKEND=jax`, the `jax` extra); tf.data stays
the input pipeline on both, and the export stage, whose formats are TensorFlow's, runs on
TensorFlow in a child process. `config.json` and each stage's record say which backend ran.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Sequence

from experiments import flags as geoloc_flags
from experiments.config import RunConfig
from experiments.determinism import deterministic_xla
from experiments.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, ConfigError, one_line, user_errors
from experiments.stages import StageOutcome, run_stages
from geoloc_tf.run_layout import RunLayout
from mesh.atomic import write_text_atomic

FLAGS = geoloc_flags.FLAGS
HELP_FLAGS = ("--help", "-help", "--helpshort", "-helpshort", "--helpfull", "-helpfull", "-h", "-?")

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
    current_stage: dict[str, str | None] = {"name": None}

    def on_stage_start(name: str, why: str) -> None:
        current_stage["name"] = name
        before_stage(config, name)

    try:
        rest = geoloc_flags.parse(argv)
        if len(rest) > 1:
            raise ConfigError(f"unexpected argument(s) {' '.join(rest[1:])}; every setting is a --flag")
        if not FLAGS.run_dir:
            raise ConfigError("--run_dir is required (the presets set one)")
        config = geoloc_flags.run_config_from_flags()
        check_backend(FLAGS.stages)
        if config.runtime.deterministic:
            deterministic_xla()  # before anything starts JAX's backend
        run_dir = usable_run_dir(FLAGS.run_dir)
        check_sources(config, FLAGS.stages)
        check_combinations(config, FLAGS.stages)  # last: counting devices starts TensorFlow
        _setup_logging(run_dir)
        write_config(run_dir, config, argv)
        log.info("run directory %s; stages %s", run_dir, ", ".join(FLAGS.stages))
        outcomes = run_stages(
            config,
            run_dir,
            FLAGS.stages,
            FLAGS.force_stages,
            on_stage_start=on_stage_start,
        )
    except user_errors() as error:
        print(one_line(error), file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        where = f" during stage {current_stage['name']}" if current_stage["name"] else ""
        print(
            f"\ninterrupted{where}; nothing finished was lost. Rerun the same command to resume.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print(summary(run_dir, outcomes))
    return 0


def usable_run_dir(value: str) -> Path:
    """The run directory as an absolute path, checked before anything is written.

    Refused with one line: a path that is a file, one under a file, or a folder (or the nearest
    existing parent of one to be made) that this process cannot write.
    """
    path = Path(value).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--run_dir={value}: {path} is a file; expected a folder (new or a previous run's)")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(
            f"--run_dir={value}: {existing} is a file, so no folder can be made under "
            "it; expected a folder path"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"--run_dir={value}: {existing} is not writable by this user")
    return path.resolve() if path.exists() else path


#: Stages that run without Keras (numpy and scipy only).
STAGES_WITHOUT_KERAS = ("mesh",)


#: The Keras backends the stages run on (KERAS_BACKEND), each with the distributions that install
#: its library. On JAX, the export stage, whose formats are TensorFlow's, runs in a child process
#: on TensorFlow (``experiments.stages.child``).
BACKENDS = {"tensorflow": ("tensorflow", "tensorflow-cpu"), "jax": ("jax",)}


def check_backend(stages: Sequence[str]) -> None:
    """Refuses, before anything is written, to run Keras stages on a backend other than
    ``BACKENDS``, or on JAX without jax installed; one line each."""
    if all(stage in STAGES_WITHOUT_KERAS for stage in stages):
        return
    from geoloc_tf import keras_backend

    backend = keras_backend()
    if backend not in BACKENDS:
        raise ConfigError(
            f"Keras backend {backend!r} (KERAS_BACKEND or ~/.keras/keras.json): the runner's stages "
            f"run on {' and '.join(BACKENDS)}; unset KERAS_BACKEND or set it to one of them"
        )
    if backend == "jax" and importlib.util.find_spec("jax") is None:
        raise ConfigError(
            'KERAS_BACKEND=jax, but jax is not installed: pip install -e ".[jax]" (BUILD.md), or '
            "unset KERAS_BACKEND for TensorFlow"
        )


def environment(config: RunConfig) -> dict[str, object]:
    """What the run's Keras computes on: the backend and its library's version; on JAX also the
    devices (``jax.devices()``), except under ``multi_worker``, where JAX's distributed runtime must
    start before anything lists devices. Read without importing Keras or TensorFlow."""
    from geoloc_tf import keras_backend

    backend = keras_backend()
    found: dict[str, object] = {"keras_backend": backend, "keras_version": _version("keras")}
    if backend in BACKENDS:
        found[f"{backend}_version"] = _version(*BACKENDS[backend])
    if backend == "jax" and config.runtime.strategy != "multi_worker":
        import jax

        found["devices"] = [str(device) for device in jax.devices()]
    return found


def _version(*distributions: str) -> str | None:
    """The version of the first of ``distributions`` installed, without importing it."""
    for distribution in distributions:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def check_sources(config: RunConfig, stages: Sequence[str]) -> None:
    """Checks that the files the settings name exist, before any work starts (the settings' own
    rules ran when the flags were parsed)."""
    if "data" in stages and config.data.source == "metadata":
        missing = [path for path in config.data.metadata if not Path(path).expanduser().exists()]
        if missing:
            raise ConfigError(f"--data_metadata: file(s) not found: {', '.join(missing)}")
        if not config.data.images or not Path(config.data.images).expanduser().is_dir():
            raise ConfigError(f"--data_images: {config.data.images!r} is not a folder of photos")
    if config.mesh.coords and not Path(config.mesh.coords).expanduser().is_file():
        raise ConfigError(f"--mesh_coords: file not found: {config.mesh.coords}")


def check_combinations(config: RunConfig, stages: Sequence[str]) -> None:
    """Checks the rules that tie settings of different sections together, before any stage runs
    or anything is written (each setting's own rules ran when the flags were parsed): found inside
    a stage, such a mistake would cost the stages before it.

    - M1's global batch splits evenly over the replicas of ``--runtime_strategy`` (tf.distribute
      and keras.distribution give each replica global / replicas photos). The replicas are counted
      from the devices (``geoloc_tf.distribute.replica_count``); under ``multi_worker`` they are
      known only once the cluster has started, so the M1 stage checks them itself.
    """
    if "m1" in stages:
        from geoloc_tf.distribute import replica_count

        replicas = replica_count(config.runtime.strategy)
        batch = config.m1.global_batch_size
        if replicas is not None and batch % replicas:
            raise ConfigError(
                f"--m1_global_batch_size={batch} does not split over the {replicas} replicas of "
                f"--runtime_strategy={config.runtime.strategy}; expected a multiple of {replicas}"
            )


def before_stage(config: RunConfig, stage: str) -> None:
    """Seeds every random generator (and, with --runtime_deterministic, makes TensorFlow's ops
    deterministic), so a stage draws the same numbers in a resumed run as in a fresh one. The mesh
    stage is NumPy alone: it does not pay TensorFlow's import."""
    from experiments.determinism import prepare_stage

    prepare_stage(config.seed, deterministic=config.runtime.deterministic, tensorflow=stage != "mesh")


def write_config(run_dir: Path, config: RunConfig, argv: Sequence[str]) -> Path:
    """Writes the resolved settings, the command line and the Keras backend (``environment``) to
    run_dir/config.json, atomically. Only the settings decide whether a finished stage is current
    (``experiments.stages.runner``): a run made on one backend resumes on the other."""
    payload = json.loads(config.to_json())
    payload["environment"] = environment(config)
    payload["invocation"] = {
        "argv": list(argv[1:]),
        "run_dir": str(run_dir),
        "stages": list(FLAGS.stages),
        "force_stages": list(FLAGS.force_stages),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = RunLayout(run_dir).config
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True))
    return path


def read_config(run_dir: Path) -> RunConfig:
    """The RunConfig a run directory was made with."""
    path = RunLayout(run_dir).config
    if not path.exists():
        raise ConfigError(f"{path} not found: not a geoloc run directory")
    try:
        return RunConfig.from_json(path.read_text())
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"{path}: {error}") from None


#: Name of the log handlers the runner adds, so that a second run in one process replaces them.
_LOG_HANDLER = "geoloc.run"


def _setup_logging(run_dir: Path) -> None:
    layout = RunLayout(run_dir)
    layout.logs_dir.mkdir(parents=True, exist_ok=True)
    formatter = logging.Formatter("%(asctime)s %(levelname).1s %(name)s] %(message)s", "%H:%M:%S")
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in list(root.handlers):
        if handler.get_name() == _LOG_HANDLER:
            root.removeHandler(handler)
    for handler in (logging.StreamHandler(sys.stderr), logging.FileHandler(layout.log_file)):
        handler.setFormatter(formatter)
        handler.set_name(_LOG_HANDLER)
        root.addHandler(handler)


def summary(run_dir: Path, outcomes: list[StageOutcome]) -> str:
    """What the run did and where its results are."""
    lines = [f"geoloc run {run_dir}"]
    for outcome in outcomes:
        timing = f"{outcome.seconds:8.1f} s" if outcome.action == "ran" else "  skipped (done already)"
        lines.append(f"  {outcome.name:<9}{timing}")
    layout = RunLayout(run_dir)
    if layout.eval_report.exists():
        lines.append(f"report:      {layout.eval_report}")
    if layout.tensorboard_dir.exists():
        lines.append(f"tensorboard: tensorboard --logdir {layout.tensorboard_dir}")
    if layout.export_dir.exists():
        lines.append(f"models:      {layout.export_dir}")
    lines.append(f"config:      {layout.config}   log: {layout.log_file}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
