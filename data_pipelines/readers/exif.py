"""Reader of a folder of one's own geotagged photos (``--format=exif --images=DIR``, no ``--metadata``).

For evaluating on a person's own photos: the photos are the metadata. The folder is walked in sorted
order (file names, then sub-folders, each sorted; deterministic, so reruns and messages agree); a
record is a file whose name ends in ``.jpg``, ``.jpeg``, ``.png`` or ``.webp`` (any case) and does
not start with a dot. Other files (sidecars, videos, ``.DS_Store``) are not photos and are passed
over, and symlinked folders are not followed.

Each photo is read through the same gates as every image of the ingestion: a symlink leading outside
``--images`` is ``outside_images`` and a FIFO, device or folder named like a photo is ``not_a_file``
(``data_pipelines.ingest.image_files``); the image decoder's header checks then refuse unsupported,
oversized (``max_pixels``) and animated files before anything is decoded (``data_pipelines.images``),
counted as ``bad_image``. Only the header and EXIF block are read here; the ingestion workers decode
the pixels later (a file broken past its header is their ``bad_image``).

From EXIF (Pillow's reader):

- **Position**: GPSLatitude + GPSLatitudeRef (N/S) and GPSLongitude + GPSLongitudeRef (E/W), each
  degrees, minutes, seconds as rationals, to decimal degrees. A photo without them (no GPS fix, GPS
  off, or stripped by a sharing app) is ``no_coordinates``; values that are not finite non-negative
  numbers, a missing or unknown reference, or a position out of range are ``bad_coordinates``. The
  references say which value is the latitude and its sign, so latitude and longitude cannot be
  swapped, and this format has no swap pre-pass (``common.swap_proven``).
- **Time**: DateTimeOriginal (``YYYY:MM:DD HH:MM:SS``, when the photo was taken: a capture time, in
  place of the paper's posting time), with OffsetTimeOriginal (``+02:00``) when the camera wrote one.
  Without an offset the camera's local time is taken as UTC (EXIF 2.3 has no time zone otherwise), so
  such times can be off by the photographer's UTC offset. A blank date or all zeros (how the standard
  and many cameras write "unknown") gives -1, unknown; any other unreadable date is ``bad_field``.

An EXIF block Pillow cannot parse is ``bad_coordinates`` (no position can be read from it).

Every photo is one user's (the folder is one person's photos): the user id is the constant
``EXIF_USER``, hashed like any user id (so with ``split_by=user`` all photos fall in one split).
``photo_id`` and ``image_path`` are the path relative to ``--images`` (``container`` -1: a plain
file); a file name that is not UTF-8 cannot be stored and is ``bad_field``. Line numbers in messages
are the photo's position in the sorted walk, and each message names the file. No other EXIF field
(camera serials, owner names, GPS altitude) is kept, and the ingestion re-encodes the pixels without
EXIF.
"""

from __future__ import annotations

import datetime
import math
import os
from typing import Iterator

from PIL import ExifTags

from data_pipelines import images, values
from data_pipelines.readers import common
from data_pipelines.readers.formats import Format, ReadOptions

PHOTO_SUFFIXES = common.IMAGE_SUFFIXES
#: The raw user id of every photo of the folder (hashed with the data set's salt).
EXIF_USER = b"exif:folder-owner"
# Errors Pillow's EXIF parser raises on a malformed block (a bad offset, a short tag).
_EXIF_ERRORS = (OSError, SyntaxError, ValueError, TypeError, KeyError, IndexError, EOFError)


