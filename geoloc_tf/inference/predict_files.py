"""Photo files answered by a trained model, streamed in an output format (`geoloc predict`, whose
command line is ``experiments.commands.predict``; settings: ``config.PredictFilesConfig``).

For each photo: the top-k mesh cells with probability and label point (imagery centroid, §3.1.2),
and the smallest sets of cells holding 50 % and 90 % of the probability with their area in km2.
With a posting time and a run that has M2, M2 answers (§3.2: M1's top-10 cells + posting time);
the output names the model. With a feature index and --cell_retrieval_cells, each photo also gets
the point of retrieval inside the top cells (``photo_predictor.Predictor.with_retrieval``); how many
photos fell back to the top cell's label point is said at the end. Directories are searched recursively for .jpg/.jpeg/.png/.gif/.bmp
files, predicted in batches while the next files are read. A file that is not a readable image gets
one error line naming it, and so does what a directory holds that may hide a photo but cannot be
read (an unreadable folder, a broken or looping link, a FIFO, socket or device): each is counted as
failed, the others are still predicted. Names are escaped (``formats.escaped``) in the table, the
CSV and the error lines, so a name never forges a row or a line.
"""

from __future__ import annotations

import collections
import errno
import itertools
import logging
import os
import stat
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Iterable, Iterator, Sequence

import numpy as np

from data_pipelines.config import DecodeBudget
from geoloc_tf import errors
from geoloc_tf.inference.config import PredictFilesConfig
from geoloc_tf.inference.formats import StreamWriter, escaped
from geoloc_tf.inference.photo_predictor import predict_each
from mesh.progress import Progress

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp"})
READ_THREADS = 2


def collect_image_paths(paths: Sequence[str]) -> tuple[list[Path], list[str], int]:
    """(files to predict, error lines for paths that cannot be predicted, entries skipped in
    directories).

    A named file is always tried; in a directory (recursive, sorted, symbolic links followed once
    per folder), only regular files with an image suffix are, and hidden files and folders are
    left out (counted as skipped). No photo is lost without a word: a folder that cannot be read,
    a broken or looping symbolic link and a FIFO, socket or device met in a directory are each one
    error line (the caller counts them as failed), since any of them may hide a photo the user
    meant. Names in the lines are ``formats.escaped``."""
    files: list[Path] = []
    failed: list[str] = []
    skipped = 0
    walked: set[tuple[int, int]] = set()  # (device, inode) of the folders walked: no link loop

    def walk(folder: Path) -> None:
        nonlocal skipped
        try:
            info = folder.stat()
            if (info.st_dev, info.st_ino) in walked:
                return  # a symbolic link back to a folder already walked: its photos are listed
            walked.add((info.st_dev, info.st_ino))
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as error:
            failed.append(f"{escaped(str(folder))}: cannot read this folder ({error.strerror or error})")
            return
        for entry in entries:
            path = Path(entry.path)
            if entry.name.startswith("."):
                skipped += 1
                continue
            kind = _kind(path)
            if kind == "folder":
                walk(path)
            elif kind != "file":
                failed.append(f"{escaped(str(path))}: {kind}; not a photo file")
            elif path.suffix.lower() in IMAGE_SUFFIXES:
                files.append(path)
            else:
                skipped += 1

    for name in paths:
        path = Path(name)
        kind = _kind(path)
        if kind == "folder":
            walk(path)
        elif kind == "file":
            files.append(path)
        elif kind == "missing":
            failed.append(f"{escaped(str(path))}: no such file or directory")
        else:
            failed.append(f"{escaped(str(path))}: {kind}; not a photo file")
    return files, failed, skipped


def _kind(path: Path) -> str:
    """ "file", "folder" (symbolic links followed), "missing", or what else ``path`` is."""
    try:
        mode = path.stat().st_mode
    except OSError as error:
        if not path.is_symlink():
            return "missing" if error.errno == errno.ENOENT else f"cannot be read ({error.strerror or error})"
        if error.errno == errno.ELOOP:
            return "a symbolic link that loops"
        return f"a broken symbolic link ({error.strerror or error})"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def read_ahead(
    files: Iterable[Path], window: int, budget: DecodeBudget, side: int
) -> Iterator[tuple[Path, np.ndarray | None, str]]:
    """(path, decoded pixels or None, error) in order, reading and decoding (once, for a model
    with ``side`` px input: ``m1_model.read_photo``) up to ``window`` files ahead on background
    threads while the caller runs the model."""
    from geoloc_tf.inference.m1_model import read_photo

    def read(path: Path) -> tuple[np.ndarray | None, str]:
        try:
            return read_photo(path, budget, side), ""
        except errors.InferenceError as error:
            return None, str(error)

    remaining = iter(files)
    with ThreadPoolExecutor(READ_THREADS) as pool:
        pending = collections.deque((p, pool.submit(read, p)) for p in itertools.islice(remaining, window))
        while pending:
            path, future = pending.popleft()
            following = next(remaining, None)
            if following is not None:
                pending.append((following, pool.submit(read, following)))
            yield (path, *future.result())


