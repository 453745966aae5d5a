"""Ingestion's per-photo re-encoding (``data_pipelines.images.reencode_jpeg``) beside the paths it
replaced, on the same photos in the same run: speed per core and distance to a careful resize.

    python -m experiments.benchmarks.reencode_bench [--num_photos=40] [--rounds=3] [--max_side=512]

The photos are synthetic JPEGs (quality 90, 4:2:0 chroma, Pillow's defaults) of 640x480,
1024x768 and 2048x1536 px with a photo-like spectrum: colour noise summed over octaves from
4 px to 1 px with amplitude falling as the scale shrinks, plus hard-edged rectangles, so they
have fine detail and edges to alias (the demo's imagery is 96 px, too small for this). Every path
writes the same output size, ``max_side`` on the longest side, at ``--quality``:

- ``reencode_jpeg``: the code path; a JPEG at least twice the output on both sides is decoded at
  1/2, 1/4 or 1/8 scale in the DCT domain, by the largest factor whose result is not smaller than
  the output, then resized once;
- ``previous``: the code it replaced, which decoded at the largest scale keeping both sides
  >= ``max_side`` (a ``max_side`` square: 1/2 for 2048x1536, none for 1024x768) and took the
  output size from the decoded size;
- ``full decode``: every pixel decoded, then resized (BILINEAR, as the other two).

Speed is photos per CPU-second of this process (``time.process_time``: Pillow decodes, resizes and
encodes in one thread), so "per core" and less disturbed by other jobs than wall time; each path's
best of ``--rounds`` rounds, the rounds alternating the order of the paths. Quality: each output
JPEG decoded, against a reference made from the full decode with Lanczos resampling and not
re-encoded: mean absolute difference in grey levels (0-255, over all channels) and PSNR; the
reference itself re-encoded at the same quality is shown for scale (the JPEG quantization alone),
and ``reencode_jpeg``'s output against ``previous``'s says how much the stored pixels change.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from typing import Callable

import numpy as np

from experiments.benchmarks.rows import BenchmarkRow

SIZES = ((640, 480), (1024, 768), (2048, 1536))
MAX_PIXELS = 100_000_000

Reencode = Callable[[bytes, int, int, int], tuple[bytes, int, int]]


def photo(width: int, height: int, rng: np.random.Generator) -> bytes:
    """A synthetic photo-like JPEG (module docstring)."""
    from PIL import Image, ImageDraw

    pixels = np.full((height, width, 3), 128.0, np.float32)
    for cells, amplitude in ((4, 50.0), (16, 30.0), (64, 18.0), (256, 10.0), (1024, 6.0)):
        rows = max(2, cells * height // width)
        small = rng.normal(0.0, amplitude, (rows, cells, 3)).astype(np.float32)
        pixels += np.stack(
            [
                np.asarray(Image.fromarray(small[..., c]).resize((width, height), Image.Resampling.BICUBIC))
                for c in range(3)
            ],
            axis=-1,
        )
    pixels += rng.normal(0.0, 3.0, pixels.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = int(rng.integers(width // 40, width // 4)), int(rng.integers(height // 40, height // 4))
        draw.rectangle((x, y, x + w, y + h), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def previous(data: bytes, max_side: int, quality: int, max_pixels: int) -> tuple[bytes, int, int]:
    """The re-encoding as it was before sizing the DCT-domain decode to the output: decoded at
    the largest scale keeping both sides >= ``max_side``, output size from the decoded size."""
    from PIL import Image

    from data_pipelines import images

    image: Image.Image
    with images.open_image(data, max_pixels) as image:
        image.draft("RGB", (max_side, max_side))
        image.load()
        if image.mode != "RGB":
            image = image.convert("RGB")
        width, height = images.fitted_size(*image.size, max_side)
        if (width, height) != image.size:
            image = image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=2.0)
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=quality, optimize=False)
        return out.getvalue(), height, width


def full_decode(data: bytes, max_side: int, quality: int, max_pixels: int) -> tuple[bytes, int, int]:
    """Every pixel decoded, then one BILINEAR resize to the output size."""
    from PIL import Image

    from data_pipelines import images

    image: Image.Image
    with images.open_image(data, max_pixels) as image:
        image.load()
        width, height = images.fitted_size(*image.size, max_side)
        image = image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR, reducing_gap=2.0)
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=quality, optimize=False)
        return out.getvalue(), height, width


def reference(data: bytes, max_side: int) -> np.ndarray:
    """Full decode, Lanczos resampling to the output size, not re-encoded (uint8 RGB)."""
    from PIL import Image

    from data_pipelines import images

    with Image.open(io.BytesIO(data)) as image:
        size = images.fitted_size(*image.size, max_side)
        return np.asarray(image.convert("RGB").resize(size, Image.Resampling.LANCZOS))


def _pixels(jpeg: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(jpeg)) as image:
        return np.asarray(image.convert("RGB"))


def _distance(outputs: list[bytes], references: list[np.ndarray]) -> dict:
    """Mean absolute difference (grey levels) and PSNR (dB; None if identical) of decoded outputs
    to references."""
    abs_sum = sq_sum = count = 0.0
    for jpeg, ref in zip(outputs, references):
        got = _pixels(jpeg)
        if got.shape != ref.shape:
            raise RuntimeError(f"output of shape {got.shape}, reference {ref.shape}")
        diff = got.astype(np.float64) - ref
        abs_sum += float(np.abs(diff).sum())
        sq_sum += float((diff**2).sum())
        count += diff.size
    mse = sq_sum / count
    psnr = round(float(10 * np.log10(255.0**2 / mse)), 2) if mse else None  # None: identical pixels
    return {"mean_abs_diff": round(abs_sum / count, 3), "psnr_db": psnr}


def run(num_photos: int, rounds: int, max_side: int = 512, quality: int = 90) -> dict:
    """Each path's best photos per CPU-second and its distance to the reference, per photo size."""
    from PIL import Image

    from data_pipelines import images

    paths: dict[str, Reencode] = {
        "reencode_jpeg": images.reencode_jpeg,
        "previous": previous,
        "full decode": full_decode,
    }
    rng = np.random.default_rng(0)
    results = {}
    for width, height in SIZES:
        photos = [photo(width, height, rng) for _ in range(num_photos)]
        outputs = {name: [f(p, max_side, quality, MAX_PIXELS) for p in photos] for name, f in paths.items()}
        for name, out in outputs.items():
            if [o[1:] for o in out] != [o[1:] for o in outputs["reencode_jpeg"]]:
                raise RuntimeError(f"{width}x{height}: {name} wrote other sizes than reencode_jpeg")
        rates: dict[str, float] = {}
        for r in range(rounds):
            for name in list(paths)[:: 1 if r % 2 == 0 else -1]:
                started = time.process_time()
                for p in photos:
                    paths[name](p, max_side, quality, MAX_PIXELS)
                rate = len(photos) / (time.process_time() - started)
                rates[name] = max(rates.get(name, 0.0), rate)
        _, out_height, out_width = outputs["reencode_jpeg"][0]
        references = [reference(p, max_side) for p in photos]
        reencoded_references = []
        for ref in references:
            buffer = io.BytesIO()
            Image.fromarray(ref).save(buffer, format="JPEG", quality=quality, optimize=False)
            reencoded_references.append(buffer.getvalue())
        results[f"{width}x{height}"] = {
            "output": f"{out_width}x{out_height}",
            # 1/2 or less on both sides: reencode_jpeg decodes at a reduced scale
            "scaled_decode": min(width // out_width, height // out_height) >= 2,
            "mean_input_bytes": int(np.mean([len(p) for p in photos])),
            "photos_per_cpu_s": {name: round(rate, 1) for name, rate in rates.items()},
            "vs_reference": {
                name: _distance([o[0] for o in out], references) for name, out in outputs.items()
            },
            "reference_reencoded": _distance(reencoded_references, references),
            "reencode_jpeg_vs_previous": _distance(
                [o[0] for o in outputs["reencode_jpeg"]], [_pixels(o[0]) for o in outputs["previous"]]
            ),
        }
    return {
        "num_photos": num_photos,
        "rounds": rounds,
        "max_side": max_side,
        "quality": quality,
        "sizes": results,
    }


def measure(quick: bool = False) -> list[BenchmarkRow]:
    """Speed beside the previous path (and beside a full decode where the JPEG is decoded at a
    reduced scale), and there the distance to the reference beside the previous path's
    (performance page rows)."""
    result = run(8 if quick else 40, 2 if quick else 3)
    previous_path = f"previous path (scaled decode to a {result['max_side']} px square, resize)"
    rows = []
    for size, r in result["sizes"].items():
        what = f"re-encode {size} JPEG to {r['output']}, q{result['quality']} ({result['num_photos']} photos)"
        baselines = {"previous": previous_path}
        if r["scaled_decode"]:
            baselines["full decode"] = "full decode, resize"
        for name, label in baselines.items():
            rows.append(
                BenchmarkRow(
                    "reencode_bench",
                    what,
                    r["photos_per_cpu_s"]["reencode_jpeg"],
                    "photos/s per core",
                    baseline=label,
                    baseline_value=r["photos_per_cpu_s"][name],
                )
            )
        if r["scaled_decode"]:
            diff = r["vs_reference"]
            rows.append(
                BenchmarkRow(
                    "reencode_bench",
                    f"{size}: mean abs. difference to full decode + Lanczos",
                    diff["reencode_jpeg"]["mean_abs_diff"],
                    "grey levels",
                    baseline="previous path",
                    baseline_value=diff["previous"]["mean_abs_diff"],
                    higher_is_better=False,
                )
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks.reencode_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--num_photos", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max_side", type=int, default=512)
    parser.add_argument("--quality", type=int, default=90)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.num_photos, args.rounds, args.max_side, args.quality), indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
