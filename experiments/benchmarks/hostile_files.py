"""Hostile files that stay inside every documented size limit, built on the spot, for the
benchmarks (``decode_bench``, ``hostile_bench``) and the hostile tests: each is small on the wire
and expensive for a decoder that does not look before it decodes.

- ``many_scans_jpeg``: a progressive JPEG whose last scan is repeated until it has ``scans`` (a
  camera writes about 10; libjpeg warns and decodes each repeat over every block);
- ``segment_flood_jpeg``: a small JPEG with millions of empty APP1 segments (Pillow's marker
  parser walks them in Python);
- ``webp_lossless``: a flat lossless WebP, or a tiny one whose header declares another size;
- ``rle8_bmp``: a run-length coded BMP that Pillow pads in Python; ``png_bomb`` (``serve_bench``):
  a 1-bit PNG; ``png_noise``: an incompressible PNG; ``baseline_jpeg``: an ordinary large JPEG;
- ``camera_jpeg``: the valid photo an honest client sends.
"""

from __future__ import annotations

import io
import re

import numpy as np
from PIL import Image

SIDE = 7000  # the hostile files' declared side
#: The end of a JPEG scan's entropy-coded data: 0xFF followed by neither a stuffed 0x00, a
#: restart marker nor a fill byte.
NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def jpeg_bytes(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", **options)
    return out.getvalue()


def markers(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each marker segment of a JPEG up to EOI; a scan's end includes its
    entropy-coded data."""
    out: list[tuple[int, int, int]] = []
    pos = 2
    while True:
        found = NEXT_MARKER.search(data, pos)
        if found is None:
            return out
        at = found.start()
        marker = data[at + 1]
        if marker == 0xD9:
            return out
        end = at + 2 + int.from_bytes(data[at + 2 : at + 4], "big")
        if marker == 0xDA:
            following = NEXT_MARKER.search(data, end)
            end = following.start() if following else len(data)
        out.append((marker, at, end))
        pos = end


def many_scans_jpeg(side: int = SIDE, scans: int = 1500, grey_level: int = 128) -> bytes:
    """A progressive JPEG of side x side with ``scans`` scans: Pillow's (libjpeg's standard
    script, 10 scans) with its last scan, an AC refinement, repeated. libjpeg decodes each repeat
    over the whole image (a warning, not an error)."""
    image = Image.new("RGB", (side, side), (grey_level, 100, 160))
    data = jpeg_bytes(image, quality=90, progressive=True)
    segments = markers(data)
    sos = [s for s in segments if s[0] == 0xDA]
    last_start = sos[-1][1]
    # the tables (DHT) written just before the last scan belong to it
    previous = [s for s in segments if s[2] <= last_start]
    if previous and previous[-1][0] == 0xC4:
        last_start = previous[-1][1]
    last = data[last_start : sos[-1][2]]
    return data[:last_start] + last * (scans - len(sos) + 1) + data[sos[-1][2] :]


def segment_flood_jpeg(count: int = 4_000_000) -> bytes:
    """A small JPEG with ``count`` empty APP1 segments (4 bytes each) spliced after SOI."""
    data = jpeg_bytes(Image.new("RGB", (64, 48), (90, 120, 30)), quality=90)
    return data[:2] + b"\xff\xe1\x00\x02" * count + data[2:]


def webp_lossless(side: int, declared: int | None = None) -> bytes:
    """A lossless WebP of side x side; with ``declared``, its header rewritten to declare that
    side (a tiny file whose header says declared x declared; not decodable)."""
    out = io.BytesIO()
    Image.new("RGB", (side, side), (10, 200, 30)).save(out, format="WEBP", lossless=True)
    data = bytearray(out.getvalue())
    if declared is not None:
        at = data.index(b"VP8L") + 8 + 1  # chunk header, then the 0x2f signature
        bits = int.from_bytes(data[at : at + 4], "little")
        bits = (bits & ~((1 << 28) - 1)) | (declared - 1) | ((declared - 1) << 14)
        data[at : at + 4] = bits.to_bytes(4, "little")
    return bytes(data)


def rle8_bmp(width: int, height: int) -> bytes:
    """An RLE8 BMP of width x height (palette of 256 colours) whose rows are one pixel and an
    end-of-line code (4 bytes), which Pillow's decoder pads to the row's width one byte at a time,
    in Python: 28 KB for 7000x7000."""
    rows = b"\x01\x07\x00\x00" * height + b"\x00\x01"
    palette = bytes(b for i in range(256) for b in (i, 255 - i, i // 2, 0))
    offset = 14 + 40 + len(palette)
    header = b"BM" + (offset + len(rows)).to_bytes(4, "little") + bytes(4) + offset.to_bytes(4, "little")
    info = (
        (40).to_bytes(4, "little")
        + width.to_bytes(4, "little", signed=True)
        + height.to_bytes(4, "little", signed=True)
        + (1).to_bytes(2, "little")
        + (8).to_bytes(2, "little")
        + (1).to_bytes(4, "little")  # BI_RLE8
        + len(rows).to_bytes(4, "little")
        + bytes(8)
        + (256).to_bytes(4, "little")
        + bytes(4)
    )
    return header + info + palette + rows


def png_noise(width: int, height: int) -> bytes:
    """A real RGB PNG of noise (incompressible: the decoder's worst case per pixel)."""
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def baseline_jpeg(side: int = SIDE) -> bytes:
    """An ordinary baseline JPEG of side x side (gradients; a camera photo's structure)."""
    y, x = np.mgrid[0:side, 0:side]
    rgb = np.stack([(x * 255 // side), (y * 255 // side), ((x + y) * 127 // side)], -1).astype(np.uint8)
    return jpeg_bytes(Image.fromarray(rgb), quality=90)


def camera_jpeg(seed: int = 0, width: int = 640, height: int = 480) -> bytes:
    """A valid ``width`` x ``height`` baseline JPEG of smooth random colour."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 32 + 1, width // 32 + 1, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()
