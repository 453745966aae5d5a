"""What each hostile photo costs the image decoder, before and after the decode budget.

    python -m experiments.benchmarks.decode_bench [--quick] [--only=NAME,...] [--json=out.json]

Each case runs in a fresh Python process (so its peak memory is its own): the time and the peak
memory above the process's size before decoding (Linux /proc: VmHWM after, reset to VmRSS before) of

- before: the former path, a check decode with Pillow (JPEG at 1/8 scale of 512 px) and then
  TensorFlow's full decode, central crop and resize of the JPEG or of the PNG re-encoding of other
  formats, as M1's model thread did it;
- after: ``data_pipelines.images.decode_for_model`` with the default ``DecodeBudget`` and the
  commands' ``max_pixels`` (100 M), for 299 px.

The files (``hostile_files``, whose builders the tests use too): a progressive JPEG with
1,500 refinement scans (``many_scans_jpeg``), a JPEG of millions of empty APP1 segments
(``segment_flood_jpeg``), a lossless WebP, a PNG and an RLE8 BMP, each declaring a large size while
small on disk, ordinary baseline JPEGs of 7000x7000, and, at the budget's limits, a 10 M pixel
lossless WebP and PNG and a progressive JPEG with 64 scans at 50 M pixels.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

from experiments.benchmarks.hostile_files import (
    SIDE,
    baseline_jpeg,
    many_scans_jpeg,
    png_noise,
    rle8_bmp,
    segment_flood_jpeg,
    webp_lossless,
)
from experiments.benchmarks.rows import BenchmarkRow
from experiments.benchmarks.serve_bench import png_bomb


def hostile_files(quick: bool) -> dict[str, bytes]:
    side = 3000 if quick else SIDE
    return {
        "progressive_1500_scans": many_scans_jpeg(side, 1500),
        "app1_flood_4M": segment_flood_jpeg(400_000 if quick else 4_000_000),
        "webp_lossless_7000": webp_lossless(side),
        "png_1bit_7000": png_bomb(side),
        "bmp_rle8_7000": rle8_bmp(side, side),
        "bmp_rle8_10M": rle8_bmp(3162, 3162),
        "baseline_jpeg_7000": baseline_jpeg(side),
        "webp_lossless_10M": webp_lossless(3162),
        "png_noise_10M": png_noise(3872, 2582),
        "progressive_64_scans_50M": many_scans_jpeg(3000 if quick else 7071, 64),
    }


# ---------------------------------------------------------------------------- one case, in a child
CHILD = r"""
import sys, time
path, which = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
if which == "before":
    import io
    import tensorflow as tf
    from PIL import Image
    Image.MAX_IMAGE_PIXELS = None
    tf.constant(0)
else:
    from data_pipelines import images
    from data_pipelines.config import DecodeBudget
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
open("/proc/self/clear_refs", "w").write("5")  # VmHWM := VmRSS
rss0 = status("VmRSS")
start = time.perf_counter()
try:
    if which == "before":
        image = Image.open(io.BytesIO(data))
        if image.format == "JPEG":
            image.draft("RGB", (512, 512))
        image.load()
        if image.format not in ("JPEG", "PNG"):
            out = io.BytesIO(); Image.open(io.BytesIO(data)).convert("RGB").save(out, "PNG", compress_level=1)
            data = out.getvalue()
        pixels = tf.io.decode_jpeg(data, channels=3)
        pixels = tf.image.resize(tf.image.central_crop(pixels, 0.875), [299, 299])
        outcome = "decoded %s" % (pixels.shape,)
    else:
        outcome = "decoded %s" % (images.decode_for_model(data, DecodeBudget(), 299).shape,)
except Exception as error:
    outcome = "%s: %s" % (getattr(error, "reason", type(error).__name__), str(error)[:90])
seconds = time.perf_counter() - start
rss1 = status("VmHWM")
print(repr({"seconds": seconds, "peak_mib": (rss1 - rss0) / 1024, "outcome": outcome}))
"""


def run_case(path: Path, which: str, timeout_s: float) -> dict:
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), which],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return {"seconds": timeout_s, "peak_mib": None, "outcome": f"over {timeout_s:.0f} s (stopped)"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"seconds": None, "peak_mib": None, "outcome": done.stderr.strip()[-200:]}
    return ast.literal_eval(lines[-1])


def run(quick: bool, only: list[str], paths: list[str], timeout_s: float) -> list[dict]:
    """One row per file and path: file, bytes, path, seconds, peak_mib, outcome."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in hostile_files(quick).items():
            if only and name not in only:
                continue
            path = Path(tmp) / name
            path.write_bytes(data)
            for which in paths:
                rows.append(
                    {"file": name, "bytes": len(data), "path": which, **run_case(path, which, timeout_s)}
                )
                print(json.dumps(rows[-1]), flush=True)
    return rows


#: The files of the performance page's rows (the others are for the limits' docstring).
HEADLINE = (
    "progressive_1500_scans",
    "app1_flood_4M",
    "webp_lossless_7000",
    "bmp_rle8_7000",
    "baseline_jpeg_7000",
)


def measure(quick: bool = False) -> list[BenchmarkRow]:
    results = run(quick, list(HEADLINE), ["before", "after"], 180.0)
    out = []
    for name in HEADLINE:
        before, after = (
            next(r for r in results if r["file"] == name and r["path"] == p) for p in ("before", "after")
        )
        out.append(
            BenchmarkRow(
                benchmark="decode_bench",
                figure=f"{name}: {after['outcome'].split(':')[0]}",
                value=after["seconds"] or math.nan,
                unit="s",
                baseline="check with Pillow, decode again with TensorFlow",
                baseline_value=before["seconds"] or math.nan,
                higher_is_better=False,
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3000 px sides instead of 7000")
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--paths", default="before,after", help="before, after or both")
    parser.add_argument("--timeout_s", type=float, default=180.0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    only = [name for name in args.only.split(",") if name]
    rows = run(args.quick, only, args.paths.split(","), args.timeout_s)
    if args.json:
        from mesh.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
