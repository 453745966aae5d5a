"""Ingestion's re-encoding (data_pipelines.images.reencode_jpeg): a JPEG at least twice the output
on both sides is decoded at 1/2, 1/4 or 1/8 scale, never below the output size; the output size and
the refusals are those of a full decode."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from data_pipelines import images

BIG = 100_000_000


def picture(width: int, height: int, mode: str = "RGB", fmt: str = "JPEG") -> bytes:
    """Smooth gradients with a few hard-edged blocks: a resize of it is predictable to a few grey
    levels whatever the filter."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([255 * x / width, 255 * y / height, 128 + 0 * x], axis=-1)
    for k in range(4):
        rgb[k * height // 4 : k * height // 4 + height // 8, k * width // 4 : k * width // 4 + width // 8] = (
            40 * k,
            250 - 50 * k,
            30,
        )
    image = Image.fromarray(rgb.astype(np.uint8)).convert(mode)
    out = io.BytesIO()
    image.save(out, fmt, quality=95)
    return out.getvalue()


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == "RGB"
        return np.asarray(image, dtype=np.float64)


@pytest.fixture
def decoded_sizes(monkeypatch) -> list[tuple[int, int]]:
    """The size at which each JPEG is decoded (after draft, before any resize)."""
    sizes: list[tuple[int, int]] = []
    load = JpegImagePlugin.JpegImageFile.load

    def recording_load(self):
        if self.tile:  # not decoded yet (loading empties the tile list)
            sizes.append(self.size)
        return load(self)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", recording_load)
    return sizes


@pytest.mark.parametrize(
    "source, max_side, decoded, output",
    [
        ((2048, 1536), 512, (512, 384), (512, 384)),  # 1/4: exactly the output, no resize
        ((1024, 768), 512, (512, 384), (512, 384)),  # 1/2
        ((1025, 769), 512, (513, 385), (512, 384)),  # 1/2, then 513 -> 512
        ((1040, 780), 128, (130, 98), (128, 96)),  # 1/8, then shrunk: 1040 / 128 = 8.1
        ((1023, 768), 512, (1023, 768), (512, 384)),  # 1023 < 2 x 512: decoded in full
        ((640, 480), 512, (640, 480), (512, 384)),  # ingestion's usual case: no scale applies
        ((480, 1000), 256, (240, 500), (123, 256)),  # portrait: 1/2 (480 // 123 = 3), 122.9 -> 123
        ((300, 200), 512, (300, 200), (300, 200)),  # smaller than max_side: kept
    ],
)
def test_a_jpeg_is_decoded_at_the_smallest_scale_not_below_the_output(
    decoded_sizes, source, max_side, decoded, output
):
    jpeg, height, width = images.reencode_jpeg(picture(*source), max_side, 90, BIG)
    assert decoded_sizes == [decoded]
    # the output sizes are those of the full decode: longest side max_side, aspect to the pixel
    assert (width, height) == output == images.fitted_size(*source, max_side)
    assert pixels(jpeg).shape == (height, width, 3)


@pytest.mark.parametrize("source", [(2048, 1536), (1024, 768), (1040, 780)])
def test_the_scaled_decode_is_within_two_grey_levels_of_a_full_decode_on_average(source):
    data = picture(*source)
    jpeg, height, width = images.reencode_jpeg(data, 512 if source[0] != 1040 else 128, 95, BIG)
    with Image.open(io.BytesIO(data)) as full:
        expected = np.asarray(
            full.convert("RGB").resize((width, height), Image.Resampling.BILINEAR), np.float64
        )
    # measured: 0.5 (1/2, 1/4) and 1.4 (1/8) grey levels on this picture, most of it at the
    # edges of the blocks
    assert np.abs(pixels(jpeg) - expected).mean() < 2.0


@pytest.mark.parametrize("mode", ["L", "CMYK"])
def test_grey_and_cmyk_jpegs_are_scaled_then_stored_as_rgb(decoded_sizes, mode):
    jpeg, height, width = images.reencode_jpeg(picture(1024, 768, mode), 512, 90, BIG)
    assert decoded_sizes == [(512, 384)] and (width, height) == (512, 384)
    with Image.open(io.BytesIO(jpeg)) as out:
        assert out.mode == "RGB"


def test_other_formats_are_decoded_in_full_to_the_same_size():
    jpeg, height, width = images.reencode_jpeg(picture(1025, 769, fmt="PNG"), 512, 90, BIG)
    assert (width, height) == (512, 384)
    assert pixels(jpeg).shape == (384, 512, 3)


def test_the_pixel_limit_is_checked_on_the_full_size_before_decoding(decoded_sizes):
    data = picture(2048, 1536)
    with pytest.raises(images.BadImage) as refused:
        images.reencode_jpeg(data, 512, 90, max_pixels=2048 * 1536 - 1)  # 512x384 once scaled
    assert refused.value.reason == images.TOO_LARGE and "2048x1536" in str(refused.value)
    assert decoded_sizes == []  # nothing decoded
    assert images.reencode_jpeg(data, 512, 90, max_pixels=2048 * 1536)[1:] == (384, 512)


def test_a_truncated_jpeg_is_refused_even_when_decoded_at_an_eighth():
    data = picture(2048, 1536)
    with pytest.raises(images.BadImage) as refused:
        images.reencode_jpeg(data[: len(data) * 2 // 3], 128, 90, BIG)
    assert refused.value.reason == images.UNREADABLE


def test_exif_does_not_reach_the_output():
    with Image.open(io.BytesIO(picture(1024, 768))) as image:
        exif = Image.Exif()
        exif[0x010F] = "Camera maker"  # Make
        with_exif = io.BytesIO()
        image.save(with_exif, "JPEG", exif=exif)
    assert Image.open(with_exif).getexif()
    jpeg, _, _ = images.reencode_jpeg(with_exif.getvalue(), 512, 90, BIG)
    assert not Image.open(io.BytesIO(jpeg)).getexif()
