"""The decode pool: tasks in worker processes under CPU and memory limits; a worker past a limit
is replaced and the others go on (data_pipelines.decode_pool)."""

from __future__ import annotations

import io
import math
import threading
import time

import pytest
from PIL import Image

from data_pipelines import decode_pool, images
from data_pipelines.config import DecodeBudget
from experiments.benchmarks.hostile_files import rle8_bmp, webp_lossless


def encoded(kind: str, size: tuple[int, int], **options) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(out, format=kind, **options)
    return out.getvalue()


def test_the_route_reads_the_declared_size_of_each_format_without_pillow():
    cheap = 1_000_000
    for kind, options in [("JPEG", {}), ("PNG", {}), ("GIF", {}), ("BMP", {}), ("WEBP", {"lossless": True})]:
        route = decode_pool.photo_route(encoded(kind, (640, 480), **options), cheap)
        assert (route.format, route.width, route.height, route.cheap) == (kind, 640, 480, True), kind
    lossy = decode_pool.photo_route(encoded("WEBP", (640, 480), quality=50), cheap)
    assert (lossy.width, lossy.height) == (640, 480)
    assert decode_pool.photo_route(encoded("JPEG", (2000, 1000)), cheap).cheap is False  # 2 MP
    assert decode_pool.photo_route(webp_lossless(64, declared=6000), cheap).pixels == 36_000_000
    assert decode_pool.photo_route(rle8_bmp(64, 64), cheap).cheap is False  # RLE: Python decoder
    jpeg = encoded("JPEG", (64, 64))
    many_segments = jpeg[:2] + b"\xff\xfe\x00\x02" * 1000 + jpeg[2:]
    assert decode_pool.photo_route(many_segments, cheap).format is None  # no frame in 256 segments
    assert decode_pool.photo_route(b"\xff\xd8\xff", cheap).format is None
    assert decode_pool.photo_route(b"GIF89a", cheap).format is None


@pytest.fixture(scope="module")
def pool():
    started = decode_pool.DecodePool(
        {"fast": 1, "slow": 2}, decode_pool.Limits(cpu_s=0.5, memory_mb=64, recycle_mb=32)
    ).start()
    yield started
    started.close()


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def test_workers_are_small_and_hold_no_tensorflow(pool):
    for pid in pool.pids():
        assert rss_mib(pid) < 80
        with open(f"/proc/{pid}/maps") as maps:
            assert "tensorflow" not in maps.read()


def test_results_and_the_decoders_refusals_cross_the_pipe(pool):
    assert pool.run("fast", pow, 2, 10) == 1024
    with pytest.raises(images.BadImage) as refused:
        pool.run("fast", images.decode_for_model, b"II*\x00" + bytes(64), DecodeBudget(), 299)
    assert refused.value.reason == images.UNSUPPORTED


def test_a_task_over_its_cpu_limit_ends_its_worker_and_not_the_others(pool):
    answers: list = [None, None]

    def costly():
        try:
            pool.run("slow", math.factorial, 10**7)
        except decode_pool.OverLimit as over:
            answers[0] = over

    thread = threading.Thread(target=costly)
    thread.start()
    answers[1] = pool.run("slow", pow, 3, 4)  # the other slow worker, meanwhile
    thread.join(timeout=30)
    assert answers[1] == 81
    assert isinstance(answers[0], decode_pool.OverLimit) and answers[0].limit == "cpu"
    assert "0.5 s of CPU" in str(answers[0])
    assert pool.run("slow", pow, 2, 3) == 8  # the lane goes on


def test_a_task_over_its_memory_limit_is_refused_and_its_worker_replaced(pool):
    replaced = pool.replaced
    with pytest.raises(decode_pool.OverLimit) as over:
        pool.run("slow", bytearray, 200 << 20)
    assert over.value.limit == "memory"
    assert pool.run("slow", len, bytearray(10 << 20)) == 10 << 20  # 10 MB is within the limit
    assert pool.replaced == replaced + 1


def test_a_run_length_bmp_is_refused_by_the_budget_before_pillows_python_loop_runs(pool):
    started = time.monotonic()
    with pytest.raises(images.BadImage) as refused:
        pool.run("slow", images.decode_for_model, rle8_bmp(3000, 2000), DecodeBudget(), 299)
    assert refused.value.reason == images.UNSUPPORTED
    assert time.monotonic() - started < 1.0  # decoding it costs about 1.6 s of Python
