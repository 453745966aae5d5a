"""MP-16 (4.7 M YFCC100M photos: the training set of GeoEstimation, GeoCLIP and G3) in its two
archived layouts: MP16-Pro's CSV with a tar split into parts (``mp16pro``), and GeoEstimation's
msgpack shards with the MP-16 CSV (``msgpack``).

**MP16-Pro** (``Jia-py/MP16-Pro`` on the Hugging Face hub, read by G3's ``MP16Dataset``):
``MP16_Pro_places365.csv`` with the header

    IMG_ID,AUTHOR,LAT,LON,S3_Label,S16_Label,S365_Label,Prob_indoor,Prob_natural,Prob_urban,
    neighbourhood,city,county,state,region,country,continent

and the photos in ``mp-16-images.tar``, shipped as parts ``mp-16-images00`` ... ``mp-16-images18``
that are its byte-wise concatenation. Members of 5,120 bytes or fewer are Flickr's "photo
unavailable" placeholders stored under real photos' names and locations, which G3 drops; they are
skipped as ``placeholder_image`` (``archives.PLACEHOLDER_MAX_BYTES``). ``IMG_ID`` is a path such as ``e5/2d/2218633389.jpg``; the
tar's member is named after it with "/" replaced by "_" (``e5_2d_2218633389.jpg``), which is the
archive key (``archives.slash_key``; ``archives.index_tar_parts`` reads the parts as one tar,
without extracting). The address columns come from reverse geocoding (OpenStreetMap names, not
codes) and are mapped to the admin levels as best they fit:

    country -> country,  state -> region,  county -> sub_region,  city -> city

(MP16-Pro's own ``region`` column is a group of states or a sub-continent, and ``neighbourhood``
and ``continent`` are finer and coarser than any level here: none of the three is kept.)

**GeoEstimation msgpack** (github.com/TIBHannover/GeoEstimation: ``download_images.py`` writes
``shard_<n>.msg`` files of msgpack maps ``{"id": <IMG_ID>, "image": <JPEG bytes>}``;
``classification/dataset.py`` joins them with the metadata CSV by id): the CSV is MP-16's
``mp16_places365.csv`` (``IMG_ID,AUTHOR,LAT,LON,S3_Label,S16_Label,S365_Label,Prob_indoor,
Prob_natural,Prob_urban``) or MP16-Pro's, read the same way; a record's key is its id with "/"
replaced by "_", like the CSV's. Reading shards needs the msgpack package (the ``formats`` extra).

For both, what is read and nothing else: ``IMG_ID`` (the photo id), ``LAT``, ``LON``, ``AUTHOR``
(the Flickr user, hashed from its raw bytes: M3's albums, and the user of the stable splits),
``Prob_indoor`` -> outdoor_prob = 1 - value (Places365's indoor probability, as the CSV reader does
for the same column), and the admin columns above. MP-16 has no time column: posted_at is -1
(unknown), so M2 is trained on the collections that have one. ``--album_key`` does not apply.
"""

from __future__ import annotations

from data_pipelines import archives, errors
from data_pipelines.readers import keyed_csv
from data_pipelines.readers.formats import Format, ReadOptions

LAYOUT = keyed_csv.Layout(
    name="MP16-Pro MP16_Pro_places365.csv",
    photo_id="IMG_ID",
    lat="LAT",
    lon="LON",
    time=None,
    admin=("country", "state", "county", "city"),
    indoor="Prob_indoor",
    key=archives.slash_key,
)
ALBUM_COLUMN = "AUTHOR"


def _read(fmt: str, path, template, user_hasher, skips, chunk_lines, on_progress, limits):
    if template:
        raise errors.ConfigError(
            f"image_path_template {template!r}: MP-16 photos are found in the archives by IMG_ID; "
            f"expected no template with --format={fmt}"
        )
    yield from keyed_csv.read(
        path,
        LAYOUT,
        ALBUM_COLUMN,
        user_hasher=user_hasher,
        skips=skips,
        chunk_lines=chunk_lines,
        on_progress=on_progress,
        limits=limits,
    )


def read(path, *, template, user_hasher, skips, options: ReadOptions, chunk_lines=1 << 18, on_progress=None):
    """Reads MP16_Pro_places365.csv (``Format.read``); photos are found in the tar parts."""
    yield from _read("mp16pro", path, template, user_hasher, skips, chunk_lines, on_progress, options.limits)


def read_for_shards(
    path, *, template, user_hasher, skips, options: ReadOptions, chunk_lines=1 << 18, on_progress=None
):
    """Reads the MP-16 CSV of GeoEstimation shards (``Format.read``); without msgpack installed,
    fails at once (one line naming the extra) rather than after reading the CSV."""
    archives.require_msgpack()
    yield from _read("msgpack", path, template, user_hasher, skips, chunk_lines, on_progress, options.limits)


def sniff(path: str, line: bytes) -> bool:
    """An MP16-Pro header: IMG_ID, LAT, LON, AUTHOR and the address columns (the plain MP-16 CSV,
    without them, is the ``csv`` format's)."""
    return LAYOUT.sniff(line, ("AUTHOR", "country", "state", "county"))


FORMAT: Format = Format(
    "mp16pro",
    "MP16-Pro MP16_Pro_places365.csv; photos in the mp-16-images tar (whole or in parts) under "
    "--images, read from the tar",
    read,
    index_archives=archives.index_tar_parts,
    placeholders=True,
    sniff=sniff,
)
MSGPACK_FORMAT: Format = Format(
    "msgpack",
    "GeoEstimation shard_*.msg files under --images (id + JPEG per record) with the MP-16 CSV "
    "(mp16_places365.csv or MP16-Pro's) as metadata; needs the 'formats' extra",
    read_for_shards,
    index_archives=archives.index_msgpack_shards,
)
