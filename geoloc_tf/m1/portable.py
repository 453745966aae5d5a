"""M1 for other runtimes: a LiteRT (``.tflite``) and an ONNX (``.onnx``) file, and their loaders.

Both files hold the same function as the SavedModel's ``serve_pixels`` endpoint
(``geoloc_tf.m1.export``):

    input   pixels         uint8   (B, S, S, 3)  RGB, S = M1's input side
    outputs cell_ids       int32   (B, k)        top-k mesh cells, most probable first
            probabilities  float32 (B, k)        their softmax probabilities

The input is decoded pixels, not JPEG bytes: decoding a JPEG is not a builtin operation of LiteRT
nor of ONNX (a converter would need TensorFlow's own kernels in the runtime, which a phone or ONNX
Runtime does not have), while uint8 pixels are what every platform's image decoder gives. The host
decodes, crops the central 0.875 and resizes bilinearly to S x S exactly as the SavedModel does, and
rounds to uint8: ``geoloc_tf.preprocessing.eval_pixels_batch`` (on a phone: the platform's decoder
and a bilinear resize). The model scales the pixels to [-1, 1] (``preprocessing.scale_pixels``),
runs M1 and takes the top k inside. The label points of the cells are not in the files (float64
is no LiteRT type); they are the mesh's imagery centroids, as for the SavedModel.

Each file also carries a small JSON description under the name ``geoloc`` (a LiteRT metadata entry,
an ONNX ``metadata_props`` key): ``num_cells`` (the softmax width, which the top-k outputs do not
show), ``top_k`` and ``image_size``, so a loader can check the mesh it is given.

Writing needs the converters, running needs the runtimes; both are optional extras of setup.py
(``litert``: ai-edge-litert, the maintained LiteRT runtime, the converter being TensorFlow's
``tf.lite``; ``onnx``: tf2onnx, onnx and onnxruntime). Without them ``missing`` says which modules
are absent and ``install_hint`` what to install.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from geoloc_tf import errors
from geoloc_tf.run_layout import PORTABLE_SUFFIXES

#: The name of the description in each file's metadata (module doc).
METADATA_NAME = "geoloc"
#: The input and output names of both files.
INPUT = "pixels"
OUTPUTS = ("cell_ids", "probabilities")


@dataclasses.dataclass(frozen=True)
class RuntimeFormat:
    """One format: its name, file suffix, the setup.py extra that installs it, the modules writing
    needs (converter, metadata, the runtime that checks the file) and those loading needs."""

    name: str
    label: str
    extra: str
    write_modules: tuple[str, ...]
    load_modules: tuple[str, ...]

    @property
    def suffix(self) -> str:
        return PORTABLE_SUFFIXES[self.name]


FORMATS: dict[str, RuntimeFormat] = {
    "litert": RuntimeFormat("litert", "LiteRT", "litert", ("ai_edge_litert",), ("ai_edge_litert",)),
    "onnx": RuntimeFormat("onnx", "ONNX", "onnx", ("tf2onnx", "onnx", "onnxruntime"), ("onnxruntime",)),
}


def missing(runtime_format: str, modules: str = "write") -> list[str]:
    """The modules of ``runtime_format`` (``write_modules`` or ``load_modules``) that do not import."""
    spec = FORMATS[runtime_format]
    absent = []
    for module in spec.write_modules if modules == "write" else spec.load_modules:
        try:
            importlib.import_module(module)
        except ImportError:
            absent.append(module)
    return absent


def install_hint(extras: list[str]) -> str:
    """``pip install "geoloc[litert,onnx]"``: the command that installs these extras."""
    return f'pip install "geoloc[{",".join(extras)}]"'


def format_of(path: str | os.PathLike) -> str | None:
    """The format a model path's suffix names (``litert``, ``onnx``), None for any other path."""
    suffix = Path(path).suffix.lower()
    return next((name for name, known in PORTABLE_SUFFIXES.items() if known == suffix), None)


# ---------------------------------------------------------------------- writing
def _pixels_model(model, top_k: int):
    """A Keras model: uint8 pixels -> {cell_ids, probabilities} (module doc), M1's weights shared."""
    import keras

    from geoloc_tf import preprocessing
    from geoloc_tf.m1.export import checked_top_k, top_cells

    k = checked_top_k(model, top_k)

    class PixelsToCells(keras.Model):
        """M1 on uint8 pixels with its top k: what the LiteRT and ONNX files compute."""

        def __init__(self, m1: keras.Model):
            super().__init__(name="m1_pixels_to_cells")
            self.m1 = m1

        def call(self, pixels):
            return dict(zip(OUTPUTS, top_cells(self.m1, preprocessing.scale_pixels(pixels), k)))

    wrapper = PixelsToCells(model)
    side = int(model.input_shape[1])
    wrapper(np.zeros((1, side, side, 3), np.uint8))  # builds it (export tracks built models only)
    return wrapper