def photo_paths(root: str) -> list[str]:
    """The photos under ``root`` as paths relative to it, in the sorted walk's order."""
    found = []

    def unreadable(error: OSError) -> None:
        common.log.warning(
            "%s: cannot list this folder (%s); its photos are not read", error.filename, error.strerror
        )

    for folder, dirs, files in os.walk(root, onerror=unreadable, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = os.path.relpath(folder, root)
        for name in sorted(files):
            if not name.startswith(".") and name.lower().endswith(PHOTO_SUFFIXES):
                found.append(name if rel == "." else os.path.join(rel, name))
    return found


def _degrees(value, ref, positive: str, negative: str) -> tuple[str | None, str]:
    """(decimal degrees as text, problem) of an EXIF GPS coordinate and its reference."""
    parts = value if isinstance(value, tuple) else (value,)
    try:
        numbers = [float(p) for p in parts]
    except (TypeError, ValueError, ZeroDivisionError):
        numbers = []
    if not 1 <= len(numbers) <= 3 or not all(math.isfinite(n) and n >= 0 for n in numbers):
        return None, f"{values.show(repr(value))}; expected degrees, minutes, seconds as non-negative numbers"
    degrees = sum(n / 60**i for i, n in enumerate(numbers))
    side = ref.strip().upper() if isinstance(ref, str) else ""
    if side not in (positive, negative):
        shown = values.show(ref if isinstance(ref, str) else repr(ref))
        return None, f"reference {shown}; expected {positive} or {negative}"
    return repr(-degrees if side == negative else degrees), ""


def _taken_at(exif_ifd) -> tuple[int, str]:
    """(epoch seconds or -1 unknown, problem) of DateTimeOriginal (+ OffsetTimeOriginal)."""
    text = exif_ifd.get(ExifTags.Base.DateTimeOriginal)
    if text is None or not isinstance(text, str) or not text.strip(" :0\x00"):
        return -1, ""
    date, _, clock = text.strip(" \x00").partition(" ")
    offset = exif_ifd.get(ExifTags.Base.OffsetTimeOriginal)
    offset = offset.strip() if isinstance(offset, str) and offset.strip(" :\x00") else ""
    iso = f"{date.replace(':', '-')}T{clock}{offset}"
    try:
        datetime.datetime.fromisoformat(iso)  # EXIF's own shape only, before the shared bounds
        return values.posted_at(iso), ""
    except (ValueError, values.ValueProblem):
        return -1, (
            f"DateTimeOriginal={values.show(text)} OffsetTimeOriginal={values.show(offset)}; expected "
            f"YYYY:MM:DD HH:MM:SS (and +HH:MM) within {values.POSTED_AT_RANGE}"
        )


def read_exif_folder(
    path: str,
    *,
    template,
    user_hasher,
    skips: common.SkipLog,
    options: ReadOptions,
    chunk_lines: int = 1 << 18,
    on_progress=None,
) -> Iterator[tuple[int, dict]]:
    """Yields (photos read so far, chunk columns) of the photos under ``path`` (the images folder;
    any other path: ``options.images_root``); see the module docstring. ``template`` is not used."""
    root = os.path.realpath(path) if os.path.isdir(path) else options.images_root
    names = [os.path.relpath(os.path.join(root, n), options.images_root) for n in photo_paths(root)]
    user = user_hasher(EXIF_USER)
    builder = common.ChunkBuilder()
    number = 0
    for number, name in enumerate(names, start=1):
        _add(path, number, name, builder, skips, user, options)
        if len(builder) >= chunk_lines:
            if on_progress is not None:
                on_progress(number, number, len(names))
            yield number, builder.take()
    yield number, builder.take()


def _add(path, line, name, builder, skips, user, options) -> None:
    """Keeps the photo ``name`` in ``builder`` or counts it in ``skips`` by reason."""
    # Here, not at the top: the ingest package imports the readers.
    from data_pipelines.ingest import image_files

    shown = values.show(name, 160)
    if not common.valid_text(name):
        skips.add(common.BAD_FIELD, path, line, f"{shown}: file name is not UTF-8; expected a UTF-8 name")
        return
    resolved = image_files.resolve_inside(options.images_root, name)
    if resolved is None:
        skips.add(common.OUTSIDE_IMAGES, path, line, f"{shown} resolves outside the images folder")
        return
    try:
        data = image_files.read_regular_file(resolved, name)
        with images.open_image(data, options.max_pixels) as image:
            try:
                exif = image.getexif()
                gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
                exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
            except _EXIF_ERRORS as e:
                skips.add(common.BAD_COORDINATES, path, line, f"{shown}: unreadable EXIF ({str(e)[:80]})")
                return
    except image_files.ImageSkipped as e:
        skips.add(e.reason, path, line, e.detail)
        return
    except images.BadImage as e:
        skips.add(common.BAD_IMAGE, path, line, f"{shown}: {e}")
        return
    lat_value, lon_value = gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLongitude)
    if lat_value is None or lon_value is None:
        skips.add(common.NO_COORDINATES, path, line, f"{shown}: no GPSLatitude/GPSLongitude in its EXIF")
        return
    lat_text, lat_problem = _degrees(lat_value, gps.get(ExifTags.GPS.GPSLatitudeRef), "N", "S")
    lon_text, lon_problem = _degrees(lon_value, gps.get(ExifTags.GPS.GPSLongitudeRef), "E", "W")
    if lat_text is None or lon_text is None:
        problems = [
            f"GPSLatitude {lat_problem}" if lat_problem else "",
            f"GPSLongitude {lon_problem}" if lon_problem else "",
        ]
        skips.add(common.BAD_COORDINATES, path, line, f"{shown}: " + "; ".join(p for p in problems if p))
        return
    reason, lat_e7, lon_e7, detail = common.parse_coordinates(lat_text, lon_text)
    if reason is not None:
        skips.add(reason, path, line, f"{shown}: {detail}")
        return
    posted_at, problem = _taken_at(exif_ifd)
    if problem:
        skips.add(common.BAD_FIELD, path, line, f"{shown}: {problem}")
        return
    builder.add(name, user, posted_at, lat_e7, lon_e7, -1, float("nan"), name, line)


FORMAT: Format = Format(
    "exif",
    "a folder of one's own geotagged photos (--images alone, no --metadata): GPS position and "
    "DateTimeOriginal from each photo's EXIF",
    read_exif_folder,
    needs_metadata=False,
)
