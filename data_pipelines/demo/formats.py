"""The demo collection in the layouts of the data sets the field trains and tests on.

    geoloc make-demo --out=DIR --format=yfcc100m|osv5m|mp16pro|webdataset

`write_collection` generates the standard demo collection (`generate.py`: YFCC100M layout, real
locations and imagery, SIMULATED users, posting times and indoor photos) and writes the same photos,
byte for byte the same JPEGs, in the layout of another data set, so that every reader runs end to end
on real locations:

- ``osv5m`` (OpenStreetView-5M, the Hugging Face ``osv5m/osv5m`` data set): ``train.csv`` and
  ``test.csv`` with OSV-5M's 32 columns, and the photos in ``images/{train,test}/NN.zip`` with members
  ``NN/<id>.jpg`` (OSV-5M's extraction step unzips ``images/test/00.zip`` into ``images/test/00/``).
  ``captured_at`` is in epoch milliseconds, as Mapillary (OSV-5M's source) writes it; the demo has
  one time per photo, so it holds the SIMULATED posting time (plus ``id % 1000`` ms). ``creator_id``
  is the SIMULATED user, ``creator_username`` the placeholder ``SIMULATED-user-N`` (ingestion must
  drop it), ``sequence`` an opaque id shared by a user's photos of one UTC day. ``country`` (ISO
  3166 alpha-2), ``region``, ``sub-region``, ``city`` and their ``unique_*`` forms are reverse
  geocoded from the real location with ``reverse_geocoder`` (GeoNames places of over 1000 people),
  the tool OSV-5M used: the demo has no admin data of its own. The columns OSV-5M derived from other
  maps (``land_cover``, ``climate``, ``quadtree_*``, ...) are empty. The test split is ~10 % of the
  photos by a stable hash of the photo id: OSV-5M's test set is separated from training by 1 km and
  keeps one photo per sequence, not by photographer; the demo reproduces neither.
- ``mp16pro`` (MP16-Pro, the Hugging Face ``Jia-py/MP16-Pro`` data set of G3):
  ``metadata/MP16_Pro_places365.csv`` with its 17 columns (``IMG_ID`` in MP-16's form
  ``xx/yy/<photo id>.jpg``, ``AUTHOR`` the SIMULATED user's NSID, ``Prob_indoor`` one minus the
  simulated outdoor probability, ``Prob_natural`` the outdoor probability, ``Prob_urban`` 0; ``city``,
  ``county``, ``state``, ``country`` reverse geocoded as above, ``country`` as an ISO code where the
  real file has English names), and the photos in one tar cut into raw byte parts
  ``mp-16-images00``, ``mp-16-images01``, ... (joined by ``cat mp-16-images* > mp-16-images.tar``)
  with members ``./images/<IMG_ID with "/" replaced by "_">``. A member is the photo's JPEG, padded
  where it is smaller than a real photo by a JPEG comment of zero bytes (same pixels) to more than
  ``archives.PLACEHOLDER_MAX_BYTES``: the MP16-Pro reader takes smaller members for Flickr's
  placeholders of deleted photos, as G3 does (``mp16pro_member``).
- ``webdataset`` (the tar shards img2dataset writes and PLONK reads): shards ``00000.tar``,
  ``00001.tar``, ... (img2dataset's names) with ``<key>.jpg`` and ``<key>.json`` per photo; the key
  is the photo id, as in PLONK's shards (img2dataset's own keys are running numbers), so a photo has
  the same id in every layout. The JSON is what img2dataset writes for a YFCC100M-style input with
  its columns kept (``key``, ``status``, ``latitude``, ``longitude``, ``date_uploaded``: the SIMULATED
  posting time in epoch seconds, ``user_nsid``: the SIMULATED user, and ``outdoor_prob``), no URL.
- ``yfcc100m``: the standard collection itself.

Each layout writes ``demo_info.json`` last (its presence means the collection is complete), with
``"format"``, the file names and the list of what is SIMULATED. The same seed gives the same bytes:
archive members in a fixed order with fixed times and owners. Every file is written under a temporary
name and renamed; the expensive part (rendering the photos) is the standard collection's and resumes
where it stopped, the rest is rewritten whole.
"""

