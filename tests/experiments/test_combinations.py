"""Rules that tie settings of different sections together are checked before the first stage runs
(``experiments.run.check_combinations``): one ``error:`` line naming the flags, exit 2, nothing
written, not a failure inside the M1 stage after the mesh and data stages have run."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: Two logical CPUs, so that ``--runtime_strategy=mirrored`` has two replicas (set before anything
#: starts TensorFlow's runtime, hence a fresh interpreter); then the runner's own entry point.
TWO_REPLICAS = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from experiments import run
from experiments.config import SECTIONS, RunConfig
from geoloc_tf.distribute import replica_count
counts = {name: replica_count(name) for name in ("auto", "mirrored", "one_device", "multi_worker")}
even = RunConfig(data=SECTIONS["data"](source="demo"), m1=SECTIONS["m1"](global_batch_size=4),
                 runtime=SECTIONS["runtime"](strategy="mirrored"))
run.check_combinations(even, ["mesh", "data", "m1"])  # 4 photos split 2 + 2: accepted
print("COUNTS", json.dumps(counts), flush=True)
sys.exit(run.main(sys.argv[1:]))
"""


def test_a_batch_the_replicas_cannot_split_fails_before_any_stage_writes(tmp_path):
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            TWO_REPLICAS,
            "--flagfile=demo.cfg",
            f"--run_dir={run_dir}",
            "--stages=mesh,data,m1",
            "--runtime_strategy=mirrored",
            "--m1_global_batch_size=3",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "PYTHONPATH": str(REPO),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "KERAS_BACKEND": "tensorflow",
        },
    )
    counts = json.loads(result.stdout.split("COUNTS ", 1)[1].splitlines()[0])
    # the replicas come from the devices, no strategy built: mirrored spans both logical CPUs,
    # auto (no GPU) and one_device use one, multi_worker is known only once its cluster starts
    assert counts == {"auto": 1, "mirrored": 2, "one_device": 1, "multi_worker": None}
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        "error: --m1_global_batch_size=3 does not split over the 2 replicas of "
        "--runtime_strategy=mirrored; expected a multiple of 2"
    )
    assert "Traceback" not in result.stderr
    assert not run_dir.exists()  # neither config.json nor the mesh stage's outputs
