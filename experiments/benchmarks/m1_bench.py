"""M1 benchmark: Inception-v4 training and inference images/s next to InceptionV3, on any Keras backend.

    python -m experiments.benchmarks.m1_bench --backend=jax --image_size=299 --precision=bf16 --synthetic
        [--batch_size=128] [--warmup_steps=3] [--steps=30] [--num_cells=1001] [--quick] [--json=out.json]

In one process, on the chosen Keras backend (``tensorflow``, ``jax`` or ``torch``), it builds M1
(``geoloc_tf.m1.inception_v4`` at full width, the paper's network of §3.1.2) and, as the baseline,
``keras.applications.InceptionV3(weights=None)`` with the same input size and classes, under the
chosen dtype policy (``fp32``; ``bf16``: variables and compute in bfloat16; ``mixed_bf16``: float32
variables, bfloat16 compute). For each it times ``--steps`` SGD steps (``train_on_batch``) and
``--steps`` inference batches (``predict_on_batch``) on one synthetic batch, after ``--warmup_steps``
untimed steps of each (tracing and compilation; their time is the ``compile s`` column). The
batch's images are random uint8 values scaled to [-1, 1] as ``geoloc_tf.preprocessing`` scales
photos, and its labels random cells, both drawn with numpy on the host and placed on the device
once: the figures are the models' speed, not an input pipeline's (that is ``input_bench``). Each
step returns its loss or predictions to the host, so every timed step has finished when its clock
stops. It prints one table naming the backend, the device, the precision, the image size and the
batch, with the ratio of the two networks (Inception-v4 costs about 2.1 times InceptionV3's
forward FLOPs at 299 px, so a ratio near 0.5 is what the arithmetic predicts).

It imports only Keras, the backend's own package and numpy (plus ``geoloc_tf.m1.inception_v4``,
which imports only Keras): with ``--backend=jax`` or ``torch`` TensorFlow is never imported, so it
runs on a GPU machine that has JAX (or PyTorch) and Keras and no TensorFlow (BUILD.md, "M1 on a GPU
without TensorFlow"; ``experiments/benchmarks/gpu_m1_bench.sh``). The defaults are sized for one
GPU (a few minutes, compilation included); ``--quick`` is a CPU smoke size (75 px, batch 8, 2 timed
steps). ``measure`` gives the performance page's rows: one subprocess per installed backend.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from experiments.benchmarks.rows import BenchmarkRow
from experiments.errors import BenchmarkError

BACKENDS = ("tensorflow", "jax", "torch")
#: --precision -> Keras dtype policy.
POLICIES = {"fp32": "float32", "bf16": "bfloat16", "mixed_bf16": "mixed_bfloat16"}
NETWORKS = ("inception_v4", "inception_v3")
TITLES = {"inception_v4": "M1 Inception-v4", "inception_v3": "InceptionV3 (keras.applications)"}
#: Defaults for one GPU, and the --quick size for a CPU; an explicit flag wins over both.
GPU_SIZE = {"image_size": 299, "batch_size": 128, "warmup_steps": 3, "steps": 30}
QUICK_SIZE = {"image_size": 75, "batch_size": 8, "warmup_steps": 1, "steps": 2}
#: The project's own training-speed target for M1 at 299 px on one H100/H200-class GPU, shown in
#: the target column of BUILD.md's performance table for a GPU run at 299 px.
TARGET_TRAIN_IMAGES_PER_S = 1000.0


def parse_args(argv) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks.m1_bench", description=__doc__.split("\n\n")[0]
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="Keras backend (set as KERAS_BACKEND before Keras is imported); default: KERAS_BACKEND, "
        "else tensorflow",
    )
    p.add_argument("--precision", choices=sorted(POLICIES), default="fp32", help="dtype policy")
    p.add_argument(
        "--synthetic",
        action="store_true",
        help="random images and labels made with numpy on the host (required: the only data source)",
    )
    p.add_argument(
        "--image_size", type=int, default=None, help=f"input side (default {GPU_SIZE['image_size']})"
    )
    p.add_argument("--batch_size", type=int, default=None, help=f"default {GPU_SIZE['batch_size']}")
    p.add_argument(
        "--steps", type=int, default=None, help=f"timed steps of each kind (default {GPU_SIZE['steps']})"
    )
    p.add_argument(
        "--warmup_steps",
        type=int,
        default=None,
        help=f"untimed first steps (default {GPU_SIZE['warmup_steps']})",
    )
    p.add_argument("--num_cells", type=int, default=1001, help="softmax size (mesh cells)")
    p.add_argument("--quick", action="store_true", help="CPU smoke size: " + str(QUICK_SIZE))
    p.add_argument("--json", default=None, help="also write the table's rows to this JSON file")
    args = p.parse_args(argv)
    if not args.synthetic:
        p.error("--synthetic is required: the benchmark times the models on random batches")
    for name, value in (QUICK_SIZE if args.quick else GPU_SIZE).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.image_size < 75:
        p.error(f"--image_size={args.image_size}; expected >= 75 (both networks' smallest input)")
    for name in ("batch_size", "steps", "num_cells"):
        if getattr(args, name) < 1:
            p.error(f"--{name}={getattr(args, name)}; expected >= 1")
    if args.warmup_steps < 1:
        p.error(f"--warmup_steps={args.warmup_steps}; expected >= 1 (the first step compiles)")
    return args


def select_backend(requested: str | None) -> str:
    """Sets KERAS_BACKEND to ``requested`` before Keras is imported; refuses a different backend
    already chosen (an exported KERAS_BACKEND, or Keras imported on another backend)."""
    from geoloc_tf import keras_backend

    current = keras_backend()
    chosen = os.environ.get("KERAS_BACKEND") or ("keras" in sys.modules and current)
    backend = requested or current
    if chosen and chosen != backend:
        where = "Keras is already imported" if "keras" in sys.modules else "KERAS_BACKEND is set"
        raise BenchmarkError(
            f"--backend={backend} but {where} with backend {chosen!r}; unset KERAS_BACKEND or pass "
            f"--backend={chosen}"
        )
    if backend not in BACKENDS:
        raise BenchmarkError(f"Keras backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if importlib.util.find_spec(backend) is None:
        raise BenchmarkError(f"--backend={backend}: the {backend} package is not installed")
    os.environ["KERAS_BACKEND"] = backend
    return backend


def device_description(backend: str) -> str:
    """The device the backend computes on, e.g. "1 x NVIDIA H200 (gpu)" or "cpu, 2 cores"."""
    cpu = f"cpu, {os.cpu_count()} cores"
    if backend == "jax":
        import jax

        devices = jax.devices()
        if devices[0].platform == "cpu":
            return cpu
        return f"{len(devices)} x {devices[0].device_kind} ({devices[0].platform}; the first one used)"
    if backend == "torch":
        import torch

        if not torch.cuda.is_available():
            return cpu
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)} (cuda; the first one used)"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return cpu
    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
    return f"{len(gpus)} x {name} (gpu; the first one used)"


def build(network: str, args):
    import keras

    if network == "inception_v4":
        from geoloc_tf.m1.inception_v4 import InceptionV4Config, build_inception_v4

        return build_inception_v4(InceptionV4Config(num_cells=args.num_cells, image_size=args.image_size))
    return keras.applications.InceptionV3(
        weights=None, classes=args.num_cells, input_shape=(args.image_size, args.image_size, 3)
    )


def synthetic_batch(args):
    """One batch made on the host: uint8 pixels scaled to [-1, 1], and random cell labels."""
    import numpy as np

    rng = np.random.default_rng(0)
    shape = (args.batch_size, args.image_size, args.image_size, 3)
    images = rng.integers(0, 256, shape, dtype=np.uint8).astype(np.float32) / 127.5 - 1.0
    labels = rng.integers(0, args.num_cells, args.batch_size, dtype=np.int32)
    return images, labels


def timed(step, count: int) -> float:
    """Seconds for ``count`` calls of ``step`` (each returns host values, so each has finished)."""
    started = time.perf_counter()
    for _ in range(count):
        step()
    return time.perf_counter() - started


def measure_network(network: str, args, images, labels) -> dict:
    """Compile and timed figures of one network on the batch (device tensors)."""
    import keras

    model = build(network, args)
    # Appendix A.1's final phase: plain SGD at 0.01 (geoloc_tf.m1.config's defaults).
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    losses = []
    train = lambda: losses.append(float(model.train_on_batch(images, labels)))
    infer = lambda: model.predict_on_batch(images)
    compile_s = timed(train, args.warmup_steps) + timed(infer, args.warmup_steps)
    train_s, infer_s = timed(train, args.steps), timed(infer, args.steps)
    row = {
        "network": network,
        "params": model.count_params(),
        "gflops_per_image": forward_flops(model) / 1e9,
        "compile_s": compile_s,
        "train_images_per_s": args.steps * args.batch_size / train_s,
        "infer_images_per_s": args.steps * args.batch_size / infer_s,
        "first_loss": losses[0],
        "last_loss": losses[-1],
    }
    keras.utils.clear_session()
    return row


def all_layers(model):
    """Every layer inside ``model``, nested models' layers included (public ``layers`` only)."""
    for layer in model.layers:
        yield layer
        if getattr(layer, "layers", None):
            yield from all_layers(layer)