from __future__ import annotations

import csv
import functools
import glob
import hashlib
import io
import json
import logging
import os
import shutil
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from data_pipelines import archives, geonames
from data_pipelines.config import DEMO_FORMATS
from data_pipelines.demo import generate, sources
from data_pipelines.errors import DataPipelineError
from mesh.atomic import write_atomic, write_bytes_atomic, write_text_atomic

log = logging.getLogger(__name__)

FORMATS = tuple(name for name in DEMO_FORMATS if name != "auto")  # auto: the standard (yfcc100m) layout
SOURCE_DIR = "_source"  # the standard collection, when the caller names none; removed once complete
FIXED_TIME = (2010, 1, 1, 0, 0, 0)  # every archive member's time: the bytes depend on the seed only
FIXED_EPOCH = 1262304000  # the same instant, for tar headers

OSV5M_COLUMNS = (
    "id",
    "latitude",
    "longitude",
    "thumb_original_url",
    "country",
    "sequence",
    "captured_at",
    "lon_bin",
    "lat_bin",
    "cell",
    "region",
    "sub-region",
    "city",
    "land_cover",
    "road_index",
    "drive_side",
    "climate",
    "soil",
    "dist_sea",
    "quadtree_10_5000",
    "quadtree_10_25000",
    "quadtree_10_1000",
    "quadtree_10_50000",
    "quadtree_10_12500",
    "quadtree_10_500",
    "quadtree_10_2500",
    "unique_region",
    "unique_sub-region",
    "unique_city",
    "unique_country",
    "creator_username",
    "creator_id",
)
MP16PRO_COLUMNS = (
    "IMG_ID",
    "AUTHOR",
    "LAT",
    "LON",
    "S3_Label",
    "S16_Label",
    "S365_Label",
    "Prob_indoor",
    "Prob_natural",
    "Prob_urban",
    "neighbourhood",
    "city",
    "county",
    "state",
    "region",
    "country",
    "continent",
)
OSV5M_SPLITS = ("train", "test")
OSV5M_TEST_PERCENT = 10
MP16PRO_CSV = "metadata/MP16_Pro_places365.csv"
MP16PRO_PART_PREFIX = "mp-16-images"
MP16PRO_MEMBER_DIR = "./images/"
FIRST_CREATOR_ID = 900_000_000_000_000  # Mapillary-like 15-digit user ids, far from real ones

SIMULATED_BY_FORMAT = {
    "yfcc100m": (),
    "osv5m": (
        "creator_id, creator_username: the SIMULATED users (the username is a placeholder)",
        "captured_at: the SIMULATED posting time, in epoch milliseconds (the demo has no separate "
        "capture time)",
        "sequence: a SIMULATED user's photos of one UTC day",
        "country, region, sub-region, city: reverse geocoded from the real location "
        "(reverse_geocoder, GeoNames); the demo has no admin data of its own",
        "train/test: ~10 % of the photos by a hash of the photo id, not OSV-5M's 1 km separation",
        "thumb_original_url: placeholder; the columns OSV-5M derived from other maps are empty",
        "street-level photos are outdoor: the layout has no outdoor probability, so the demo's "
        "SIMULATED indoor photos are not marked",
    ),
    "mp16pro": (
        "AUTHOR: the SIMULATED users",
        "Prob_indoor: one minus the SIMULATED outdoor probability (Prob_natural: the outdoor "
        "probability, Prob_urban: 0; S3_Label from them, S16_Label and S365_Label empty)",
        "city, county, state, country: reverse geocoded from the real location (reverse_geocoder, "
        "GeoNames; country as an ISO code); neighbourhood, region and continent empty",
    ),
    "webdataset": (
        "date_uploaded, user_nsid, outdoor_prob in each JSON: the SIMULATED posting times, users and "
        "outdoor probabilities",
    ),
}


