"""The one image decoder of geoloc: every photo that enters (ingestion, `geoloc predict`, `geoloc
serve`, `geoloc search`, `geoloc evaluate`) is opened here, and refused here when it is unsafe.

Every photo's cost is known before it is paid. ``open_image`` reads the header only and refuses,
before any pixel is decoded (so a refused image allocates nothing large), against the entry
point's ``DecodeBudget`` (``data_pipelines.config``; settings ``max_jpeg_scans``,
``max_jpeg_segments``, ``max_other_pixels``, and the entry point's own ``max_pixels``):

- formats other than JPEG, PNG, GIF, BMP and WebP (Pillow is told to try only these, so no exotic
  decoder ever sees a stranger's bytes), and RLE-compressed BMP: reason ``unsupported``;
- more pixels than ``max_pixels`` (a 30 KB PNG can declare 16000x16000 pixels, 768 MB once
  decoded): reason ``too_large``;
- a PNG, GIF, BMP or WebP of more than ``max_other_pixels``, and a JPEG of more than
  ``max_jpeg_scans`` scans or ``max_jpeg_segments`` marker segments: reason ``too_costly``
  (which `geoloc serve` answers like ``too_large``, with 413);
- animated or multi-frame images (GIF, APNG, WebP): reason ``animated``. They are refused rather
  than cut to their first frame: a geolocation answer for a frame the user never saw as "the
  photo" would look authoritative and be about something else, and an animation is rarely a photo.

Why these limits (measured by ``experiments.benchmarks.decode_bench`` on one core of the
development machine, Pillow 12.3; "before" is the former path, which checked the photo with
Pillow and then decoded it again with TensorFlow on the model thread):

- A JPEG is decoded straight at the scale the model needs (below), so its pixel limit stays the
  entry point's ``max_pixels`` (50 M for `geoloc serve`, 100 M for commands). What it cannot bound
  is the work per pixel. A progressive JPEG is decoded scan by scan, each scan over the whole
  image's coefficients: 1,500 refinement scans in a 430 KB 7000x7000 file cost 99 s and 309 MB
  before (Pillow's check, then TensorFlow's decode), 0.2 ms and nothing after. libjpeg's standard progressive script writes 10 scans (6 for grey,
  18 for CMYK, 2 + 4 x components up to 4), mozjpeg's searched scripts about a dozen, Photoshop
  3-5, a baseline JPEG 1 per component at most: ``max_jpeg_scans`` = 64 is 3.5x the most
  libjpeg writes; the worst photo within the limits, 64 scans of 50 M pixels, costs 1.8 s and
  147 MB (libjpeg keeps every coefficient of a progressive image; 5.7 s and 315 MB before).
  The marker segments (APPn, COM, tables) before the first scan are read by Pillow in Python, one
  list entry each: 4 million empty APP1 segments in a 16 MB file cost 4.7 s and 583 MB before,
  0.7 ms after. A camera
  writes a few dozen (Exif, XMP, extended XMP in 64 KB pieces, ICC profile chunks, quantization
  and Huffman tables, a DHT before each progressive scan); ``max_jpeg_segments`` = 1000 holds 64 MB
  of 64 KB segments, more than any body `geoloc serve` takes. Both are counted by
  ``jpeg_structure``, a walk over the marker structure that stops as soon as a limit is passed (it
  costs O(limit), not O(file): entropy-coded data is skipped by one regular-expression search).
- PNG, GIF, BMP and WebP are decoded in full (libwebp and zlib have no scaled decode), then
  converted to RGB: a 1.9 KB lossless WebP of 7000x7000 cost 2.4 s and 1.3 GB before, a 6 KB
  1-bit PNG 0.5 s and 312 MB; both are refused from their header after, in under 50 ms and 3 MB.
  ``max_other_pixels`` = 10 M holds a 4K screen (8.3 M) and is 85x what M1 needs (342 x 342); at
  the limit a lossless WebP costs 0.75 s and 175 MB (libwebp decodes to RGBA), a 30 MB PNG of
  noise 0.14 s and 96 MB. An ordinary 7000x7000 baseline JPEG costs 0.17 s and 8 MB (0.8 s and
  270 MB before).
- RLE-compressed BMP (RLE8, RLE4) is refused outright: Pillow decodes it in pure Python, one
  byte at a time (a 29 KB file of 7000x7000 cost 36 s before; one of 10 M pixels, within
  ``max_other_pixels``, 2.8 s), and no camera or phone writes it (a palette format of icons and
  old screenshots). An uncompressed BMP is decoded in C and kept.

``decode_for_model`` (which `geoloc serve`'s decode workers call too: a top-level function of a
module without TensorFlow, picklable by reference) then decodes the photo once, into the uint8
RGB pixels M1's preprocessing takes
(``geoloc_tf.preprocessing.eval_pixels``: central crop 0.875, resize, scale): a JPEG with
libjpeg's DCT-domain scaling (``Image.draft``) by the largest of 1/2, 1/4, 1/8 whose result still
covers ``ceil(side / 0.875)`` on both sides, so the crop and resize after it never enlarge; grey,
CMYK, palette and alpha images come out as RGB (alpha dropped, as TensorFlow's decoder does), a
16-bit PNG scaled to 8 bits. A truncated or undecodable file is refused as ``unreadable``.
``reencode_jpeg`` is ingestion's: a bounded JPEG without EXIF (which can hold GPS, owner names and
device serials), so no metadata besides the kept columns reaches the data set. Pillow decodes and
resizes in C without a graph, in any worker process or thread. This module imports neither
TensorFlow nor Keras: `geoloc serve`'s decode worker processes import it and stay small.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import re
import struct
from typing import Iterator

import numpy as np
from PIL import Image, ImageFile

from data_pipelines.config import DecodeBudget, InputConfig

# Truncated files must fail, not decode as grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# The pixel limit is ours (``max_pixels``, per entry point), checked on the header by open_image
# before anything is decoded; Pillow's own global check (a warning, then an error at twice its
# limit) would contradict a limit the user set.
Image.MAX_IMAGE_PIXELS = None

#: Pillow format names tried, and how they are called in messages.
SUPPORTED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP")
SUPPORTED_TEXT = "a JPEG, PNG, GIF, BMP or WebP photo"
#: Fraction of each side M1's evaluation crop keeps (``InputConfig.central_fraction``).
CENTRAL_FRACTION = InputConfig.central_fraction

# Reasons of BadImage.
UNREADABLE = "unreadable"
UNSUPPORTED = "unsupported"
TOO_LARGE = "too_large"
#: Over the decode budget's scans, segments or pixels for its format: treated like TOO_LARGE
#: (`geoloc serve` answers 413).
TOO_COSTLY = "too_costly"
ANIMATED = "animated"
#: The reasons that mean "too much to decode" rather than "not a photo we read".
OVER_BUDGET = (TOO_LARGE, TOO_COSTLY)

# Pillow's BMP compression codes of BI_RLE8 and BI_RLE4.
_BMP_RLE = (1, 2)


class BadImage(Exception):
    """An image refused by the decoder; ``reason`` is one of UNREADABLE, UNSUPPORTED, TOO_LARGE,
    TOO_COSTLY, ANIMATED, and the message says what was expected."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class ImageHeader:
    format: str  # Pillow's name: JPEG, PNG, GIF, BMP, WEBP
    width: int
    height: int


