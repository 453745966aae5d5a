"""m1_bench on any Keras backend: flags, the backend guard, the table's rows, and no TensorFlow on JAX.

One process has one Keras backend, so every run on JAX is a subprocess. ``sys.modules[name] = None``
makes a package absent as far as Python can tell (``import`` raises ModuleNotFoundError and
``importlib.util.find_spec`` returns None), which is how the tests stand in for a GPU machine with
only Keras and JAX installed.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from experiments.benchmarks import m1_bench

ROOT = Path(__file__).resolve().parents[2]
#: What a GPU machine with only keras + jax and their requirements lacks, installed here (Keras and
#: JAX import some of them, e.g. pandas, matplotlib, requests, only if present).
ABSENT = (
    *("tensorflow", "torch", "pandas", "pyarrow", "h3", "faiss", "apache_beam", "matplotlib", "PIL"),
    *("requests", "psutil", "zstandard", "etils", "flatbuffers", "dateutil", "urllib3", "six"),
)
HIDE = f"import sys\nfor name in {ABSENT!r}:\n    sys.modules[name] = None\n"
#: The smallest run: both networks at 75 px, batch 2, one warm-up and one timed step.
TINY = ["--backend=jax", "--synthetic", "--quick", "--batch_size=2", "--steps=1"]
INCEPTION_V4_PARAMS = 42_712_937  # slim's variable count (inception_v4.py's docstring)


def run_python(code: str, backend: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_backend_mismatch_is_one_line_before_keras_loads():
    done = run_python(
        "import sys\nfrom experiments.benchmarks import m1_bench\n"
        "code = m1_bench.main(sys.argv[1:])\nassert 'keras' not in sys.modules\nsys.exit(code)",
        "tensorflow",
        *TINY,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "error: --backend=jax but KERAS_BACKEND is set with backend 'tensorflow'; unset "
        "KERAS_BACKEND or pass --backend=tensorflow"
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--backend=jax"], "--synthetic is required"),
        (["--synthetic", "--image_size=60"], "--image_size=60; expected >= 75"),
        (["--synthetic", "--warmup_steps=0"], "--warmup_steps=0; expected >= 1"),
    ],
)
def test_bad_flags_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        m1_bench.parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_quick_sizes_yield_to_explicit_flags():
    args = m1_bench.parse_args(["--synthetic", "--quick", "--batch_size=2"])
    assert (args.image_size, args.batch_size, args.steps) == (75, 2, 2)
    assert m1_bench.parse_args(["--synthetic"]).image_size == 299


def result(device: str, image_size: int, v4_train: float) -> dict:
    row = lambda name, params, train, infer: {
        "network": name,
        "params": params,
        "gflops_per_image": 1.0,
        "compile_s": 1.0,
        "train_images_per_s": train,
        "infer_images_per_s": infer,
        "first_loss": 7.0,
        "last_loss": 6.0,
    }
    return {
        "backend": "jax",
        "backend_version": "0.10.2",
        "keras_version": "3.15.1",
        "device": device,
        "precision": "bf16",
        "image_size": image_size,
        "batch_size": 128,
        "steps": 30,
        "warmup_steps": 3,
        "num_cells": 1001,
        "rows": [row("inception_v4", 40, v4_train, 3000.0), row("inception_v3", 20, 2000.0, 6000.0)],
    }


def test_page_rows_compare_with_inception_v3_and_judge_the_target_only_on_a_gpu_at_299():
    gpu = m1_bench.page_rows(result("1 x NVIDIA H200 (gpu; the first one used)", 299, 1200.0))
    assert [(r.figure.split(",")[0], r.value, r.baseline_value, r.ratio) for r in gpu] == [
        ("M1 Inception-v4 train", 1200.0, 2000.0, 0.6),
        ("M1 Inception-v4 infer", 3000.0, 6000.0, 0.5),
    ]
    assert [r.met for r in gpu] == [True, None]
    assert "jax, bf16, 299 px, batch 128" in gpu[0].figure
    assert m1_bench.page_rows(result("1 x NVIDIA H200 (gpu)", 299, 900.0))[0].met is False
    cpu = m1_bench.page_rows(result("cpu, 2 cores", 299, 1200.0))
    assert [(r.target, r.met) for r in cpu] == [("", None), ("", None)]


def test_table_names_backend_device_precision_and_the_ratio():
    table = m1_bench.format_table(result("1 x NVIDIA H200 (gpu)", 299, 1200.0)).splitlines()
    assert table[0].startswith("# m1_bench: backend=jax 0.10.2, keras 3.15.1, device: 1 x NVIDIA H200")
    assert "precision=bf16, image_size=299, batch_size=128" in table[0]
    ratio = table[4].split()
    assert ratio[:4] == ["ratio", "Inception-v4", "/", "InceptionV3"]
    assert ratio[4:] == ["2.00", "1.00", "0.60", "0.50"]  # params, GFLOP, train, infer
    assert table[5].endswith(": met")


def test_geoloc_tf_imports_without_tensorflow_off_the_tensorflow_backend():
    code = HIDE + textwrap.dedent("""
        from geoloc_tf.m1 import inception_v4
        assert inception_v4.MIN_IMAGE_SIZE == 75
        try:
            import geoloc_tf.preprocessing
        except ModuleNotFoundError as error:
            print(error)
    """)
    done = run_python(code, "jax")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "import of tensorflow halted; None in sys.modules"


def test_geoloc_tf_says_tensorflow_is_missing_on_the_tensorflow_backend():
    done = run_python(HIDE + "import geoloc_tf", "tensorflow")
    assert done.returncode == 1
    assert "ImportError: geoloc_tf needs TensorFlow 2.21 on the Keras 'tensorflow' backend" in done.stderr


@pytest.mark.slow
def test_jax_bench_does_not_import_tensorflow(tmp_path):
    code = """
        import json, sys
        from experiments.benchmarks import m1_bench
        code = m1_bench.main(sys.argv[1:])
        print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] == "tensorflow")))
        sys.exit(code)
    """
    done = run_python(code, "jax", *TINY, f"--json={tmp_path / 'out.json'}")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []
    out = json.loads((tmp_path / "out.json").read_text())
    assert (out["backend"], out["image_size"], out["batch_size"]) == ("jax", 75, 2)
    v4, v3 = out["rows"]
    assert v4["params"] == INCEPTION_V4_PARAMS
    assert all(math.isfinite(r["last_loss"]) and r["train_images_per_s"] > 0 for r in (v4, v3))


@pytest.mark.slow
def test_jax_bench_runs_with_only_keras_and_jax_installed():
    code = HIDE + "from experiments.benchmarks import m1_bench\nsys.exit(m1_bench.main(sys.argv[1:]))"
    done = run_python(code, "jax", *TINY)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    heading = next(line for line in lines if line.startswith("# m1_bench:"))
    assert "backend=jax" in heading and "device: cpu" in heading
    assert next(line for line in lines if line.startswith("ratio Inception-v4 / InceptionV3"))