@dataclass(frozen=True)
class ArchiveSizes:
    """How the demo cuts its archives (the real data sets: ~50,000 photos per OSV-5M zip, 19 parts of
    ~20 GB for MP16-Pro, 10,000 photos per img2dataset shard); small enough that the small demo has
    several of each."""

    photos_per_zip: int = 1000
    tar_part_bytes: int = 4 << 20
    photos_per_shard: int = 1000


@dataclass(frozen=True)
class DemoTable:
    """What each layout writes per photo: the standard collection's values, in its order."""

    photo_id: np.ndarray
    user: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    posted_at: np.ndarray
    outdoor_prob: np.ndarray
    image: Callable[[int], bytes]  # photo id -> the JPEG bytes of the standard collection


def write_collection(
    folder: Path | str,
    fmt: str,
    spec: generate.DemoSpec,
    *,
    source: Path | str | None = None,
    sizes: ArchiveSizes = ArchiveSizes(),
    coordinates_path: Path | None = None,
    raster_path: Path | None = None,
    cache_dir: Path | None = None,
) -> dict:
    """Writes the demo collection into `folder` in layout `fmt` (one of FORMATS); returns
    ``{"format": fmt, "metadata": [absolute paths], "images": absolute path, "info": demo info}``
    (yfcc100m adds ``"autotags"`` and ``"image_path_template"``): the files to hand to ingestion.

    `source`: where the standard collection is (generated there when missing, e.g. the runner's
    demo folder, shared by all formats); by default a folder inside `folder`, removed once the layout
    is complete. A complete collection with the same spec is left as it is.
    """
    folder = Path(folder)
    if fmt not in FORMATS:
        raise DataPipelineError(f"demo format {fmt!r}: expected one of {', '.join(FORMATS)}")
    source_kwargs: dict[str, Any] = dict(
        coordinates_path=coordinates_path, raster_path=raster_path, cache_dir=cache_dir
    )
    info_path = folder / generate.INFO_FILE
    if info_path.exists():
        info = json.loads(info_path.read_text())
        made = (info.get("spec"), info.get("format", "yfcc100m"), info.get("archive_sizes"))
        wanted = (asdict(spec), fmt, None if fmt == "yfcc100m" else asdict(sizes))
        if made == wanted and _padded(info):
            log.info("demo collection in %s (%s) is complete already", folder, fmt)
            return _result(folder, info)
        if made != wanted:
            raise DataPipelineError(
                f"{folder} holds a demo collection made with format {made[1]!r}, {made[0]}, archive "
                f"sizes {made[2]}; not format {fmt!r}, {wanted[0]}, {wanted[2]}: use another folder"
            )
        # an MP16-Pro layout written before its members were padded: every member would now be
        # taken for a placeholder, so the layout is written again
        log.info("demo collection in %s (%s) has unpadded members: writing it again", folder, fmt)
        info_path.unlink()
    if fmt == "yfcc100m":
        return _result(folder, generate.generate(folder, spec, **source_kwargs))
    source_dir = folder / SOURCE_DIR if source is None else Path(source)
    if source_dir.resolve() == folder.resolve():
        raise DataPipelineError(
            f"{folder}: the {fmt} layout cannot share a folder with the standard collection it is made "
            "from; give another source folder"
        )
    started = time.monotonic()
    base = generate.generate(source_dir, spec, **source_kwargs)
    table = _table(source_dir, spec, coordinates_path, cache_dir)
    files = LAYOUTS[fmt](folder, table, sizes)
    info = {
        **base,
        "format": fmt,
        "simulated": list(generate.SIMULATED) + list(SIMULATED_BY_FORMAT[fmt]),
        "archive_sizes": asdict(sizes),
        **({PADDED_KEY: archives.PLACEHOLDER_MAX_BYTES} if fmt == "mp16pro" else {}),
        "files": files,
        "layout_seconds": round(time.monotonic() - started, 1),
    }
    write_text_atomic(info_path, json.dumps(info, indent=2))
    if source is None:
        shutil.rmtree(source_dir)
    return _result(folder, info)


#: demo_info.json of an MP16-Pro layout: its members are larger than this many bytes
#: (``mp16pro_member``); a layout without it was written before and is written again.
PADDED_KEY = "members_larger_than_bytes"


