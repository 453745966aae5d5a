"""Decode a photo and re-encode it as a JPEG with a bounded longest side (ingestion).

Re-encoding keeps shards small (``max_image_side``) and drops EXIF (which can hold GPS, owner
names and device serials) so that no metadata besides the kept columns reaches the data set.
PIL is used rather than TensorFlow so the ingestion workers decode and resize in C without a
graph, and ``Image.draft`` lets libjpeg downscale large JPEGs by 1/2..1/8 during decoding.
"""

from __future__ import annotations

import io

from PIL import Image, ImageFile

# Truncated files must fail, not decode as grey: they are skipped as bad_image.
ImageFile.LOAD_TRUNCATED_IMAGES = False
Image.MAX_IMAGE_PIXELS = 200_000_000  # Above this PIL raises DecompressionBombError: bad_image.


class BadImage(Exception):
    """The bytes are not a decodable image (undecodable, truncated, empty or absurdly small)."""


def reencode_jpeg(data: bytes, max_side: int, quality: int = 90) -> tuple[bytes, int, int]:
    """Returns (JPEG bytes, height, width) with max(height, width) <= ``max_side``.

    Raises ``BadImage`` for anything PIL cannot fully decode.
    """
    if not data:
        raise BadImage("empty file")
    image: Image.Image  # the opened file, then its RGB conversion and resized copy
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format == "JPEG":
                image.draft("RGB", (max_side, max_side))  # DCT-domain downscale, still >= max_side.
            image.load()
            if image.mode != "RGB":
                image = image.convert("RGB")
            width, height = image.size
            if min(width, height) < 1:
                raise BadImage(f"image of {width}x{height} pixels")
            scale = max_side / max(width, height)
            if scale < 1.0:
                width = max(1, round(width * scale))
                height = max(1, round(height * scale))
                # Pillow's BILINEAR is an antialiased triangle filter when shrinking: a third cheaper
                # than BICUBIC, indistinguishable after the 299 px random crops of training.
                image = image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=2.0)
            out = io.BytesIO()
            image.save(out, format="JPEG", quality=quality, optimize=False)
            return out.getvalue(), height, width
    except BadImage:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, EOFError) as e:
        raise BadImage(f"{type(e).__name__}: {e}") from None
