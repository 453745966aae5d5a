"""Hostile files that stay inside every documented size limit, built on the spot, for the hostile
benchmark (``hostile_bench``) and the hostile tests: each is small on the wire and expensive for a
decoder that does not look before it decodes.

- ``many_scans_jpeg``: a progressive JPEG whose smallest AC scan is repeated until the file has
  ``scans`` scans (a camera writes about 10; libjpeg warns about the repeated progression and goes
  on decoding every scan over every block).
- ``many_segments_jpeg``: a small JPEG with ``segments`` empty APP1 segments after its SOI marker
  (four bytes each: 4 million in 16 MB, which Pillow's marker parser walks in Python).
- ``rle8_bmp``: a BI_RLE8 BMP of ``side`` x ``side`` pixels written as runs of 255 (about 2 bytes
  per 255 pixels).
- ``lossless_webp``: a flat lossless WebP of ``side`` x ``side`` (about 2 KB for 7000 x 7000).
- ``large_jpeg``: an ordinary baseline JPEG of ``side`` x ``side`` (noise over a gradient).
- ``camera_jpeg``: a valid photo-sized baseline JPEG (the request an honest client sends).
"""

from __future__ import annotations

import io
import re
import struct

import numpy as np
from PIL import Image

#: The end of a scan's entropy-coded data: a marker other than a stuffed zero or a restart marker.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
SOI, EOI, SOS = 0xD8, 0xD9, 0xDA


def jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each marker segment of a JPEG, a scan's entropy-coded data included
    in its SOS segment, up to and including EOI."""
    out, pos = [], 2
    while pos + 1 < len(data):
        marker = data[pos + 1]
        if marker == EOI:
            out.append((marker, pos, pos + 2))
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        end = pos + 2 + length
        if marker == SOS:
            found = _NEXT_MARKER.search(data, end)
            end = found.start() if found else len(data)
        out.append((marker, pos, end))
        pos = end
    return out


def many_scans_jpeg(side: int = 7000, scans: int = 1500) -> bytes:
    """A flat grey progressive JPEG of ``side`` x ``side`` with ``scans`` scans in all."""
    out = io.BytesIO()
    Image.new("RGB", (side, side), (120, 130, 140)).save(out, "JPEG", progressive=True, quality=90)
    data = out.getvalue()
    segments = jpeg_segments(data)
    scan_spans = [(start, end) for marker, start, end in segments if marker == SOS]

    def spectral_start(start: int) -> int:
        components = data[start + 4]
        return data[start + 5 + 2 * components]

    ac_scans = [span for span in scan_spans if spectral_start(span[0]) > 0]
    start, end = min(ac_scans, key=lambda span: span[1] - span[0])
    eoi = segments[-1][1]
    extra = max(0, scans - len(scan_spans))
    return data[:eoi] + data[start:end] * extra + data[eoi:]


def many_segments_jpeg(segments: int = 4_000_000) -> bytes:
    """A 64 x 64 JPEG with ``segments`` empty APP1 segments after its SOI marker."""
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 20, 30)).save(out, "JPEG")
    data = out.getvalue()
    return data[:2] + b"\xff\xe1\x00\x02" * segments + data[2:]


def rle8_bmp(side: int = 7000) -> bytes:
    """A grey BI_RLE8 BMP of ``side`` x ``side`` pixels."""
    full, rest = divmod(side, 255)
    row = b"\xff\x01" * full + (bytes([rest, 1]) if rest else b"") + b"\x00\x00"  # runs, end of line
    pixels = row * side + b"\x00\x01"  # end of bitmap
    palette = b"".join(bytes([i, i, i, 0]) for i in range(256))
    offset = 14 + 40 + len(palette)
    header = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, side, side, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    return header + info + palette + pixels


def lossless_webp(side: int = 7000) -> bytes:
    """A flat lossless WebP of ``side`` x ``side`` pixels."""
    out = io.BytesIO()
    Image.new("RGB", (side, side), (1, 2, 3)).save(out, "WEBP", lossless=True)
    return out.getvalue()


def large_jpeg(side: int = 7000, seed: int = 0) -> bytes:
    """An ordinary baseline JPEG of ``side`` x ``side``: a gradient with mild noise, quality 85."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    grey = (ramp[None, :] * 0.5 + ramp[:, None] * 0.5).astype(np.uint8)
    noise = rng.integers(0, 8, (side, side), dtype=np.uint8)
    pixels = np.stack([grey, grey // 2 + noise, 255 - grey], axis=-1)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=85)
    return out.getvalue()


def camera_jpeg(seed: int = 0, width: int = 640, height: int = 480) -> bytes:
    """A valid ``width`` x ``height`` baseline JPEG of smooth random colour."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 32 + 1, width // 32 + 1, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()