def _padded(info: dict) -> bool:
    return info.get("format") != "mp16pro" or info.get(PADDED_KEY) == archives.PLACEHOLDER_MAX_BYTES


def _result(folder: Path, info: dict) -> dict:
    """The files of a complete collection, as absolute paths."""
    files = info["files"]
    root = folder.resolve()
    if "format" not in info:  # the standard collection (generate.py)
        return {
            "format": "yfcc100m",
            "metadata": [str(root / files["metadata"])],
            "autotags": [str(root / files["autotags"])],
            "images": str(root / files["images"]),
            "image_path_template": files["image_path_template"],
            "info": info,
        }
    return {
        "format": info["format"],
        "metadata": [str(root / name) for name in files["metadata"]],
        "images": str(root / files["images"]),
        "info": info,
    }


def _table(source_dir: Path, spec: generate.DemoSpec, coordinates_path: Path | None, cache_dir) -> DemoTable:
    """The photos of the standard collection in `source_dir`: drawn again from the same sources and
    seed (cheap; the images are read from the collection), checked against its metadata file."""
    coordinates_path = coordinates_path or sources.fetch(sources.COORDINATES, cache_dir)
    lat, lon, _ = generate.read_locations(coordinates_path)
    photos = generate.simulate(lat, lon, spec)
    metadata = source_dir / generate.METADATA_FILE
    with open(metadata, encoding="utf-8") as lines:
        written = np.array([int(line.split("\t", 1)[0]) for line in lines if line.strip()], dtype=np.int64)
    if not np.array_equal(written, photos.photo_id):
        raise DataPipelineError(
            f"{metadata}: its photo ids are not those the demo generator draws for {asdict(spec)} "
            "(made by another version?); use another folder"
        )
    images = source_dir / generate.IMAGES_DIR
    return DemoTable(
        photo_id=photos.photo_id,
        user=photos.user,
        lat=photos.lat,
        lon=photos.lon,
        posted_at=photos.posted_at,
        outdoor_prob=photos.outdoor_prob,
        image=lambda pid: (images / f"{pid}.jpg").read_bytes(),
    )


# ---------------------------------------------------------------------------------------------------
# Layouts: each writes its files into the folder and returns the info's "files" entry (paths relative
# to the folder: "metadata" the list handed to ingestion, "images" the --images folder).


def write_osv5m(folder: Path, table: DemoTable, sizes: ArchiveSizes) -> dict:
    """train.csv, test.csv and images/{train,test}/NN.zip (see the module docstring)."""
    shutil.rmtree(folder / "images", ignore_errors=True)  # a zip of an interrupted run must not stay
    in_test = _stable_percent(table.photo_id) < OSV5M_TEST_PERCENT
    admin = reverse_geocode(table.lat, table.lon)
    sequence = _sequences(table)
    files: dict[str, Any] = {"metadata": [], "images": "images", "zips": {}}
    for split in OSV5M_SPLITS:
        rows = np.flatnonzero(in_test if split == "test" else ~in_test)
        lines = []
        zips = []
        for number, start in enumerate(range(0, len(rows), sizes.photos_per_zip)):
            chunk = rows[start : start + sizes.photos_per_zip]
            prefix = f"{number:02d}/"
            members = [
                (f"{prefix}{int(table.photo_id[i])}.jpg", table.image(int(table.photo_id[i]))) for i in chunk
            ]
            name = f"images/{split}/{number:02d}.zip"
            write_atomic(folder / name, functools.partial(_write_zip, directory=prefix, members=members))
            zips.append(name)
        for i in rows:
            pid, user = int(table.photo_id[i]), int(table.user[i])
            country, region, sub_region, city = admin[i]
            values = {
                "id": str(pid),
                "latitude": f"{table.lat[i]:.6f}",
                "longitude": f"{table.lon[i]:.6f}",
                "thumb_original_url": f"http://demo.invalid/thumb/{pid}.jpg",
                "country": country,
                "sequence": sequence[i],
                "captured_at": str(int(table.posted_at[i]) * 1000 + pid % 1000),
                "region": region,
                "sub-region": sub_region,
                "city": city,
                "unique_region": f"{region}_{country}",
                "unique_sub-region": f"{sub_region}_{region}_{country}" if sub_region else "",
                "unique_city": f"{city}_{sub_region or 'NaN'}_{region}_{country}",
                "unique_country": country,
                "creator_username": f"SIMULATED-user-{user}",
                "creator_id": str(FIRST_CREATOR_ID + user),
            }
            lines.append([values.get(column, "") for column in OSV5M_COLUMNS])
        write_text_atomic(folder / f"{split}.csv", _csv_text(OSV5M_COLUMNS, lines))
        files["metadata"].append(f"{split}.csv")
        files["zips"][split] = zips
    return files


