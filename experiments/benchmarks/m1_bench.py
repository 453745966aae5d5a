"""M1 benchmark: training and inference images/s of our Inception-v4 next to InceptionResNetV2.

    python -m experiments.benchmarks.m1_bench [--sizes=75,151,299] [--batch_size=8]
        [--train_steps=3] [--infer_steps=3] [--strategy=default|mirrored|one_device]
        [--mixed_precision] [--jit_compile] [--quick] [--json=out.json]

For each input size and each network (``geoloc_tf.m1`` Inception-v4, the paper's M1 of §3.1.2,
and ``keras.applications.InceptionResNetV2`` with ``weights=None`` and the same head, a network of
similar cost from the same paper by Szegedy et al. 2016) it builds the model under the chosen
``tf.distribute`` strategy, runs ``--warmup_steps`` (tracing, compilation) and then times
``--train_steps`` SGD steps (``model.fit``) and ``--infer_steps`` inference batches
(``model.predict``) on synthetic [-1, 1] images. ``--batch_size`` is the global batch (split over
the replicas). FLOPs are counted analytically per image for the forward pass: 2 x multiply-adds of
every convolution and dense layer (batch norm, activations and pooling, < 1 % of the total, are
left out). The table gives images/s, images/s per forward GFLOP (what was asked for: larger means
more images for the network's cost) and the achieved forward GFLOP/s (images/s x GFLOP/image; a
training step costs about 3x the forward pass).

On a small shared CPU the figures are noisy (other processes compete for the cores); compare the
two networks within one run, not across runs. ``measure`` gives the headline rows of the
performance page (``python -m experiments.benchmarks``): both networks at the largest size run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

from experiments.benchmarks.rows import BenchmarkRow

NETWORKS = ("inception_v4", "inception_resnet_v2")


def all_layers(model):
    """Every layer inside ``model``, nested models' layers included (public ``layers`` only)."""
    for layer in model.layers:
        yield layer
        if getattr(layer, "layers", None):
            yield from all_layers(layer)


def forward_flops(model) -> int:
    """Forward FLOPs per image: 2 x multiply-adds of Conv2D, DepthwiseConv2D and Dense layers."""
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


def make_strategy(name: str):
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    raise ValueError(f"--strategy={name!r}; expected default, mirrored or one_device")


def build(network: str, size: int, num_classes: int):
    from geoloc_tf.m1 import backbones
    from geoloc_tf.m1.inception_v4 import InceptionV4Config, build_inception_v4

    if network == "inception_v4":
        return build_inception_v4(InceptionV4Config(num_cells=num_classes, image_size=size))
    return backbones.build_applications_model(network, num_classes, size)


def synthetic(size: int, batch: int, num_classes: int):
    import tensorflow as tf

    images = tf.random.stateless_uniform([batch, size, size, 3], seed=[1, 2], minval=-1, maxval=1)
    labels = tf.random.stateless_uniform([batch], seed=[3, 4], maxval=num_classes, dtype=tf.int32)
    return (
        tf.data.Dataset.from_tensors((images, labels)).repeat(),
        tf.data.Dataset.from_tensors(images).repeat(),
    )


