"""Attacks on `geoloc serve` while a client posts a valid 640x480 JPEG every half second: each
valid request must be answered 200 within 3 s, the attack get its own error, and the memory of
the server and its decode workers stay within 1 GB of idle and come back to it.

The server runs in this process (the tiny run of conftest.build_tiny_run), with small limits:
0.5 s of decoding CPU and 256 MB of decoding memory per photo, one expensive-lane worker, 16
connections per client address, 64 in all. The valid client connects from 127.0.0.2 (Linux
routes all of 127/8 to the loopback), the photo attacks from 127.0.0.1 and the idle sockets from
127.0.0.2 too: the per-address cap closes an address's idle connections first, so they cannot
lock out a client behind the same address.

 (a) a progressive JPEG of 1500 scans (seconds of CPU; allowed by this server's decode budget)
 (b) a 38-byte lossless WebP declaring 7000x7000 pixels (196 MB decoded; Pillow allocates it on
     opening the file)
 (c) idle sockets that each sent one byte, from the valid client's own address: 64, four times
     64, and a client reopening them
 (d) a request head over 16 KiB, in one packet and slowly
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest

from experiments.benchmarks.hostile_files import many_scans_jpeg, webp_lossless
from tests.geoloc_tf.conftest import build_tiny_run, jpeg
from tests.geoloc_tf.test_hostile_input import at_once

MiB = 1 << 20
VALID_FROM = "127.0.0.2"
WORST_WAIT_S = 3.0


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    except (OSError, StopIteration):  # a worker that just ended
        return 0


class Connection(http.client.HTTPConnection):
    """An HTTP connection from a chosen loopback address."""

    def __init__(self, address, source: str, timeout: float = 60):
        super().__init__(*address, timeout=timeout, source_address=(source, 0))


def post(address, body: bytes, source: str = "127.0.0.1", kind: str = "image/jpeg") -> tuple[int, dict]:
    conn = Connection(address, source)
    try:
        conn.request("POST", "/predict", body=body, headers={"Content-Type": kind})
        response = conn.getresponse()
        raw = response.read()
        assert raw.count(b"\n") <= 1  # one line of JSON
        return response.status, json.loads(raw)
    finally:
        conn.close()


class Watch:
    """While active: a valid photo posted every half second from VALID_FROM (status, seconds),
    and the summed RSS of this process and the decode workers sampled every 20 ms."""

    def __init__(self, server, photo: bytes):
        self.server, self.photo = server, photo
        self.answers: list[tuple[int, float]] = []
        self.peak_kib = 0
        self.stopping = threading.Event()

    def rss(self) -> int:
        import os

        return sum(rss_kib(pid) for pid in [os.getpid(), *self.server.pool.pids()])

    def __enter__(self) -> "Watch":
        self.threads = [threading.Thread(target=self.post), threading.Thread(target=self.sample)]
        for thread in self.threads:
            thread.start()
        time.sleep(0.6)
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(0.6)
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def post(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                status = post(self.server.host_port, self.photo, VALID_FROM)[0]
            except OSError:
                status = 0
            self.answers.append((status, time.monotonic() - started))
            self.stopping.wait(max(0.0, 0.5 - (time.monotonic() - started)))

    def sample(self) -> None:
        while not self.stopping.is_set():
            self.peak_kib = max(self.peak_kib, self.rss())
            time.sleep(0.02)

    def check(self, idle_kib: int, what: str) -> None:
        worst = max(seconds for _, seconds in self.answers)
        print(
            f"{what}: {len(self.answers)} valid requests, worst wait {worst:.2f} s, "
            f"peak {(self.peak_kib - idle_kib) / 1024:+.0f} MiB over idle"
        )
        assert len(self.answers) >= 3
        assert all(status == 200 for status, _ in self.answers), self.answers
        assert worst < WORST_WAIT_S, self.answers
        assert (self.peak_kib - idle_kib) * 1024 < 1024 * MiB


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from data_pipelines.config import DecodeBudget
    from geoloc_tf.inference.config import ServerConfig
    from geoloc_tf.inference.photo_predictor import Predictor
    from geoloc_tf.inference.server import start_server, stop_server, warm_up

    predictor = Predictor.load(build_tiny_run(tmp_path_factory.mktemp("hostile_server_run"), export=False))
    warm_up(predictor)
    running = start_server(
        predictor,
        ServerConfig(
            port=0,
            decode_workers=2,
            decode_slow_workers=1,
            decode_cpu_s=0.5,
            decode_memory_mb=256,
            decode=DecodeBudget(max_jpeg_scans=5000, max_jpeg_segments=5000),
            header_timeout_s=2.0,
            max_connections=64,
            max_connections_per_client=16,
            batch_wait_ms=2.0,
        ),
    )
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def photo() -> bytes:
    return jpeg(480, 640, 1)


@pytest.fixture
def idle(server, photo) -> int:
    """The summed RSS at rest, after a few valid requests (KiB)."""
    for _ in range(3):
        assert post(server.host_port, photo, VALID_FROM)[0] == 200
    return Watch(server, photo).rss()


def settles(server, photo, idle_kib: int) -> float:
    """MiB over idle once the workers past a limit were replaced (a few seconds at most)."""
    watch = Watch(server, photo)
    over = 0.0
    for _ in range(20):
        time.sleep(0.25)
        over = (watch.rss() - idle_kib) / 1024
        if over < 200 and len(server.pool.pids()) == 3:
            break
    print(f"after: {over:+.0f} MiB over idle")
    return over


def test_decode_workers_are_processes_without_tensorflow(server):
    assert len(server.pool.pids()) == 3
    for pid in server.pool.pids():
        assert rss_kib(pid) < 80 * 1024  # tens of MB, not the server's hundreds
        with open(f"/proc/{pid}/maps") as maps:
            assert "tensorflow" not in maps.read()


@pytest.mark.parametrize("copies", [1, 4])
def test_a_photo_costly_to_decode_is_stopped_at_its_cpu_limit_and_delays_no_one(server, photo, idle, copies):
    # 1500 scans over 7000x7000 (about 1.5 s of decoding): the server's budget here allows 5000
    # scans and segments, so the CPU limit (0.5 s), the decode budget's second line, stops it.
    costly = many_scans_jpeg(7000, 1500)
    with Watch(server, photo) as watch:
        answers = at_once(*[lambda: post(server.host_port, costly)] * copies)
    for status, error in answers:
        assert status == 413 and error["status"] == 413 and "--decode_cpu_s" in error["error"], error
    watch.check(idle, f"{copies} x costly JPEG")
    assert settles(server, photo, idle) < 200


@pytest.mark.parametrize("copies", [1, 4])
def test_a_photo_too_large_to_decode_is_refused_from_its_header(server, photo, idle, copies):
    webp = webp_lossless(64, declared=7000)
    assert len(webp) < 100
    with Watch(server, photo) as watch:
        answers = at_once(*[lambda: post(server.host_port, webp, kind="image/webp")] * copies)
    for status, error in answers:
        assert status == 413 and "7000x7000" in error["error"] and "max_other_pixels" in error["error"]
    watch.check(idle, f"{copies} x 7000x7000 WebP")
    assert settles(server, photo, idle) < 200


@pytest.mark.parametrize("copies", [64, 4 * 64])
def test_idle_connections_cost_little_and_lock_no_one_out(server, photo, idle, copies):
    sockets: list[socket.socket] = []

    def open_one() -> socket.socket:  # from the valid client's own address, as behind a NAT
        conn = socket.create_connection(server.host_port, timeout=10, source_address=(VALID_FROM, 0))
        conn.sendall(b"P")
        return conn

    try:
        with Watch(server, photo) as watch:
            sockets = [open_one() for _ in range(copies)]
            time.sleep(0.5)
            # Beyond 16 from one address, the oldest idle ones are closed.
            closed = sum(1 for conn in sockets if _closed_now(conn))
            assert closed >= copies - 16
            for _ in range(3):  # a client reopening what was closed
                sockets = [conn if not _closed_now(conn) else open_one() for conn in sockets]
                time.sleep(0.5)
        watch.check(idle, f"{copies} idle sockets")
        started = time.monotonic()
        assert all(_closed_by_server(conn) for conn in sockets)  # the head deadline closes the rest
        assert time.monotonic() - started < 5
    finally:
        for conn in sockets:
            conn.close()


def _closed_by_server(conn: socket.socket) -> bool:
    try:
        return conn.recv(1) == b""
    except ConnectionResetError:  # closed with the byte unread
        return True


def _closed_now(conn: socket.socket) -> bool:
    conn.setblocking(False)
    try:
        return conn.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        conn.setblocking(True)


def _head_response(conn: socket.socket) -> tuple[int, dict]:
    response = http.client.HTTPResponse(conn)
    response.begin()
    raw = response.read()
    assert raw.count(b"\n") == 0
    return response.status, json.loads(raw)


def test_a_head_over_16_kib_gets_431_in_one_packet_and_slowly(server, photo, idle):
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * 200_000 + b"\r\n\r\n"
    with Watch(server, photo) as watch:
        with socket.create_connection(server.host_port, timeout=10) as conn:
            conn.sendall(big)  # one write: h11's incomplete-event limit never sees it
            status, error = _head_response(conn)
        assert status == 431 and error["status"] == 431 and "16,384 bytes" in error["error"]
        with socket.create_connection(server.host_port, timeout=10) as conn:
            for start in range(0, 20_000, 2_000):
                conn.sendall(big[start : start + 2_000])
                time.sleep(0.02)
            assert _head_response(conn)[0] == 431
        with socket.create_connection(server.host_port, timeout=10) as conn:  # 15 KB: fine
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * 15_000 + b"\r\n\r\n")
            assert _head_response(conn)[0] == 200
    watch.check(idle, "oversize heads")


def test_healthz_counts_the_replaced_workers(server):
    conn = Connection(server.host_port, VALID_FROM)
    conn.request("GET", "/healthz")
    health = json.loads(conn.getresponse().read())
    conn.close()
    assert health["decode_workers"]["fast"] == 2 and health["decode_workers"]["slow"] == 1
    assert health["decode_workers"]["replaced"] >= 5  # the costly JPEGs' workers
