"""Which Flickr photo a photo id names, across the id forms of the data sets geoloc reads.

The same Flickr photo is written differently by each data set, so ids compared as written never
match across them (and a test set's overlap with the training data then reads 0 when it is
unknown). ``flickr_ids`` derives the Flickr photo id, and the owner's NSID where the id carries it,
from every form the readers meet, checked against the data sets' own files:

- **YFCC100M** ``yfcc100m_dataset`` and **Multimedia Commons** lines: the photo id field is the
  Flickr photo id itself, a bare number (``2218633389``; ``readers.yfcc``).
- **MP-16** and **MP16-Pro**: ``IMG_ID`` is a path of two hex folders and ``<photo id>.jpg``
  (``e5/2d/2218633389.jpg``: GeoEstimation's ``mp16_places365.csv``, G3's ``MP16Dataset`` over
  ``MP16_Pro_places365.csv``, which names the tar members ``e5_2d_2218633389.jpg``); GeoEstimation's
  msgpack shards key their records by the same id, and the archive key replaces "/" by "_"
  (``archives.slash_key``). Both forms are read.
- **GeoEstimation's Im2GPS3k** (``meta/im2gps3k_places365.csv``, branch ``original_tf`` of
  TIBHannover/GeoEstimation; header ``IMG_ID,AUTHOR,LON,LAT,S3_Label,...``): Flickr's own file
  name ``<photo id>_<secret>_<server>_<owner NSID>.jpg``, e.g.
  ``1000269685_e60e9cdfb4_1125_78841376@N00.jpg`` (photo 1000269685 of 78841376@N00). Its
  **Im2GPS** (``meta/im2gps_places365.csv``, header ``IMG_ID,AUTHOR,LAT,LON,...``) has the same
  names, some behind a place and a number (``Ankara_00003_601190107_9f05b2251e_1292_8504005@N07.jpg``);
  for those the file's AUTHOR column holds ``9f05b2251e_1292_8504005@N07``, so the NSID is taken
  from the name, never from AUTHOR.
- **YFCC4k** (Vo et al. 2017, "Revisiting IM2GPS", github.com/lugiavn/revisiting-im2gps: the set is
  published as a list of YFCC100M photo ids, ``0aaaa.r.imagedata.txt``) and **YFCC26k**
  (GeoEstimation's ``yfcc25600_places365.csv``, released with its PyTorch branch; the loaders built
  on it open ``<images>/<IMG_ID>`` as the file, and G3 reads its ``yfcc4k_places365.csv`` so): bare
  ids, ``<photo id>.jpg`` or MP-16 paths, all read here; bare numbers only where the caller knows
  the set is Flickr's (below).
- Flickr's static photo file names without owner (``<photo id>_<secret>[_<size>].jpg``, the last
  part of YFCC100M's download URLs) are read too.

A bare number (``2218633389`` or ``2218633389.jpg``) is a Flickr photo id only in a Flickr data
set: OSV-5M's ids are Mapillary's, also bare numbers, and a folder of one's own photos has file
names such as ``1234.jpg``. So bare numbers count only with ``numeric=True`` (the caller's
knowledge: ``numeric_ids_are_flickr`` of the collection format, or a Flickr benchmark). Any other
id (OSV-5M's, EXIF file names, a CSV's free-form ids) is unknown (NA), never a guessed match.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import ArrayLike

#: Collection formats (``readers.formats``) whose bare numeric photo ids are Flickr photo ids:
#: YFCC100M / Multimedia Commons lines, and MP-16 in its two archived layouts.
FLICKR_FORMATS: tuple[str, ...] = ("yfcc100m", "mp16pro", "msgpack")

_EXT = r"\.(?:jpe?g|png|gif|webp)"
_NSID = r"\d+@N\d{2}"
_SECRET = r"[0-9a-f]{10}"  # Flickr secrets are 10 hex digits
# (pattern, whether it needs numeric=True), in order of precedence; group "id" the photo id,
# group "owner" the NSID. RE2 syntax (Arrow's regex engine), case-insensitive, anchored at the end
# and at a folder or "_" boundary before the id (a leading ".*" makes RE2 several times slower).
_FORMS: tuple[tuple[str, bool], ...] = tuple(
    ("(?i)" + pattern, numeric)
    for pattern, numeric in (
        # Flickr file name with owner, after an optional place prefix (Im2GPS / Im2GPS3k).
        (rf"(?:^|[/_])(?P<id>\d+)_{_SECRET}_\d+_(?P<owner>{_NSID}){_EXT}$", False),
        # Flickr static file name: <id>_<secret>[_<size suffix>].<ext>.
        (rf"(?:^|/)(?P<id>\d+)_{_SECRET}(?:_[a-z0-9]{{1,2}})?{_EXT}$", False),
        # MP-16 path (xx/yy/<id>.jpg) and its archive key (xx_yy_<id>.jpg).
        (rf"(?:^|/)[0-9a-f]{{2}}[/_][0-9a-f]{{2}}[/_](?P<id>\d+){_EXT}$", False),
        # A bare number, with or without an image extension: only in a Flickr data set.
        (rf"^(?P<id>\d+)(?:{_EXT})?$", True),
    )
)


def numeric_ids_are_flickr(fmt: str) -> bool:
    """Whether the bare numeric ids of collection format ``fmt`` are Flickr photo ids."""
    return fmt in FLICKR_FORMATS


def flickr_ids(ids: ArrayLike, numeric: bool = False) -> pd.DataFrame:
    """For each id, its Flickr photo id (``flickr_id``, decimal text without leading zeros) and
    its owner's NSID (``owner``) where the id carries it; NA where unknown (module docstring).
    ``numeric``: the ids come from a Flickr data set, so a bare number is a Flickr photo id.
    Matched by Arrow's vectorized regex engine: about a second per million ids."""
    series = ids if isinstance(ids, pd.Series) else pd.Series(np.asarray(ids, dtype=object))
    text = pc.utf8_trim_whitespace(pa.array(series.astype("string"), pa.string(), from_pandas=True))
    none = pa.nulls(len(text), pa.string())
    photo, owner = none, none
    for pattern, needs_numeric in _FORMS:
        if needs_numeric and not numeric:
            continue
        found = pc.extract_regex(text, pattern)
        matched = pc.is_valid(found)
        photo = pc.coalesce(photo, pc.if_else(matched, pc.struct_field(found, "id"), none))
        if "(?P<owner>" in pattern:
            owner = pc.coalesce(owner, pc.if_else(matched, pc.struct_field(found, "owner"), none))
    photo = pc.utf8_ltrim(photo, characters="0")
    photo = pc.if_else(pc.equal(photo, ""), "0", photo)
    return pd.DataFrame(
        {
            "flickr_id": pd.Series(photo.to_pandas(), dtype="string"),
            "owner": pd.Series(pc.utf8_upper(owner).to_pandas(), dtype="string"),
        }
    )
