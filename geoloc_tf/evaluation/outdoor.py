"""Outdoor-only evaluation (§4.1.2, Table 4): keep photos whose outdoor probability >= a threshold.

§4.1.2: "A Places365 model was used in conjunction with indoor-outdoor label delineations to filter
geolocation inference only on outdoor imagery" -- the geolocation model is not retrained, the
photos are only filtered. The probability comes either from the prediction tables' ``outdoor_prob``
column (-1 = unknown; for GeoEstimation-style metadata, ``1 - Prob_indoor``), or from a scene
classifier given here: a Keras ``.keras`` file or a SavedModel directory, plus the indoor/outdoor
mapping of its classes in the format of Places365's ``IO_places365.txt`` (one line per class, in
class order: ``/a/airfield 2``, with 1 = indoor, 2 = outdoor). A photo's outdoor probability is the
total softmax mass on the outdoor classes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from geoloc_tf.errors import EvaluationError
from geoloc_tf.run_configs import EvaluateConfig

#: Table 4's default: a photo is outdoor when its outdoor probability is >= this (``EvaluateConfig``).
DEFAULT_OUTDOOR_THRESHOLD: float = EvaluateConfig().outdoor_threshold


def outdoor_mask(outdoor_prob: ArrayLike, threshold: float = DEFAULT_OUTDOOR_THRESHOLD) -> NDArray[np.bool_]:
    """True for photos whose outdoor probability is >= ``threshold``; unknown (< 0 or NaN) is False."""
    p = np.asarray(outdoor_prob, dtype=np.float64).reshape(-1)
    with np.errstate(invalid="ignore"):
        return (p >= 0) & (p >= threshold) & ~np.isnan(p)


def known_mask(outdoor_prob: ArrayLike) -> NDArray[np.bool_]:
    """True where the outdoor probability is known (>= 0, not NaN)."""
    p = np.asarray(outdoor_prob, dtype=np.float64).reshape(-1)
    with np.errstate(invalid="ignore"):
        return (p >= 0) & ~np.isnan(p)


def read_io_labels(path: str | os.PathLike) -> tuple[list[str], NDArray[np.bool_]]:
    """(class names, is_outdoor) from a Places365-style IO label file, in class order.

    Each non-empty line is ``<class name> <1|2>`` (1 indoor, 2 outdoor), e.g. ``/a/airfield 2``.
    """
    path = os.fspath(path)
    names: list[str] = []
    outdoor: list[bool] = []
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise EvaluationError(f"{path}: cannot read the indoor/outdoor label file ({e.strerror})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[1] not in ("1", "2"):
            raise EvaluationError(
                f"{path}:{number}: {line.strip()!r}; expected '<class name> <1|2>' "
                "(1 = indoor, 2 = outdoor), as in IO_places365.txt"
            )
        names.append(parts[0])
        outdoor.append(parts[1] == "2")
    if not names:
        raise EvaluationError(f"{path}: no classes; expected one '<class name> <1|2>' line per class")
    return names, np.asarray(outdoor, dtype=bool)


def load_scene_model(path: str | os.PathLike) -> Callable[[NDArray[np.float32]], NDArray[np.float32]]:
    """A function images (n, h, w, 3) -> (n, classes) outputs from a ``.keras`` file or a SavedModel
    directory (``model.export`` / ``tf.saved_model.save``; its ``serving_default`` signature, or the
    object's ``serve`` / ``__call__`` when it has none)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        import tensorflow as tf

        try:
            loaded = tf.saved_model.load(path)
        except (OSError, ValueError) as e:
            raise EvaluationError(f"{path}: not a loadable SavedModel ({e})") from None
        signature = getattr(loaded, "signatures", {}).get("serving_default")
        if signature is not None:

            def call(images: NDArray[np.float32]) -> NDArray[np.float32]:
                out = signature(tf.constant(images))
                if len(out) != 1:
                    raise EvaluationError(
                        f"{path}: serving_default has outputs {sorted(out)}; expected one (class scores)"
                    )
                return np.asarray(next(iter(out.values())))

            return call
        fn = getattr(loaded, "serve", None) or loaded
        return lambda images: np.asarray(fn(tf.constant(images)))
    if path.endswith(".keras") or path.endswith(".h5"):
        from geoloc_tf.saving import load_keras

        if not os.path.exists(path):
            raise EvaluationError(
                f"{path}: no such scene model file; expected a .keras file or SavedModel dir"
            )
        model = load_keras(path)
        return lambda images: np.asarray(model(images, training=False))
    raise EvaluationError(f"{path}: expected a .keras file or a SavedModel directory for the scene model")


def to_probabilities(scores: ArrayLike) -> NDArray[np.float64]:
    """Class probabilities from a scene model's outputs: kept as they are when each row is already a
    distribution (non-negative, summing to 1 within 1e-3), else a softmax of them (logits)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise EvaluationError(f"scene model output has shape {s.shape}; expected (photos, classes)")
    if s.size and (s >= 0).all() and np.allclose(s.sum(axis=1), 1.0, atol=1e-3):
        return s
    s = s - s.max(axis=1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=1, keepdims=True)


def scene_outdoor_probs(
    model: Callable[[NDArray[np.float32]], Any] | str | os.PathLike,
    images: NDArray[np.float32] | Iterable[NDArray[np.float32]],
    io_labels: str | os.PathLike | NDArray[np.bool_],
    batch_size: int = 64,
) -> NDArray[np.float32]:
    """Outdoor probability of each image = softmax mass on the outdoor classes (§4.1.2).

    ``model``: a path (``load_scene_model``) or a callable; ``images``: an (n, h, w, 3) array in
    the model's expected input scale, or an iterable of such batches; ``io_labels``: an IO label
    file or a boolean is-outdoor vector, one entry per model class.
    """
    fn = load_scene_model(model) if isinstance(model, (str, os.PathLike)) else model
    outdoor = (
        read_io_labels(io_labels)[1]
        if isinstance(io_labels, (str, os.PathLike))
        else np.asarray(io_labels, dtype=bool)
    )
    if isinstance(images, np.ndarray):
        batches: Iterable[NDArray[np.float32]] = (
            images[i : i + batch_size] for i in range(0, len(images), batch_size)
        )
    else:
        batches = images
    out: list[NDArray[np.float32]] = []
    for batch in batches:
        probs = to_probabilities(fn(np.asarray(batch, dtype=np.float32)))
        if probs.shape[1] != outdoor.size:
            raise EvaluationError(
                f"scene model gives {probs.shape[1]} classes but the indoor/outdoor mapping has "
                f"{outdoor.size}; expected one IO line per model class, in class order"
            )
        out.append(probs[:, outdoor].sum(axis=1).astype(np.float32))
    return np.concatenate(out) if out else np.zeros(0, np.float32)
