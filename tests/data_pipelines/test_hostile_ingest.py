"""Ingestion given hostile or unusual input: it counts what it cannot use and never crashes, hangs,
reads outside its images folder, merges different users, or misreports where a file broke.

Every test runs the real ingestion (``run_ingestion``, or the ``geoloc ingest`` command) on a tiny
collection it writes, and checks the counts in its summary or the error it reports.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tarfile
import time
import tracemalloc
import zlib

import pandas as pd
import pytest

from data_pipelines import errors, ingest, values
from data_pipelines.config import IngestConfig
from data_pipelines.ingest import image_files
from data_pipelines.readers import SkipLog, detect_layout, read_metadata_file
from experiments.cli import main as geoloc
from tests.data_pipelines.conftest import write_jpeg, yfcc_fields

SALT = "fixed-salt"
# UserHasher(SALT) of these ids as computed before user ids were hashed as bytes: a valid UTF-8 id
# must keep its hash, or existing data sets would no longer join with new ones.
HASH_BEFORE = {"José": "a2ba0ba7b54390ca", "user0@N00": "259a89e62af63501"}


def run(tmp_path, metadata, images) -> dict:
    config = IngestConfig(
        metadata=tuple(str(m) for m in metadata),
        images=str(images),
        max_image_side=32,
        examples_per_shard=64,
        workers=1,
        salt=SALT,
    )
    return ingest.run_ingestion(config, str(tmp_path / "out"))


def tables(tmp_path) -> pd.DataFrame:
    folder = tmp_path / "out" / "tables"
    return pd.concat([pd.read_parquet(folder / name) for name in sorted(os.listdir(folder))]).set_index(
        "photo_id"
    )


def tsv_line(photo_id, **fields) -> bytes:
    """A YFCC100M line as bytes; a field given as bytes replaces that field verbatim."""
    raw = {k: v for k, v in fields.items() if isinstance(v, bytes)}
    text = {k: v for k, v in fields.items() if not isinstance(v, bytes)}
    parts = [p.encode() for p in yfcc_fields(photo_id, **text)]
    index = {"user": 1, "uploaded": 4, "lon": 10, "lat": 11, "accuracy": 12}
    for name, value in raw.items():
        parts[index[name]] = value
    return b"\t".join(parts)


def write_bytes(path, lines: list[bytes], prefix: bytes = b"", compress=None) -> str:
    data = prefix + b"\n".join(lines) + b"\n"
    if compress == "gz":
        path, data = f"{path}.gz", gzip.compress(data, mtime=0)
    elif compress == "bz2":
        path, data = f"{path}.bz2", bz2.compress(data)
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def images_for(folder, photo_ids) -> str:
    os.makedirs(folder, exist_ok=True)
    for photo_id in photo_ids:
        write_jpeg(os.path.join(folder, f"{photo_id}.jpg"), 40, 30)
    return str(folder)


def test_unicode_digits_and_times_outside_1970_2100_are_counted_never_fatal(tmp_path):
    yfcc = write_bytes(
        tmp_path / "y.tsv",
        [
            tsv_line(100, accuracy="²"),  # kept, accuracy unknown (-1)
            tsv_line(101, uploaded=99999999999),  # year 5138: bad_field
            tsv_line(102, uploaded="١٣٠٠٠٠٠٠٠٠"),  # Arabic-Indic digits: bad_field
            tsv_line(103, lat="４８.８"),  # fullwidth digits: bad_coordinates
            tsv_line(104, accuracy=12),  # kept
        ],
    )
    csv = write_bytes(
        tmp_path / "c.csv",
        [
            "IMG_ID,AUTHOR,LAT,LON,posted_at,accuracy,outdoor_prob".encode(),
            "200,u,10,20,2014-06-01T14:30:00Z,²,0.5".encode(),  # kept, accuracy -1
            b"201,u,10,20,9999-12-31T23:59:59-14:00,3,0.5",  # past year 9999 in UTC: bad_field
            b"202,u,10,20,0001-01-01T00:00:00+14:00,3,0.5",  # before year 1: bad_field
            b"203,u,10,20,1e400,3,0.5",  # bad_field
            "204,u,10,20,１４００００００００,3,0.5".encode(),  # fullwidth digits: bad_field
            b"205,u,10,20,2101-01-01T00:00:00Z,3,0.5",  # after 2100: bad_field
            b"206,u,1_0,20,1400000000,3,0.5",  # float() would read 10: bad_coordinates
            "207,u,10,20,1400000000,3,٠.٥".encode(),  # outdoor probability unknown
        ],
    )
    images = images_for(tmp_path / "images", [100, 104, 200, 207])
    summary = run(tmp_path, [yfcc, csv], images)
    assert summary["lines_read"] == 13
    assert summary["examples_written"] == 4
    skipped = {k: v for k, v in summary["skipped"].items() if v}
    assert skipped == {"bad_field": 7, "bad_coordinates": 2}
    assert any("2100-12-31" in m for m in summary["skipped_examples"]["bad_field"])
    table = tables(tmp_path)
    assert table.loc["100", "accuracy"] == -1 and table.loc["104", "accuracy"] == 12
    assert table.loc["200", "accuracy"] == -1 and table.loc["207", "accuracy"] == 3
    assert table.loc["200", "outdoor_prob"] == 0.5 and math.isnan(table.loc["207", "outdoor_prob"])
    assert table.loc["200", "posted_at"] == 1401633000


@pytest.mark.parametrize(
    "text", ["48.5", " -3 ", "1e-3", ".5", "5.", "+0.25", "1_0", "nan", "inf", "1e999", "４８", "", "0x1p3"]
)
def test_coordinates_from_bytes_follow_the_same_rule_as_from_text(text):
    """The YFCC reader parses raw bytes (values.ascii_float_bytes, the fast path) and the CSV reader
    text (values.ascii_float): one rule, so a number is a coordinate in both or in neither."""
    try:
        expected: float | None = values.ascii_float(text)
    except values.ValueProblem:
        expected = None
    try:
        got: float | None = values.ascii_float_bytes(text.encode())
    except values.ValueProblem:
        got = None
    assert got == expected


def test_image_paths_outside_the_images_folder_are_never_read(tmp_path):
    real_images = tmp_path / "images"
    images_for(real_images, ["1", "2"])
    outside = tmp_path / "outside"
    write_jpeg(str(outside / "secret.jpg"), 40, 30)
    os.symlink(outside / "secret.jpg", real_images / "link.jpg")  # a symlink leading out
    os.symlink(real_images / "2.jpg", real_images / "inner_link.jpg")  # one staying inside
    images = tmp_path / "images_link"  # --images itself may be a symlink
    os.symlink(real_images, images)
    csv = write_bytes(
        tmp_path / "c.csv",
        [
            b"IMG_ID,AUTHOR,LAT,LON,path",
            b"p1,u,10,20,1.jpg",
            b"p2,u,10,20,../outside/secret.jpg",
            f"p3,u,10,20,{outside / 'secret.jpg'}".encode(),
            b"p4,u,10,20,link.jpg",
            b"p5,u,10,20,inner_link.jpg",
            f"p6,u,10,20,{real_images / '1.jpg'}".encode(),  # absolute, but inside: read
        ],
    )
    summary = run(tmp_path, [csv], images)
    assert summary["skipped"]["outside_images"] == 3
    assert summary["examples_written"] == 3
    assert sorted(tables(tmp_path).index) == ["p1", "p5", "p6"]
    examples = summary["skipped_examples"]["outside_images"]
    assert sorted(m.split(": ")[0] for m in examples) == [f"{csv}:3", f"{csv}:4", f"{csv}:5"]
    assert all("outside the images folder" in m for m in examples)


class Blocked(Exception):
    """Not an OSError, so that no ``except OSError`` in the code under test takes it for a skip."""


@contextlib.contextmanager
def fails_if_blocked(seconds: int):
    """Fails the test, instead of hanging it, if the block does not finish in ``seconds``."""

    def blocked(signum, frame):
        raise Blocked(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_fifos_folders_and_sockets_are_skipped_without_blocking(tmp_path):
    images = tmp_path / "images"
    images_for(images, ["ok"])
    os.mkfifo(images / "fifo.jpg")  # opened for reading, it would wait for a writer forever
    (images / "folder.jpg").mkdir()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(images / "sock.jpg"))
    csv = write_bytes(
        tmp_path / "c.csv",
        [
            b"IMG_ID,AUTHOR,LAT,LON,path",
            b"ok,u,10,20,ok.jpg",
            b"f,u,10,20,fifo.jpg",
            b"d,u,10,20,folder.jpg",
            b"s,u,10,20,sock.jpg",
        ],
    )
    try:
        with fails_if_blocked(60):
            summary = run(tmp_path, [csv], images)
    finally:
        server.close()
    assert summary["skipped"]["not_a_file"] == 3
    assert summary["examples_written"] == 1
    kinds = " ".join(summary["skipped_examples"]["not_a_file"])
    assert "a FIFO" in kinds and "a folder" in kinds and "a socket" in kinds


def test_a_fifo_swapped_in_after_the_check_does_not_block(tmp_path, monkeypatch):
    """The file may change between ``stat`` and ``open``: the open itself must not wait for a
    writer (O_NONBLOCK), and what was opened is checked again."""
    images = tmp_path / "images"
    images_for(images, ["ok"])
    os.mkfifo(images / "fifo.jpg")
    regular = os.stat(images / "ok.jpg")

    class StatSeesAFile:  # image_files' view of os: the check before opening saw a regular file
        def __getattr__(self, name):
            return getattr(os, name)

        def stat(self, path, **kwargs):
            return regular

    monkeypatch.setattr(image_files, "os", StatSeesAFile())
    with fails_if_blocked(30), pytest.raises(image_files.ImageSkipped) as skipped:
        image_files.read_image_file(str(images), "fifo.jpg")
    assert skipped.value.reason == "not_a_file" and "a FIFO" in skipped.value.detail


@pytest.mark.parametrize("compress", [None, "gz", "bz2"])
def test_a_byte_order_mark_is_understood(tmp_path, compress):
    bom = b"\xef\xbb\xbf"
    tsv = write_bytes(tmp_path / "y.tsv", [tsv_line(1), tsv_line(2)], prefix=bom, compress=compress)
    csv = write_bytes(
        tmp_path / "c.csv",
        [b"IMG_ID,AUTHOR,LAT,LON", b"3,u,10,20", b"4,u,11,21"],
        prefix=bom,
        compress=compress,
    )
    assert detect_layout(tsv) == "yfcc23" and detect_layout(csv) == "csv"
    summary = run(tmp_path, [tsv, csv], images_for(tmp_path / "images", [1, 2, 3, 4]))
    assert summary["lines_read"] == 4 and summary["examples_written"] == 4
    assert sum(summary["skipped"].values()) == 0
    assert sorted(tables(tmp_path).index) == ["1", "2", "3", "4"]


def test_user_ids_are_hashed_from_their_raw_bytes(tmp_path):
    latin1 = [b"Jos\xe9", b"Jos\xe8", b"Jos\xea"]  # three people; as UTF-8 all three are "Jos\ufffd"
    csv = write_bytes(
        tmp_path / "c.csv",
        [b"IMG_ID,AUTHOR,LAT,LON,path"]
        + [b"%d,%s,10,20,%d.jpg" % (i, user, i) for i, user in enumerate(latin1, start=1)]
        + [
            "4,José,10,20,4.jpg".encode(),
            b"5,user0@N00,10,20,5.jpg",
            b"caf\xe9,u,10,20,6.jpg",  # a photo id that is not UTF-8 cannot be stored: bad_field
            b"7,u,10,20,\xe9.jpg",  # nor an image path
        ],
    )
    tsv = write_bytes(tmp_path / "y.tsv", [tsv_line(10 + i, user=user) for i, user in enumerate(latin1)])
    images = images_for(tmp_path / "images", [1, 2, 3, 4, 5, 7, 10, 11, 12])
    summary = run(tmp_path, [csv, tsv], images)
    assert summary["skipped"]["bad_field"] == 2 and summary["examples_written"] == 8
    users = tables(tmp_path)["user_hash"]
    assert len({users["1"], users["2"], users["3"]}) == 3
    assert [users["10"], users["11"], users["12"]] == [users["1"], users["2"], users["3"]]  # same bytes
    assert users["4"] == HASH_BEFORE["José"] and users["5"] == HASH_BEFORE["user0@N00"]


def truncated(path, lines: list[bytes], compress: str) -> tuple[str, int]:
    """Writes ``lines`` compressed and cut at 80 % of the compressed bytes; returns the path and the
    number of whole lines that can still be decompressed (what the error must report)."""
    data = b"\n".join(lines) + b"\n"
    if compress == "gz":
        packed = gzip.compress(data, mtime=0)
        cut = packed[: len(packed) * 4 // 5]
        readable = zlib.decompressobj(wbits=31).decompress(cut)
    else:  # 100 kB blocks, so that whole blocks come before the cut
        packed = bz2.compress(data, compresslevel=1)
        cut = packed[: len(packed) * 4 // 5]
        readable = bz2.BZ2Decompressor().decompress(cut)
    path = f"{path}.{compress}"
    with open(path, "wb") as f:
        f.write(cut)
    return path, readable.count(b"\n")


@pytest.mark.parametrize("layout,compress", [("tsv", "gz"), ("tsv", "bz2"), ("csv", "gz")])
def test_a_truncated_file_reports_the_last_line_read(tmp_path, layout, compress):
    if layout == "tsv":
        lines = [tsv_line(1000 + i, uploaded=1300000000 + i) for i in range(1500)]
    else:
        lines = [b"IMG_ID,AUTHOR,LAT,LON,posted_at"] + [
            b"%d,user%d,%.6f,%.6f,%d" % (i, i % 7, i / 100, i / 50, 1300000000 + i) for i in range(8000)
        ]
    path, whole_lines = truncated(tmp_path / f"meta.{layout}", lines, compress)
    assert whole_lines > 0
    with pytest.raises(errors.DatasetError, match=rf"^{path}: read error after line {whole_lines} \("):
        run(tmp_path, [path], images_for(tmp_path / "images", []))


def test_geoloc_ingest_on_a_truncated_gz_prints_one_error_line(tmp_path, capsys):
    lines = [tsv_line(1000 + i) for i in range(800)]
    path, whole_lines = truncated(tmp_path / "meta.tsv", lines, "gz")
    images = images_for(tmp_path / "images", [])
    rc = geoloc(["ingest", f"--metadata={path}", f"--images={images}", f"--out={tmp_path / 'out'}"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert rc == 2
    assert len(err) == 1 and err[0].startswith(f"error: {path}: read error after line {whole_lines} (")
    assert "expected an intact plain, .bz2 or .gz file" in err[0]


# --- bounded lines and fields ------------------------------------------------------------------

MIB = 1 << 20


def write_gz_bomb(path, before: bytes, bomb_mib: int, after: bytes) -> str:
    """A .gz of ``before``, one line of ``bomb_mib`` MiB of b"a", then ``after``: gzip members
    concatenated (RFC 1952 2.2), so the test writes a few hundred kB in milliseconds and never holds
    the bomb itself."""
    piece = gzip.compress(b"a" * MIB, mtime=0)
    with open(path, "wb") as f:
        f.write(gzip.compress(before, mtime=0))
        for _ in range(bomb_mib):
            f.write(piece)
        f.write(gzip.compress(b"\n" + after, mtime=0))
    return str(path)


def tar_wrapped(before: bytes, middle: int, after: bytes) -> tuple[bytes, bytes]:
    """``before``/``after`` of a .tar.gz: a tar header of one member holding ``before``, ``middle``
    bytes and ``after``, then the member's padding and the end-of-archive blocks."""
    size = len(before) + middle + len(after)
    info = tarfile.TarInfo("meta.tsv")
    info.size = size
    padding = b"\0" * (-size % tarfile.BLOCKSIZE) + b"\0" * (2 * tarfile.BLOCKSIZE)
    return info.tobuf(format=tarfile.GNU_FORMAT) + before, after + padding