def _budget(limit: DecodeBudget | int) -> DecodeBudget:
    """A budget; an int is a pixel limit for every format (readers that only read headers)."""
    if isinstance(limit, DecodeBudget):
        return limit
    return DecodeBudget(max_other_pixels=limit, max_pixels=limit)


# ---------------------------------------------------------------------------- JPEG structure
# The next marker after entropy-coded data: 0xFF followed by neither a stuffed 0x00, a restart
# marker (RST0-7, inside the data), nor a fill 0xFF.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_SOS, _EOI = 0xDA, 0xD9
_STANDALONE = frozenset([0x01, *range(0xD0, 0xD8)])  # TEM, RST0-7: no length
#: Frame headers (SOF0-15 but DHT, JPG and DAC, which share the range): they hold the size.
_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


@dataclasses.dataclass(frozen=True)
class JpegStructure:
    scans: int  # SOS markers seen
    segments: int  # other markers (APPn, COM, DQT, DHT, SOF, DRI, TEM...)
    complete: bool  # the walk reached EOI or the end of the data (False: stopped at a limit)
    width: int = 0  # from the first frame header (SOFn); 0 when none was seen
    height: int = 0


def jpeg_structure(data: bytes, max_scans: int, max_segments: int) -> JpegStructure:
    """The scans and marker segments of the JPEG ``data``, counted up to one past each limit.

    Each marker segment is stepped over by its length; after a scan header, the entropy-coded data
    is skipped by one search for the next marker (C, not Python, per byte). The walk stops at EOI,
    at the end of the data, at anything malformed (left to the decoder to refuse), or as soon as
    a count passes its limit, so it costs O(max_scans + max_segments) steps whatever the file."""
    scans = segments = width = height = 0
    pos, end = 2, len(data)  # after SOI
    while pos < end:
        found = _NEXT_MARKER.search(data, pos)
        if found is None:
            break
        at = found.start()
        marker = data[at + 1]
        if marker == _EOI:
            break
        if marker == _SOS:
            scans += 1
        else:
            segments += 1  # standalone markers too: a flood of them costs a step each
        if scans > max_scans or segments > max_segments:
            return JpegStructure(scans, segments, False, width, height)
        if marker in _STANDALONE:
            pos = at + 2
            continue
        if at + 4 > end:
            break
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if length < 2:
            break
        if marker in _FRAMES and not width and at + 9 <= end:
            height, width = (int.from_bytes(data[at + k : at + k + 2], "big") for k in (5, 7))
        pos = at + 2 + length
    return JpegStructure(scans, segments, True, width, height)


