"""OpenStreetView-5M (OSV-5M, CC-BY-SA): ``train.csv`` / ``test.csv`` and ``images/{train,test}/NN.zip``.

The layout, as the dataset's own loader and code read it (the ``osv5m/osv5m`` Hugging Face dataset
and its loader script, whose header comment lists the columns; github.com/gastruc/osv5m
``DATASET.md`` and ``data/data.py``):

    id,latitude,longitude,thumb_original_url,country,sequence,captured_at,lon_bin,lat_bin,cell,
    region,sub-region,city,land_cover,road_index,drive_side,climate,soil,dist_sea,quadtree_10_*...,
    unique_region,unique_sub-region,unique_city,unique_country,creator_username,creator_id

Images: ``images/train/00.zip`` ... and ``images/test/00.zip`` ... ``04.zip``, JPEGs named
``<id>.jpg`` (the authors unzip them and open ``<split>/<id>.jpg``). They are read straight out of
the zips (``data_pipelines.archives.index_zips``: key = member name without folder or extension =
the ``id``).

What is read, and nothing else:

- ``id`` (photo id and archive key), ``latitude``, ``longitude``;
- ``captured_at`` -> ``posted_at`` through ``values.capture_time``. Mapillary's ``captured_at`` is
  epoch milliseconds; epoch seconds and ISO 8601 are accepted too. **It is the time the photo was
  taken, not the time it was posted**, which is what the paper's M2 (§3.2) was trained on with
  YFCC100M. For street-level photos uploaded in bulk the two differ by hours to months; M2 here
  learns hour-of-day and season of capture. An empty ``captured_at`` is -1 (unknown).
- the album column, hashed: ``creator_id`` (the photographer; ``--album_key=creator``, the
  default) or ``sequence`` (one Mapillary capture sequence; ``--album_key=sequence``), so that
  M3's albums (§3.3) group one photographer's, or one drive's, photos. ``creator_username`` and
  ``thumb_original_url`` are never read.
- ``unique_country``, ``unique_region``, ``unique_sub-region``, ``unique_city`` -> admin (country,
  region, sub_region, city), as written ("FR", "Ile-de-France_FR", "Paris_Ile-de-France_FR",
  "Paris_Paris_Ile-de-France_FR"; stripped, "" where empty): what OSV-5M's own metric compares its
  predictions with (``metrics/utils.py``), so ``--evaluate_admin_rule=osv5m`` scores against the
  same strings; geoloc's rule compares their first parts, the plain names. The plain ``country``,
  ``region``, ``sub-region``, ``city`` are read only where a file lacks the ``unique_*`` column of
  that level (a trimmed copy): they are not what the metric compares (and OSV-5M's
  ``scripts/preprocessing/fix_namimbia.py`` rewrote ``country`` of Namibian photos).

OSV-5M has no indoor probability (street-level photos are all outdoors): outdoor_prob is NaN
(unknown) unless ``--autotags`` gives one. The test split keeps 1 km from every training photo.
"""

from __future__ import annotations

from data_pipelines import archives, errors
from data_pipelines.readers import keyed_csv
from data_pipelines.readers.formats import Format, ReadOptions

LAYOUT = keyed_csv.Layout(
    name="OSV-5M train.csv/test.csv",
    photo_id="id",
    lat="latitude",
    lon="longitude",
    time="captured_at",
    admin=(
        ("unique_country", "country"),
        ("unique_region", "region"),
        ("unique_sub-region", "sub-region"),
        ("unique_city", "city"),
    ),
    indoor=None,
    key=str.strip,
)
ALBUM_COLUMNS = {"creator": "creator_id", "sequence": "sequence"}


def read(path, *, template, user_hasher, skips, options: ReadOptions, chunk_lines=1 << 18, on_progress=None):
    """Reads one OSV-5M CSV (``Format.read``); photos are found in the zips by ``id``."""
    if template:
        raise errors.ConfigError(
            f"image_path_template {template!r}: OSV-5M photos are found in the zips by id; expected "
            "no template with --format=osv5m"
        )
    yield from keyed_csv.read(
        path,
        LAYOUT,
        ALBUM_COLUMNS[options.album_key],
        user_hasher=user_hasher,
        skips=skips,
        chunk_lines=chunk_lines,
        on_progress=on_progress,
        limits=options.limits,
    )


def sniff(path: str, line: bytes) -> bool:
    """An OSV-5M header: id, latitude, longitude, captured_at and creator_id."""
    return LAYOUT.sniff(line, ("captured_at", "creator_id"))


FORMAT: Format = Format(
    "osv5m",
    "OpenStreetView-5M train.csv/test.csv; photos in images/{train,test}/NN.zip under --images, "
    "read from the zips",
    read,
    index_archives=archives.index_zips,
    sniff=sniff,
)
