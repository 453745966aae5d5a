"""The basemap under every map geoloc draws: land polygons and country borders, shipped offline.

A map of cells is unreadable without the coastline (which cell is Spain?), and geoloc must draw it
with no network: the report, `geoloc predict --map` and the page of `geoloc serve` run on machines
that reach nothing. The package therefore ships two small GeoJSON files in ``mesh/data``, made once
by ``python -m mesh.basemap`` from Natural Earth (public domain) as packaged on the npm registry in
``world-atlas`` 2.0.2 (TopoJSON, ISC licence, checksum pinned below):

- ``basemap_110m.geojson`` (1:110 million): the whole-world maps and the web page (about 150 kB,
  under 50 kB gzipped: a page loads it at once);
- ``basemap_50m.geojson.gz`` (1:50 million): regional maps, where the 110 m coastline is too coarse.

Each file is a FeatureCollection of two features: ``land`` (a MultiPolygon, outer rings and holes)
and ``borders`` (a MultiLineString of the borders between countries, each drawn once). Coordinates
are (lon, lat) degrees rounded to 0.001 deg (the sources are quantized at about 0.0036 deg, so
nothing is lost). world-atlas joins polygons across the antimeridian (for spherical renderers);
the build cuts them there again and closes Antarctica along the pole, so a map in plain lon/lat
draws them with no wrap-around strokes.

Loading needs numpy only; nothing here imports matplotlib (``mesh.plot`` draws it).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from mesh.atomic import write_atomic

DATA_DIR = Path(__file__).resolve().parent / "data"

#: Resolutions shipped, as Natural Earth names them, and the file of each.
FILES = {"110m": "basemap_110m.geojson", "50m": "basemap_50m.geojson.gz"}

#: The npm package the files are made from (``python -m mesh.basemap`` rebuilds them).
SOURCE_URL = "https://registry.npmjs.org/world-atlas/-/world-atlas-2.0.2.tgz"
SOURCE_SHA256 = "032e7765f2ce00edaeafec23ff22bc3b77e42987c257da944cc585b452c05b97"
CREDIT = "Coastlines and borders: Natural Earth (public domain), via world-atlas 2.0.2 (ISC licence)"
_DECIMALS = 3


@dataclass(frozen=True)
class Basemap:
    """Land and borders at one resolution, as float (n, 2) arrays of (lon, lat) degrees.

    land:    polygons, each a list of rings (the outer ring first, then its holes)
    borders: lines between countries
    """

    resolution: str
    land: list[list[np.ndarray]]
    borders: list[np.ndarray]


def path(resolution: str = "110m") -> Path:
    """The shipped file of ``resolution`` ("110m" or "50m")."""
    if resolution not in FILES:
        raise ValueError(f"basemap resolution {resolution!r}: expected one of {sorted(FILES)}")
    return DATA_DIR / FILES[resolution]


def geojson_bytes(resolution: str = "110m") -> bytes:
    """The GeoJSON text of ``resolution``, uncompressed (what a web page is sent)."""
    raw = path(resolution).read_bytes()
    return gzip.decompress(raw) if path(resolution).suffix == ".gz" else raw


@functools.cache
def load(resolution: str = "110m") -> Basemap:
    """The basemap at ``resolution``, read once per process."""
    features = {f["id"]: f["geometry"] for f in json.loads(geojson_bytes(resolution))["features"]}
    land = [[np.asarray(ring, np.float64) for ring in polygon] for polygon in features["land"]["coordinates"]]
    borders = [np.asarray(line, np.float64) for line in features["borders"]["coordinates"]]
    return Basemap(resolution, land, borders)


# --------------------------------------------------------------------- building from the source
def _decode_arcs(topology: dict[str, Any]) -> list[np.ndarray]:
    """TopoJSON arcs (delta-encoded, quantized) as (lon, lat) arrays."""
    scale = np.asarray(topology["transform"]["scale"])
    translate = np.asarray(topology["transform"]["translate"])
    return [np.cumsum(np.asarray(arc, np.float64), axis=0) * scale + translate for arc in topology["arcs"]]


def _arc(arcs: list[np.ndarray], index: int) -> np.ndarray:
    """Arc ``index``; a negative index ~i is arc i reversed (TopoJSON)."""
    return arcs[index] if index >= 0 else arcs[~index][::-1]


def _ring(arcs: list[np.ndarray], indices: list[int]) -> np.ndarray:
    """A closed ring from its arcs (each arc starts where the previous one ends)."""
    parts = [_arc(arcs, i) for i in indices]
    return np.concatenate([parts[0]] + [p[1:] for p in parts[1:]])


def _clip(ring: np.ndarray, x: float, keep_below: bool) -> np.ndarray:
    """Sutherland-Hodgman: the part of closed ``ring`` with lon <= x (``keep_below``) or >= x."""
    inside = ring[:, 0] <= x if keep_below else ring[:, 0] >= x
    out = []
    for i in range(len(ring)):
        a, b = ring[i - 1], ring[i]
        if inside[i] != inside[i - 1]:  # the edge crosses x: keep the crossing point
            t = (x - a[0]) / (b[0] - a[0])
            out.append((x, a[1] + t * (b[1] - a[1])))
        if inside[i]:
            out.append((b[0], b[1]))
    return np.asarray(out, np.float64).reshape(-1, 2)


def _window(ring: np.ndarray) -> np.ndarray:
    """The part of ``ring`` within lon [-180, 180]."""
    return _clip(_clip(ring, 180.0, True), -180.0, False)


def _unwrapped(ring: np.ndarray) -> np.ndarray:
    """``ring`` with continuous longitudes (no 360-degree jumps); a ring that goes once around a
    pole (Antarctica) is closed along the pole's latitude."""
    lon = np.degrees(np.unwrap(np.radians(ring[:, 0])))
    out = np.stack([lon, ring[:, 1]], axis=1)
    if abs(lon[-1] - lon[0]) > 180.0:
        pole = -90.0 if ring[:, 1].mean() < 0 else 90.0
        out = np.concatenate([out, [[lon[-1], pole], [lon[0], pole]]])
    return out


