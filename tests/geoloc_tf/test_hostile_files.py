"""Files geoloc wrote and reads back, damaged after writing, and folders that hide photos.

Every damaged file is opened by the real command (`geoloc search`, `serve --index`, `predict`):
exactly one ``error:`` line naming the file, no traceback, exit status 2. `geoloc predict` on a
folder with an unreadable subfolder, a FIFO, looping and broken links and a name holding a newline
counts each as failed with its own line, answers the good photos and prints one row per photo.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.cli import main as geoloc
from geoloc_tf.errors import RetrievalError
from geoloc_tf.retrieval.feature_index import FEATURES_FILE, META_FILE, PHOTOS_FILE, FeatureIndex
from mesh.integrity import WrittenFileError, check_written, file_entry
from tests.geoloc_tf.conftest import build_tiny_run, jpeg

FEATURES = np.arange(12, dtype=np.float32).reshape(3, 4)


def one_error(capsys, name: str) -> str:
    """The single ``error:`` line of the command just run; it names ``name``; no traceback."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert name in lines[0] and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def index(tmp_path) -> Path:
    path = tmp_path / "index"
    FeatureIndex.write(path, FEATURES, ["a", "b", "c"], [0.0, 10.0, 20.0], [0.0, 5.0, 9.0])
    return path


def search(path: Path, tmp_path: Path) -> int:
    query = tmp_path / "q.jpg"
    query.write_bytes(jpeg(32, 32, 0))
    return geoloc(["search", str(query), f"--index={path}", f"--model={tmp_path}"])


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def forget_checksums(index: Path) -> None:
    """index.json as an index written before checksums were recorded."""
    meta = json.loads((index / META_FILE).read_text())
    del meta["files"]
    (index / META_FILE).write_text(json.dumps(meta))


def test_an_index_records_and_checks_each_files_checksum(index):
    meta = json.loads((index / META_FILE).read_text())
    assert meta["files"][FEATURES_FILE] == file_entry(index / FEATURES_FILE)
    assert meta["files"][FEATURES_FILE]["bytes"] == 128 + 12 * 4  # .npy header + 3 x 4 float32
    np.testing.assert_array_equal(FeatureIndex.open(index).features, FEATURES)
    with pytest.raises(WrittenFileError, match="sha256"):
        check_written(index / FEATURES_FILE, meta["files"][PHOTOS_FILE] | {"bytes": 176}, "rebuild")


def swap_features(index: Path, array: np.ndarray) -> None:
    np.save(index / FEATURES_FILE, array)