PEAKS = """
import json, resource, sys
from experiments.cli import main
peaks = []
for args in json.loads(sys.argv[1]):
    rc = main(args)
    peaks.append([rc, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss])
print("PEAKS", json.dumps(peaks))
"""


def peak_rss_kib(runs: list[list[str]]) -> list[tuple[int, int]]:
    """(exit status, peak resident memory in KiB so far) after each `geoloc` command of ``runs``,
    run one after the other in one fresh process: a run's peak minus the one before is what it
    needed beyond it."""
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", PEAKS, json.dumps(runs)], env=env, capture_output=True, text=True, timeout=300
    )
    found = [line for line in done.stdout.splitlines() if line.startswith("PEAKS ")]
    assert found, done.stderr[-3000:]
    return [tuple(p) for p in json.loads(found[-1][len("PEAKS ") :])]


@pytest.mark.parametrize("kind", ["csv.gz", "tar.gz"])
def test_a_line_bomb_is_one_skip_and_costs_no_memory(tmp_path, kind):
    """A .gz of 200 kB holding one 200 MB line: counted once as too_long, the rows around it kept,
    and the ingestion's peak memory within 100 MB of the same rows without the bomb (reading the
    line whole took at least its 200 MB, once as bytes and again as text or split fields)."""
    bomb_mib = 200
    if kind == "csv.gz":
        rows_before = b"IMG_ID,AUTHOR,LAT,LON\n1,u,10,20\n2,u,11,21\n"
        rows_after = b"3,u,12,22\n4,u,13,23\n"
        images = images_for(tmp_path / "images", [1, 2, 3, 4])
        kept = ["1", "2", "3", "4"]
    else:  # a .tar.gz of a YFCC100M file is read as the .gz it is: its tar header joins line 1
        rows_before = b"\n".join([tsv_line(1), tsv_line(2)]) + b"\n"
        rows_after = b"\n".join([tsv_line(3), tsv_line(4)]) + b"\n"
        images = images_for(tmp_path / "images", [1, 2, 3, 4])
        kept = ["2", "3", "4"]  # 1 carries the tar header in its photo id: bad_field
    plain = tmp_path / f"plain.{kind}"
    bomb = tmp_path / f"bomb.{kind}"
    if kind == "tar.gz":
        plain_data = b"".join(tar_wrapped(rows_before, 0, rows_after))
        before, after = tar_wrapped(rows_before, bomb_mib * MIB + 1, rows_after)
    else:
        plain_data = rows_before + rows_after
        before, after = rows_before, rows_after
    with open(plain, "wb") as f:
        f.write(gzip.compress(plain_data, mtime=0))
    write_gz_bomb(bomb, before, bomb_mib, after)
    assert os.path.getsize(bomb) < 400_000

    def ingest_args(metadata, out):
        return ["ingest", f"--metadata={metadata}", f"--images={images}", f"--out={out}", "--workers=1"]

    (rc_plain, plain_kib), (rc_bomb, bomb_kib) = peak_rss_kib(
        [ingest_args(plain, tmp_path / "out_plain"), ingest_args(bomb, tmp_path / "out")]
    )
    assert rc_plain == 0 and rc_bomb == 0
    with open(tmp_path / "out" / "summary.json") as f:
        summary = json.load(f)
    assert summary["skipped"]["too_long"] == 1
    (example,) = summary["skipped_examples"]["too_long"]
    line = rows_before.count(b"\n") + 1
    assert example.startswith(f"{bomb}:{line}: too_long (a line of {bomb_mib * MIB + 1} bytes;")
    assert sorted(tables(tmp_path).index) == kept
    assert summary["lines_read"] == summary["examples_written"] + sum(summary["skipped"].values())
    assert (bomb_kib - plain_kib) * 1024 < 100 * MIB, (plain_kib, bomb_kib)