def cut_polygon(rings: list[np.ndarray]) -> list[list[list[list[float]]]]:
    """A polygon (outer ring, holes) that may cross the antimeridian, as polygons within
    [-180, 180]: each ring unwrapped, then clipped to the window at shifts of -360, 0, +360 deg.
    A hole clipped at a shift lies in the outer ring clipped at the same shift."""
    unwrapped = [_unwrapped(ring) for ring in rings]
    pieces = []
    for shift in (-360.0, 0.0, 360.0):
        clipped = [_window(ring + (shift, 0.0)) for ring in unwrapped]
        if len(clipped[0]) < 3 or abs(_area(clipped[0])) < 1e-6:  # nothing, or a sliver on the edge
            continue
        kept = [clipped[0]] + [hole for hole in clipped[1:] if len(hole) >= 3]
        pieces.append([_rounded(_closed(ring)) for ring in kept])
    return pieces


def _area(ring: np.ndarray) -> float:
    """Signed area of a ring in the plane, square degrees (the shoelace formula)."""
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _closed(ring: np.ndarray) -> np.ndarray:
    return ring if np.array_equal(ring[0], ring[-1]) else np.concatenate([ring, ring[:1]])


def _rounded(points: np.ndarray) -> list[list[float]]:
    return np.round(points, _DECIMALS).tolist()


def cut_line(line: np.ndarray) -> list[list[list[float]]]:
    """A line cut where it jumps across the antimeridian, each side ending on +-180 deg."""
    pieces, start = [], 0
    for i in map(int, np.flatnonzero(np.abs(np.diff(line[:, 0])) > 180.0)):
        a, b = line[i], line[i + 1]
        edge = 180.0 if a[0] > 0 else -180.0
        b_lon = b[0] + (360.0 if a[0] > 0 else -360.0)
        lat = a[1] + (edge - a[0]) / (b_lon - a[0]) * (b[1] - a[1])
        pieces.append(np.concatenate([line[start : i + 1], [[edge, lat]]]))
        line = line.copy()
        line[i] = (-edge, lat)
        start = i
    pieces.append(line[start:])
    return [_rounded(piece) for piece in pieces if len(piece) >= 2]


def _polygons(geometry: dict[str, Any]) -> list[list[list[int]]]:
    """The polygons (lists of rings of arc indices) of a Polygon or MultiPolygon."""
    if geometry["type"] == "Polygon":
        return [geometry["arcs"]]
    if geometry["type"] == "MultiPolygon":
        return list(geometry["arcs"])
    return []


def _geojson(topology: dict[str, Any]) -> dict[str, Any]:
    """The FeatureCollection (land, borders) of a world-atlas ``countries-*`` topology."""
    arcs = _decode_arcs(topology)
    land = [
        piece
        for geometry in topology["objects"]["land"]["geometries"]
        for polygon in _polygons(geometry)
        for piece in cut_polygon([_ring(arcs, ring) for ring in polygon])
    ]
    users: dict[int, set[int]] = {}
    for g, geometry in enumerate(topology["objects"]["countries"]["geometries"]):
        for polygon in _polygons(geometry):
            for ring in polygon:
                for index in ring:
                    users.setdefault(index if index >= 0 else ~index, set()).add(g)
    borders = [  # an arc two countries share is a border; coastlines belong to one
        piece for i in sorted(users) if len(users[i]) > 1 for piece in cut_line(arcs[i])
    ]
    return {
        "type": "FeatureCollection",
        "properties": {"credit": CREDIT},
        "features": [
            {
                "type": "Feature",
                "id": "land",
                "properties": {},
                "geometry": {"type": "MultiPolygon", "coordinates": land},
            },
            {
                "type": "Feature",
                "id": "borders",
                "properties": {},
                "geometry": {"type": "MultiLineString", "coordinates": borders},
            },
        ],
    }


def build(out_dir: Path = DATA_DIR) -> list[Path]:
    """Download world-atlas from the npm registry, check its sha256 and write ``FILES``."""
    with urllib.request.urlopen(SOURCE_URL, timeout=120) as response:
        archive = response.read()
    digest = hashlib.sha256(archive).hexdigest()
    if digest != SOURCE_SHA256:
        raise RuntimeError(f"{SOURCE_URL}: sha256 {digest}, expected {SOURCE_SHA256}")
    written = []
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for resolution, name in FILES.items():
            member = tar.extractfile(f"package/countries-{resolution}.json")
            assert member is not None
            text = json.dumps(_geojson(json.load(member)), separators=(",", ":")).encode()
            target = out_dir / name
            payload = gzip.compress(text, mtime=0) if name.endswith(".gz") else text
            write_atomic(target, functools.partial(_write, payload))
            written.append(target)
    return written


def _write(payload: bytes, f: IO[bytes]) -> None:
    f.write(payload)


if __name__ == "__main__":
    for written_path in build(Path(sys.argv[1]) if len(sys.argv) > 1 else DATA_DIR):
        print(f"{written_path}: {os.path.getsize(written_path):,} bytes")
