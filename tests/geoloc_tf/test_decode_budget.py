"""The decode budget (data_pipelines.images): hostile photos refused from their structure or header,
fast and without allocating; normal photos decoded once, at the scale M1 needs, and M1 fed the
same pixels as TensorFlow's full decode gave it."""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from data_pipelines import images
from data_pipelines.config import DecodeBudget
from experiments.benchmarks.hostile_files import (
    many_scans_jpeg,
    markers,
    rle8_bmp,
    segment_flood_jpeg,
    webp_lossless,
)
from experiments.benchmarks.serve_bench import png_bomb
from geoloc_tf import preprocessing
from tests.geoloc_tf.conftest import build_tiny_run, jpeg

BUDGET = DecodeBudget().within(50_000_000)
MiB = 1 << 20


def photo(width: int, height: int, **options) -> bytes:
    """A smooth photo-like JPEG (gradients and a few blocks)."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([255 * x / width, 255 * y / height, 128 + 60 * np.sin(x / 37.0) * np.cos(y / 23.0)], -1)
    rgb[height // 4 : height // 2, width // 3 : width // 2] = (30, 200, 90)
    out = io.BytesIO()
    Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).save(out, format="JPEG", quality=90, **options)
    return out.getvalue()


def refused(data: bytes, budget: DecodeBudget = BUDGET) -> tuple[images.BadImage, float, int]:
    """The refusal of ``data``, the seconds it took and the bytes it allocated at most."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(images.BadImage) as error:
            images.decode_for_model(data, budget, 299)
        return error.value, time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_hostile_files_are_what_they_claim():
    scans = many_scans_jpeg(2000, 500)
    assert sum(m == 0xDA for m, _, _ in markers(scans)) == 500 and len(scans) < 200_000
    with Image.open(io.BytesIO(scans)) as image:
        assert image.size == (2000, 2000)
        image.draft("RGB", (250, 250))
        image.load()  # a real progressive JPEG: libjpeg decodes every repeated scan
    flood = segment_flood_jpeg(100_000)
    assert sum(m == 0xE1 for m, _, _ in markers(flood)) == 100_000
    webp = webp_lossless(16, declared=7000)
    assert len(webp) < 200 and Image.open(io.BytesIO(webp)).size == (7000, 7000)
    bmp = rle8_bmp(64, 48)
    with Image.open(io.BytesIO(bmp)) as image:
        assert image.info["compression"] == 1 and image.size == (64, 48)
        image.load()


@pytest.mark.parametrize(
    "name,data,reason,words",
    [
        ("1500 scans", lambda: many_scans_jpeg(3000, 1500), images.TOO_COSTLY, "max_jpeg_scans"),
        ("1M APP1 segments", lambda: segment_flood_jpeg(1_000_000), images.TOO_COSTLY, "max_jpeg_segments"),
        (
            "lossless WebP 7000x7000",
            lambda: webp_lossless(16, declared=7000),
            images.TOO_COSTLY,
            "max_other_pixels",
        ),
        ("1-bit PNG 7000x7000", lambda: png_bomb(7000), images.TOO_COSTLY, "max_other_pixels"),
        ("RLE8 BMP 7000x7000", lambda: rle8_bmp(7000, 7000), images.TOO_COSTLY, "max_other_pixels"),
        ("RLE8 BMP 1000x1000", lambda: rle8_bmp(1000, 1000), images.UNSUPPORTED, "RLE-compressed BMP"),
        ("PNG 16000x16000", lambda: png_bomb(16000), images.TOO_LARGE, "max_pixels"),
    ],
)
def test_hostile_files_are_refused_fast_without_allocating(name, data, reason, words):
    data = data()
    error, seconds, peak = refused(data)
    assert error.reason == reason and words in str(error), name
    assert seconds < 0.5, (name, seconds)
    assert peak < 4 * MiB, (name, peak)  # nothing near the pixels (>= 36 MB for 3000x3000 RGB)


def test_the_limits_are_the_settings():
    flood = segment_flood_jpeg(50)
    assert images.decode_for_model(flood, BUDGET, 32).shape == (48, 64, 3)  # 51 segments: fine
    assert refused(flood, DecodeBudget(max_jpeg_segments=50).within(10**8))[0].reason == images.TOO_COSTLY
    scans = many_scans_jpeg(64, 20)
    assert images.decode_for_model(scans, DecodeBudget(max_jpeg_scans=20), 32).shape == (64, 64, 3)
    assert refused(scans, DecodeBudget(max_jpeg_scans=19))[0].reason == images.TOO_COSTLY
    png = io.BytesIO()
    Image.new("RGB", (40, 25)).save(png, format="PNG")
    assert images.decode_for_model(png.getvalue(), DecodeBudget(max_other_pixels=1000), 32).shape == (
        25,
        40,
        3,
    )
    assert refused(png.getvalue(), DecodeBudget(max_other_pixels=999))[0].reason == images.TOO_COSTLY
    # a JPEG is not held to max_other_pixels: it is decoded at the model's scale
    assert images.decode_for_model(photo(60, 40), DecodeBudget(max_other_pixels=1), 32).shape == (40, 60, 3)


