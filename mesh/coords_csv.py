"""Reading photo coordinates from CSV files for the mesh CLIs.

The header names the columns; latitude is ``lat`` or ``latitude`` and longitude ``lon``, ``lng``,
``long`` or ``longitude``, matched case-insensitively (``LAT``/``LON``, ``Latitude``/``Longitude``).
Rows whose coordinates are unparsable, missing, not finite or out of range (|lat| > 90,
|lon| > 180) are skipped and counted; the first few are named as ``file:line: reason``.

Speed: a well-formed file is parsed by numpy's C reader (``np.loadtxt``). Only a file with
malformed rows falls back to Python's ``csv`` module, row by row, to say which lines are bad.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from mesh.errors import CoordsFileError

LAT_NAMES = ("lat", "latitude")
LON_NAMES = ("lon", "lng", "long", "longitude")
MAX_BAD_EXAMPLES = 5


@dataclass
class CoordsCsv:
    """Valid coordinates of a CSV file (degrees) and what was skipped."""

    path: str
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    rows_total: int
    rows_skipped: int
    bad_examples: list[str] = field(default_factory=list)

    def report(self) -> str:
        """One line for the log: how many rows were used and skipped, and where."""
        s = f"{self.path}: {self.lat.size} rows used, {self.rows_skipped} skipped of {self.rows_total}"
        if self.bad_examples:
            s += "; first bad: " + "; ".join(self.bad_examples)
        return s


def _columns(path: str, header: list[str]) -> tuple[int, int]:
    names = [h.strip().strip("\ufeff").lower() for h in header]
    ilat = next((i for i, n in enumerate(names) if n in LAT_NAMES), None)
    ilon = next((i for i, n in enumerate(names) if n in LON_NAMES), None)
    if ilat is None or ilon is None:
        raise CoordsFileError(
            f"{path}:1: header {header!r} lacks a {'latitude' if ilat is None else 'longitude'} column; "
            f"expected one of {LAT_NAMES if ilat is None else LON_NAMES} (any case)"
        )
    return ilat, ilon


def _out_of_range(lat: NDArray, lon: NDArray) -> NDArray[np.bool_]:
    with np.errstate(invalid="ignore"):
        return ~(np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90.0) & (np.abs(lon) <= 180.0))


def read_coords_csv(path: str | os.PathLike) -> CoordsCsv:
    """Read latitude/longitude columns of a CSV file (see module docstring)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CoordsFileError(f"{path}: no such file; expected a CSV with latitude/longitude columns")
    with open(path, newline="", encoding="utf-8-sig") as f:
        header = next(csv.reader(f), None)
    if not header:
        raise CoordsFileError(f"{path}:1: empty file; expected a header with latitude/longitude columns")
    ilat, ilon = _columns(path, header)
    result = _read_fast(path, ilat, ilon)
    if result is None:
        result = _read_slow(path, ilat, ilon)
    if result.lat.size == 0:
        raise CoordsFileError(
            f"{path}: no valid coordinate rows ({result.rows_skipped} skipped)"
            + (f"; first bad: {result.bad_examples[0]}" if result.bad_examples else "")
        )
    return result


def _read_fast(path: str, ilat: int, ilon: int) -> CoordsCsv | None:
    """numpy's C parser; None when some row does not parse (then the slow path names it)."""
    try:
        data = np.loadtxt(
            path,
            delimiter=",",
            skiprows=1,
            usecols=(ilat, ilon),
            dtype=np.float64,
            ndmin=2,
            quotechar='"',
            comments=None,
            encoding="utf-8-sig",
        )
    except ValueError:
        return None
    lines, last = 0, b"\n"
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    lines += 0 if last == b"\n" else 1
    if lines - 1 != len(data):  # blank lines were skipped: line numbers would be off
        return None
    lat, lon = data[:, 0].copy(), data[:, 1].copy()
    bad = _out_of_range(lat, lon)
    examples = [
        f"{path}:{i + 2}: lat={lat[i]!r} lon={lon[i]!r} out of range"
        for i in np.flatnonzero(bad)[:MAX_BAD_EXAMPLES]
    ]
    return CoordsCsv(path, lat[~bad], lon[~bad], len(data), int(bad.sum()), examples)


def _read_slow(path: str, ilat: int, ilon: int) -> CoordsCsv:
    lat_s: list[float] = []
    lon_s: list[float] = []
    examples: list[str] = []
    skipped = 0
    total = 0
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        next(reader, None)
        for row in reader:  # only for files numpy could not parse: names each bad line
            if not row or all(not c.strip() for c in row):
                continue
            total += 1
            try:
                la, lo = float(row[ilat]), float(row[ilon])
                ok = math.isfinite(la) and math.isfinite(lo) and abs(la) <= 90.0 and abs(lo) <= 180.0
                reason = "out of range"
            except (ValueError, IndexError):
                ok, reason = False, "unparsable or missing"
            if ok:
                lat_s.append(la)
                lon_s.append(lo)
            else:
                skipped += 1
                if len(examples) < MAX_BAD_EXAMPLES:
                    fields = (
                        row[ilat] if ilat < len(row) else "<missing>",
                        row[ilon] if ilon < len(row) else "<missing>",
                    )
                    examples.append(f"{path}:{reader.line_num}: lat={fields[0]!r} lon={fields[1]!r} {reason}")
    return CoordsCsv(
        path, np.array(lat_s, dtype=np.float64), np.array(lon_s, dtype=np.float64), total, skipped, examples
    )


def write_coords_csv(path: str | os.PathLike, lat: NDArray, lon: NDArray) -> None:
    """Write a ``lat,lon`` CSV atomically (used by the benchmark and tests)."""
    from mesh.atomic import write_atomic

    body = np.column_stack([np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)])

    def write(f):
        f.write(b"lat,lon\n")
        np.savetxt(f, body, delimiter=",", fmt="%.7f")

    write_atomic(path, write)
