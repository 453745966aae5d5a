"""A stage that needs another Keras backend than the run's, run in a child process on that backend.

Keras reads ``KERAS_BACKEND`` once, when it is imported, so one process has one backend. A stage
that declares one (``Stage.backend``: the export stage's SavedModel, LiteRT and ONNX are TensorFlow
formats) runs, on a run of another backend, as ``python -m experiments.stages.child`` with
``KERAS_BACKEND`` set to it: the child reads the run's settings and writes the stage's artifacts to
files the parent gives it, and the stage's inputs are the run directory's files (``.keras`` models
load on either backend). The child's log lines pass through the parent's log; its failure is the
stage's failure, in one line (a traceback, for a bug, goes to the run's log file).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

from experiments.config import RunConfig
from experiments.errors import StageError, one_line, user_errors
from experiments.stages.registry import STAGE_BY_NAME, Stage
from geoloc_tf.run_layout import RunLayout

log = logging.getLogger(__name__)

#: Prefix of the child's last output line when the stage failed: the message the parent raises.
FAILED = "STAGE-FAILED "


def run_in_child(stage: Stage, config: RunConfig, run_dir: Path) -> dict[str, str]:
    """Runs ``stage`` in a child process on the Keras backend ``stage.backend``; its artifacts."""
    backend = str(stage.backend)
    if importlib.util.find_spec(backend) is None:
        raise StageError(
            f"stage {stage.name} needs the Keras {backend} backend ({stage.why_backend}), and "
            f"{backend} is not installed; install it (BUILD.md) or leave {stage.name} out of --stages"
        )
    log.info(
        "stage %s: on the Keras %s backend in a child process (%s)", stage.name, backend, stage.why_backend
    )
    with tempfile.TemporaryDirectory(prefix=f"geoloc-{stage.name}-") as folder:
        config_path, artifacts_path = Path(folder) / "config.json", Path(folder) / "artifacts.json"
        config_path.write_text(config.to_json())
        command = [
            sys.executable,
            "-m",
            __name__,
            stage.name,
            str(run_dir),
            str(config_path),
            str(artifacts_path),
        ]
        child = subprocess.Popen(
            command,
            # The parent's backend holds the accelerators (JAX takes 75 % of a GPU's memory when it
            # starts), so the child runs on the CPU: the export stage converts and checks there.
            env={**os.environ, "KERAS_BACKEND": backend, "CUDA_VISIBLE_DEVICES": ""},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        failure = None
        try:
            for line in child.stdout or ():
                if line.startswith(FAILED):
                    failure = line[len(FAILED) :].strip()
                elif line.strip():
                    log.info("[%s child] %s", stage.name, line.rstrip())
            child.wait()
        finally:
            if child.poll() is None:  # the parent was interrupted: so is the child
                child.terminate()
                child.wait()
        if child.returncode != 0:
            raise StageError(
                f"stage {stage.name} (child process on the Keras {backend} backend) failed: "
                + (failure or f"exit status {child.returncode}")
            )
        return json.loads(artifacts_path.read_text())


def main(argv: list[str]) -> int:
    """``python -m experiments.stages.child STAGE RUN_DIR CONFIG_JSON ARTIFACTS_JSON``."""
    from experiments.determinism import prepare_stage

    name, run_dir, config_path, artifacts_path = argv
    logging.basicConfig(level=logging.INFO, format="%(levelname).1s %(name)s] %(message)s", stream=sys.stdout)
    config = RunConfig.from_json(Path(config_path).read_text())
    try:
        prepare_stage(config.seed, deterministic=config.runtime.deterministic)
        artifacts = STAGE_BY_NAME[name].run(config, Path(run_dir))
    except user_errors() as error:
        print(FAILED + one_line(error).removeprefix("error: "), flush=True)
        return 1
    except Exception as error:  # a bug: its traceback in the run's log, one line for the parent
        log_file = RunLayout(run_dir).log_file
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "a") as file:
            file.write(traceback.format_exc())
        print(
            f"{FAILED}{type(error).__name__}: {one_line(error).removeprefix('error: ')} (traceback in {log_file})",
            flush=True,
        )
        return 1
    Path(artifacts_path).write_text(json.dumps(artifacts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