DAMAGES = {
    "truncated features.npy": (lambda i: truncate(i / FEATURES_FILE), FEATURES_FILE, "truncated"),
    "features.npy of another dtype": (
        lambda i: swap_features(i, FEATURES.astype(np.float64)),
        FEATURES_FILE,
        "bytes",
    ),
    "features.npy of another shape, same size": (
        lambda i: swap_features(i, FEATURES.reshape(4, 3)),
        FEATURES_FILE,
        "sha256",
    ),
    "truncated photos.parquet": (lambda i: truncate(i / PHOTOS_FILE), PHOTOS_FILE, "truncated"),
    "photos.parquet of 2 rows": (
        lambda i: pd.read_parquet(i / PHOTOS_FILE).head(2).to_parquet(i / PHOTOS_FILE),
        PHOTOS_FILE,
        "manifest",
    ),
    "index.json not JSON": (lambda i: (i / META_FILE).write_text("{ not json"), META_FILE, "JSON"),
    "index.json without count": (
        lambda i: (i / META_FILE).write_text('{"format_version": 1, "dim": 4}'),
        META_FILE,
        "count None",
    ),
    "index.json a list": (lambda i: (i / META_FILE).write_text("[1, 2]"), META_FILE, "list"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_index_is_one_error_line_from_search(damage, index, tmp_path, capsys):
    spoil, name, words = DAMAGES[damage]
    spoil(index)
    assert search(index, tmp_path) == 2
    line = one_error(capsys, str(index / name))
    assert words in line and "geoloc index" in line


LEGACY = {  # written before checksums: the file's own checks still name it
    "features.npy of another shape": (
        lambda i: swap_features(i, FEATURES.reshape(4, 3)),
        FEATURES_FILE,
        "[4, 3] float32; expected [3, 4]",
    ),
    "truncated features.npy": (lambda i: truncate(i / FEATURES_FILE, 0.9), FEATURES_FILE, "not a readable"),
    "photos.parquet of 2 rows": (
        lambda i: pd.read_parquet(i / PHOTOS_FILE).head(2).to_parquet(i / PHOTOS_FILE),
        PHOTOS_FILE,
        "2 rows",
    ),
    "truncated photos.parquet": (lambda i: truncate(i / PHOTOS_FILE), PHOTOS_FILE, "not a readable"),
}


@pytest.mark.parametrize("damage", LEGACY)
def test_an_index_without_checksums_is_still_checked(damage, index, tmp_path, capsys, caplog):
    forget_checksums(index)
    with caplog.at_level(logging.WARNING, "mesh.integrity"):
        assert len(FeatureIndex.open(index)) == 3  # accepted, with a warning per file
    assert "without a checksum" in caplog.text
    spoil, name, words = LEGACY[damage]
    spoil(index)
    assert search(index, tmp_path) == 2
    assert words in one_error(capsys, str(index / name))


def test_nan_features_are_refused_by_search_serve_and_predict(tmp_path, capsys, run, photo):
    path = tmp_path / "nan"
    features = FEATURES.copy()
    features[1, 2] = np.nan
    with pytest.raises(RetrievalError, match="1 of 3 rows hold NaN"):
        FeatureIndex.write(path, features, ["a", "b", "c"], [0.0, 1.0, 2.0], [0.0, 1.0, 2.0])
    assert search(path, tmp_path) == 2
    assert "row 1, photo 'b'" in one_error(capsys, str(path / FEATURES_FILE))
    assert geoloc(["serve", f"--model={tmp_path}", f"--index={path}"]) == 2
    one_error(capsys, str(path / FEATURES_FILE))
    given = [str(photo), f"--model={run}", f"--index={path}", "--cell_retrieval_cells=1"]
    assert geoloc(["predict", *given]) == 2
    one_error(capsys, str(path / FEATURES_FILE))


def test_serve_and_predict_refuse_a_truncated_index(index, tmp_path, capsys, run, photo):
    truncate(index / FEATURES_FILE)
    assert geoloc(["serve", f"--model={tmp_path}", f"--index={index}"]) == 2
    one_error(capsys, str(index / FEATURES_FILE))
    given = [str(photo), f"--model={run}", f"--index={index}", "--cell_retrieval_cells=1"]
    assert geoloc(["predict", *given]) == 2
    one_error(capsys, str(index / FEATURES_FILE))


def test_a_damaged_ann_file_is_one_error_line(tmp_path, capsys):
    from geoloc_tf.retrieval import ann
    from geoloc_tf.retrieval.config import AnnConfig

    if not ann.faiss_available():
        pytest.skip("faiss not installed")
    index, n = tmp_path / "index", 300  # PQ's 8-bit codes train on 256 photos at least
    features = np.random.default_rng(0).normal(size=(n, 8))
    FeatureIndex.write(index, features, np.arange(n), np.zeros(n), np.zeros(n))
    config = AnnConfig(ann_lists=1, ann_train_photos=n)
    FeatureIndex.open(index).ann_index(config)
    faiss_file = index / ann.ANN_DIR / ann.ANN_FILE
    truncate(faiss_file)
    with pytest.raises(WrittenFileError, match=re.escape(str(faiss_file)) + ": .*truncated"):
        FeatureIndex.open(index).ann_index(config)


# ------------------------------------------------------------------ run files: mesh, m1.keras
@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return build_tiny_run(tmp_path_factory.mktemp("tiny_run"), export=False)


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("photo") / "one.jpg"
    path.write_bytes(jpeg(40, 40, 1))
    return path


@pytest.mark.parametrize("name", ["mesh/mesh.npz", "m1/m1.keras"])
@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_a_truncated_run_file_is_one_error_line_from_predict(name, keep, run, photo, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    truncate(copy / name, keep)
    assert geoloc(["predict", str(photo), f"--model={copy}"]) == 2
    assert "truncated or damaged" in one_error(capsys, str(copy / name))


def test_a_flipped_byte_in_the_mesh_is_caught_by_its_crc(run, photo, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    data = bytearray((copy / "mesh/mesh.npz").read_bytes())
    data[len(data) // 3] ^= 0xFF
    (copy / "mesh/mesh.npz").write_bytes(bytes(data))
    assert geoloc(["predict", str(photo), f"--model={copy}"]) == 2
    assert "CRC" in one_error(capsys, str(copy / "mesh/mesh.npz"))


# ------------------------------------------------------------------ predict never loses a photo
NEWLINE_NAME = "new\nline\x1b[2J\u202e.jpg"


@pytest.fixture
def hostile_folder(tmp_path) -> Path:
    """good.jpg, a photo whose name holds a newline, ESC and a bidi override, a FIFO, a link to
    itself, a broken link, and a link back to the folder itself (walked once)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "good.jpg").write_bytes(jpeg(40, 40, 2))
    (folder / NEWLINE_NAME).write_bytes(jpeg(40, 40, 3))
    os.mkfifo(folder / "pipe.jpg")
    os.symlink("loop.jpg", folder / "loop.jpg")
    os.symlink("nowhere.jpg", folder / "broken.jpg")
    os.symlink(".", folder / "again")
    return folder


def predict_folder(run: Path, folder: Path, fmt: str, capsys) -> tuple[int, str, list[str]]:
    code = geoloc(["predict", str(folder), f"--model={run}", f"--format={fmt}", "--progress=off"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, [line for line in captured.err.splitlines() if line.startswith("error:")]


def test_predict_counts_what_a_folder_hides_and_never_forges_a_row(run, hostile_folder, capsys):
    code, out, errors = predict_folder(run, hostile_folder, "table", capsys)
    assert code == 1  # some failed
    assert sorted(line.split(": ", 2)[2] for line in errors) == [
        "a FIFO; not a photo file",
        "a broken symbolic link (No such file or directory); not a photo file",
        "a symbolic link that loops; not a photo file",
    ]
    assert {Path(line.split(": ")[1]).name for line in errors} == {"pipe.jpg", "loop.jpg", "broken.jpg"}
    # One header line per photo, every other line indented under it: no forged row.
    heads = [line for line in out.splitlines() if line and not line.startswith("  ")]
    assert len(heads) == 2 and all("(model m1)" in line for line in heads)
    assert any(r"new\nline\x1b[2J\u202e.jpg" in line for line in heads)
    assert "\x1b" not in out and "\u202e" not in out

    code, out, errors = predict_folder(run, hostile_folder, "csv", capsys)
    assert code == 1 and len(errors) == 3
    assert len(out.splitlines()) == 3  # the header and one line per photo
    names = [Path(row["file"]).name for row in csv.DictReader(io.StringIO(out))]
    assert names == ["good.jpg", r"new\nline\x1b[2J" + "\u202e.jpg"]  # CSV keeps the bidi character

    code, out, errors = predict_folder(run, hostile_folder, "geojson", capsys)
    assert "\x1b" not in out and "\n" not in out.split('"file": ')[-1].split(",")[0]
    names = [Path(f["properties"]["file"]).name for f in json.loads(out)["features"]]
    assert sorted(names) == sorted(["good.jpg", NEWLINE_NAME])  # JSON escapes, and keeps the name


def test_an_unreadable_subfolder_is_one_failed_line(run, hostile_folder, capsys, monkeypatch):
    """As root chmod 000 reads anyway: the refusal is made by ``os.scandir`` here instead."""
    locked = hostile_folder / "locked"
    locked.mkdir()
    (locked / "hidden.jpg").write_bytes(jpeg(40, 40, 4))
    scandir = os.scandir

    def refuse(path):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)
    code = geoloc(["predict", str(hostile_folder), f"--model={run}", "--format=json", "--progress=off"])
    captured = capsys.readouterr()
    assert code == 1
    assert f"error: {locked}: cannot read this folder (Permission denied)" in captured.err.splitlines()
    assert "2 photos predicted, 4 failed" in captured.err  # FIFO, loop, broken link, folder
    assert len(json.loads(captured.out)) == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a folder of mode 000")
def test_a_folder_of_mode_000_is_one_failed_line(run, hostile_folder, capsys):
    locked = hostile_folder / "locked"
    locked.mkdir()
    (locked / "hidden.jpg").write_bytes(jpeg(40, 40, 4))
    locked.chmod(0)
    try:
        code = geoloc(["predict", str(hostile_folder), f"--model={run}", "--format=json"])
    finally:
        locked.chmod(0o755)
    captured = capsys.readouterr()
    assert code == 1 and f"error: {locked}: cannot read this folder" in captured.err
    assert "2 photos predicted, 4 failed" in captured.err