def map_paths(base: Path, files: list[Path]) -> list[Path]:
    """``base`` for one photo; ``<base stem>-<photo stem>.png`` (made unique) for several."""
    if len(files) == 1:
        return [base]
    used: dict[str, int] = {}
    out = []
    for path in files:
        name = f"{base.stem}-{path.stem}"
        used[name] = used.get(name, 0) + 1
        suffix = "" if used[name] == 1 else f"-{used[name]}"
        out.append(base.with_name(f"{name}{suffix}{base.suffix or '.png'}"))
    return out


def predict_files(
    predictor,
    files: list[Path],
    out: IO[str],
    config: PredictFilesConfig,
    posted_at: int | None = None,
    outdoor: float | None = None,
    map_path: Path | None = None,
    progress: Progress | None = None,
    err: IO[str] | None = None,
) -> tuple[int, int]:
    """Predicts ``files`` in batches of ``config.batch_size``, streaming ``config.format`` to
    ``out``; returns (predicted, failed). Unreadable files get one line each on ``err``
    (sys.stderr at call time by default), and so does a photo the model cannot answer: a batch
    that fails is answered again one photo at a time, so one bad photo never costs the others
    their answers."""
    err = sys.stderr if err is None else err
    top_k, batch_size = config.top_k, config.batch_size
    retrieval = getattr(predictor, "retriever", None) is not None
    writer = StreamWriter(config.format, retrieval=retrieval)
    fallbacks = 0
    out.write(writer.header())
    maps = dict(zip(files, map_paths(map_path, files))) if map_path else {}
    polygons = None
    done = failed = 0
    batch: list[tuple[Path, np.ndarray]] = []

    def answer(photos: list[tuple[Path, np.ndarray]]):
        n = len(photos)
        return predictor.predict(
            [data for _, data in photos], posted_at=[posted_at] * n, outdoor=[outdoor] * n, top_k=top_k
        )

    def fail(message: str) -> None:
        nonlocal failed
        failed += 1
        err.write(f"error: {escaped(message)}\n")  # a file's name never forges a line
        err.flush()

    def flush() -> None:
        nonlocal done, polygons, fallbacks
        if not batch:
            return
        outcomes, _ = predict_each(answer, batch)
        for (path, _), outcome in zip(batch, outcomes):
            if isinstance(outcome, Exception):
                log.debug("prediction of %s failed", path, exc_info=outcome)
                fail(f"{path}: the model could not answer this photo ({errors.first_line(outcome)})")
                continue
            predictions, row = outcome
            record = predictions.record(row, str(path))
            fallbacks += bool(retrieval and record["retrieval"]["fallback"])
            out.write(writer.record(record))
            if maps:
                polygons = _draw_map(predictor, predictions, row, record, maps[path], polygons)
            done += 1
        out.flush()
        batch.clear()

    def tick() -> None:  # photos answered or failed so far, to the progress
        if progress is not None:
            progress.update(done + failed - progress.done, note=f"{failed} failed" if failed else None)

    budget = config.decode.within(config.max_pixels)
    for path, data, error in read_ahead(files, 2 * batch_size, budget, predictor.m1.image_size):
        if data is None:
            fail(error)
        else:
            batch.append((path, data))
            if len(batch) == batch_size:
                flush()
        tick()
    flush()
    out.write(writer.footer())
    tick()
    if fallbacks:  # counted, never silent: these photos' retrieval point is M1's own
        err.write(
            f"note: {fallbacks} of {done} photos had no indexed photo of their top cells among "
            "the nearest and got the top cell's label point as retrieval point (fallback: true; "
            "raise --cell_retrieval_neighbours or --cell_retrieval_cells)\n"
        )
    return done, failed


def _draw_map(predictor, answer, row: int, record: dict, path: Path, polygons):
    from geoloc_tf.inference.map_plot import plot_probability_map
    from mesh.plot import cell_polygons

    mesh = predictor.m1.mesh
    polygons = polygons or cell_polygons(mesh)
    sets = record["mass_sets"]
    summary = ", ".join(
        f"{100 * s['level']:.0f} %: {s['num_cells']} cells, {s['area_km2']:,.0f} km2"
        for s in sets
        if s["num_cells"] is not None
    )
    plot_probability_map(
        mesh,
        answer.mass.cell_probabilities(row, mesh.num_cells),
        record["lat"],
        record["lon"],
        path,
        title=f"{Path(record['file']).name} (model {record['model']}): top cell "
        f"{record['top_k'][0]['probability']:.1%}; {summary}",
        mass50_cells=answer.mass.cells(row, 0),
        polygons=polygons,
    )
    return polygons
