"""What each hostile photo costs the image decoder, before and after the decode budget.

    python -m experiments.benchmarks.decode_bench [--quick] [--only=NAME,...] [--json=out.json]

Each case runs in a fresh Python process (so its peak memory is its own): the time and the peak
memory above the process's size before decoding (Linux /proc: VmHWM after, reset to VmRSS before) of

- before: the former path, a check decode with Pillow (JPEG at 1/8 scale of 512 px) and then
  TensorFlow's full decode, central crop and resize of the JPEG or of the PNG re-encoding of other
  formats, as M1's model thread did it;
- after: ``data_pipelines.images.decode_for_model`` with the default ``DecodeBudget`` and the
  commands' ``max_pixels`` (100 M), for 299 px.

The files (``hostile_files``) are built here, also used by the tests: a progressive JPEG with
1,500 refinement scans (``many_scans_jpeg``), a JPEG of millions of empty APP1 segments
(``segment_flood_jpeg``), a lossless WebP, a PNG and an RLE8 BMP, each declaring a large size while
small on disk, ordinary baseline JPEGs of 7000x7000, and, at the budget's limits, a 10 M pixel
lossless WebP and PNG and a progressive JPEG with 64 scans at 50 M pixels.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from experiments.benchmarks.rows import BenchmarkRow
from experiments.benchmarks.serve_bench import png_bomb

SIDE = 7000  # the hostile files' declared side


# ---------------------------------------------------------------------------- builders
def jpeg_bytes(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", **options)
    return out.getvalue()


def markers(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each marker segment of a JPEG up to EOI; a scan's end includes its
    entropy-coded data."""
    from data_pipelines.images import _NEXT_MARKER

    out: list[tuple[int, int, int]] = []
    pos = 2
    while True:
        found = _NEXT_MARKER.search(data, pos)
        if found is None:
            return out
        at = found.start()
        marker = data[at + 1]
        if marker == 0xD9:
            return out
        end = at + 2 + int.from_bytes(data[at + 2 : at + 4], "big")
        if marker == 0xDA:
            following = _NEXT_MARKER.search(data, end)
            end = following.start() if following else len(data)
        out.append((marker, at, end))
        pos = end


def many_scans_jpeg(side: int = SIDE, scans: int = 1500, grey_level: int = 128) -> bytes:
    """A progressive JPEG of side x side with ``scans`` scans: Pillow's (libjpeg's standard
    script, 10 scans) with its last scan, an AC refinement, repeated. libjpeg decodes each repeat
    over the whole image (a warning, not an error)."""
    image = Image.new("RGB", (side, side), (grey_level, 100, 160))
    data = jpeg_bytes(image, quality=90, progressive=True)
    segments = markers(data)
    sos = [s for s in segments if s[0] == 0xDA]
    last_start = sos[-1][1]
    # the tables (DHT) written just before the last scan belong to it
    previous = [s for s in segments if s[2] <= last_start]
    if previous and previous[-1][0] == 0xC4:
        last_start = previous[-1][1]
    last = data[last_start : sos[-1][2]]
    return data[:last_start] + last * (scans - len(sos) + 1) + data[sos[-1][2] :]


def segment_flood_jpeg(count: int = 4_000_000) -> bytes:
    """A small JPEG with ``count`` empty APP1 segments (4 bytes each) spliced after SOI."""
    data = jpeg_bytes(Image.new("RGB", (64, 48), (90, 120, 30)), quality=90)
    return data[:2] + b"\xff\xe1\x00\x02" * count + data[2:]


def webp_lossless(side: int, declared: int | None = None) -> bytes:
    """A lossless WebP of side x side; with ``declared``, its header rewritten to declare that
    side (a tiny file whose header says declared x declared; not decodable)."""
    out = io.BytesIO()
    Image.new("RGB", (side, side), (10, 200, 30)).save(out, format="WEBP", lossless=True)
    data = bytearray(out.getvalue())
    if declared is not None:
        at = data.index(b"VP8L") + 8 + 1  # chunk header, then the 0x2f signature
        bits = int.from_bytes(data[at : at + 4], "little")
        bits = (bits & ~((1 << 28) - 1)) | (declared - 1) | ((declared - 1) << 14)
        data[at : at + 4] = bits.to_bytes(4, "little")
    return bytes(data)


def rle8_bmp(width: int, height: int) -> bytes:
    """An RLE8 BMP of width x height (palette of 256 colours) whose rows are one pixel and an
    end-of-line code (4 bytes), which Pillow's decoder pads to the row's width one byte at a time,
    in Python: 28 KB for 7000x7000."""
    rows = b"\x01\x07\x00\x00" * height + b"\x00\x01"
    palette = bytes(b for i in range(256) for b in (i, 255 - i, i // 2, 0))
    offset = 14 + 40 + len(palette)
    header = b"BM" + (offset + len(rows)).to_bytes(4, "little") + bytes(4) + offset.to_bytes(4, "little")
    info = (
        (40).to_bytes(4, "little")
        + width.to_bytes(4, "little", signed=True)
        + height.to_bytes(4, "little", signed=True)
        + (1).to_bytes(2, "little")
        + (8).to_bytes(2, "little")
        + (1).to_bytes(4, "little")  # BI_RLE8
        + len(rows).to_bytes(4, "little")
        + bytes(8)
        + (256).to_bytes(4, "little")
        + bytes(4)
    )
    return header + info + palette + rows


def png_noise(width: int, height: int) -> bytes:
    """A real RGB PNG of noise (incompressible: the decoder's worst case per pixel)."""
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def baseline_jpeg(side: int = SIDE) -> bytes:
    """An ordinary baseline JPEG of side x side (gradients; a camera photo's structure)."""
    y, x = np.mgrid[0:side, 0:side]
    rgb = np.stack([(x * 255 // side), (y * 255 // side), ((x + y) * 127 // side)], -1).astype(np.uint8)
    return jpeg_bytes(Image.fromarray(rgb), quality=90)


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
