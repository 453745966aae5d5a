"""tf.data input for M1: shards -> (image, label) batches (§3.1.2, appendix A.1).

    ds = make_dataset(data, "m1_train", labels_by_shard, InputConfig(), copies_by_shard=copies)

Order of work, cheapest first, so that nothing is decoded that is not used:
  1. shard files (shuffled per epoch in training), each zipped with its label array and, with the
     A.1 sampler, its per-record copy counts (``sampler.CurriculumSampler.copies``);
  2. interleave the shards; drop records of dropped cells (label -1, training) and records with
     0 copies; repeat records with several copies; shuffle buffer;
  3. parse, then decode: in training Inception-style augmentation (random crop via
     ``decode_and_crop_jpeg`` so only the crop is decoded, flip, colour), in evaluation a central
     crop; resize to ``image_size`` (299, Inception v4) and scale to ``value_range``;
  4. batch per replica (``input_context`` from ``tf.distribute``), prefetch.

With ``augment_on_device`` (the M1 trainer's choice when it trains on GPUs/TPUs) step 3 stops
after decoding the crop, and steps 3-4 swap: records are batched first, then one map call per batch
decodes its crops and packs them back to back into one flat uint8 buffer (``pack_crops``), which
``device_augment`` unpacks, resizes, flips, jitters and scales inside the train step. On a CPU the
resize costs about as much as the decode, and a batch padded to the data set's ``max_side`` moves
2-3 times the bytes of the crops it holds (on a 2-core host that capped the pipeline at about
two-thirds of the read+decode ceiling); packed crops bring the host's work below that ceiling's
(experiments/benchmarks/input_bench.py).

tf.data's autotuner is off unless ``InputConfig.autotune`` says otherwise: on a 2-core host it now
and then left a core idle for a whole pass, in every pipeline (see ``InputConfig.autotune``).

Deterministic mode (tests, evaluation): fixed seeds, ordered interleave and map, stateless random
ops seeded per element; the same (config, epoch) gives the same batches. Augmentation always uses
stateless ops with a per-element seed, so parallel map does not change the result.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from data_pipelines import records
from data_pipelines.config import InputConfig
from data_pipelines.dataset import WrittenDataset

AUTOTUNE = tf.data.AUTOTUNE
COORD_SCALE = 1e7


def _shard_datasets(paths, labels, copies):
    """(path, labels, copies) per shard -> a dataset of shards, each element a tuple of tensors."""
    lengths = np.asarray([len(l) for l in labels], np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    all_labels = tf.constant(
        np.concatenate(labels).astype(np.int32) if len(labels) else np.zeros([0], np.int32)
    )
    all_copies = tf.constant(
        np.concatenate(copies).astype(np.int32) if len(copies) else np.zeros([0], np.int32)
    )
    index = tf.data.Dataset.from_tensor_slices(
        (tf.constant(paths, tf.string), offsets[:-1], lengths)
    )

    def open_shard(path, offset, length):
        records_ds = tf.data.TFRecordDataset(path)
        side = tf.data.Dataset.from_tensor_slices(
            (all_labels[offset : offset + length], all_copies[offset : offset + length])
        )
        return tf.data.Dataset.zip((records_ds, side))

    return index, open_shard


def parse(serialized, features: tuple[str, ...] | None = None, *, batched: bool = False):
    """One record's features (all of the schema, or only ``features``: parsing fewer is cheaper);
    ``batched``: ``serialized`` is a vector of records and each feature a vector."""
    spec = records.feature_spec(tf)
    if features is not None:
        spec = {name: spec[name] for name in features}
    if batched:
        return tf.io.parse_example(serialized, spec)
    return tf.io.parse_single_example(serialized, spec)


def _scale(image, config: InputConfig):
    low, high = config.value_range
    return image * (high - low) + low


# RGB <-> YIQ: hue is a rotation and saturation a scaling of the (I, Q) plane, so the colour
# jitter of one image is a single 3x3 matrix (plus brightness and contrast): one small matmul
# instead of tf.image's RGB->HSV->RGB round trips, which cost more than decoding on a CPU.
_RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]],
    np.float32,
)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ).astype(np.float32)


def _color_affine(seed, config: InputConfig, mean_rgb):
    """(3x3 matrix, 3-vector) of the colour jitter, for pixels as row vectors in [0, 1].

    Brightness (+b), saturation and hue (the YIQ matrix) and contrast (about the image mean) are
    all affine, so they compose into one ``rgb @ A + c``.
    """
    return _color_affine_from_uniform(
        tf.random.stateless_uniform([4], seed, dtype=tf.float32), config, mean_rgb
    )


def _color_affine_from_uniform(u, config: InputConfig, mean_rgb):
    """``_color_affine`` from four uniform [0, 1) draws (brightness, saturation, hue, contrast)."""
    brightness = (2.0 * u[0] - 1.0) * config.brightness_delta
    saturation = config.saturation_range[0] + u[1] * (
        config.saturation_range[1] - config.saturation_range[0]
    )
    hue = (2.0 * u[2] - 1.0) * config.hue_delta * 2.0 * np.pi  # tf.image: delta in turns
    contrast = config.contrast_range[0] + u[3] * (
        config.contrast_range[1] - config.contrast_range[0]
    )
    cos, sin = tf.cos(hue) * saturation, tf.sin(hue) * saturation
    zero, one = tf.zeros([]), tf.ones([])
    plane = tf.stack(
        [tf.stack([one, zero, zero]), tf.stack([zero, cos, -sin]), tf.stack([zero, sin, cos])]
    )
    matrix = tf.transpose(tf.constant(_YIQ_TO_RGB) @ plane @ tf.constant(_RGB_TO_YIQ))
    mean_after = (mean_rgb + brightness) @ matrix  # image mean after brightness and colour
    a = contrast * matrix
    c = contrast * (brightness * tf.ones([1, 3]) @ matrix) + (1.0 - contrast) * mean_after
    return a, c


def color_jitter(image, seed, config: InputConfig):
    """Random brightness, saturation, hue and contrast (Inception ranges) on [0, 1] pixels."""
    mean = tf.reduce_mean(tf.reshape(image, [-1, 3]), axis=0, keepdims=True)
    a, c = _color_affine(seed, config, mean)
    return tf.reshape(tf.reshape(image, [-1, 3]) @ a + c, tf.shape(image))


def _random_crop_window(image_bytes, seed, config: InputConfig):
    """Inception's random crop, chosen from the JPEG header alone: ``[y, x, height, width]``.

    Covers ``area_range`` of the image with aspect ``aspect_ratio_range`` (Szegedy et al. 2016
    preprocessing); ``tf.io.decode_and_crop_jpeg`` then decodes only this window.
    """
    shape = tf.image.extract_jpeg_shape(image_bytes)
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape,
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        min_object_covered=config.min_object_covered,
        aspect_ratio_range=config.aspect_ratio_range,
        area_range=config.area_range,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    return tf.stack([begin[0], begin[1], size[0], size[1]])


def _draws(seed):
    """The random draws of one training image from its int64[2] ``seed``: the crop's seed, and
    five uniforms in [0, 1): flip (< 0.5: flip), then brightness, saturation, hue, contrast.
    Both augmentation modes derive them the same way, so they transform an image alike."""
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    return seeds[0], tf.random.stateless_uniform([5], seeds[1], dtype=tf.float32)


def _decode_random_crop(image_bytes, crop_seed, config: InputConfig):
    """uint8 [h, w, 3]: the Inception random crop, and only it, decoded from the JPEG."""
    window = _random_crop_window(image_bytes, crop_seed, config)
    return tf.io.decode_and_crop_jpeg(image_bytes, window, channels=3)


def _crop_flip_resize(image_bytes, crop_seed, flip_draw, config: InputConfig):
    """Decode only the random crop, flip it (on uint8: cheaper), resize: float32 in [0, 255].

    Bilinear interpolation of uint8 pixels stays in [0, 255], so nothing needs clipping here.
    """
    crop = _decode_random_crop(image_bytes, crop_seed, config)
    if config.flip:
        crop = tf.cond(flip_draw < 0.5, lambda: tf.reverse(crop, [1]), lambda: crop)
    image = tf.image.resize(crop, [config.image_size, config.image_size], method="bilinear")
    return tf.ensure_shape(image, [config.image_size, config.image_size, 3])


def _jitter_and_scale(image, uniform, config: InputConfig):
    """Colour jitter, scaling to ``value_range`` and clipping of one image as a single affine
    map + clip. ``image``: float32 [h, w, 3] in [0, 255]; ``uniform``: the four colour draws.

    Contrast is about the mean of the resized image (``tf.image.adjust_contrast`` applied after
    the resize, as in Inception preprocessing). Under XLA the 3x3 colour matrix is applied as
    three broadcast multiply-adds, which fuse with the clip into one pass (a [pixels, 3] @ [3, 3]
    matmul does not fuse and costs about 1.5x more); without XLA the matmul is the faster form
    (the broadcast form is then one pass per op, about 2x slower).
    """
    low, high = config.value_range
    if config.color_jitter:
        mean = tf.reduce_mean(image, axis=[0, 1])[None] / 255.0  # [1, 3]
        a, c = _color_affine_from_uniform(uniform, config, mean)
        a = a * ((high - low) / 255.0)
        c = c[0] * (high - low) + low
        if config.jit_compile_color:
            out = image[..., 0:1] * a[0] + image[..., 1:2] * a[1] + image[..., 2:3] * a[2] + c
        else:
            out = tf.reshape(tf.reshape(image, [-1, 3]) @ a + c, tf.shape(image))
    else:
        out = image * ((high - low) / 255.0) + low
    return tf.clip_by_value(out, low, high)


@functools.lru_cache(maxsize=None)
def _fused_jitter_and_scale(config: InputConfig):
    """``_jitter_and_scale`` for ``config``, compiled by XLA when ``config.jit_compile_color``.

    XLA fuses the mean, the affine map and the clip into about two passes over the pixels; as
    separate TensorFlow ops each is a full pass with its own output buffer. Measured on a 2-core
    CPU (one thread, 299 px): about 0.6 ms per image fused against 1.7 ms for the matmul form,
    where decoding the whole JPEG costs about 1 ms.
    """
    return tf.function(
        lambda image, uniform: _jitter_and_scale(image, uniform, config),
        jit_compile=config.jit_compile_color,
        autograph=False,
    )


def augment_image(image_bytes, seed, config: InputConfig):
    """Inception-style training preprocessing with stateless ops; ``seed`` is an int64[2].

    Random crop covering 8-100 % of the area with aspect 3/4-4/3 (only the crop is decoded),
    random left-right flip, resize, colour jitter (brightness, saturation, hue, contrast), scaling
    to ``value_range``, clipping; the last three are one fused affine map + clip.
    """
    crop_seed, uniform = _draws(seed)
    image = _crop_flip_resize(image_bytes, crop_seed, uniform[0], config)
    return _fused_jitter_and_scale(config)(image, uniform[1:])


def eval_image(image_bytes, config: InputConfig):
    """Central crop (``central_fraction``), resize, scale: the Inception evaluation transform."""
    image = tf.io.decode_jpeg(image_bytes, channels=3)
    image = tf.image.convert_image_dtype(image, tf.float32)
    image = tf.image.central_crop(image, config.central_fraction)
    image = tf.image.resize(image, [config.image_size, config.image_size], method="bilinear")
    return _scale(tf.clip_by_value(image, 0.0, 1.0), config)


def host_part_of_device_augment(image_bytes, seed, config: InputConfig, crop_side: int) -> dict:
    """The host half of ``augment_on_device`` for one image: decode the random crop, nothing more.

    Returns ``{"pixels": uint8[h, w, 3], "size": int32[2], "flip": float32 (1: flip),
    "color": float32[4]}``: the decoded crop, its size, the flip decision and the four colour
    draws, from the same seeds as ``augment_image``. A crop larger than ``crop_side`` (a data set
    with larger images than its ``max_side``) is shrunk to fit here, keeping its aspect ratio, so
    a batch never holds more than ``crop_side``^2 pixels per image. ``pack_crops`` batches these.
    """
    crop_seed, uniform = _draws(seed)
    crop = _decode_random_crop(image_bytes, crop_seed, config)
    crop = tf.cond(
        tf.reduce_max(tf.shape(crop)[:2]) > crop_side,
        lambda: tf.cast(tf.round(tf.image.resize(crop, [crop_side, crop_side],
                                                 preserve_aspect_ratio=True)), tf.uint8),
        lambda: crop,
    )
    # float32 1.0 / 0.0, not bool: tf.distribute cannot aggregate bool tensors.
    flip = tf.cast(uniform[0] < 0.5, tf.float32) if config.flip else tf.constant(0.0)
    return {"pixels": crop, "size": tf.shape(crop)[:2], "flip": flip, "color": uniform[1:]}


def packed_length_step(config: InputConfig, batch_size: int, crop_side: int) -> int:
    """Multiple of which ``pack_crops`` makes its flat buffer's length: the largest a batch of
    ``batch_size`` crops can hold, divided by ``config.device_flat_buckets`` and rounded up to
    whole pixels (3 bytes); 3 when ``device_flat_buckets`` is 0 (no rounding)."""
    if config.device_flat_buckets <= 0:
        return 3
    return 3 * -(-batch_size * crop_side * crop_side // config.device_flat_buckets)


def pack_crops(images, seeds, config: InputConfig, crop_side: int, batch_size: int) -> dict:
    """The host half of ``augment_on_device`` for a batch: ``host_part_of_device_augment`` on
    each of the JPEGs ``images`` (string [n]) with its ``seeds`` (int64 [n, 2]), the crops packed
    back to back.

    Returns ``{"pixels": uint8[T], "size": int32[n, 2], "flip": float32[n],
    "color": float32[n, 4]}``: crop i's pixels, row-major RGB, start at byte
    ``3 * sum(h_j * w_j for j < i)``. The buffer holds the crops' bytes and nothing else, but for
    zeros at its end that round ``T`` up to a multiple of ``packed_length_step`` (at most
    ``device_flat_buckets`` lengths a batch, so an XLA-compiled train step compiles a bounded
    number of times). A batch padded to ``crop_side`` x ``crop_side`` instead moved 2-3 times the
    bytes for average Inception crops (area 8-100 %) and, on a 2-core host, held the pipeline to
    about two-thirds of the read+decode ceiling; packed, it runs above it (input_bench.py).

    The crops are decoded one after another inside this call: the parallelism is across batches
    (the ``map`` over batches runs with AUTOTUNE parallel calls).
    """
    n = tf.shape(images)[0]
    crops = tf.TensorArray(tf.uint8, size=n + 1, infer_shape=False, element_shape=[None])
    sizes = tf.TensorArray(tf.int32, size=n, element_shape=[2])
    draws = tf.TensorArray(tf.float32, size=n, element_shape=[5])

    def decode(i, crops, sizes, draws):
        part = host_part_of_device_augment(images[i], seeds[i], config, crop_side)
        return (i + 1, crops.write(i, tf.reshape(part["pixels"], [-1])),
                sizes.write(i, part["size"]),
                draws.write(i, tf.concat([part["flip"][None], part["color"]], 0)))

    _, crops, sizes, draws = tf.while_loop(
        lambda i, *_: i < n, decode, (tf.constant(0), crops, sizes, draws))
    size = sizes.stack()
    total = 3 * tf.reduce_sum(tf.cast(size[:, 0], tf.int64) * tf.cast(size[:, 1], tf.int64))
    step = packed_length_step(config, batch_size, crop_side)
    crops = crops.write(n, tf.zeros([(-total) % step], tf.uint8))
    draws = draws.stack()
    return {"pixels": crops.concat(), "size": size, "flip": draws[:, 0], "color": draws[:, 1:]}


def _bilinear_taps(length, out: int):
    """Source indices and weights of a half-pixel-centre bilinear resize of ``length`` pixels
    (float [B]) to ``out``: what ``tf.image.resize(method="bilinear")`` samples. Returns
    (i0, i1, w), each [B, out]: output k = (1 - w) * in[i0] + w * in[i1]."""
    src = (tf.range(out, dtype=tf.float32)[None] + 0.5) * (length[:, None] / out) - 0.5
    src = tf.clip_by_value(src, 0.0, length[:, None] - 1.0)
    low = tf.floor(src)
    i0 = tf.cast(low, tf.int32)
    i1 = tf.minimum(i0 + 1, tf.cast(length[:, None], tf.int32) - 1)
    return i0, i1, src - low


def device_resize(batch: dict, image_size: int):
    """Resize each crop of a ``pack_crops`` batch to ``image_size``, flipping where ``flip``
    says: float32 [n, size, size, 3] in [0, 255].

    Bilinear interpolation by four gathers from the packed pixels (crop i starts at pixel
    ``sum(h_j * w_j for j < i)``), with the half-pixel centres and edge clamping of
    ``tf.image.resize``: the result equals the host's resize of the crop up to float rounding. A
    flip reverses the column taps (half-pixel sampling is symmetric, so flipping after resizing
    equals resizing the flipped crop).
    """
    pixels = tf.reshape(batch["pixels"], [-1, 3])
    size = batch["size"]
    height, width = size[:, 0], size[:, 1]
    start = tf.math.cumsum(height * width, exclusive=True)
    y0, y1, wy = _bilinear_taps(tf.cast(height, tf.float32), image_size)
    x0, x1, wx = _bilinear_taps(tf.cast(width, tf.float32), image_size)
    flip = batch["flip"][:, None] > 0.5
    x0, x1 = tf.where(flip, x0[:, ::-1], x0), tf.where(flip, x1[:, ::-1], x1)
    wx = tf.where(flip, wx[:, ::-1], wx)
    row0 = start[:, None] + y0 * width[:, None]  # [n, size]: first pixel of each source row
    row1 = start[:, None] + y1 * width[:, None]

    def tap(rows, columns):  # [n, size, size, 3]
        return tf.cast(tf.gather(pixels, rows[:, :, None] + columns[:, None, :]), tf.float32)

    def along_row(rows):
        left, right = tap(rows, x0), tap(rows, x1)
        return left + (right - left) * wx[:, None, :, None]

    top, bottom = along_row(row0), along_row(row1)
    return top + (bottom - top) * wy[:, :, None, None]


def device_augment(batch: dict, config: InputConfig):
    """The accelerator half of ``augment_on_device``: resize and flip (``device_resize``),
    colour jitter, scaling, clipping.

    ``batch`` is a ``pack_crops`` batch; returns float32
    [batch, image_size, image_size, 3] in ``value_range``, the transform ``augment_image``
    applies on the host (up to float rounding). Pure TensorFlow: call it inside the
    (distributed) train step, e.g. through ``DeviceAugment`` in the training model.
    """
    image = device_resize(batch, config.image_size)
    n = tf.shape(image)[0]
    low, high = config.value_range
    flat = tf.reshape(image, [n, -1, 3])
    if config.color_jitter:
        mean = tf.reduce_mean(flat, axis=1, keepdims=True) / 255.0  # [n, 1, 3]
        a, c = tf.vectorized_map(
            lambda args: _color_affine_from_uniform(args[0], config, args[1]),
            (batch["color"], mean),
        )
        flat = tf.linalg.matmul(flat, a * ((high - low) / 255.0)) + (c * (high - low) + low)
    else:
        flat = flat * ((high - low) / 255.0) + low
    flat = tf.clip_by_value(flat, low, high)
    return tf.reshape(flat, tf.shape(image))


def make_dataset(
    data: WrittenDataset,
    split: str,
    labels_by_shard: list[np.ndarray] | None,
    config: InputConfig = InputConfig(),
    *,
    copies_by_shard: list[np.ndarray] | None = None,
    epoch: int = 0,
    input_context: tf.distribute.InputContext | None = None,
    shards: list[int] | None = None,
) -> tf.data.Dataset:
    """One epoch of ``split`` as batches of ``(image, label)`` (or ``(features, label)``).

    ``labels_by_shard``: from ``labels.shard_labels`` (None: label -1 everywhere, e.g. prediction
    without a mesh). ``copies_by_shard``: from the A.1 sampler (None: every record once).
    ``input_context``: pass the one ``strategy.distribute_datasets_from_function`` gives; the
    batch is then per replica and each input pipeline reads its own subset of the shards.
    ``shards``: indices into ``data.shard_paths(split)`` to read (None: all), e.g. one shard at a
    time for prediction; ``labels_by_shard``/``copies_by_shard`` still cover all shards of the
    split. Applied before the ``input_context`` sharding.
    """
    paths = data.shard_paths(split)
    lengths = data.shard_lengths(split)
    if labels_by_shard is None:
        labels_by_shard = [np.full(n, -1, np.int64) for n in lengths]
    if copies_by_shard is None:
        copies_by_shard = [np.ones(n, np.int32) for n in lengths]
    if [len(l) for l in labels_by_shard] != lengths or [len(c) for c in copies_by_shard] != lengths:
        raise ValueError(
            f"labels/copies per shard do not match the {len(paths)} shards of {split}: "
            f"expected lengths {lengths}"
        )
    training = config.training
    deterministic = (not training) if config.deterministic is None else config.deterministic
    drop_unlabeled = training if config.drop_unlabeled is None else config.drop_unlabeled
    drop_remainder = training if config.drop_remainder is None else config.drop_remainder
    batch = config.global_batch_size
    shard_ids = np.arange(len(paths))
    if shards is not None:
        shard_ids = np.asarray(shards, np.int64).reshape([-1])
        if shard_ids.size and (shard_ids.min() < 0 or shard_ids.max() >= len(paths)):
            raise ValueError(
                f"shards={list(shards)} of {split}: expected indices in [0, {len(paths)})"
            )
    if input_context is not None:
        batch = input_context.get_per_replica_batch_size(config.global_batch_size)
        shard_ids = shard_ids[input_context.input_pipeline_id :: input_context.num_input_pipelines]
    paths = [paths[i] for i in shard_ids]
    labels_by_shard = [labels_by_shard[i] for i in shard_ids]
    copies_by_shard = [copies_by_shard[i] for i in shard_ids]
    seed = (
        int(np.random.default_rng([config.seed, epoch]).integers(2**31)) if deterministic else None
    )

    index, open_shard = _shard_datasets(paths, labels_by_shard, copies_by_shard)
    if training and len(paths) > 1:
        index = index.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = index.interleave(
        open_shard,
        cycle_length=max(1, min(config.num_parallel_reads, len(paths))),
        block_length=1,
        num_parallel_calls=AUTOTUNE,
        deterministic=True if deterministic else None,
    )
    if drop_unlabeled:
        ds = ds.filter(lambda record, side: side[0] >= 0)
    ds = ds.filter(lambda record, side: side[1] > 0)
    if any(int(np.max(c, initial=0)) > 1 for c in copies_by_shard):  # A.1 oversampling
        ds = ds.map(
            lambda record, side: (
                tf.repeat(record[None], side[1]),
                tf.repeat(side[0][None], side[1]),
            )
        )
        ds = ds.unbatch()
    else:
        ds = ds.map(lambda record, side: (record, side[0]))
    if training and config.shuffle_buffer > 1:
        ds = ds.shuffle(config.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    element_seeds = tf.data.Dataset.random(seed=seed if seed is not None else None).batch(2)
    ds = tf.data.Dataset.zip((ds, element_seeds))
    features = None if config.with_metadata else ("image",)
    map_order = True if deterministic else None

    if training and config.augment_on_device:  # batch first, then decode and pack each batch
        crop_side = device_crop_side(config, data)

        def preprocess_batch(records_labels, seeds):
            records_, label = records_labels
            example = parse(records_, features, batched=True)
            image = pack_crops(example["image"], seeds, config, crop_side, batch)
            return _features(image, example, config), tf.cast(label, tf.int32)

        ds = ds.batch(batch, drop_remainder=drop_remainder)
        ds = ds.map(preprocess_batch, num_parallel_calls=AUTOTUNE, deterministic=map_order)
    else:

        def preprocess(record_label, element_seed):
            record, label = record_label
            example = parse(record, features)
            if training:
                image = augment_image(example["image"], element_seed, config)
            else:
                image = eval_image(example["image"], config)
            return _features(image, example, config), tf.cast(label, tf.int32)

        ds = ds.map(preprocess, num_parallel_calls=AUTOTUNE, deterministic=map_order)
        ds = ds.batch(batch, drop_remainder=drop_remainder)
    options = tf_data_options(config.autotune)
    options.deterministic = bool(deterministic)
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options).prefetch(AUTOTUNE)


def tf_data_options(autotune: bool) -> tf.data.Options:
    """Options every pipeline here (and input_bench's) starts from: tf.data's autotuner on or off
    (``InputConfig.autotune`` says why it is off by default)."""
    options = tf.data.Options()
    options.autotune.enabled = autotune
    return options


def device_crop_side(config: InputConfig, data: WrittenDataset) -> int:
    """Largest crop side ``augment_on_device`` ships: ``config.device_crop_side``, or the data
    set's ``max_side`` when that is 0."""
    return int(config.device_crop_side or data.max_side)


def _features(image, example: dict, config: InputConfig):
    """The model's input: ``image`` alone, or with ``with_metadata`` a dict of it and the photo's
    metadata (per record, or per batch: the ops are elementwise)."""
    if not config.with_metadata:
        return image
    return {
        "image": image,
        "photo_id": example["photo_id"],
        "user_hash": example["user_hash"],
        "posted_at": example["posted_at"],
        "lat": tf.cast(example["lat_e7"], tf.float64) / COORD_SCALE,
        "lon": tf.cast(example["lon_e7"], tf.float64) / COORD_SCALE,
        "outdoor_prob": example["outdoor_prob"],
    }


def raw_decode_dataset(paths: list[str], batch_size: int = 64,
                       autotune: bool = InputConfig.autotune) -> tf.data.Dataset:
    """The read+decode ceiling: read every record, parse, full JPEG decode; nothing else.

    ``experiments/benchmarks/input_bench.py`` compares ``make_dataset`` against this, with the
    same ``autotune`` setting (``InputConfig.autotune``).
    """
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(paths, tf.string)).interleave(
        tf.data.TFRecordDataset,
        cycle_length=max(1, min(8, len(paths))),
        num_parallel_calls=AUTOTUNE,
    )
    ds = ds.map(
        lambda r: tf.io.decode_jpeg(parse(r, ("image",))["image"], channels=3)[0, 0, 0],
        num_parallel_calls=AUTOTUNE,
    )
    return ds.batch(batch_size).prefetch(AUTOTUNE).with_options(tf_data_options(autotune))


def curriculum_epoch(
    data: WrittenDataset,
    split: str,
    labels_by_shard: list[np.ndarray],
    sampler,
    epoch: int,
    config: InputConfig = InputConfig(),
    *,
    input_context: tf.distribute.InputContext | None = None,
):
    """Epoch ``epoch`` of the A.1 curriculum: ``(dataset, plan, num_examples)``.

    ``sampler`` is a ``sampler.CurriculumSampler``; ``plan`` says the cycle, alpha and target size;
    ``num_examples`` is the number of examples this epoch actually draws (all input pipelines
    together; steps per epoch = num_examples // global batch). The copies are a pure function of
    (sampler seed, epoch), so every input pipeline of a distributed run agrees on them.
    """
    plan = sampler.plan(epoch)
    copies = sampler.copies(labels_by_shard, epoch)
    num_examples = int(
        sum(int(c[np.asarray(l) >= 0].sum()) for c, l in zip(copies, labels_by_shard))
    )
    dataset = make_dataset(
        data,
        split,
        labels_by_shard,
        config,
        copies_by_shard=copies,
        epoch=epoch,
        input_context=input_context,
    )
    return dataset, plan, num_examples