#: ``declared_size``: a JPEG with more scans or other markers than these is not plain (a baseline
#: JPEG has 1 scan, libjpeg's and Pillow's progressive ones about 10, mozjpeg's under 20; a camera
#: writes a few dozen markers).
HEADER_SCANS = 32
HEADER_SEGMENTS = 256


def declared_size(data: bytes) -> tuple[str, int, int, bool] | None:
    """(format, width, height, plain) that the header of ``data`` declares, read without Pillow
    (None: no supported header in the first bytes); plain is False for a BMP with run-length
    coding and for a JPEG with more than ``HEADER_SCANS`` scans or ``HEADER_SEGMENTS`` other
    markers. Read before Pillow opens the file, because Pillow's WebP plugin allocates the whole
    canvas when it opens one (a 2 KB file declaring 7000 x 7000 pixels: 196 MB)."""
    try:
        if data[:2] == b"\xff\xd8":
            walk = jpeg_structure(data, HEADER_SCANS, HEADER_SEGMENTS)
            return ("JPEG", walk.width, walk.height, walk.complete) if walk.width else None
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return "PNG", width, height, True
        if data[:4] in (b"GIF8",):
            width, height = struct.unpack("<HH", data[6:10])
            return "GIF", width, height, True
        if data[:2] == b"BM":
            header = struct.unpack("<I", data[14:18])[0]
            if header == 12:
                width, height = struct.unpack("<HH", data[18:22])
                return "BMP", width, height, True
            width, height, _, _, compression = struct.unpack("<iiHHI", data[18:34])
            return "BMP", abs(width), abs(height), compression in (0, 3)  # BI_RGB, BI_BITFIELDS
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            chunk = data[12:16]
            if chunk == b"VP8 ":
                width, height = struct.unpack("<HH", data[26:30])
                return "WEBP", width & 0x3FFF, height & 0x3FFF, True
            if chunk == b"VP8L":
                bits = struct.unpack("<I", data[21:25])[0]
                return "WEBP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, True
            if chunk == b"VP8X":
                width = int.from_bytes(data[24:27], "little") + 1
                height = int.from_bytes(data[27:30], "little") + 1
                return "WEBP", width, height, True
    except struct.error:  # shorter than its header
        return None
    return None


def _check_size(kind: str, width: int, height: int, budget: DecodeBudget) -> None:
    """BadImage when ``width`` x ``height`` is over the budget's limit for format ``kind``."""
    if width * height > budget.max_pixels:
        raise BadImage(
            TOO_LARGE,
            f"image of {width}x{height} = {width * height:,} pixels is over the limit of "
            f"{budget.max_pixels:,} pixels (max_pixels)",
        )
    if kind != "JPEG" and width * height > budget.max_other_pixels:
        raise BadImage(
            TOO_COSTLY,
            f"{kind} image of {width}x{height} = {width * height:,} pixels is over the "
            f"limit of {budget.max_other_pixels:,} pixels for formats decoded in full "
            "(max_other_pixels; a JPEG may be larger)",
        )


#: Chunks of a PNG walked at most (IDAT included: encoders split the pixels into chunks of 8 to
#: 64 KiB, so 10,000 chunks is 80 MB of pixels or more, beyond any photo's file). Pillow reads
#: each chunk with a step of Python: a 16 MB file of empty chunks is 1.3 million of them.
MAX_PNG_CHUNKS = 10_000
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunks(data: bytes, limit: int = MAX_PNG_CHUNKS) -> int:
    """The chunks of the PNG ``data``, counted up to one past ``limit`` (each stepped over by its
    length: O(limit) steps whatever the file); the walk stops at IEND or malformed data."""
    count, pos, end = 0, len(_PNG_SIGNATURE), len(data)
    while pos + 8 <= end and count <= limit:
        length = int.from_bytes(data[pos : pos + 4], "big")
        count += 1
        if data[pos + 4 : pos + 8] == b"IEND":
            break
        pos += 12 + length
    return count