def forward_flops(model) -> int:
    """Forward FLOPs per image: 2 x multiply-adds of Conv2D, DepthwiseConv2D and Dense layers
    (batch norm, activations and pooling, < 1 % of the total, are left out)."""
    import keras

    total = 0
    for layer in all_layers(model):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            _, h, w, _ = layer.output.shape
            kh, kw = layer.kernel_size
            total += 2 * h * w * kh * kw * layer.kernel.shape[2] * layer.depth_multiplier
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, cout = layer.output.shape
            kh, kw, cin_per_group, _ = layer.kernel.shape
            total += 2 * h * w * kh * kw * cin_per_group * cout
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return int(total)


def is_gpu(device: str) -> bool:
    return not device.startswith("cpu")


def run(args) -> dict:
    """Measures both networks on the backend of ``args`` and prints the table; returns its content."""
    backend = select_backend(args.backend)
    import keras

    keras.config.set_dtype_policy(POLICIES[args.precision])
    device = device_description(backend)
    images, labels = (keras.ops.convert_to_tensor(a) for a in synthetic_batch(args))
    rows = [measure_network(network, args, images, labels) for network in NETWORKS]
    result = {
        "backend": backend,
        "backend_version": _version(backend),
        "keras_version": keras.__version__,
        "device": device,
        "precision": args.precision,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "warmup_steps": args.warmup_steps,
        "num_cells": args.num_cells,
        "host": platform.node(),
        "rows": rows,
    }
    print(format_table(result), flush=True)
    return result