def measure_network(network: str, size: int, args, strategy) -> dict:
    import keras

    with strategy.scope():
        model = build(network, size, args.num_classes)
        model.compile(
            optimizer=keras.optimizers.SGD(0.01),
            loss="sparse_categorical_crossentropy",
            jit_compile=args.jit_compile,
        )
    train_ds, infer_ds = synthetic(size, args.batch_size, args.num_classes)
    row = {
        "network": network,
        "size": size,
        "params": model.count_params(),
        "gflops_per_image": forward_flops(model) / 1e9,
    }
    started = time.perf_counter()
    model.fit(train_ds, epochs=1, steps_per_epoch=args.warmup_steps, shuffle=False, verbose=0)
    row["train_warmup_s"] = time.perf_counter() - started
    started = time.perf_counter()
    model.fit(train_ds, epochs=1, steps_per_epoch=args.train_steps, shuffle=False, verbose=0)
    row["train_images_per_s"] = args.train_steps * args.batch_size / (time.perf_counter() - started)
    model.predict(infer_ds, steps=args.warmup_steps, verbose=0)
    started = time.perf_counter()
    model.predict(infer_ds, steps=args.infer_steps, verbose=0)
    row["infer_images_per_s"] = args.infer_steps * args.batch_size / (time.perf_counter() - started)
    for kind in ("train", "infer"):
        rate = row[f"{kind}_images_per_s"]
        row[f"{kind}_images_per_s_per_gflop"] = rate / row["gflops_per_image"]
        row[f"{kind}_forward_gflop_per_s"] = rate * row["gflops_per_image"]
    keras.backend.clear_session()
    return row


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks.m1_bench", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--sizes", default="75,151,299", help="input sides, comma-separated")
    p.add_argument(
        "--networks", default=",".join(NETWORKS), help="comma-separated, of " + ", ".join(NETWORKS)
    )
    p.add_argument(
        "--batch_size",
        type=int,
        default=8,
        help="global batch size (divided over the replicas of --strategy)",
    )
    p.add_argument("--train_steps", type=int, default=3, help="timed training steps")
    p.add_argument("--infer_steps", type=int, default=3, help="timed inference batches")
    p.add_argument("--warmup_steps", type=int, default=1, help="untimed steps (tracing) first")
    p.add_argument("--num_classes", type=int, default=1001, help="softmax size (mesh cells)")
    p.add_argument(
        "--strategy",
        default="default",
        choices=("default", "mirrored", "one_device"),
        help="tf.distribute strategy; mirrored = all local GPUs (or the CPU)",
    )
    p.add_argument("--mixed_precision", action="store_true", help="mixed_float16 policy")
    p.add_argument("--jit_compile", action="store_true", help="XLA-compile the train/predict steps")
    p.add_argument("--quick", action="store_true", help="smoke run: 75 px only, batch 2, 1 timed step each")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.batch_size, args.train_steps, args.infer_steps = "75", 2, 1, 1
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.networks = [n for n in args.networks.split(",") if n]
    unknown = sorted(set(args.networks) - set(NETWORKS))
    if unknown:
        p.error(f"--networks: unknown {unknown}; expected some of {list(NETWORKS)}")
    return args


def run(args) -> list[dict]:
    """Measures every network at every size of `args`, printing a table line by line."""
    import keras
    import tensorflow as tf

    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    strategy = make_strategy(args.strategy)
    devices = [d.name for d in tf.config.list_logical_devices() if d.device_type != "CPU"] or [
        f"CPU x {os.cpu_count()} cores"
    ]
    print(
        f"# m1_bench: {platform.node()} devices={devices} strategy={args.strategy} "
        f"replicas={strategy.num_replicas_in_sync} global_batch={args.batch_size} "
        f"mixed_precision={args.mixed_precision} jit_compile={args.jit_compile} "
        f"train_steps={args.train_steps} infer_steps={args.infer_steps}",
        flush=True,
    )
    header = (
        f"{'network':<20} {'px':>4} {'Mparams':>8} {'GFLOP/img':>9} {'train img/s':>11} "
        f"{'infer img/s':>11} {'train img/s/GFLOP':>17} {'infer img/s/GFLOP':>17} "
        f"{'train GFLOP/s':>13} {'infer GFLOP/s':>13} {'warmup s':>8}"
    )
    print(header, flush=True)
    rows = []
    for size in args.sizes:
        for network in args.networks:
            row = measure_network(network, size, args, strategy)
            rows.append(row)
            print(
                f"{network:<20} {size:>4} {row['params'] / 1e6:>8.2f} "
                f"{row['gflops_per_image']:>9.2f} {row['train_images_per_s']:>11.2f} "
                f"{row['infer_images_per_s']:>11.2f} {row['train_images_per_s_per_gflop']:>17.3f} "
                f"{row['infer_images_per_s_per_gflop']:>17.3f} "
                f"{row['train_forward_gflop_per_s']:>13.1f} {row['infer_forward_gflop_per_s']:>13.1f} "
                f"{row['train_warmup_s']:>8.1f}",
                flush=True,
            )
    return rows


def measure(quick: bool = False) -> list[BenchmarkRow]:
    """The performance page's rows: Inception-v4 training and inference images/s at the largest
    size run, next to InceptionResNetV2 in the same run (no target was set for them)."""
    args = parse_args(["--quick"] if quick else [])
    rows = run(args)
    size = max(args.sizes)
    ours, theirs = (next(r for r in rows if r["network"] == n and r["size"] == size) for n in NETWORKS)
    return [
        BenchmarkRow(
            "m1_bench",
            f"M1 Inception-v4 {kind}, {size} px, batch {args.batch_size}",
            ours[f"{kind}_images_per_s"],
            "img/s",
            "InceptionResNetV2 (keras.applications)",
            theirs[f"{kind}_images_per_s"],
        )
        for kind in ("train", "infer")
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = run(args)
    if args.json:
        from mesh.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps({"args": vars(args), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
