"""Keras layers of M1/M2/M3: M1's product over partitions, operator (1) of Figure 3, its
sparse-input helper, and posting time.

``TopKSparsifyNormalize`` is operator (1) of Figure 3 and §3.2: "P_i is filtered so that only the
top 10 maximum entries remain, and the other entries are set to 0 (p0). This vector is normalized
... The L1-norm (denominator) in the normalization |p0| is appended as a feature."

M1's stored predictions hold only the top-k cell ids and their probabilities (the predict stage), so
``DensifyTopK`` / ``densify_top_k`` put them back on the N cells; operator (1) applied to that dense
vector gives exactly what it gives on M1's full softmax, because the k kept entries are the same.

All layers are registered under the package name ``geoloc`` so a ``.keras`` file that uses them loads
with plain ``keras.models.load_model`` once this module is imported. They use ``keras.ops`` only, so
they run, train and load on the TensorFlow and the JAX backend alike (``tests/geoloc_tf/test_backends.py``).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops
from numpy.typing import ArrayLike

from geoloc_tf import errors
from geoloc_tf.m2.config import DEFAULT_TOP_K  # operator (1)'s k (§3.2), declared once there
from geoloc_tf.time_features import NUM_TIME_FEATURES, features_from_seconds

#: The smallest normal float32: probabilities are floored here before their logarithm, so a head
#: whose softmax underflowed to 0 gives a very low but finite score, never -inf or NaN.
_TINY = float(np.finfo(np.float32).tiny)


@keras.saving.register_keras_serializable(package="geoloc")
class CombinePartitions(keras.layers.Layer):
    """M1's distribution over the main mesh's cells from one softmax per partition of the globe.

    PlaNet (Weyand et al. 2016) and CPlaNet (Seo et al. 2018) score a cell of the finest partition
    by the product of the probabilities of the cells that contain it, one per partition:

        log score(c) = log p_main(c) + sum_k log p_k(parent_k[c]),   output = softmax(score).

    Inputs: ``[p_main (..., N), p_1 (..., N_1), ...]`` probabilities; ``parent_maps[k][c]`` is
    the cell of partition k that holds main cell c (``mesh.partitions.parent_cells``), a constant
    of the layer's config, so a saved model carries it. Output (..., N) float32, rows summing to 1.
    """

    def __init__(self, parent_maps: Any, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.parent_maps = [[int(c) for c in parents] for parents in parent_maps]
        if not self.parent_maps or any(min(p, default=0) < 0 for p in self.parent_maps):
            raise errors.ModelConfigError(
                "CombinePartitions: expected at least one parent map of cell ids >= 0"
            )
        if len({len(p) for p in self.parent_maps}) != 1:
            raise errors.ModelConfigError(
                "CombinePartitions: every parent map must have one entry per main cell; got lengths "
                f"{[len(p) for p in self.parent_maps]}"
            )

    def build(self, input_shape: Any) -> None:
        main, *heads = input_shape
        if len(heads) != len(self.parent_maps) or main[-1] != len(self.parent_maps[0]):
            raise errors.ModelConfigError(
                f"layer {self.name}: expected [main ({len(self.parent_maps[0])} cells)] + "
                f"{len(self.parent_maps)} partition heads; got shapes {list(input_shape)}"
            )
        for shape, parents in zip(heads, self.parent_maps):
            if shape[-1] is not None and max(parents) >= shape[-1]:
                raise errors.ModelConfigError(
                    f"layer {self.name}: a parent map names cell {max(parents)} of a partition "
                    f"head with {shape[-1]} cells"
                )
        self.built = True

    def call(self, inputs: Any) -> Any:
        main, *heads = (ops.cast(x, "float32") for x in inputs)
        score = ops.log(ops.maximum(main, _TINY))
        for head, parents in zip(heads, self.parent_maps):
            index = ops.convert_to_tensor(np.asarray(parents, np.int32))
            score = score + ops.take(ops.log(ops.maximum(head, _TINY)), index, axis=-1)
        return ops.softmax(score, axis=-1)

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, ...]:
        return tuple(input_shape[0])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "parent_maps": self.parent_maps}


@keras.saving.register_keras_serializable(package="geoloc")
class TopKSparsifyNormalize(keras.layers.Layer):
    """Operator (1) of Figure 3: keep the k largest probabilities, renormalize, append |p0|.

    Input (..., N) probabilities; output (..., N + 1): the k largest entries divided by their sum
    (zeros elsewhere, so the first N outputs sum to 1) followed by that sum, the L1 norm |p0| of the
    filtered vector before renormalization (§3.2), which tells M2 how confident M1 was overall.

    Ties are broken deterministically: among equal values the LOWEST cell index is kept
    (``keras.ops.top_k`` is ``tf.math.top_k`` on TensorFlow and ``jax.lax.top_k`` on JAX, both
    documented to return the lower index first for equal elements). An
    all-zero input (a padded album position in M3) gives all zeros and |p0| = 0 rather than NaN, so
    padding can never poison a masked loss.
    """

    def __init__(self, k: int = DEFAULT_TOP_K, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if int(k) < 1:
            raise errors.ModelConfigError(f"TopKSparsifyNormalize(k={k}): k must be >= 1")
        self.k = int(k)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        num_cells = input_shape[-1]
        if num_cells is None or num_cells < self.k:
            raise errors.ModelConfigError(
                f"layer {self.name}: input has {num_cells} cells, expected at least k={self.k}"
            )
        self.built = True

    def call(self, probs: Any) -> Any:
        num_cells = probs.shape[-1]
        leading = ops.shape(probs)[:-1]
        flat = ops.reshape(probs, (-1, num_cells))
        values, indices = ops.top_k(flat, k=self.k, sorted=True)
        norm = ops.sum(values, axis=-1, keepdims=True)
        values = values / ops.where(norm > 0, norm, ops.ones_like(norm))
        rows = ops.shape(flat)[0]
        row_ids = ops.repeat(ops.expand_dims(ops.arange(rows, dtype="int32"), 1), self.k, axis=1)
        coords = ops.stack([row_ids, ops.cast(indices, "int32")], axis=-1)
        dense = ops.scatter(ops.reshape(coords, (-1, 2)), ops.reshape(values, (-1,)), (rows, num_cells))
        out = ops.concatenate([dense, norm], axis=-1)
        return ops.reshape(out, tuple(leading) + (num_cells + 1,))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        cells = input_shape[-1]
        if cells is None:
            raise errors.ModelConfigError(
                "TopKSparsifyNormalize: expected inputs whose last axis (cells) has a size"
            )
        return tuple(input_shape[:-1]) + (cells + 1,)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return mask

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k}


@keras.saving.register_keras_serializable(package="geoloc")
class SparseLogPrior(keras.layers.Layer):
    """M1's distribution as logits, rebuilt from operator (1)'s output: top k kept, tail flattened.

    Input: the (..., N + 1) output of ``TopKSparsifyNormalize(k)``: the top-k probabilities
    renormalized to sum 1, then |p0|, the mass M1 gave them. Output (..., N): ``log q`` with

        q_i = p_i / |p0| * |p0| = M1's p_i            for the k kept cells,
        q_i = (1 - |p0|) / (N - k)                     for every other cell,

    i.e. M1's own probabilities on its top k and its remaining mass spread evenly over the rest.
    Added to a network's output logits it makes the softmax start from (nearly) M1
    (``M2Config.m1_prior``). Keeping M1's tail matters: M1's top 10 misses the true cell for most
    photos of a weak M1, and a prior that gives those cells ~0 costs a cross-entropy far above M1's
    own, which the first training steps then "fix" by flattening everything. ``floor`` only keeps
    the logarithm finite (all-zero padded album positions, |p0| = 1).
    """

    def __init__(self, k: int = DEFAULT_TOP_K, floor: float = 1e-12, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if int(k) < 1 or not 0.0 < float(floor) < 1.0:
            raise errors.ModelConfigError(
                f"SparseLogPrior(k={k}, floor={floor}): expected k >= 1 and 0 < floor < 1"
            )
        self.k = int(k)
        self.floor = float(floor)

    def call(self, sparse: Any) -> Any:
        probs, norm = sparse[..., :-1], sparse[..., -1:]
        tail = max(int(probs.shape[-1]) - self.k, 1)
        kept = ops.cast(probs > 0, probs.dtype)
        q = probs * norm + (1.0 - kept) * (1.0 - norm) / tail
        return ops.log(ops.maximum(q, self.floor))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        cells_and_mass = input_shape[-1]
        if cells_and_mass is None:
            raise errors.ModelConfigError(
                "SparseLogPrior: expected inputs whose last axis (cells + 1) has a size"
            )
        return tuple(input_shape[:-1]) + (cells_and_mass - 1,)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return mask

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k, "floor": self.floor}


@keras.saving.register_keras_serializable(package="geoloc")
class AlbumEvidence(keras.layers.Layer):
    """The album's pooled cell evidence, added to every photo's logits with a learned weight.

    Inputs: logits (batch, album, N) and the album mask (batch, album) bool. Output
    (batch, album, N): ``logits + alpha * log(mean over the album's real photos of
    softmax(logits))``, one learned scalar ``alpha``. It starts at ``alpha_init`` (1: each
    photo's distribution times its album's mean distribution, a product of two experts; 0: the
    identity). Adam moves it by about the learning rate a step, so from 0 a few hundred steps of
    0.001 leave it near 0.2, while on the demo's validation albums the best fixed alpha is 4-8.
    The mean is over masked-in photos only, so padded positions change nothing at real ones.

    Why (M3, ``M3Config.album_evidence``): averaging M2's predictions over a user's photos
    beats M2 on the demo, but an LSTM of a few hundred units cannot carry an N-way distribution
    through its state and back out through a rank-limited correction; this path hands every photo
    the album's summed evidence directly, and the LSTM learns what order and timing add.
    """

    def __init__(self, alpha_init: float = 1.0, floor: float = 1e-12, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha_init = float(alpha_init)
        self.floor = float(floor)
        self.supports_masking = True  # the logits' Keras mask (M3's album mask) passes through

    def build(self, input_shape: Any) -> None:
        self.alpha = self.add_weight(
            name="alpha", shape=(), initializer=keras.initializers.Constant(self.alpha_init)
        )

    def call(self, logits: Any, album_mask: Any) -> Any:
        weights = ops.cast(album_mask, logits.dtype)[..., None]  # (batch, album, 1)
        probs = ops.softmax(logits, axis=-1) * weights
        mean = ops.sum(probs, axis=1, keepdims=True) / ops.maximum(
            ops.sum(weights, axis=1, keepdims=True), 1.0
        )
        return logits + ops.cast(self.alpha, logits.dtype) * ops.log(ops.maximum(mean, self.floor))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha_init": self.alpha_init, "floor": self.floor}


@keras.saving.register_keras_serializable(package="geoloc")
class DensifyTopK(keras.layers.Layer):
    """Sparse top-k (cell ids, probabilities) -> dense (..., N) probabilities, zeros elsewhere.

    The form in which M1's predictions are stored (ids and probabilities of its k best cells). Ids
    below 0 mark missing entries (fewer than k stored) and contribute nothing. Lets an M2/M3 serving
    model take the stored form directly: ``TopKSparsifyNormalize()(DensifyTopK(N)([ids, probs]))``.
    """

    def __init__(self, num_cells: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if int(num_cells) < 1:
            raise errors.ModelConfigError(f"DensifyTopK(num_cells={num_cells}): expected >= 1")
        self.num_cells = int(num_cells)

    def call(self, inputs: Any) -> Any:
        cell_ids, probs = inputs
        k = cell_ids.shape[-1]
        leading = ops.shape(cell_ids)[:-1]
        ids = ops.reshape(ops.cast(cell_ids, "int32"), (-1, k))
        flat_probs = ops.reshape(ops.cast(probs, self.compute_dtype), (-1, k))
        valid = ids >= 0
        flat_probs = ops.where(valid, flat_probs, ops.zeros_like(flat_probs))
        ids = ops.where(valid, ids, ops.zeros_like(ids))
        rows = ops.shape(ids)[0]
        row_ids = ops.repeat(ops.expand_dims(ops.arange(rows, dtype="int32"), 1), k, axis=1)
        coords = ops.reshape(ops.stack([row_ids, ids], axis=-1), (-1, 2))
        dense = ops.scatter(coords, ops.reshape(flat_probs, (-1,)), (rows, self.num_cells))
        return ops.reshape(dense, tuple(leading) + (self.num_cells,))

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, ...]:
        return tuple(input_shape[0][:-1]) + (self.num_cells,)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_cells": self.num_cells}


@keras.saving.register_keras_serializable(package="geoloc")
class PostingTimeFeatures(keras.layers.Layer):
    """int64 UTC epoch seconds (...,) -> the 3 time features of §3.2 (..., 3), inside a model.

    Runs ``geoloc_tf.time_features.features_from_seconds`` (the same code the training data uses)
    in keras.ops, for serving models that take the raw posting time. JAX holds integers as int32
    unless ``jax_enable_x64`` is set, so on that backend the times must lie between 1901-12-13 and
    2038-01-19 (every photo of the paper's data sets does); TensorFlow keeps int64.
    """

    def call(self, posted_at: Any) -> Any:
        # Integers are used as they are: asking JAX without x64 for int64 only warns and gives int32.
        if not keras.backend.is_int_dtype(posted_at.dtype):
            posted_at = ops.cast(posted_at, "int64")
        return features_from_seconds(
            posted_at,
            lambda table, index: ops.take(table, index, axis=0),
            lambda parts: ops.stack(parts, axis=-1),
        )

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape) + (NUM_TIME_FEATURES,)


def densify_top_k(cell_ids: ArrayLike, probs: ArrayLike, num_cells: int) -> np.ndarray:
    """Numpy twin of ``DensifyTopK``: (..., k) ids and probabilities -> (..., num_cells) float32.

    For small arrays (tests, a batch); whole splits stay sparse and are densified per batch.
    """
    ids = np.asarray(cell_ids, dtype=np.int64)
    values = np.asarray(probs, dtype=np.float32)
    if ids.shape != values.shape:
        raise errors.ModelConfigError(
            f"densify_top_k: cell_ids shape {ids.shape} != probs shape {values.shape}"
        )
    if ids.size and ids.max() >= num_cells:
        raise errors.ModelConfigError(
            f"densify_top_k: cell id {ids.max()} out of range, expected < num_cells={num_cells}"
        )
    flat_ids = ids.reshape(-1, ids.shape[-1])
    flat_values = np.where(flat_ids >= 0, values.reshape(flat_ids.shape), 0.0).astype(np.float32)
    dense = np.zeros((flat_ids.shape[0], num_cells), np.float32)
    rows = np.repeat(np.arange(flat_ids.shape[0]), flat_ids.shape[1])
    np.add.at(dense, (rows, np.maximum(flat_ids, 0).ravel()), flat_values.ravel())
    return dense.reshape(ids.shape[:-1] + (num_cells,))


def sparsify_top_k(probs: ArrayLike, k: int = DEFAULT_TOP_K) -> tuple[np.ndarray, np.ndarray]:
    """Dense (..., N) probabilities -> the k best (cell ids int64, probabilities float32), best first.

    The numpy form of what M1's predict stage stores; ties go to the lowest cell index, as in
    ``TopKSparsifyNormalize``. Used to build synthetic M1 outputs in tests.
    """
    values = np.asarray(probs, dtype=np.float32)
    if values.shape[-1] < k:
        raise errors.ModelConfigError(f"sparsify_top_k: {values.shape[-1]} cells, expected at least k={k}")
    order = np.argsort(-values, axis=-1, kind="stable")[..., :k]
    return order.astype(np.int64), np.take_along_axis(values, order, axis=-1)