def test_format_detection_reads_a_bounded_prefix(tmp_path):
    """A first line of 64 MB: detection stops after max_line_bytes with one clear error, having held
    no more than about that limit (tracemalloc sees every bytes object the readers make)."""
    bomb = write_gz_bomb(tmp_path / "y.tsv.gz", b"", 64, tsv_line(1) + b"\n")
    tracemalloc.start()
    try:
        with pytest.raises(
            errors.LayoutError, match=r":1: cannot detect the format from a line of 67108865 bytes"
        ):
            detect_layout(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MIB


def test_a_field_or_record_over_the_limits_is_one_skip(tmp_path):
    """A CSV field over max_field_bytes, and a quote left open (a record running on over lines):
    each one too_long skip; the rows after them are read as before."""
    csv = write_bytes(
        tmp_path / "c.csv",
        [
            b"IMG_ID,AUTHOR,LAT,LON",
            b"1,u,10,20",
            b"2,u,10,20," + b"x" * 3000,  # a field of 3000 bytes (limit 2048): too_long
            # A record running on over lines, each field within 2048 bytes: too_long at the line
            # that takes it past 4096 bytes (8 + 5 * 1005, line 9)
            b'3,"open',
            *[b"y" * 900 + b'","' + b"y" * 100 for _ in range(5)],
            b"4,u,11,21",  # read afresh
        ],
    )
    config = IngestConfig(
        metadata=(csv,),
        images=images_for(tmp_path / "images", [1, 4]),
        max_image_side=32,
        workers=1,
        salt=SALT,
        max_line_bytes=4096,
        max_field_bytes=2048,
    )
    summary = ingest.run_ingestion(config, str(tmp_path / "out"))
    assert sorted(tables(tmp_path).index) == ["1", "4"]
    assert summary["skipped"]["too_long"] == 2
    first, second = summary["skipped_examples"]["too_long"]
    assert (
        first == f"{csv}:3: too_long (a field of more than 2048 bytes; expected at most max_field_bytes=2048)"
    )
    assert second.startswith(f"{csv}:9: too_long (a record of more than 4096 bytes over several lines")
    assert summary["lines_read"] == summary["examples_written"] + sum(summary["skipped"].values())


def wide_header(kind: str) -> bytes:
    if kind == "long_field":  # one name of 200 kB, past csv's own 131,072
        return b"IMG_ID,AUTHOR,LAT,LON," + b"n" * 200_000
    count = 10**6 if kind == "million_columns" else 20_000
    return b"IMG_ID,AUTHOR,LAT,LON," + b",".join(b"c%d" % i for i in range(count))


@pytest.mark.parametrize(
    "kind,fmt",
    [
        ("long_field", "auto"),
        ("long_field", "csv"),
        ("million_columns", "auto"),
        ("million_columns", "csv"),
        ("20k_columns", "auto"),
    ],
)
def test_a_hostile_csv_header_is_one_short_error_line(tmp_path, capsys, kind, fmt):
    path = write_bytes(tmp_path / "c.csv", [wide_header(kind), b"1,u,10,20"])
    images = images_for(tmp_path / "images", [])
    rc = geoloc(
        ["ingest", f"--metadata={path}", f"--images={images}", f"--out={tmp_path / 'out'}", f"--format={fmt}"]
    )
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert rc == 2 and "Traceback" not in err
    assert len(lines) == 1 and len(lines[0]) - len(path) < 350, lines  # the header itself: not echoed
    assert lines[0].startswith(f"error: {path}:1: ")
    expected = {
        # Detection's CSV check says it (format=auto), or the reader's (csv, or auto when the
        # process's csv.field_size_limit let detection read the header).
        "long_field": r"field larger than field limit \(131072\)|a field of more than 131072 bytes",
        "million_columns": f"a line of {len(wide_header(kind)) + 1} bytes",
        "20k_columns": "CSV header of 20004 columns",
    }[kind]
    assert re.search(expected, lines[0]), lines[0]


def descendants(pid: int) -> dict[int, str]:
    """{process id: command line} of the processes whose parent is ``pid``, and theirs, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            try:
                with open(f"/proc/{child}/cmdline", "rb") as f:
                    found[child] = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped by init, is not alive)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_killing_the_ingestion_ends_its_workers_and_resource_tracker(tmp_path):
    """kill -9 of `geoloc ingest --workers=2` while its workers write shards: within a few seconds
    neither worker nor multiprocessing's resource tracker is left (child_processes.die_with_parent)."""
    images = images_for(tmp_path / "images", ["a"])
    rows = [b"IMG_ID,AUTHOR,LAT,LON,path"] + [b"%d,u%d,%d,20,a.jpg" % (i, i, i % 80) for i in range(1, 20001)]
    csv = write_bytes(tmp_path / "c.csv", rows)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "experiments.cli", "ingest", f"--metadata={csv}", f"--images={images}"]
    command += [f"--out={out}", "--workers=2", "--examples_per_shard=16", "--max_image_side=32"]
    run = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, children = time.monotonic() + 120, {}
        status_dir = out / "_work" / "shards"
        while time.monotonic() < deadline and run.poll() is None:
            children = descendants(run.pid)
            workers = [p for p, c in children.items() if "spawn_main" in c]
            if len(workers) == 2 and status_dir.is_dir() and len(os.listdir(status_dir)) >= 4:
                break  # both workers started and shards being written: mid-run
            time.sleep(0.2)
        assert run.poll() is None, "the ingestion ended before it could be killed mid-run; make it larger"
        assert sum("spawn_main" in c for c in children.values()) == 2, children
        assert any("resource_tracker" in c for c in children.values()), children
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(alive(p) for p in children):
            time.sleep(0.1)
        left = {p: c for p, c in children.items() if alive(p)}
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        for pid in descendants(run.pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    for pid in left:  # the test's own mess is cleaned up; the failure says what was left
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    assert not left, left


def test_a_huge_pax_header_in_a_webdataset_shard_is_not_read(tmp_path):
    """tarfile reads pax records whole: a 2 MB one (limit 1 MiB) is found from the 512-byte header
    and refused before tarfile reads it, with one line."""
    shard = tmp_path / "00000.tar"
    with tarfile.open(shard, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("1.json")
        document = b'{"lat": 10, "lon": 20}'
        info.size = len(document)
        info.pax_headers = {"comment": "x" * (2 * MIB)}
        tar.addfile(info, io.BytesIO(document))
    tracemalloc.start()
    try:
        with pytest.raises(
            errors.LayoutError, match=r"extended tar headers .* expected at most max_line_bytes=1048576"
        ):
            list(
                read_metadata_file(
                    str(shard), template=None, user_hasher=str, skips=SkipLog(), fmt="webdataset"
                )
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MIB
