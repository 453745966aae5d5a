"""Ingestion rate of each collection format beside the folder reader, on the same photos, same run.

    python -m experiments.benchmarks.ingest_bench [--num_photos=600] [--side=640] [--rounds=2]

Writes one set of synthetic photos (``--side`` px JPEGs, random locations, users and times) in the
layout of every format ``geoloc ingest --format`` reads: the baseline ``csv`` (a CSV and the photos
as files in a folder: the folder reader), ``osv5m`` (train.csv + images/train/NN.zip),
``mp16pro`` (MP16_Pro_places365.csv + tar parts), ``msgpack`` (GeoEstimation shard_*.msg + the CSV),
``webdataset`` (tar shards of jpg+json) and ``exif`` (the photos alone, GPS and time in their EXIF).
Then ingests each with ``run_ingestion`` (one worker, so the figure is per core) and reports
photos/s over the whole ingestion (metadata pass, archive index, re-encoding, shard writing), each
format's best of ``--rounds`` rounds, rounds alternating between formats so that a noisy neighbour
hurts all alike. The first ingestion of the process (TensorFlow's import) is a warm-up, not timed.
The photos are the same bytes in every layout; re-encoding them to at most 512 px dominates, so the
ratio to the folder reader says what reading from archives costs or saves.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from experiments.benchmarks.rows import BenchmarkRow

BASELINE = "csv"
FORMATS = (BASELINE, "osv5m", "mp16pro", "msgpack", "webdataset", "exif")


def photos(num: int, side: int, seed: int = 0):
    """The synthetic photos: a demo-layout table (data_pipelines.demo.formats.DemoTable) whose
    JPEGs are smooth random colour fields (they compress like photos, not like noise)."""
    from PIL import Image

    from data_pipelines.demo.formats import DemoTable

    rng = np.random.default_rng(seed)
    ids = np.arange(9_000_000_000, 9_000_000_000 + num, dtype=np.int64)
    jpegs = {}
    for pid in ids:
        small = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((side * 4 // 3, side), Image.Resampling.BICUBIC)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=90)
        jpegs[int(pid)] = out.getvalue()
    table = DemoTable(
        photo_id=ids,
        user=rng.integers(0, max(1, num // 20), size=num),
        lat=rng.uniform(-60, 70, size=num),
        lon=rng.uniform(-180, 180, size=num),
        posted_at=rng.integers(1_200_000_000, 1_400_000_000, size=num),
        outdoor_prob=rng.uniform(0, 1, size=num),
        image=lambda pid: jpegs[int(pid)],
    )
    return table


def write_layout(fmt: str, folder: Path, table) -> tuple[list[str], str]:
    """Writes ``table`` in layout ``fmt`` under ``folder``; returns (metadata files, images folder)."""
    from data_pipelines.demo import formats

    folder.mkdir(parents=True)
    if fmt in formats.LAYOUTS:
        files = formats.LAYOUTS[fmt](
            folder, table, formats.ArchiveSizes(photos_per_zip=250, photos_per_shard=250)
        )
        metadata = [str(folder / m) for m in files["metadata"] if not m.endswith("test.csv")]
        return metadata, str(folder / files["images"])
    if fmt == BASELINE:
        (folder / "images").mkdir()
        rows = [["IMG_ID", "AUTHOR", "LAT", "LON", "posted_at"]]
        for k, pid in enumerate(table.photo_id):
            (folder / "images" / f"{pid}.jpg").write_bytes(table.image(pid))
            rows.append(
                [
                    str(pid),
                    f"u{table.user[k]}",
                    f"{table.lat[k]:.6f}",
                    f"{table.lon[k]:.6f}",
                    str(table.posted_at[k]),
                ]
            )
        return [_write_csv(folder / "photos.csv", rows)], str(folder / "images")
    if fmt == "msgpack":
        import msgpack

        rows = [["IMG_ID", "AUTHOR", "LAT", "LON", "Prob_indoor"]]
        for start in range(0, len(table.photo_id), 250):
            with open(folder / f"shard_{start // 250}.msg", "wb") as shard:
                for k in range(start, min(start + 250, len(table.photo_id))):
                    img_id = formats.mp16_img_id(int(table.photo_id[k]))
                    shard.write(msgpack.packb({"id": img_id, "image": table.image(table.photo_id[k])}))
                    rows.append(
                        [img_id, f"u{table.user[k]}", f"{table.lat[k]:.6f}", f"{table.lon[k]:.6f}", "0.5"]
                    )
        return [_write_csv(folder / "mp16_places365.csv", rows)], str(folder)
    if fmt == "exif":
        for k, pid in enumerate(table.photo_id):
            (folder / f"{pid}.jpg").write_bytes(
                _with_exif(table.image(pid), table.lat[k], table.lon[k], int(table.posted_at[k]))
            )
        return [], str(folder)
    raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")


def _write_csv(path: Path, rows: list[list[str]]) -> str:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return str(path)


def _with_exif(jpeg: bytes, lat: float, lon: float, taken: int) -> bytes:
    """The JPEG with GPS position and DateTimeOriginal in its EXIF (re-encoded by Pillow)."""
    import datetime

    from PIL import ExifTags, Image

    def dms(value: float) -> tuple[float, float, float]:
        value = abs(value)
        degrees, minutes = int(value), int(value * 60) % 60
        return float(degrees), float(minutes), round((value * 3600) % 60, 4)

    image = Image.open(io.BytesIO(jpeg))
    exif = Image.Exif()
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N" if lat >= 0 else "S",
        ExifTags.GPS.GPSLatitude: dms(lat),
        ExifTags.GPS.GPSLongitudeRef: "E" if lon >= 0 else "W",
        ExifTags.GPS.GPSLongitude: dms(lon),
    }
    moment = datetime.datetime.fromtimestamp(taken, datetime.timezone.utc)
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = moment.strftime("%Y:%m:%d %H:%M:%S")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def ingest_once(fmt: str, metadata: list[str], images: str, out: Path) -> dict:
    """One ingestion of a written layout (one worker); its summary with the wall time."""
    from data_pipelines.config import IngestConfig
    from data_pipelines.ingest import run_ingestion

    config = IngestConfig(format=fmt, metadata=tuple(metadata), images=images, workers=1, salt="bench")
    started = time.perf_counter()
    summary = run_ingestion(config, str(out))
    summary["wall_seconds"] = time.perf_counter() - started
    return summary


def run(num_photos: int, side: int, rounds: int) -> dict:
    """Writes every layout, ingests each ``rounds`` times; the best photos/s of each format."""
    table = photos(num_photos, side)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="geoloc-ingest-bench-") as tmp:
        root = Path(tmp)
        layouts = {fmt: write_layout(fmt, root / "collections" / fmt, table) for fmt in FORMATS}
        ingest_once(BASELINE, *layouts[BASELINE], root / "warmup")  # TensorFlow's import, untimed
        for r in range(rounds):
            order = FORMATS if r % 2 == 0 else FORMATS[::-1]
            for fmt in order:
                summary = ingest_once(fmt, *layouts[fmt], root / f"out-{fmt}-{r}")
                written = summary["examples_written"]
                if written != summary["lines_read"]:  # osv5m: test.csv's photos are not ingested
                    raise RuntimeError(
                        f"{fmt}: {written} of {summary['lines_read']} photos written; skipped {summary['skipped']}"
                    )
                rate = written / summary["wall_seconds"]
                best = results.get(fmt)
                if best is None or rate > best["photos_per_s"]:
                    results[fmt] = {
                        "photos_per_s": round(rate, 1),
                        "metadata_seconds": summary["timing"]["metadata_seconds"],
                        "image_seconds": summary["timing"]["image_seconds"],
                    }
    return {"num_photos": num_photos, "side": side, "rounds": rounds, "workers": 1, "formats": results}


def measure(quick: bool = False) -> list[BenchmarkRow]:
    """Each format's ingestion rate beside the folder reader's (performance page rows)."""
    result = run(120 if quick else 600, 320 if quick else 640, 1 if quick else 2)
    base = result["formats"][BASELINE]["photos_per_s"]
    size = f"{result['num_photos']} photos of {result['side']} px, 1 worker"
    return [
        BenchmarkRow(
            "ingest_bench",
            f"ingest --format={fmt} ({size})",
            result["formats"][fmt]["photos_per_s"],
            "photos/s",
            baseline="folder reader (--format=csv, photos as files)",
            baseline_value=base,
        )
        for fmt in FORMATS
        if fmt != BASELINE
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks.ingest_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--num_photos", type=int, default=600)
    parser.add_argument("--side", type=int, default=640)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(json.dumps(run(args.num_photos, args.side, args.rounds), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