def test_normal_jpegs_pass_and_walk_cheaply():
    progressive = photo(1200, 900, progressive=True)
    camera = photo(1200, 900)  # baseline, with Exif
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    out = io.BytesIO()
    Image.open(io.BytesIO(camera)).save(
        out, format="JPEG", quality=90, exif=exif.tobytes(), icc_profile=b"\0" * 200_000
    )
    camera = out.getvalue()
    walk = images.jpeg_structure(progressive, 64, 1000)
    assert walk.scans == 10 and walk.complete  # libjpeg's standard progressive script
    walk = images.jpeg_structure(camera, 64, 1000)
    assert walk.scans == 1 and 6 <= walk.segments <= 20  # Exif, 4 ICC chunks, tables, frame
    for data in (progressive, camera):
        assert images.decode_for_model(data, BUDGET, 299).shape == (450, 600, 3)  # 1/2 scale


def test_dct_scaling_keeps_what_the_crop_needs():
    assert images.model_side(299) == 342
    data = photo(4000, 3000)
    pixels = images.decode_for_model(data, BUDGET, 299)
    assert pixels.shape == (375, 500, 3) and pixels.dtype == np.uint8  # 1/8: 375 >= 342
    assert images.decode_for_model(photo(1400, 700), BUDGET, 299).shape == (350, 700, 3)  # 1/2
    assert images.decode_for_model(photo(640, 480), BUDGET, 299).shape == (480, 640, 3)  # full
    grey = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("L").save(grey, format="JPEG")
    assert images.decode_for_model(grey.getvalue(), BUDGET, 299).shape == (375, 500, 3)


def test_decoded_pixels_feed_m1_as_the_full_tensorflow_decode_did():
    """A 640x480 JPEG is below twice 342 px: decoded in full by both paths, M1's input agrees to
    float rounding of the resize; a 4000x3000 one differs only by the DCT scaling's box filter."""
    data = photo(640, 480)
    pixels = images.decode_for_model(data, BUDGET, 299)
    accurate = tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")
    np.testing.assert_array_equal(pixels, accurate.numpy())  # libjpeg's ISLOW IDCT, as Pillow's
    new = preprocessing.eval_pixels(pixels, 299).numpy()
    np.testing.assert_allclose(new, preprocessing.eval_pixels(accurate, 299).numpy(), atol=1e-6)
    # TensorFlow's default IDCT (IFAST) differs by a level on average, at most 4
    old = preprocessing.eval_image(tf.constant(data), 299).numpy()
    assert np.abs(new - old).max() <= 4 / 127.5 and np.abs(new - old).mean() < 1.5 / 127.5
    flat, shapes = preprocessing.pack([images.decode_for_model(data, BUDGET, 299)] * 2)
    batch = preprocessing.eval_packed(flat, shapes, 299).numpy()
    np.testing.assert_allclose(batch, [new, new], atol=1e-6)
    large = photo(4000, 3000)
    old = preprocessing.eval_image(tf.constant(large), 299).numpy()
    new = preprocessing.eval_pixels(images.decode_for_model(large, BUDGET, 299), 299).numpy()
    assert np.abs(new - old).mean() < 3 / 127.5


def test_one_compiled_function_for_any_sizes(tmp_path):
    from geoloc_tf.inference.m1_model import M1Model

    run = build_tiny_run(tmp_path / "run", export=False)
    model = M1Model.load(run)
    sizes = [(90, 120), (75, 75), (342, 500), (40, 41)]
    photos = [
        images.decode_for_model(jpeg(h, w, i), BUDGET, model.image_size) for i, (h, w) in enumerate(sizes)
    ]
    for count in (1, 2, 4):
        probabilities = model.probabilities(photos[:count])
        assert probabilities.shape == (count, model.num_cells)
    assert model._forward.experimental_get_tracing_count() == 1


def test_the_server_job_holds_decoded_pixels_and_refusals_are_413(tmp_path):
    from http import HTTPStatus

    from geoloc_tf.inference.batcher import HttpError
    from geoloc_tf.inference.config import ServerConfig
    from geoloc_tf.inference.http_request import make_job
    from geoloc_tf.inference.photo_predictor import Predictor

    job = make_job(photo(800, 700), {}, "p.jpg", ServerConfig(), 75)
    assert job.image.dtype == np.uint8 and job.image.shape == (88, 100, 3)  # 1/8: 88 >= 86
    with pytest.raises(HttpError) as error:
        make_job(many_scans_jpeg(256, 100), {}, "scans.jpg", ServerConfig(), 75)
    assert error.value.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE and "max_jpeg_scans" in str(error.value)
    with pytest.raises(HttpError) as error:
        make_job(rle8_bmp(30, 20), {}, "rle.bmp", ServerConfig(), 75)
    assert error.value.status == HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    predictor = Predictor.load(build_tiny_run(tmp_path / "run", export=False))
    answer = predictor.predict(
        [job.image, images.decode_for_model(jpeg(60, 80, 1), ServerConfig().decode, 75)]
    )
    assert answer.top_ids[:, 0].tolist() == [3, 3]  # the tiny run's cell 3, whatever the photo


def test_a_png_of_a_million_empty_chunks_is_refused_unread_and_a_normal_png_passes():
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (1, 2, 3)).save(out, format="PNG")
    normal = out.getvalue()
    assert images.png_chunks(normal) == 3  # IHDR, IDAT, IEND
    empty = struct.pack(">I", 0) + b"tEXt" + struct.pack(">I", zlib.crc32(b"tEXt"))
    flood = normal[:33] + empty * 1_000_000 + normal[33:]  # after the signature and IHDR
    started = time.monotonic()
    with pytest.raises(images.BadImage) as refused:
        images.decode_for_model(flood, DecodeBudget(), 299)
    assert refused.value.reason == images.TOO_COSTLY and "10,000 chunks" in str(refused.value)
    assert time.monotonic() - started < 0.5
    assert images.decode_for_model(normal, DecodeBudget(), 299).shape == (48, 64, 3)
