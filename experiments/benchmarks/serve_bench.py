"""Benchmark of `geoloc serve` under hostile input: what a decompression bomb costs the server.

    python -m experiments.benchmarks.serve_bench [--quick] [--side=16000] [--bombs=3] [--json=out.json]

Setup (not timed): ``predict_bench``'s run directory (the demo's M1 with random weights) and a real
`geoloc serve` process on loopback, warmed up with five JPEGs. The bomb is a valid 1-bit grey PNG
of ``--side`` x ``--side`` black pixels (``png_bomb``: 31 KB for 16000, 768 MB as RGB once decoded).

Measured (Linux: /proc): the server's peak memory above its idle size (VmHWM, reset to VmRSS with
``clear_refs`` before the bombs) and the median time of its answer to each of ``--bombs`` bombs, with
``TARGET_MIB`` (1 GB) as the target for the memory. Baseline, in the same run: a fresh Python
process decoding the same PNG with Pillow, as a server without a pixel limit would; its peak memory
above its own size before decoding, and the decoding time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

from experiments.benchmarks.rows import BenchmarkRow
from experiments.errors import BenchmarkError

SIZES = {"full": {"side": 16000, "bombs": 3}, "quick": {"side": 8000, "bombs": 2}}
TARGET_MIB = 1024.0
KIB_PER_MIB = 1024

#: A child that decodes the PNG on stdin with Pillow and prints its VmRSS before and VmHWM after (KiB).
DECODE_CHILD = """
import sys, time
from pathlib import Path
from PIL import Image
Image.MAX_IMAGE_PIXELS = None
def status(key):
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(key))
    return int(line.split()[1])
data = sys.stdin.buffer.read()
before = status("VmRSS:")
started = time.perf_counter()
import io
Image.open(io.BytesIO(data)).convert("RGB")
print(before, status("VmHWM:"), time.perf_counter() - started)
"""


def png_bomb(side: int) -> bytes:
    """A valid 1-bit grey PNG of side x side black pixels: a few KB that decode to side^2 pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])  # depth 1, grey
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def proc_status(pid: int | str) -> dict[str, int]:
    """VmRSS, VmHWM (KiB) and Threads of a process, from /proc."""
    wanted = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "Threads"):
            wanted[key] = int(value.split()[0])
    return wanted


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks.serve_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="an 8000 x 8000 bomb, posted twice")
    parser.add_argument("--side", type=int, default=None, help="the bomb's side, pixels (default 16000)")
    parser.add_argument("--bombs", type=int, default=None, help="bombs posted (default 3)")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    for name, value in SIZES["quick" if args.quick else "full"].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def _post(address: tuple[str, int], body: bytes, content_type: str) -> tuple[int, float]:
    conn = http.client.HTTPConnection(*address, timeout=600)
    started = time.perf_counter()
    conn.request("POST", "/predict", body=body, headers={"Content-Type": content_type})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status, time.perf_counter() - started


class ServeProcess:
    """A real `geoloc serve` process on a free loopback port (``address``), its log lines in
    ``log``; used by this benchmark and the hostile-input tests."""

    def __init__(self, run: Path, *options: str):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "experiments.cli", "serve", f"--model={run}", "--port=0", *options],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""},
        )
        self.log: list[str] = []
        ports: list[int] = []
        found = threading.Event()

        def read() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.log.append(line)
                match = re.search(r"on http://127\.0\.0\.1:(\d+)", line)
                if match and not ports:
                    ports.append(int(match.group(1)))
                    found.set()
            found.set()

        threading.Thread(target=read, daemon=True).start()
        found.wait(timeout=180)
        if not ports:
            self.process.kill()
            raise BenchmarkError("geoloc serve did not start:\n" + "".join(self.log[-20:]))
        self.address = ("127.0.0.1", ports[0])

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """Kills the process (a graceful stop is SIGTERM: ``process.send_signal``)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def time_server(run_dir: Path, photo: bytes, bomb: bytes, bombs: int) -> dict:
    server = ServeProcess(run_dir)
    try:
        for _ in range(5):
            _post(server.address, photo, "image/jpeg")
        idle = proc_status(server.pid)["VmRSS"]
        Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
        answers = [_post(server.address, bomb, "image/png") for _ in range(bombs)]
        peak = proc_status(server.pid)["VmHWM"]
    finally:
        server.stop()
    return {
        "statuses": [status for status, _ in answers],
        "seconds_median": statistics.median(seconds for _, seconds in answers),
        "idle_mib": idle / KIB_PER_MIB,
        "peak_above_idle_mib": (peak - idle) / KIB_PER_MIB,
    }


def time_decoding(bomb: bytes) -> dict:
    child = subprocess.run(
        [sys.executable, "-c", DECODE_CHILD], input=bomb, capture_output=True, check=True, timeout=600
    )
    before, peak, seconds = child.stdout.split()
    return {"peak_above_idle_mib": (int(peak) - int(before)) / KIB_PER_MIB, "seconds": float(seconds)}


def run(args: argparse.Namespace) -> dict:
    from experiments.benchmarks.predict_bench import make_photos, make_run_dir

    if not Path("/proc/self/status").exists():
        raise BenchmarkError("serve_bench reads memory from /proc: Linux only")
    bomb = png_bomb(args.side)
    with tempfile.TemporaryDirectory(prefix="serve_bench_") as tmp:
        run_dir = make_run_dir(Path(tmp) / "run", False, 0)
        photo = make_photos(Path(tmp) / "photos", 1, 0)[0].read_bytes()
        server = time_server(run_dir, photo, bomb, args.bombs)
    return {"side": args.side, "bomb_bytes": len(bomb), "server": server, "decoding": time_decoding(bomb)}


def rows(res: dict) -> list[BenchmarkRow]:
    server, decoding = res["server"], res["decoding"]
    side = f"{res['side']}x{res['side']} PNG of {res['bomb_bytes'] / 1000:.0f} KB"
    above = server["peak_above_idle_mib"]
    return [
        BenchmarkRow(
            "serve_bench",
            f"`geoloc serve` peak memory above idle, refusing a {side} (HTTP {server['statuses'][0]})",
            above,
            "MiB",
            "Pillow decoding it",
            decoding["peak_above_idle_mib"],
            higher_is_better=False,
            target=f"< {TARGET_MIB:.0f} MiB",
            met=above < TARGET_MIB,
        ),
        BenchmarkRow(
            "serve_bench",
            f"`geoloc serve` answer to a {side}",
            1000 * server["seconds_median"],
            "ms",
            "Pillow decoding it",
            1000 * decoding["seconds"],
            higher_is_better=False,
        ),
    ]


def measure(quick: bool = False) -> list[BenchmarkRow]:
    return rows(run(parse_args(["--quick"] if quick else [])))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    res = run(args)
    server, decoding = res["server"], res["decoding"]
    print(
        f"serve benchmark: a {res['side']}x{res['side']} PNG of {res['bomb_bytes']:,} bytes, {args.bombs} times"
    )
    print(
        f"  geoloc serve: HTTP {server['statuses']}, {1000 * server['seconds_median']:.1f} ms each, "
        f"peak memory {server['peak_above_idle_mib']:.1f} MiB above its idle {server['idle_mib']:.0f} MiB"
    )
    print(
        f"  baseline, Pillow decoding it: {decoding['seconds']:.2f} s, "
        f"{decoding['peak_above_idle_mib']:.0f} MiB above the process's size before"
    )
    if args.json:
        from mesh.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
