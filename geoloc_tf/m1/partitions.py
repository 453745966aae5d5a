"""M1 over several partitions of the globe at once: one softmax head per partition (PlaNet, Weyand
et al. 2016; CPlaNet, Seo et al. 2018; ``--mesh_partition_factors``).

The backbone and the main mesh's head are built as without partitions; each extra, coarser
partition (``mesh.partitions``) gets a Dense layer and softmax of its own on the same pre-logits
features, after the same dropout. Two models share these layers:

- the training model, outputs ``[p_main, p_1, ...]``: training minimises the sum of the heads'
  cross-entropies with equal weights (PlaNet and CPlaNet train each partition's classifier alike),
  head k's label being ``parent_k[label]`` (``geoloc_tf.m1.training._loss``);
- the inference model, one output: ``CombinePartitions`` of the heads, a distribution over the main
  mesh's cells. It is the saved ``m1.keras``, so predict, M2, M3, evaluation and export see what
  they see without partitions.

Without partitions both are the backbone's model itself: the same layers, variables and
checkpoints as before.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import keras
import numpy as np

from geoloc_tf import errors
from geoloc_tf.layers import CombinePartitions

#: The dropout before the softmax, whose output every head reads (``inception_v4``, ``backbones``).
DROPOUT_LAYER = "Logits.Dropout_1b"
#: The main head's Dense layer; the extra heads copy its regularizer (Inception-v4's weight decay).
LOGITS_LAYER = "Logits.Logits"
#: The combining layer of the inference model.
COMBINE_LAYER = "Logits.CombinePartitions"


def head_name(k: int) -> str:
    """The Dense layer of extra partition k (1, 2, ...); its softmax is ``<name>.Predictions``."""
    return f"Logits.Partition_{k}"


@dataclasses.dataclass(frozen=True)
class M1Models:
    """M1's two views of the same layers (module docstring); ``parent_maps[k]`` is the
    ``(num_cells,)`` int map of main cells to partition k + 1's cells."""

    training: keras.Model
    inference: keras.Model
    parent_maps: tuple[np.ndarray, ...] = ()


def with_partition_heads(
    model: keras.Model, parent_maps: Sequence[np.ndarray], partition_cells: Sequence[int]
) -> M1Models:
    """``model`` (an M1 of ``backbones.build_m1_model``) with one extra head per partition.

    ``parent_maps[k]`` has one entry per cell of ``model``'s softmax, a cell id of partition k + 1,
    whose head has ``partition_cells[k]`` cells. No parent maps: ``model`` alone, unchanged.
    """
    maps = tuple(np.asarray(parents, dtype=np.int64) for parents in parent_maps)
    if not maps:
        return M1Models(model, model, ())
    num_cells = model.output_shape[-1]
    if len(partition_cells) != len(maps):
        raise errors.ModelConfigError(
            f"{len(maps)} parent maps but {len(partition_cells)} partition cell counts; expected one each"
        )
    for k, (parents, cells) in enumerate(zip(maps, partition_cells), 1):
        if parents.shape != (num_cells,) or parents.min() < 0 or parents.max() >= cells:
            raise errors.ModelConfigError(
                f"partition {k}: expected a parent map of {num_cells} cell ids in [0, {cells}); got "
                f"shape {parents.shape}, range [{parents.min()}, {parents.max()}]"
            )
    features = model.get_layer(DROPOUT_LAYER).output
    regularizer = model.get_layer(LOGITS_LAYER).kernel_regularizer
    heads = []
    for k, cells in enumerate(partition_cells, 1):
        logits = keras.layers.Dense(
            int(cells),
            kernel_initializer=keras.initializers.GlorotUniform(),
            kernel_regularizer=regularizer,
            name=head_name(k),
        )(features)
        heads.append(
            keras.layers.Activation("softmax", dtype="float32", name=f"{head_name(k)}.Predictions")(logits)
        )
    main = model.output
    combined = CombinePartitions([p.tolist() for p in maps], name=COMBINE_LAYER)([main, *heads])
    training = keras.Model(model.input, [main, *heads], name=f"{model.name}_partitions_training")
    inference = keras.Model(model.input, combined, name=model.name)
    return M1Models(training, inference, maps)