def write(model, runtime_format: str, path: str | os.PathLike, top_k: int) -> Path:
    """Writes ``model`` (M1, [-1, 1] images -> softmax over the cells) as a LiteRT or ONNX file at
    ``path`` (atomically), with its description (module doc). The LiteRT file holds builtin
    operations only, so the plain runtime (no TensorFlow kernels) runs it."""
    import tensorflow as tf

    from geoloc_tf.m1.export import checked_top_k, pixels_signature
    from mesh.atomic import atomic_path

    spec = FORMATS[runtime_format]
    absent = missing(runtime_format)
    if absent:
        raise errors.ExportError(
            f"{path}: cannot write {spec.label}: {', '.join(absent)} not installed; "
            f"{install_hint([spec.extra])}"
        )
    image_size = int(model.input_shape[1])
    description = {
        "model": "m1",
        "num_cells": int(model.output_shape[-1]),
        "top_k": checked_top_k(model, top_k),
        "image_size": image_size,
        "input": f"{INPUT}: uint8 (batch, {image_size}, {image_size}, 3) RGB",
    }
    wrapper = _pixels_model(model, top_k)
    signature = [pixels_signature(image_size)]
    try:
        with atomic_path(path) as tmp:
            if runtime_format == "litert":
                wrapper.export(
                    tmp,
                    format="litert",
                    verbose=False,
                    input_signature=signature,
                    target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]},
                )
                _add_litert_metadata(Path(tmp), description)
            else:
                with warnings.catch_warnings(), _quiet("tf2onnx"):
                    # Keras' tf2onnx shim for numpy 2 touches np.object
                    warnings.filterwarnings("ignore", message=".*np.object.*", category=FutureWarning)
                    wrapper.export(tmp, format="onnx", verbose=False, input_signature=signature)
                _add_onnx_metadata(Path(tmp), description)
    except Exception as error:  # noqa: BLE001  converters raise their own types, with pages of trace
        raise errors.ExportError(
            f"{path}: the {spec.label} conversion of M1 failed: {errors.first_line(error)}"
        ) from error
    return Path(path)


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """A library's INFO lines (a converter's every pass) left out of the run's log while it runs."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _add_litert_metadata(path: Path, description: dict) -> None:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(description).encode(), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(builder.Output())


def _add_onnx_metadata(path: Path, description: dict) -> None:
    import onnx

    model = onnx.load(str(path))
    model.metadata_props.add(key=METADATA_NAME, value=json.dumps(description))
    onnx.save(model, str(path))


# ---------------------------------------------------------------------- loading
class Runtime:
    """A LiteRT or ONNX file of M1 in its runtime; ``runtime(pixels)`` gives (cell_ids int32 (B, k),
    probabilities float32 (B, k)). Attributes from the file's description: ``num_cells``,
    ``top_k``, ``image_size``. Calls are serialized (a LiteRT interpreter runs one at a time)."""

    def __init__(self, path: Path, runtime_format: str, description: dict):
        self.path = path
        self.format = runtime_format
        try:
            self.num_cells = int(description["num_cells"])
            self.top_k = int(description["top_k"])
            self.image_size = int(description["image_size"])
        except (KeyError, TypeError, ValueError):
            raise errors.ExportError(
                f"{path}: metadata {METADATA_NAME!r} is {description!r}; expected num_cells, top_k "
                "and image_size (geoloc_tf.m1.portable)"
            ) from None
        self._lock = threading.Lock()

    def __call__(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        expected = (self.image_size, self.image_size, 3)
        if pixels.ndim != 4 or pixels.shape[1:] != expected:
            raise errors.InferenceError(
                f"{self.path}: pixels of shape {pixels.shape}; expected (batch, {', '.join(map(str, expected))})"
            )
        with self._lock:
            outputs = self._run(pixels)
        return outputs["cell_ids"].astype(np.int32), outputs["probabilities"].astype(np.float32)

    def _run(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError


class LiteRTRuntime(Runtime):
    def __init__(self, path: Path, threads: int):
        from ai_edge_litert import schema_py_generated as schema
        from ai_edge_litert.interpreter import Interpreter

        model = schema.Model.GetRootAs(path.read_bytes(), 0)
        description = None
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if entry.Name() == METADATA_NAME.encode():
                description = json.loads(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
        super().__init__(path, "litert", _described(path, description))
        self._runner = Interpreter(model_path=str(path), num_threads=threads).get_signature_runner()

    def _run(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        return self._runner(**{INPUT: pixels})


class OnnxRuntime(Runtime):
    def __init__(self, path: Path, threads: int):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3  # errors only
        self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        text = self._session.get_modelmeta().custom_metadata_map.get(METADATA_NAME)
        super().__init__(path, "onnx", _described(path, None if text is None else json.loads(text)))

    def _run(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(OUTPUTS, self._session.run(list(OUTPUTS), {INPUT: pixels})))


def _described(path: Path, description: dict | None) -> dict:
    if description is None:
        raise errors.ExportError(
            f"{path}: no {METADATA_NAME!r} metadata; expected an M1 file written by "
            "geoloc_tf.m1.portable (the export stage)"
        )
    return description


def default_threads() -> int:
    """The CPU cores this process may use (what TensorFlow uses too)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def load(path: str | os.PathLike, threads: int | None = None) -> Runtime:
    """The runtime of a ``.tflite`` or ``.onnx`` file of M1 (by suffix), on ``threads`` CPU
    threads (default: every usable core)."""
    path = Path(path)
    runtime_format = format_of(path)
    if runtime_format is None:
        raise errors.ExportError(
            f"{path}: not a LiteRT or ONNX file of M1; expected a suffix of "
            f"{', '.join(PORTABLE_SUFFIXES.values())}"
        )
    if not path.is_file():
        raise errors.ExportError(f"{path}: no such file; expected M1's {FORMATS[runtime_format].label} file")
    absent = missing(runtime_format, "load")
    if absent:
        raise errors.ExportError(
            f"{path}: {', '.join(absent)} not installed, which runs it; "
            f"{install_hint([FORMATS[runtime_format].extra])}"
        )
    loader = LiteRTRuntime if runtime_format == "litert" else OnnxRuntime
    try:
        return loader(path, threads or default_threads())
    except errors.GeolocTfError:
        raise
    except Exception as error:  # noqa: BLE001  the runtimes raise their own types on a bad file
        raise errors.ExportError(
            f"{path}: cannot be loaded by {FORMATS[runtime_format].label}: {errors.first_line(error)}"
        ) from None
