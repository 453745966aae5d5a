"""Do M1's LiteRT and ONNX files compute what its SavedModel computes? Measured on photos.

Two comparisons per file, on the same photos (the run's validation photos):

- **same pixels** (the check): the file in its runtime and the SavedModel's ``serve_pixels``
  endpoint on the same uint8 pixels (``preprocessing.eval_pixels_batch``). Only the conversion
  differs, so they must agree to float32 rounding: the k sorted probabilities of each photo within
  ``TOLERANCE`` (1e-4) of the SavedModel's, and the same top-1 cell unless the SavedModel's best
  two cells are within 2 x ``TOLERANCE`` of each other (a near-tie, which rounding may reorder).
  A file beyond that fails the check (``ExportError``, one line).
- **end to end** (reported): the file on those pixels against the SavedModel's ``serve`` on the
  JPEG bytes, which resizes in float32 without rounding to uint8 levels. That rounding (at most half
  a level per pixel) is the price of a portable input, not an error of the conversion: the
  figures say how much it moves the answers, and are not checked.

Sorted probabilities are compared (the k largest of each side, position by position), so a
near-tie that swaps two cells does not count as a difference of their probabilities.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from geoloc_tf import errors

#: Largest difference allowed between a file's probabilities and the SavedModel's on the same
#: pixels (float32 kernels of different runtimes differ by about 1e-6).
TOLERANCE = 1e-4
#: Photos a batch of the comparison holds.
BATCH = 32
#: Photos the export stage compares on (a few seconds for the demo's M1).
PHOTOS = 256


def compare(
    reference_ids: np.ndarray, reference_probs: np.ndarray, ids: np.ndarray, probs: np.ndarray
) -> dict:
    """Figures of one comparison: ``max_abs_diff`` of the sorted top-k probabilities,
    ``top1_agreement`` (share of photos with the same top-1 cell), ``top1_differs_not_near_tie``
    (photos whose top-1 differs although the reference's best two cells are more than
    2 x TOLERANCE apart) and ``photos``."""
    k = min(reference_probs.shape[1], probs.shape[1])
    diff = np.abs(np.sort(reference_probs, axis=1)[:, ::-1][:, :k] - np.sort(probs, axis=1)[:, ::-1][:, :k])
    same_top1 = reference_ids[:, 0] == ids[:, 0]
    gap = reference_probs[:, 0] - reference_probs[:, 1] if reference_probs.shape[1] > 1 else np.ones(len(ids))
    return {
        "photos": int(len(ids)),
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "top1_agreement": float(same_top1.mean()) if len(ids) else 1.0,
        "top1_differs_not_near_tie": int(np.sum(~same_top1 & (gap > 2 * TOLERANCE))),
    }


def passes(figures: dict) -> bool:
    """Whether a same-pixels comparison is within the tolerance (module doc)."""
    return figures["max_abs_diff"] <= TOLERANCE and figures["top1_differs_not_near_tie"] == 0


def check(
    saved_model_dir: str | os.PathLike, files: dict[str, Path], images: list[bytes], source: str
) -> dict:
    """Compares each file (``{format: path}``) with the SavedModel on ``images`` (encoded photos;
    ``source`` says where they come from) and returns the report: the tolerance, and per format
    the ``same_pixels`` and ``end_to_end`` figures (``compare``) and ``passed``. Raises nothing on
    a mismatch: ``raise_on_mismatch`` does, after the caller has written the report."""
    import tensorflow as tf

    from geoloc_tf import preprocessing
    from geoloc_tf.m1 import portable

    loaded = tf.saved_model.load(str(saved_model_dir))
    runtimes = {name: portable.load(path) for name, path in files.items()}
    sides = {runtime.image_size for runtime in runtimes.values()}
    if len(sides) != 1:
        raise errors.ExportError(f"{sorted(files.values())}: input sides {sorted(sides)}; expected one M1's")
    side = sides.pop()
    outputs: dict[str, list] = {"jpeg": [], "pixels": [], **{name: [] for name in files}}
    for start in range(0, len(images), BATCH):
        batch = tf.constant(images[start : start + BATCH], tf.string)
        pixels = preprocessing.eval_pixels_batch(batch, side)
        for key, out in (("jpeg", loaded.serve(batch)), ("pixels", loaded.serve_pixels(pixels))):
            outputs[key].append((out["cell_ids"].numpy(), out["probabilities"].numpy()))
        for name, runtime in runtimes.items():
            outputs[name].append(runtime(pixels.numpy()))
    joined = {key: tuple(np.concatenate(part) for part in zip(*parts)) for key, parts in outputs.items()}
    report: dict = {"tolerance": TOLERANCE, "photos": len(images), "source": source, "formats": {}}
    for name, path in files.items():
        same = compare(*joined["pixels"], *joined[name])
        report["formats"][name] = {
            "file": path.name,
            "bytes": path.stat().st_size,
            "same_pixels": same,
            "end_to_end": compare(*joined["jpeg"], *joined[name]),
            "passed": passes(same),
        }
    return report


def raise_on_mismatch(report: dict, where: str) -> None:
    """One line naming the first file beyond the tolerance, if any (``where``: the report file)."""
    for figures in report["formats"].values():
        if not figures["passed"]:
            same = figures["same_pixels"]
            raise errors.ExportError(
                f"{figures['file']}: outputs differ from the SavedModel's serve_pixels on "
                f"{same['photos']} photos: max |probability difference| {same['max_abs_diff']:.3g} "
                f"(tolerance {TOLERANCE:g}), top-1 differs on {same['top1_differs_not_near_tie']} "
                f"photo(s) outside near-ties; expected the same function ({where})"
            )


def validation_photos(data_dir: str | os.PathLike, count: int) -> list[bytes]:
    """The first ``count`` encoded photos of the data set's validation split (``m23_val``)."""
    import tensorflow as tf

    from data_pipelines import parsing
    from data_pipelines.dataset import load
    from data_pipelines.splits import M23_VAL

    records = tf.data.TFRecordDataset(load(str(data_dir)).shard_paths(M23_VAL)).take(count)
    return [
        bytes(b) for b in records.map(lambda r: parsing.parse(r, ("image",))["image"]).as_numpy_iterator()
    ]


def noise_photos(count: int, seed: int = 0, height: int = 120, width: int = 160) -> list[bytes]:
    """``count`` JPEGs of uniform noise, for a run whose data set was deleted (any pixels test a
    conversion)."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    return [
        tf.io.encode_jpeg(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), quality=90).numpy()
        for _ in range(count)
    ]