def _version(module: str) -> str:
    return getattr(sys.modules.get(module), "__version__", "?")


def format_table(result: dict) -> str:
    """The one table: a heading line with the settings, a row per network, the ratio line."""
    r = result
    lines = [
        f"# m1_bench: backend={r['backend']} {r['backend_version']}, keras {r['keras_version']}, "
        f"device: {r['device']}, precision={r['precision']}, image_size={r['image_size']}, "
        f"batch_size={r['batch_size']}, steps={r['steps']} (after {r['warmup_steps']} warm-up), "
        f"num_cells={r['num_cells']}",
        f"{'network':<34} {'Mparams':>8} {'GFLOP/img':>9} {'compile s':>9} {'train img/s':>11} "
        f"{'infer img/s':>11} {'loss first/last':>17}",
    ]
    for row in r["rows"]:
        lines.append(
            f"{TITLES[row['network']]:<34} {row['params'] / 1e6:>8.2f} {row['gflops_per_image']:>9.2f} "
            f"{row['compile_s']:>9.1f} {row['train_images_per_s']:>11.1f} "
            f"{row['infer_images_per_s']:>11.1f} {row['first_loss']:>8.3g}/{row['last_loss']:<8.3g}"
        )
    ours, theirs = r["rows"]
    lines.append(
        f"{'ratio Inception-v4 / InceptionV3':<34} {ours['params'] / theirs['params']:>8.2f} "
        f"{ours['gflops_per_image'] / theirs['gflops_per_image']:>9.2f} {'':>9} "
        f"{ours['train_images_per_s'] / theirs['train_images_per_s']:>11.2f} "
        f"{ours['infer_images_per_s'] / theirs['infer_images_per_s']:>11.2f}"
    )
    if r["image_size"] == 299 and is_gpu(r["device"]):
        met = ours["train_images_per_s"] >= TARGET_TRAIN_IMAGES_PER_S
        lines.append(
            f"target: M1 >= {TARGET_TRAIN_IMAGES_PER_S:,.0f} training img/s at 299 px on one "
            f"H100/H200-class GPU: {'met' if met else 'NOT met'}"
        )
    return "\n".join(lines)


