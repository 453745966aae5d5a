"""The one image decoder of geoloc: every photo that enters (ingestion, `geoloc predict`, `geoloc
serve`, `geoloc search`, `geoloc evaluate`) is opened here, and refused here when it is unsafe.

``open_image`` reads the header only and refuses, before any pixel is decoded (so a refused image
allocates nothing large):

- formats other than JPEG, PNG, GIF, BMP and WebP (Pillow is told to try only these, so no exotic
  decoder ever sees a stranger's bytes): reason ``unsupported``;
- more pixels than the entry point's ``max_pixels`` (a 30 KB PNG can declare 16000x16000 pixels,
  768 MB once decoded): reason ``too_large``;
- animated or multi-frame images (GIF, APNG, WebP): reason ``animated``. They are refused rather
  than cut to their first frame: a geolocation answer for a frame the user never saw as "the
  photo" would look authoritative and be about something else, and an animation is rarely a photo.

Each entry point chooses its pixel limit (a setting beside its other settings, default in
``data_pipelines.config``): a server that strangers reach needs a lower one than a command reading
a person's own files. ``check_image`` then decodes fully (JPEGs with libjpeg's DCT-domain
downscaling, which still reads every coefficient) so a truncated file is refused, named, before it
reaches a batch; ``model_bytes`` is what M1's TensorFlow preprocessing gets: JPEG and PNG bytes as
they are (the decoder of ``data_pipelines.augmentation.eval_image`` reads both), other formats
re-encoded losslessly as PNG. ``reencode_jpeg`` is ingestion's: a bounded JPEG without EXIF (which
can hold GPS, owner names and device serials), so no metadata besides the kept columns reaches the
data set. Pillow decodes and resizes in C without a graph, in any worker process or thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from typing import Iterator

from PIL import Image, ImageFile

# Truncated files must fail, not decode as grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# The pixel limit is ours (``max_pixels``, per entry point), checked on the header by open_image
# before anything is decoded; Pillow's own global check (a warning, then an error at twice its
# limit) would contradict a limit the user set.
Image.MAX_IMAGE_PIXELS = None

#: Pillow format names tried, and how they are called in messages.
SUPPORTED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP")
SUPPORTED_TEXT = "a JPEG, PNG, GIF, BMP or WebP photo"
#: Formats M1's TensorFlow decoder reads as they are; the others are re-encoded as PNG.
MODEL_FORMATS = ("JPEG", "PNG")
#: Side to which a JPEG is decoded when it is only checked (``_load``), px.
CHECK_SIDE = 512

# Reasons of BadImage.
UNREADABLE = "unreadable"
UNSUPPORTED = "unsupported"
TOO_LARGE = "too_large"
ANIMATED = "animated"


class BadImage(Exception):
    """An image refused by the decoder; ``reason`` is one of UNREADABLE, UNSUPPORTED, TOO_LARGE,
    ANIMATED, and the message says what was expected."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class ImageHeader:
    format: str  # Pillow's name: JPEG, PNG, GIF, BMP, WEBP
    width: int
    height: int


@contextlib.contextmanager
def open_image(data: bytes, max_pixels: int) -> Iterator[Image.Image]:
    """The image of ``data`` with only its header read, after the checks of this module's
    docstring (BadImage otherwise). Decode it inside the ``with`` block."""
    if not data:
        raise BadImage(UNREADABLE, f"empty file; expected {SUPPORTED_TEXT}")
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
        if width * height > max_pixels:
            raise BadImage(
                TOO_LARGE,
                f"image of {width}x{height} = {width * height:,} pixels is over the limit of "
                f"{max_pixels:,} pixels (max_pixels)",
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


def check_image(data: bytes, max_pixels: int) -> ImageHeader:
    """The header of ``data`` after decoding it fully (BadImage if refused or undecodable)."""
    with open_image(data, max_pixels) as image:
        header = ImageHeader(str(image.format), *image.size)
        _load(image, (CHECK_SIDE, CHECK_SIDE))
    return header


def model_bytes(data: bytes, max_pixels: int) -> bytes:
    """The bytes M1's preprocessing gets for ``data``: a JPEG or PNG as it is (after decoding it
    as ``check_image`` does), other formats re-encoded losslessly as an RGB PNG."""
    with open_image(data, max_pixels) as image:
        _load(image, (CHECK_SIDE, CHECK_SIDE))
        if image.format in MODEL_FORMATS:
            return data
        with _decoding(str(image.format)):
            out = io.BytesIO()
            image.convert("RGB").save(out, format="PNG", compress_level=1)
            return out.getvalue()


def fitted_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) shrunk so that the longest side is ``max_side`` (as they are if it is
    already no longer), the aspect ratio kept to the nearest pixel."""
    scale = max_side / max(width, height)
    if scale >= 1.0:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def reencode_jpeg(data: bytes, max_side: int, quality: int, max_pixels: int) -> tuple[bytes, int, int]:
    """(JPEG bytes, height, width) of ``data`` with max(height, width) <= ``max_side`` and no
    metadata; BadImage for anything refused or not fully decodable.

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
