"""Writes the demo collection in the YFCC100M layout, to go through the standard ingestion.

    geoloc make-demo --out=DIR [--demo_size=small|default] [--seed=0]

The demo exercises the real path, not a side door: it writes what a YFCC100M user has,

- `yfcc100m_dataset` : the 23-field tab-separated metadata, one line per photo;
- `yfcc100m_autotags`: `photo id <TAB> tag:confidence,...` with `outdoor` and `indoor` confidences,
  the form in which YFCC100M ships its scene tags (the paper filters on outdoor photos, §4.1.2);
- `images/<photo id>.jpg`;
- `demo_info.json`: sizes, seed, sources and their credits, photos per user, and the list of what is
  SIMULATED; written last, so its presence means the collection is complete.

What is real: the photo locations (MP-16, de-duplicated before anything else) and the imagery (NASA
Blue Marble). What is SIMULATED: the users (`users.py`), the posting times (`times.py`), and the indoor
photos: about half of the photos (`indoor_share`; ~50 % of YFCC100M is outdoor per the paper, §4.1.2)
show an unrelated place, so their pixels carry little information about their location, and their
outdoor probability says so, with noise. Fields the method never uses (nickname, title, URLs, ...)
hold obviously simulated values, so a test can check that ingestion drops them.

Everything is a function of the seed: the same seed gives the same bytes. Images are written
atomically and an interrupted run continues where it stopped.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from data_pipelines.demo import imagery, sources, times, users
from data_pipelines.errors import DataPipelineError
from mesh.atomic import write_bytes_atomic, write_text_atomic
from mesh.progress import Progress
from mesh.settings import setting

log = logging.getLogger(__name__)

SIZES = {"small": 3_000, "default": 30_000}
DEFAULT_IMAGE_SIZE = 96  # px, the side of the demo's square photos
METADATA_FILE = "yfcc100m_dataset"
AUTOTAGS_FILE = "yfcc100m_autotags"
INFO_FILE = "demo_info.json"
IMAGES_DIR = "images"
FIRST_PHOTO_ID = 8_000_000_000  # far from real YFCC100M ids, so demo photos are never mistaken for them
SIMULATED = (
    "users: who took which photo (heavy-tailed photo counts, home locations, trips)",
    "posting times: a daily rhythm in local solar time, weekend and season effects, converted to UTC "
    "by longitude",
    "indoor photos: about half of the photos show an unrelated place; outdoor probabilities are drawn "
    "around the truth",
    "photos: patches of the NASA Blue Marble around the real location, through a random camera",
    "nickname, title, description, tags, URLs: placeholders",
)


@dataclass(frozen=True)
class DemoSpec:
    """What to generate. ``image_size`` and ``workers`` are settings, `geoloc make-demo`'s
    ``--image_size`` and ``--workers`` (``experiments.commands.demo``)."""

    num_photos: int
    seed: int = 0
    image_size: int = setting(DEFAULT_IMAGE_SIZE, "Side of the square photos, px.", minimum=8)
    indoor_share: float = 0.5
    workers: int = setting(
        0,
        "Processes rendering images; 0: one per core (a photo's bytes do not depend on it).",
        minimum=0,
        affects_outputs=False,
    )


@dataclass(frozen=True)
class DemoPhotos:
    """The generated table, one row per photo, before it is written out."""

    photo_id: np.ndarray
    user: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    posted_at: np.ndarray
    taken_local: np.ndarray
    indoor: np.ndarray
    outdoor_prob: np.ndarray
    pixel_lat: np.ndarray  # where the pixels come from (the location itself, or elsewhere if indoor)
    pixel_lon: np.ndarray
    on_trip: np.ndarray


def read_locations(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """The real locations (read by the mesh's coordinate reader, which skips and counts bad rows),
    exact duplicates removed (first occurrence kept, file order); and the number of data rows."""
    from mesh.coords_csv import read_coords_csv
    from mesh.errors import CoordsFileError

    try:
        coords = read_coords_csv(path)
    except CoordsFileError as error:
        raise DataPipelineError(str(error)) from None
    pairs = np.stack([coords.lat, coords.lon], axis=1)
    _, first = np.unique(pairs, axis=0, return_index=True)
    keep = np.sort(first)
    return pairs[keep, 0], pairs[keep, 1], coords.rows_total


def simulate(lat: np.ndarray, lon: np.ndarray, spec: DemoSpec) -> DemoPhotos:
    """Draws users, posting times and indoor photos for `spec.num_photos` of the real locations."""
    rng = np.random.default_rng([spec.seed, 1])
    who = users.simulate_users(lat, lon, spec.num_photos, rng)
    photo_lat, photo_lon = lat[who.location_index], lon[who.location_index]
    posted_at, taken_local = times.simulate_posting_times(photo_lat, photo_lon, rng)
    n = spec.num_photos
    indoor = rng.random(n) < spec.indoor_share
    elsewhere = rng.integers(0, len(lat), size=n)  # an unrelated real place
    outdoor_prob = np.where(indoor, rng.beta(2, 8, size=n), rng.beta(8, 2, size=n))
    photo_id = FIRST_PHOTO_ID + rng.permutation(n).astype(np.int64) * 7 + rng.integers(0, 7, size=n)
    return DemoPhotos(
        photo_id=photo_id,
        user=who.user,
        lat=photo_lat,
        lon=photo_lon,
        posted_at=posted_at,
        taken_local=taken_local,
        indoor=indoor,
        outdoor_prob=np.round(outdoor_prob, 4),
        pixel_lat=np.where(indoor, lat[elsewhere], photo_lat),
        pixel_lon=np.where(indoor, lon[elsewhere], photo_lon),
        on_trip=who.on_trip,
    )


def user_nsid(user: int) -> str:
    """A SIMULATED user's Flickr-style NSID (the raw user id of the YFCC100M and MP-16 layouts)."""
    return f"{10_000_000 + user}@N0{user % 9 + 1}"


def metadata_lines(photos: DemoPhotos) -> list[str]:
    """The YFCC100M 23-field lines (see data_pipelines.readers.yfcc for the field list)."""
    lines = []
    for i in range(len(photos.photo_id)):
        pid, user = int(photos.photo_id[i]), int(photos.user[i])
        nsid = user_nsid(user)
        taken = str(photos.taken_local[i]).replace("T", " ") + ".0"
        fields = [
            str(pid),
            nsid,
            f"simulated+user+{user}",
            taken,
            str(int(photos.posted_at[i])),
            "Simulated+Camera",
            f"simulated+title+{pid}",
            "simulated+description",
            "simulated,tag",
            "",
            f"{photos.lon[i]:.6f}",
            f"{photos.lat[i]:.6f}",
            "16",
            f"http://demo.invalid/photos/{nsid}/{pid}/",
            f"http://demo.invalid/{pid}.jpg",
            "Attribution License",
            "http://creativecommons.org/licenses/by/2.0/",
            "0",
            "0",
            "0000000000",
            "0000000000",
            "jpg",
            "0",
        ]
        lines.append("\t".join(fields))
    return lines


def autotag_lines(photos: DemoPhotos) -> list[str]:
    return [
        f"{int(pid)}\toutdoor:{p:.4f},indoor:{1 - p:.4f}"
        for pid, p in zip(photos.photo_id, photos.outdoor_prob)
    ]


def generate(
    out_dir: Path | str,
    spec: DemoSpec,
    *,
    coordinates_path: Path | None = None,
    raster_path: Path | None = None,
    cache_dir: Path | None = None,
) -> dict:
    """Writes the demo collection into out_dir; returns its info (also written as demo_info.json).

    The sources are the real files fetched into the cache (`sources.fetch`) unless given; tests give
    tiny ones. A complete collection with the same spec is left as it is; an incomplete one is
    completed.
    """
    out_dir = Path(out_dir)
    info_path = out_dir / INFO_FILE
    if info_path.exists():
        info = json.loads(info_path.read_text())
        if info.get("spec") == asdict(spec):
            log.info("demo collection in %s is complete already", out_dir)
            return info
        raise DataPipelineError(
            f"{out_dir} holds a demo collection made with {info.get('spec')}, not "
            f"{asdict(spec)}; use another folder"
        )
    started = time.monotonic()
    coordinates_path = coordinates_path or sources.fetch(sources.COORDINATES, cache_dir)
    raster_path = raster_path or sources.fetch(sources.BLUE_MARBLE, cache_dir)
    lat, lon, rows_read = read_locations(coordinates_path)
    if spec.num_photos > len(lat):
        raise DataPipelineError(
            f"--size asks for {spec.num_photos} photos; the source has {len(lat)} unique locations"
        )
    photos = simulate(lat, lon, spec)
    (out_dir / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    _render_all(photos, raster_path, out_dir / IMAGES_DIR, spec)
    write_text_atomic(out_dir / METADATA_FILE, "\n".join(metadata_lines(photos)) + "\n")
    write_text_atomic(out_dir / AUTOTAGS_FILE, "\n".join(autotag_lines(photos)) + "\n")
    counts = np.bincount(photos.user)
    info = {
        "name": "geoloc demo collection",
        "warning": "SIMULATED users, posting times and indoor photos on real locations and real "
        "imagery; numbers measured on it are not results on real photos",
        "simulated": list(SIMULATED),
        "spec": asdict(spec),
        "photos": int(len(photos.photo_id)),
        "users": int(len(counts)),
        "photos_per_user": {
            "min": int(counts.min()),
            "median": float(np.median(counts)),
            "max": int(counts.max()),
        },
        "indoor_share": round(float(photos.indoor.mean()), 4),
        "trip_share": round(float(photos.on_trip.mean()), 4),
        "source_rows": rows_read,
        "unique_locations": int(len(lat)),
        "sources": [
            {
                "name": s.name,
                "package": f"{s.package}=={s.version}",
                "file": s.member,
                "sha256": s.sha256,
                "credit": s.credit,
            }
            for s in sources.SOURCES
        ],
        "files": {
            "metadata": METADATA_FILE,
            "autotags": AUTOTAGS_FILE,
            "images": IMAGES_DIR,
            "image_path_template": "{id}.jpg",
        },
        "generation_seconds": round(time.monotonic() - started, 1),
    }
    write_text_atomic(info_path, json.dumps(info, indent=2))
    return info


_RASTER: imagery.Raster | None = None


def _init_worker(raster_path: str) -> None:
    global _RASTER
    _RASTER = imagery.Raster.load(raster_path)


def _render_one(job: tuple[int, int, float, float, int, int, str]) -> None:
    index, photo_id, lat, lon, size, seed, folder = job
    target = Path(folder) / f"{photo_id}.jpg"
    if _RASTER is None:
        raise RuntimeError("_render_one runs only in a worker started by _init_worker (no raster loaded)")
    rng = np.random.default_rng([seed, 2, index])  # per photo: the bytes do not depend on workers
    data = imagery.render_photo(_RASTER, lat, lon, size, rng)
    write_bytes_atomic(target, data)


def _render_all(photos: DemoPhotos, raster_path: Path, folder: Path, spec: DemoSpec) -> None:
    jobs = [
        (
            i,
            int(pid),
            float(photos.pixel_lat[i]),
            float(photos.pixel_lon[i]),
            spec.image_size,
            spec.seed,
            str(folder),
        )
        for i, pid in enumerate(photos.photo_id)
        if not (folder / f"{int(pid)}.jpg").exists()
    ]
    done_before = len(photos.photo_id) - len(jobs)
    if done_before:
        log.info("%d of %d demo images exist already, rendering the rest", done_before, len(photos.photo_id))
    if not jobs:
        return
    workers = spec.workers or os.cpu_count() or 1
    context = multiprocessing.get_context("fork")
    with (
        context.Pool(workers, initializer=_init_worker, initargs=(str(raster_path),)) as pool,
        Progress(len(jobs), "photos", "demo images", log=log) as progress,
    ):
        for _ in pool.imap_unordered(_render_one, jobs, chunksize=64):
            progress.update(1)
