"""Output formats of `geoloc predict`: table (for a person), JSON, CSV and GeoJSON (for programs).

Every format is written as a stream (a header, one piece per photo, a footer) so a directory of a
million photos is printed as it is predicted, and the result of each still parses as one document:
JSON is an array of the records of ``Predictor`` (``predictor.Predictions.record``), GeoJSON a
FeatureCollection with one Point per photo at its top cell's label point (RFC 7946: [lon, lat]),
CSV one row per photo with the mass sets' sizes and areas (their cell lists are in JSON/GeoJSON).
With retrieval inside the top cells (``--cell_retrieval_cells``) each record holds ``retrieval``
(its point and whether it fell back to the top cell's label point): a line of the table, three
more CSV columns (``RETRIEVAL_COLUMNS``), a property of the GeoJSON feature, whose point stays the
top cell's label point.

A file name is text from the disk, not from geoloc: it may hold a newline, a carriage return, an
ESC or other control characters, or bidi overrides (U+202E) that reorder what a terminal shows.
The table and CSV write it through ``escaped`` (``\\n``, ``\\x1b``, ``\\u202e``, ...), so a name
never forges a row, a line or a terminal escape; JSON and GeoJSON need nothing more, since
``json.dumps`` writes every character outside printable ASCII as an escape.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

FORMATS: tuple[str, ...] = ("table", "json", "csv", "geojson")

CSV_COLUMNS: tuple[str, ...] = (
    "file",
    "model",
    "posted_at",
    "lat",
    "lon",
    "top_cells",
    "top_probabilities",
    "mass50_cells",
    "mass50_probability",
    "mass50_area_km2",
    "mass90_cells",
    "mass90_probability",
    "mass90_area_km2",
)

# C0 and C1 controls, DEL, and lone surrogates (bytes of a name that are not UTF-8, which Python
# keeps as U+DC80..U+DCFF and which a UTF-8 stream cannot write); the backslash too, so an escape
# is never ambiguous with a name that spells one.
_CONTROLS: dict[int, str] = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))} | {
    code: f"\\u{code:04x}" for code in range(0xD800, 0xE000)
}
_CONTROLS |= {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", ord("\\"): "\\\\"}
# Characters that change how a terminal orders or breaks the text after them (Unicode bidi
# controls, UAX #9, and the line/paragraph separators), escaped in the table only: a CSV keeps
# them, as a spreadsheet shows them as the name's own text.
_DISPLAY: dict[int, str] = _CONTROLS | {
    code: f"\\u{code:04x}"
    for code in (0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
}


def escaped(text: str, display: bool = True) -> str:
    """``text`` with control characters written as backslash escapes (``display``: also bidi
    controls and line separators, for text shown on a terminal), so it stays on one line and
    never moves the cursor or reorders what follows."""
    return text.translate(_DISPLAY if display else _CONTROLS)


#: CSV columns added when the records hold retrieval inside the top cells.
RETRIEVAL_COLUMNS: tuple[str, ...] = ("retrieval_lat", "retrieval_lon", "retrieval_fallback")


class StreamWriter:
    """Text of one output format: ``header()``, ``record(r)`` per photo, ``footer()``.
    ``retrieval``: the records hold retrieval inside the top cells (CSV: ``RETRIEVAL_COLUMNS``)."""

    def __init__(self, name: str, retrieval: bool = False):
        if name not in FORMATS:
            raise ValueError(f"format={name!r}: expected one of {FORMATS}")
        self.name = name
        self.retrieval = retrieval
        self._count = 0

    def header(self) -> str:
        return {
            "table": "",
            "json": "[",
            "csv": _csv_line(CSV_COLUMNS + (RETRIEVAL_COLUMNS if self.retrieval else ())),
            "geojson": '{"type": "FeatureCollection", "features": [',
        }[self.name]

    def record(self, record: dict[str, Any]) -> str:
        first = self._count == 0
        self._count += 1
        if self.name == "table":
            return ("" if first else "\n") + table_text(record)
        if self.name == "csv":
            return _csv_line(csv_row(record) + (retrieval_csv(record) if self.retrieval else []))
        body = json.dumps(record if self.name == "json" else geojson_feature(record))
        return ("\n" if first else ",\n") + body

    def footer(self) -> str:
        return {"table": "", "json": "\n]\n", "csv": "", "geojson": "\n]}\n"}[self.name]


def _csv_line(values) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def _mass(record: dict[str, Any], level: float) -> dict[str, Any]:
    return next(s for s in record["mass_sets"] if abs(s["level"] - level) < 1e-9)


def table_text(record: dict[str, Any]) -> str:
    """A person's view of one photo: top cells with probability and label point, mass sets."""
    time = f", posted {record['posted_at']}" if record.get("posted_at") else ""
    lines = [
        f"{escaped(record.get('file') or 'photo')}  (model {record['model']}{time})",
        f"  {'rank':>4}  {'cell':>6}  {'probability':>11}  {'lat':>9}  {'lon':>10}",
    ]
    for top in record["top_k"]:
        lines.append(
            f"  {top['rank']:>4}  {top['cell']:>6}  {100 * top['probability']:>9.2f} %  "
            f"{top['lat']:>9.4f}  {top['lon']:>10.4f}"
        )
    for entry in record["mass_sets"]:
        level = f"  {100 * entry['level']:.0f} % of the probability:"
        if entry["num_cells"] is None:
            lines.append(f"{level} {entry['note']}")
        else:
            lines.append(
                f"{level} {entry['num_cells']} cells ({100 * entry['probability']:.1f} %)"
                f", {entry['area_km2']:,.0f} km2"
            )
    retrieval = record.get("retrieval")
    if retrieval is not None:
        how = (
            "no indexed photo of those cells among the nearest: the top cell's label point"
            if retrieval["fallback"]
            else f"an indexed photo, cosine similarity {retrieval['similarity']:.3f}"
        )
        lines.append(
            f"  retrieval inside the top {retrieval['cells']} cells: {retrieval['lat']:.4f}, "
            f"{retrieval['lon']:.4f} ({how})"
        )
    return "\n".join(lines) + "\n"


def retrieval_csv(record: dict[str, Any]) -> list[Any]:
    """The RETRIEVAL_COLUMNS of one photo (empty when the record has no retrieval)."""
    retrieval = record.get("retrieval")
    if retrieval is None:
        return ["", "", ""]
    return [f"{retrieval['lat']:.6f}", f"{retrieval['lon']:.6f}", int(retrieval["fallback"])]


def csv_row(record: dict[str, Any]) -> list[Any]:
    """The CSV_COLUMNS of one photo; cell lists are space-separated, unknown values empty."""
    row: list[Any] = [
        escaped(record.get("file") or "", display=False),
        record["model"],
        record.get("posted_at") or "",
        f"{record['lat']:.6f}",
        f"{record['lon']:.6f}",
        " ".join(str(t["cell"]) for t in record["top_k"]),
        " ".join(f"{t['probability']:.6g}" for t in record["top_k"]),
    ]
    for level in (0.5, 0.9):
        entry = _mass(record, level)
        known = entry["num_cells"] is not None
        row += [
            entry["num_cells"] if known else "",
            f"{entry['probability']:.6g}" if known else "",
            f"{entry['area_km2']:.0f}" if known else "",
        ]
    return row


def geojson_feature(record: dict[str, Any]) -> dict[str, Any]:
    """A GeoJSON Point feature at the top cell's label point, the record as its properties."""
    properties = {key: value for key, value in record.items() if key not in ("lat", "lon")}
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [record["lon"], record["lat"]]},
        "properties": properties,
    }