#: JPEG's start-of-image marker and comment (COM) segment marker.
_JPEG_SOI, _JPEG_COM = b"\xff\xd8", b"\xff\xfe"


def mp16pro_member(jpeg: bytes) -> bytes:
    """A demo photo as an MP16-Pro tar member: ``jpeg`` with a comment segment of zero bytes after
    its start-of-image marker when it is no longer than ``archives.PLACEHOLDER_MAX_BYTES`` (the
    demo's photos are tiny; real ones are tens of kB), so it is not taken for a placeholder. The
    decoded pixels are the same."""
    short = archives.PLACEHOLDER_MAX_BYTES + 1 - len(jpeg)
    if short <= 0:
        return jpeg
    if not jpeg.startswith(_JPEG_SOI):
        raise ValueError("mp16pro_member: expected a JPEG (it starts with FF D8)")
    payload = max(short - 4, 0)  # the marker and the length field take 4 bytes
    segment = _JPEG_COM + (payload + 2).to_bytes(2, "big") + bytes(payload)
    return _JPEG_SOI + segment + jpeg[len(_JPEG_SOI) :]


def write_mp16pro(folder: Path, table: DemoTable, sizes: ArchiveSizes) -> dict:
    """metadata/MP16_Pro_places365.csv and the tar parts mp-16-images00, 01, ... (module docstring)."""
    for stale in glob.glob(str(folder / f"{MP16PRO_PART_PREFIX}*")):  # parts of an interrupted run
        os.unlink(stale)
    admin = reverse_geocode(table.lat, table.lon)
    img_ids = [mp16_img_id(int(pid)) for pid in table.photo_id]
    members = (  # a generator: one image in memory at a time
        (MP16PRO_MEMBER_DIR + img_id.replace("/", "_"), mp16pro_member(table.image(int(pid))))
        for img_id, pid in zip(img_ids, table.photo_id)
    )
    parts: list[str] = []
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder) as whole:  # the tar, then cut into raw byte parts
        _write_tar(whole, members, directory=MP16PRO_MEMBER_DIR)
        whole.seek(0)
        while chunk := whole.read(sizes.tar_part_bytes):
            name = f"{MP16PRO_PART_PREFIX}{len(parts):02d}"
            write_bytes_atomic(folder / name, chunk)
            parts.append(name)
    rows = []
    for i, img_id in enumerate(img_ids):
        outdoor = float(table.outdoor_prob[i])
        country, state, county, city = admin[i]
        values = {
            "IMG_ID": img_id,
            "AUTHOR": generate.user_nsid(int(table.user[i])),
            "LAT": f"{table.lat[i]:.6f}",
            "LON": f"{table.lon[i]:.6f}",
            "S3_Label": "0" if outdoor < 0.5 else "1",  # argmax of (indoor, natural, urban)
            "Prob_indoor": f"{1 - outdoor:.4f}",
            "Prob_natural": f"{outdoor:.4f}",
            "Prob_urban": "0.0",
            "city": city,
            "county": county,
            "state": state,
            "country": country,
        }
        rows.append([values.get(column, "") for column in MP16PRO_COLUMNS])
    write_text_atomic(folder / MP16PRO_CSV, _csv_text(MP16PRO_COLUMNS, rows))
    return {"metadata": [MP16PRO_CSV], "images": ".", "tar_parts": parts}