def page_rows(result: dict) -> list[BenchmarkRow]:
    """The performance page's rows of one backend's run: M1 training and inference img/s next to
    InceptionV3's from the same run (the target only for a GPU at 299 px)."""
    r = result
    ours, theirs = r["rows"]
    on_target = r["image_size"] == 299 and is_gpu(r["device"])
    settings = (
        f"{r['backend']}, {r['precision']}, {r['image_size']} px, batch {r['batch_size']}, {r['device']}"
    )
    return [
        BenchmarkRow(
            "m1_bench",
            f"M1 Inception-v4 {kind}, {settings}",
            ours[f"{kind}_images_per_s"],
            "img/s",
            TITLES["inception_v3"],
            theirs[f"{kind}_images_per_s"],
            target=f">= {TARGET_TRAIN_IMAGES_PER_S:,.0f} img/s (one H100/H200, 299 px)"
            if on_target and kind == "train"
            else "",
            met=ours["train_images_per_s"] >= TARGET_TRAIN_IMAGES_PER_S
            if on_target and kind == "train"
            else None,
        )
        for kind in ("train", "infer")
    ]


def measure(quick: bool = False) -> list[BenchmarkRow]:
    """Rows for every installed backend, each measured in its own process (one process has one
    Keras backend): ``--quick`` sizes, or on a machine without a GPU 299 px, batch 8, 3 steps."""
    sized = ["--quick"] if quick else []
    if not quick and shutil.which("nvidia-smi") is None:
        sized = ["--image_size=299", "--batch_size=8", "--warmup_steps=1", "--steps=3"]
    root = Path(__file__).resolve().parents[2]
    rows: list[BenchmarkRow] = []
    for backend in BACKENDS:
        if importlib.util.find_spec(backend) is None:
            print(f"[m1_bench] {backend} is not installed: no rows for it", flush=True)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp, "m1_bench.json")
            env = dict(os.environ, KERAS_BACKEND=backend)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
            command = [sys.executable, "-m", __name__, f"--backend={backend}", "--synthetic", *sized]
            done = subprocess.run([*command, f"--json={out}"], env=env, cwd=root, check=False)
            if done.returncode != 0:
                raise BenchmarkError(f"{' '.join(command)} exited with status {done.returncode}")
            rows.extend(page_rows(json.loads(out.read_text())))
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        from mesh.atomic import write_text_atomic  # numpy and the standard library only

        write_text_atomic(args.json, json.dumps(result, indent=2))
    if not all(math.isfinite(row["last_loss"]) for row in result["rows"]):
        print("error: a training loss is not finite (see the table)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
