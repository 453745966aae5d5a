"""Chunked top-k predictions: a model's k best cells without holding (photos x N) probabilities.

M1's predictions are stored as top-k cell ids and probabilities; M2's and M3's are written the same
way so evaluation treats every model alike. A full softmax over 6565 cells for 2 M photos would be
52 GB, so prediction runs in chunks and keeps only the k best per photo (ties: lowest cell id).
"""

from __future__ import annotations

import keras
import numpy as np

from geoloc_tf import errors
from geoloc_tf.m2.config import DEFAULT_TOP_K


def predict_top_k(
    model: keras.Model, inputs: dict[str, np.ndarray], k: int = DEFAULT_TOP_K, chunk_size: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """(cell ids int64, probabilities float32), each (examples, ..., k), best first.

    Works for M2 (examples = photos) and M3 (examples = albums, an album axis before k).
    """
    sizes = {len(value) for value in inputs.values()}
    if len(sizes) != 1:
        raise errors.ModelConfigError(
            f"predict_top_k: inputs have different lengths {sorted(sizes)}, expected one"
        )
    (num_examples,) = sizes
    ids, probs = [], []
    for start in range(0, num_examples, chunk_size):
        chunk = {name: value[start : start + chunk_size] for name, value in inputs.items()}
        out = np.asarray(model.predict_on_batch(chunk))
        order = np.argsort(-out, axis=-1, kind="stable")[..., :k]
        ids.append(order.astype(np.int64))
        probs.append(np.take_along_axis(out, order, axis=-1).astype(np.float32))
    if not ids:
        shape = (0,) + tuple(model.output.shape[1:-1]) + (k,)
        return np.zeros(shape, np.int64), np.zeros(shape, np.float32)
    return np.concatenate(ids), np.concatenate(probs)