def write_webdataset(folder: Path, table: DemoTable, sizes: ArchiveSizes) -> dict:
    """Shards 00000.tar, 00001.tar, ... of <key>.jpg + <key>.json (module docstring)."""
    for stale in glob.glob(str(folder / "[0-9][0-9][0-9][0-9][0-9].tar")):
        os.unlink(stale)
    shards = []
    for number, start in enumerate(range(0, len(table.photo_id), sizes.photos_per_shard)):
        members = []
        for i in range(start, min(start + sizes.photos_per_shard, len(table.photo_id))):
            key = str(int(table.photo_id[i]))
            meta = {
                "key": key,
                "status": "success",
                "latitude": round(float(table.lat[i]), 6),
                "longitude": round(float(table.lon[i]), 6),
                "date_uploaded": int(table.posted_at[i]),
                "user_nsid": generate.user_nsid(int(table.user[i])),
                "outdoor_prob": float(table.outdoor_prob[i]),
            }
            members.append((f"{key}.jpg", table.image(int(key))))
            members.append((f"{key}.json", json.dumps(meta, indent=4).encode("utf-8")))
        name = f"{number:05d}.tar"
        write_atomic(folder / name, functools.partial(_write_tar, members=members))
        shards.append(name)
    return {"metadata": shards, "images": "."}


LAYOUTS: dict[str, Callable[[Path, DemoTable, ArchiveSizes], dict]] = {
    "osv5m": write_osv5m,
    "mp16pro": write_mp16pro,
    "webdataset": write_webdataset,
}


# ---------------------------------------------------------------------------------------------------


def reverse_geocode(lat: np.ndarray, lon: np.ndarray) -> list[tuple[str, str, str, str]]:
    """(country ISO code, admin1, admin2, place name) of the GeoNames place (over 1000 people)
    nearest to each point (``data_pipelines.geonames``), as OSV-5M made its admin columns."""
    return [(str(a), str(b), str(c), str(d)) for a, b, c, d in geonames.reverse_geocode(lat, lon)]


def mp16_img_id(photo_id: int) -> str:
    """MP-16's image id form, ``xx/yy/<photo id>.jpg`` (two levels of hex folders)."""
    digest = hashlib.md5(str(photo_id).encode("ascii")).hexdigest()
    return f"{digest[:2]}/{digest[2:4]}/{photo_id}.jpg"


def _stable_percent(photo_id: np.ndarray) -> np.ndarray:
    """0..99 per photo, a stable hash of its id (Fibonacci hashing), independent of the order."""
    mixed = photo_id.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    return ((mixed >> np.uint64(33)) % np.uint64(100)).astype(np.int64)


def _sequences(table: DemoTable) -> list[str]:
    """An opaque sequence id per photo: one per (user, UTC day)."""
    day = table.posted_at // 86400
    pairs, which = np.unique(np.stack([table.user, day], axis=1), axis=0, return_inverse=True)
    names = [
        hashlib.blake2b(f"{user}/{d}".encode("ascii"), digest_size=11).hexdigest()
        for user, d in pairs.tolist()
    ]
    return [names[k] for k in np.asarray(which).reshape(-1)]


def _csv_text(header: Sequence[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _write_zip(f: IO[bytes], directory: str, members: list[tuple[str, bytes]]) -> None:
    """A zip of stored (uncompressed: JPEGs do not shrink) members after their folder's entry, with
    fixed times and permissions."""
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as archive:
        entry = zipfile.ZipInfo(directory, date_time=FIXED_TIME)
        entry.external_attr = (0o40755 << 16) | 0x10
        archive.writestr(entry, b"")
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)


def _write_tar(f: IO[bytes], members: Iterable[tuple[str, bytes]], directory: str | None = None) -> None:
    """A POSIX (ustar) tar of `members`, after a folder entry when given, with fixed times and
    owners."""
    with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        if directory is not None:
            archive.addfile(_tar_info(directory, 0, tarfile.DIRTYPE, 0o755))
        for name, data in members:
            archive.addfile(_tar_info(name, len(data), tarfile.REGTYPE, 0o644), io.BytesIO(data))


def _tar_info(name: str, size: int, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.mode, info.mtime = size, kind, mode, FIXED_EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