def _check_png(data: bytes) -> None:
    if png_chunks(data) > MAX_PNG_CHUNKS:
        raise BadImage(
            TOO_COSTLY,
            f"PNG with more than {MAX_PNG_CHUNKS:,} chunks; an encoder writes a few, and the pixels "
            "in chunks of 8 KiB or more",
        )


def _check_jpeg(data: bytes, budget: DecodeBudget) -> JpegStructure:
    """The structure of the JPEG ``data`` after the budget's scan and segment checks."""
    structure = jpeg_structure(data, budget.max_jpeg_scans, budget.max_jpeg_segments)
    if structure.scans > budget.max_jpeg_scans:
        raise BadImage(
            TOO_COSTLY,
            f"JPEG with more than {budget.max_jpeg_scans} scans (max_jpeg_scans); a camera's "
            "progressive JPEG has about 10, and each scan is decoded over the whole image",
        )
    if structure.segments > budget.max_jpeg_segments:
        raise BadImage(
            TOO_COSTLY,
            f"JPEG with more than {budget.max_jpeg_segments} marker segments (max_jpeg_segments); "
            "a camera writes a few dozen",
        )
    return structure


# ---------------------------------------------------------------------------- opening
@contextlib.contextmanager
def open_image(data: bytes, budget: DecodeBudget | int) -> Iterator[Image.Image]:
    """The image of ``data`` with only its header read, after the checks of this module's
    docstring against ``budget`` (an int: a pixel limit for every format); BadImage otherwise.
    Decode it inside the ``with`` block."""
    budget = _budget(budget)
    if not data:
        raise BadImage(UNREADABLE, f"empty file; expected {SUPPORTED_TEXT}")
    # Before Pillow opens it: its JPEG and PNG plugins read every segment or chunk before the
    # pixels in Python, its WebP plugin allocates the whole canvas at once.
    if data[:2] == b"\xff\xd8":
        walk = _check_jpeg(data, budget)  # the one walk: it also gives the frame's size
        declared = ("JPEG", walk.width, walk.height) if walk.width else None
    else:
        if data.startswith(_PNG_SIGNATURE):
            _check_png(data)
        found = declared_size(data)
        declared = found[:3] if found is not None else None
    if declared is not None:
        _check_size(*declared, budget)
    try:
        image = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except Image.UnidentifiedImageError:
        raise BadImage(
            UNSUPPORTED,
            f"not an image of a supported format (starts with {data[:4]!r}); expected {SUPPORTED_TEXT}",
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise BadImage(
            UNREADABLE, f"not a readable image ({_reason(error)}); expected {SUPPORTED_TEXT}"
        ) from None
    with image:
        width, height = image.size
        if width < 1 or height < 1:
            raise BadImage(UNREADABLE, f"image of {width}x{height} pixels; expected a photo")
        _check_size(str(image.format), width, height, budget)
        if image.format == "BMP" and image.info.get("compression") in _BMP_RLE:
            raise BadImage(
                UNSUPPORTED,
                "RLE-compressed BMP (decoded in pure Python, and no camera writes it); expected "
                f"{SUPPORTED_TEXT} (an uncompressed BMP is fine)",
            )
        try:
            animated = bool(getattr(image, "is_animated", False))
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise BadImage(UNREADABLE, f"not a readable image ({_reason(error)})") from None
        if animated:
            raise BadImage(
                ANIMATED,
                f"animated {image.format} with {getattr(image, 'n_frames', 'several')} frames; expected a "
                "still photo (animations are refused, not cut to their first frame)",
            )
        yield image


def _reason(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text[:120]


@contextlib.contextmanager
def _decoding(what: str) -> Iterator[None]:
    """Pillow's decoding errors as BadImage(UNREADABLE)."""
    try:
        yield
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as error:
        raise BadImage(UNREADABLE, f"not a readable {what} ({_reason(error)})") from None


def _load(image: Image.Image, size: tuple[int, int]) -> None:
    """Decodes all of ``image`` (BadImage if it cannot be): a JPEG with DCT-domain downscaling
    (``Image.draft``) by the largest of 1/2, 1/4, 1/8 that keeps both sides >= ``size``, which
    still reads every coefficient, so truncation is caught at a fraction of the memory and time."""
    with _decoding(str(image.format)):
        if image.format == "JPEG":
            image.draft("RGB", size)
        image.load()


# ---------------------------------------------------------------------------- the model's pixels
def model_side(side: int, central_fraction: float = CENTRAL_FRACTION) -> int:
    """The least side a photo must keep for M1's central crop (``central_fraction``) to cover
    ``side`` pixels: ``ceil(side / central_fraction)`` (342 for 299)."""
    return math.ceil(side / central_fraction)


def _rgb_pixels(image: Image.Image) -> np.ndarray:
    """uint8 (h, w, 3) RGB pixels of a decoded image: grey, CMYK, palette and alpha converted by
    Pillow (alpha dropped); 16-bit grey scaled to 8 bits, as TensorFlow's PNG decoder does."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):
        grey = np.asarray(image, np.int64)
        levels = np.clip((grey * 255 + 32767) // 65535, 0, 255).astype(np.uint8)
        return np.repeat(levels[:, :, None], 3, axis=2)
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return np.asarray(rgb, np.uint8)


def decode_for_model(data: bytes, budget: DecodeBudget, side: int) -> np.ndarray:
    """uint8 (h, w, 3) RGB pixels of the photo ``data`` for a model with ``side`` x ``side``
    input, decoded once after the checks of ``budget`` (BadImage otherwise; truncated or
    undecodable: UNREADABLE). A JPEG at least twice ``model_side(side)`` on both sides is decoded
    at 1/2, 1/4 or 1/8 scale in the DCT domain, never below ``model_side(side)``: a 4000x3000
    photo for 299 px comes out 500x375. Other formats come out at their size."""
    with open_image(data, budget) as image, _decoding(str(image.format)):
        need = model_side(side)
        _load(image, (need, need))
        return _rgb_pixels(image)


def check_image(data: bytes, budget: DecodeBudget | int) -> ImageHeader:
    """The header of ``data`` after decoding it at M1's scale (BadImage if refused or
    undecodable)."""
    with open_image(data, budget) as image:
        header = ImageHeader(str(image.format), *image.size)
        need = model_side(InputConfig.image_size)
        _load(image, (need, need))
    return header


def fitted_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) shrunk so that the longest side is ``max_side`` (as they are if it is
    already no longer), the aspect ratio kept to the nearest pixel."""
    scale = max_side / max(width, height)
    if scale >= 1.0:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def reencode_jpeg(
    data: bytes, max_side: int, quality: int, max_pixels: DecodeBudget | int
) -> tuple[bytes, int, int]:
    """(JPEG bytes, height, width) of ``data`` with max(height, width) <= ``max_side`` and no
    metadata; BadImage for anything refused (``max_pixels``: a budget, or a pixel limit for every
    format) or not fully decodable.

    The output size comes from the header. A JPEG at least twice that size on both sides is
    decoded at 1/2, 1/4 or 1/8 scale in the DCT domain (``_load``): the largest factor whose
    result is still no smaller than the output, so the one resize after it only ever shrinks (and
    is skipped when the decoded size is already the output's: a 2048x1536 photo to 512 px). Per
    8x8 block, libjpeg inverse-transforms only the low-frequency coefficients: at 1/8 exactly the
    block's mean, at 1/2 and 1/4 close to a 2x2 or 4x4 average, a box-like filter before the
    final resampling. Decoding and resizing fewer pixels makes large photos cheaper: about 3x a
    full decode's rate per core for 1024x768 or 2048x1536 to 512 px, the stored pixels about 2
    grey levels from a full decode's and no farther from a Lanczos resize of it
    (``experiments.benchmarks.reencode_bench``).
    A photo smaller than twice the output (640x480 to 512 px) is decoded in full: no scale applies.
    """
    image: Image.Image  # the opened file, then its RGB conversion and resized copy
    with open_image(data, max_pixels) as image, _decoding(str(image.format)):
        size = fitted_size(*image.size, max_side)
        _load(image, size)
        if image.mode != "RGB":
            image = image.convert("RGB")
        if image.size != size:
            # Pillow's BILINEAR is an antialiased triangle filter when shrinking: a third cheaper
            # than BICUBIC, indistinguishable after the 299 px random crops of training.
            image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=quality, optimize=False)
        return out.getvalue(), size[1], size[0]
