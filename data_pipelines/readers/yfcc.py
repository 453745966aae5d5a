"""Streaming reader of the YFCC100M ``yfcc100m_dataset`` layouts (paper §2, Thomee et al. 2016).

Two layouts, tab-separated, no header, detected per file by the field count of its first line:
  ``yfcc23``  23 fields: 0 photo id, 1 user NSID, 2 nickname, 3 date taken, 4 date uploaded (epoch
              s), 5 device, 6 title, 7 description, 8 user tags, 9 machine tags, 10 longitude,
              11 latitude, 12 accuracy, 13 page URL, 14 download URL, 15 license name, 16 license
              URL, 17 server id, 18 farm id, 19 secret, 20 original secret, 21 original extension,
              22 marker (0 photo, 1 video).
  ``mmc25``   25 fields (Multimedia Commons): line number, photo id, photo hash, then fields 1-22.

Only photo id, user (hashed at once), date uploaded (= posting time, §2), latitude, longitude and
accuracy are read; the free-text and URL fields are never decoded. Lines are split as bytes and
only the kept fields are decoded (about 80 k lines/s per core on the 2-core dev machine; a
.bz2 file is limited by bz2 decompression to about 20-25 k lines/s per file).

The user id is hashed from its raw bytes, never decoded: decoding with replacement characters
would turn different non-UTF-8 ids into one string, merging different people into one album
(§3.3). The date uploaded must be ASCII epoch seconds within ``values.POSTED_AT_RANGE``
(1970-2100), else the line is ``bad_field``; an unreadable accuracy is -1 (unknown).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterator

from data_pipelines import errors, values
from data_pipelines.readers import common


@dataclasses.dataclass(frozen=True)
class YfccLayout:
    name: str
    num_fields: int
    photo_id: int
    user: int
    uploaded: int
    lon: int
    lat: int
    accuracy: int
    marker: int
    hash: int | None
    template_fields: dict  # template field -> column index


def _shifted(k: int) -> int:
    """Index in the 25-field layout of YFCC field k >= 1."""
    return k + 2


YFCC23 = YfccLayout(
    "yfcc23",
    23,
    photo_id=0,
    user=1,
    uploaded=4,
    lon=10,
    lat=11,
    accuracy=12,
    marker=22,
    hash=None,
    template_fields={"id": 0, "server": 17, "farm": 18, "secret": 19, "ext": 21},
)
MMC25 = YfccLayout(
    "mmc25",
    25,
    photo_id=1,
    user=_shifted(1),
    uploaded=_shifted(4),
    lon=_shifted(10),
    lat=_shifted(11),
    accuracy=_shifted(12),
    marker=_shifted(22),
    hash=2,
    template_fields={
        "id": 1,
        "hash": 2,
        "server": _shifted(17),
        "farm": _shifted(18),
        "secret": _shifted(19),
        "ext": _shifted(21),
    },
)
LAYOUTS = {YFCC23.num_fields: YFCC23, MMC25.num_fields: MMC25}


#: Lines of a YFCC100M file the swapped latitude/longitude check reads (``detect_swap``).
SWAP_PROBE_LINES = 200_000


def detect_swap(path: str, layout: YfccLayout, limits: common.Limits = common.DEFAULT_LIMITS) -> bool:
    """True when the first ``SWAP_PROBE_LINES`` lines prove latitude and longitude exchanged
    (``common.swap_proven``). YFCC100M's own files have a fixed field order, so only a rewritten copy
    can be swapped, and a rewrite swaps every line: a prefix proves it as well as the whole file,
    without a second pass over 100 M lines."""
    opened = common.open_binary(path)
    read = [0]  # lines read, for the message of a file that breaks off

    def pairs():
        for number, line in common.iter_lines(opened, limits.max_line_bytes):
            read[0] = number
            if number > SWAP_PROBE_LINES:
                return
            if isinstance(line, common.Overlong):
                continue
            fields = line.split(b"\t")
            if len(fields) == layout.num_fields and fields[layout.lat] and fields[layout.lon]:
                yield fields[layout.lat], fields[layout.lon]

    try:
        return common.swap_proven(pairs())
    except (OSError, EOFError) as e:  # e.g. a truncated .gz/.bz2
        raise common.read_error(path, read[0], e) from None
    finally:
        opened.close()


def read_yfcc(
    path: str,
    layout: YfccLayout,
    *,
    template: common.PathTemplate,
    user_hasher: Callable[[bytes], str],
    skips: common.SkipLog,
    chunk_lines: int = 1 << 18,
    on_progress=None,
    limits: common.Limits = common.DEFAULT_LIMITS,
) -> Iterator[tuple[int, dict]]:
    """Yields (lines read so far, chunk columns) every ``chunk_lines`` kept lines and at the end.

    Every line is either kept or counted in ``skips`` with its reason; a line over
    ``limits.max_line_bytes`` is ``too_long``, never held whole.
    """
    missing = template.fields - set(layout.template_fields)
    if missing:
        raise errors.ConfigError(
            f"{path}: image_path_template {template.template!r} uses "
            + ", ".join("{%s}" % f for f in sorted(missing))
            + f" but the file has the {layout.name} layout; expected fields "
            + ", ".join("{%s}" % f for f in sorted(layout.template_fields))
        )
    n = layout.num_fields
    i_id, i_user, i_up = layout.photo_id, layout.user, layout.uploaded
    i_lat, i_lon, i_acc, i_mark = layout.lat, layout.lon, layout.accuracy, layout.marker
    if detect_swap(path, layout, limits):
        common.warn_swapped(path, f"field {i_lat + 1} (latitude)", f"field {i_lon + 1} (longitude)")
        i_lat, i_lon = i_lon, i_lat
    tmpl_idx = {f: layout.template_fields[f] for f in template.fields}
    builder = common.ChunkBuilder()
    add = builder.add
    opened = common.open_binary(path)
    number = kept = 0
    try:
        for number, line in common.iter_lines(opened, limits.max_line_bytes):
            if isinstance(line, common.Overlong):
                skips.add(common.TOO_LONG, path, number, line.detail(limits.max_line_bytes))
                continue
            fields = line.split(b"\t")
            if len(fields) != n:
                skips.add(
                    common.WRONG_FIELD_COUNT,
                    path,
                    number,
                    f"{len(fields)} tab-separated fields; expected {n}",
                )
                continue
            if fields[i_mark] == b"1":
                skips.add(common.VIDEO, path, number)
                continue
            lat_text, lon_text = fields[i_lat], fields[i_lon]
            if not lat_text or not lon_text:  # ~half of YFCC100M: not geotagged; the fast path.
                skips.add(common.NO_COORDINATES, path, number, "empty latitude/longitude")
                continue
            reason, lat_e7, lon_e7, detail = common.parse_coordinates(lat_text, lon_text)
            if reason is not None:
                skips.add(reason, path, number, detail)
                continue
            photo_id = fields[i_id]
            uploaded = fields[i_up]
            user = fields[i_user]
            posted_at = _posted_at(uploaded)
            if not photo_id.isdigit() or posted_at is None or not user.strip():
                skips.add(
                    common.BAD_FIELD,
                    path,
                    number,
                    f"photo id={values.show(photo_id)}, date uploaded={values.show(uploaded)};"
                    f" expected digits, epoch seconds within {values.POSTED_AT_RANGE} and a"
                    " non-empty user id",
                )
                continue
            if tmpl_idx:
                try:
                    parts = {f: fields[i].decode("ascii") for f, i in tmpl_idx.items()}
                except UnicodeDecodeError:
                    skips.add(common.BAD_FIELD, path, number, "non-ASCII image path field")
                    continue
                image_path = template.render(parts)
                if not common.valid_text(image_path):
                    skips.add(common.BAD_FIELD, path, number, "NUL byte in an image path field")
                    continue
            else:
                image_path = template.template
            add(
                photo_id.decode("ascii"),
                user_hasher(user),
                posted_at,
                lat_e7,
                lon_e7,
                common.parse_accuracy(fields[i_acc]),
                float("nan"),
                image_path,
                number,
            )
            kept += 1
            if kept % chunk_lines == 0:
                if on_progress is not None:
                    on_progress(number, opened.position(), opened.size)
                yield number, builder.take()
    except (OSError, EOFError) as e:  # e.g. a truncated .gz/.bz2
        raise common.read_error(path, number, e) from None
    finally:
        opened.close()
    yield number, builder.take()


def _posted_at(uploaded: bytes) -> int | None:
    """The date uploaded as epoch seconds, or None unless ASCII digits within 1970-2100
    (``bytes.isdigit`` is ASCII-only; the length bound keeps ``int`` cheap)."""
    if not uploaded.isdigit() or len(uploaded) > 12:
        return None
    try:
        return values.check_posted_at(int(uploaded))
    except values.ValueProblem:
        return None
