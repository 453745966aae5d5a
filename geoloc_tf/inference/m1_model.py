"""M1 for inference: the one place that loads M1 to predict from image bytes.

`geoloc predict`, `geoloc serve`, `geoloc evaluate` (external test sets, Table 5) and retrieval
(appendix B: the penultimate features) all load M1 here, from either

- a run directory (``RUN_DIR/m1/m1.keras``): full softmax over the cells and the penultimate
  features (``inception_v4.FEATURES_LAYER``), label points from the run's mesh; or
- an exported SavedModel (``saved_model.pb``, ``geoloc_tf.m1.export``): its serving signature
  returns only the top-k cells (k = the export's ``top_k``), so the full probabilities exist only
  when k covers every cell; features are not exported. What needs them raises a clear error; or
- M1's LiteRT or ONNX file (``RUN_DIR/export/m1.tflite``, ``m1.onnx``; ``geoloc_tf.m1.portable``),
  chosen by the suffix: the top-k cells as for a SavedModel, run by LiteRT or ONNX Runtime.

A photo is decoded once, on the host, by ``data_pipelines.images.decode_for_model`` (``read_photo``
and ``decode_photo`` here: the decode budget's checks, JPEGs decoded in the DCT domain at the
scale the model needs); the model thread only runs the model on those uint8 pixels. A run
directory's M1 is one compiled function of a packed batch of any sizes
(``geoloc_tf.preprocessing.eval_packed``: per photo the central crop 0.875, resize, [-1, 1] that M1
was evaluated and exported with, then the network). For a LiteRT or ONNX file the same crop and
resize give uint8 pixels (``preprocessing.pixels_packed``), which the file scales. An exported
SavedModel's signature takes encoded bytes: the decoded pixels (small: a JPEG is already at about
the model's scale) are re-encoded losslessly as PNG for it, so it sees the same pixels.

A photo smaller than twice ``model_side`` (342 px for 299; a 640x480 JPEG) is decoded in full, as
TensorFlow's decoder did before, and its prediction agrees with that path to float rounding. A
larger JPEG is decoded at 1/2, 1/4 or 1/8 scale, each output pixel close to the mean of the 2x2,
4x4 or 8x8 pixels it stands for, before the bilinear resize: closer to what M1 trained on, whose
photos ingestion stored through the same DCT scaling and an antialiased resize
(``data_pipelines.images.reencode_jpeg``), than TensorFlow's bilinear resize of a full decode,
which reads only 2x2 of every (up to 13x13) pixels and aliases.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from data_pipelines import images
from data_pipelines.config import DecodeBudget
from geoloc_tf import errors, preprocessing
from geoloc_tf.run_layout import PORTABLE_SUFFIXES, RunLayout

SAVED_MODEL_FILE = "saved_model.pb"
LOGITS_LAYER = "Logits.Logits"  # the cell classifier of geoloc_tf.m1 (inception_v4, backbones)


def read_photo(path: Path | str, budget: DecodeBudget, side: int) -> np.ndarray:
    """The uint8 (h, w, 3) pixels M1 takes for an image file (``decode_photo``).

    Only regular files are read (``image_files.read_regular_file``: a FIFO or a device would block
    or never end)."""
    from data_pipelines.ingest.image_files import ImageSkipped, read_regular_file

    try:
        data = read_regular_file(os.path.realpath(path), str(path))
    except ImageSkipped as skipped:
        raise errors.ImageError(f"{skipped.detail}; cannot read it as a photo", images.UNREADABLE) from None
    return decode_photo(data, str(path), budget, side)


def decode_photo(data: bytes, name: str, budget: DecodeBudget, side: int) -> np.ndarray:
    """The uint8 (h, w, 3) pixels M1 (input ``side``) takes for the photo ``data``
    (``data_pipelines.images.decode_for_model``: refused when over ``budget``, animated,
    truncated or of an unsupported format), else an ImageError naming ``name``."""
    try:
        return images.decode_for_model(data, budget, side)
    except images.BadImage as error:
        raise errors.ImageError(f"{name}: {error}", error.reason) from None


class M1Model:
    """M1 loaded for inference; build it with ``M1Model.load(path)``.

    Attributes: ``image_size`` (M1's square input side), ``num_cells`` (softmax width),
    ``run_dir`` (the run directory, None for a SavedModel), ``label_points`` ((num_cells, 2) [lat,
    lon] imagery centroids of the run's mesh, §3.1.2; None when no mesh was found), ``mesh``.
    """

    def __init__(
        self,
        *,
        path: Path,
        image_size: int,
        num_cells: int,
        run_dir: Path | None,
        mesh=None,
        forward=None,
        exported_top_k=None,
        export_top_k: int | None = None,
    ):
        self.path = path
        self.image_size = int(image_size)
        self.num_cells = int(num_cells)
        self.run_dir = run_dir
        self.mesh = mesh
        self.label_points = None if mesh is None else mesh.imagery_centroids
        self._forward = forward  # tf.function: a packed batch -> (probabilities, features)
        self._exported_top_k = exported_top_k  # an export: photos' pixels -> (cell ids, probabilities)
        self.export_top_k = export_top_k

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | Path, mesh_path: str | Path | None = None) -> "M1Model":
        """M1 from a run directory (``m1/m1.keras``), an exported SavedModel directory, or a
        ``.tflite`` / ``.onnx`` file of M1 (by its suffix).

        The mesh (for label points and cell areas) is ``mesh_path`` if given, else the run's
        ``mesh/mesh.npz``; for an export at ``RUN_DIR/export/`` the run's mesh is found too.
        """
        from geoloc_tf.m1 import portable

        path = Path(path)
        if portable.format_of(path) is not None and not path.is_dir():
            return cls._load_portable(path, mesh_path)
        if RunLayout(path).m1_model.exists():
            return cls._load_run(path, mesh_path)
        if (path / SAVED_MODEL_FILE).exists():
            return cls._load_saved_model(path, mesh_path)
        raise errors.ExportError(
            f"{path}: neither a run directory (expected {RunLayout(path).m1_model}), an exported M1 "
            f"SavedModel (expected {path / SAVED_MODEL_FILE}) nor M1's LiteRT or ONNX file "
            f"({', '.join('RUN_DIR/export/m1' + suffix for suffix in PORTABLE_SUFFIXES.values())})"
        )

    @classmethod
    def _load_run(cls, run_dir: Path, mesh_path: str | Path | None) -> "M1Model":
        from geoloc_tf.m1.predict_records import prediction_model
        from geoloc_tf.saving import load_keras

        layout = RunLayout(run_dir)
        model = load_keras(layout.m1_model)
        image_size, num_cells = int(model.input_shape[1]), int(model.output_shape[-1])
        net = prediction_model(model, store_features=True)

        @tf.function(input_signature=preprocessing.PACKED_SIGNATURE)
        def forward(flat, shapes):
            batch = preprocessing.eval_packed(flat, shapes, image_size)
            probabilities, features = net(batch, training=False)
            return tf.cast(probabilities, tf.float32), tf.cast(features, tf.float32)

        mesh = _load_mesh(Path(mesh_path) if mesh_path else layout.mesh, num_cells, required=True)
        return cls(
            path=run_dir,
            image_size=image_size,
            num_cells=num_cells,
            run_dir=run_dir,
            mesh=mesh,
            forward=forward,
        )

    @classmethod
    def _load_saved_model(cls, path: Path, mesh_path: str | Path | None) -> "M1Model":
        loaded = tf.saved_model.load(str(path))
        if not hasattr(loaded, "serve"):
            raise errors.ExportError(
                f"{path}: SavedModel has no 'serve' endpoint; expected an M1 "
                "export of geoloc_tf.m1.export (JPEG bytes -> cells)"
            )
        outputs = loaded.signatures["serving_default"].structured_outputs
        if not {"cell_ids", "probabilities"} <= set(outputs):
            raise errors.ExportError(
                f"{path}: serving signature returns {sorted(outputs)}; expected cell_ids, "
                "probabilities, lat, lon (geoloc_tf.m1.export)"
            )
        export_top_k = int(outputs["cell_ids"].shape[-1])
        num_cells = _saved_model_num_cells(loaded, path)

        def top_cells(photos: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            encoded = [lossless_png(pixels) for pixels in photos]
            out = loaded.serve(tf.constant(encoded, tf.string, shape=[len(encoded)]))
            return out["cell_ids"].numpy(), out["probabilities"].numpy()

        return cls(
            path=path,
            image_size=_saved_model_image_size(loaded, path),
            num_cells=num_cells,
            run_dir=None,
            mesh=_export_mesh(path, mesh_path, num_cells),
            exported_top_k=top_cells,
            export_top_k=export_top_k,
        )

    @classmethod
    def _load_portable(cls, path: Path, mesh_path: str | Path | None) -> "M1Model":
        from geoloc_tf.m1 import portable

        runtime = portable.load(path)

        @tf.function(input_signature=preprocessing.PACKED_SIGNATURE)
        def pixels(flat, shapes):
            return preprocessing.pixels_packed(flat, shapes, runtime.image_size)

        def top_cells(photos: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            return runtime(pixels(*preprocessing.pack(photos)).numpy())

        return cls(
            path=path,
            image_size=runtime.image_size,
            num_cells=runtime.num_cells,
            run_dir=None,
            mesh=_export_mesh(path, mesh_path, runtime.num_cells),
            exported_top_k=top_cells,
            export_top_k=runtime.top_k,
        )

    @property
    def max_top_k(self) -> int:
        """How many cells ``top_k`` can give: every cell for a run directory, the export's top_k
        for an exported M1."""
        return self.num_cells if self.export_top_k is None else self.export_top_k

    @property
    def has_features(self) -> bool:
        """Whether this M1 gives its penultimate features (a run directory's; not an export's)."""
        return self._forward is not None

    # ------------------------------------------------------------------ inference
    # ``images``: uint8 (h, w, 3) pixels of each photo, of any sizes (``read_photo``, ``decode_photo``).
    def probabilities_and_features(self, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities float32 [n, num_cells], features float32 [n, d]) in one forward pass."""
        if self._forward is None:
            raise self._no_features_error()
        probabilities, features = self._forward(*preprocessing.pack(images))
        return probabilities.numpy(), features.numpy()

    def probabilities(self, images: list[np.ndarray]) -> np.ndarray:
        """float32 [n, num_cells]: M1's softmax over the mesh cells."""
        if self._forward is not None:
            return self.probabilities_and_features(images)[0]
        if self.max_top_k < self.num_cells:
            raise errors.InferenceError(
                f"{self.path}: this export returns only its top {self.export_top_k} of "
                f"{self.num_cells} cells (geoloc_tf.m1.export), not the full probabilities; use "
                "the run directory (m1/m1.keras) or re-export with top_k >= the number of cells"
            )
        ids, probs = self.top_k(images, self.num_cells)
        out = np.zeros((len(images), self.num_cells), np.float32)
        np.put_along_axis(out, ids.astype(np.int64), probs, axis=1)
        return out

    def features(self, images: list[np.ndarray]) -> np.ndarray:
        """float32 [n, d]: M1's penultimate features (appendix B), run directories only."""
        return self.probabilities_and_features(images)[1]

    def top_k(self, images: list[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(cell ids int32 [n, k'], probabilities float32 [n, k']), best first, k' = min(k, what
        the model can give): every cell for a run directory, the export's top_k for an export."""
        if self._forward is not None:
            top = tf.math.top_k(self.probabilities(images), k=min(int(k), self.num_cells))
            return top.indices.numpy().astype(np.int32), top.values.numpy()
        ids, probabilities = self._exported_top_k(images)
        kept = min(int(k), self.max_top_k)
        return ids[:, :kept].astype(np.int32), probabilities[:, :kept].astype(np.float32)

    def _no_features_error(self) -> errors.InferenceError:
        return errors.InferenceError(
            f"{self.path}: an exported M1 has no penultimate features (geoloc_tf.m1.export "
            "returns cells only); use the run directory (m1/m1.keras)"
        )


def lossless_png(pixels: np.ndarray) -> bytes:
    """uint8 (h, w, 3) pixels as a PNG (lossless: an exported SavedModel decodes the same pixels)."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, format="PNG", compress_level=1)
    return out.getvalue()


def _export_mesh(path: Path, mesh_path: str | Path | None, num_cells: int):
    """The mesh of an export: ``mesh_path`` if given (required then), else the run's mesh when the
    export lies at ``RUN_DIR/export/`` (None when there is none)."""
    guess = RunLayout.of_export(path).mesh  # RUN_DIR/export/m1[.tflite] -> the run's mesh
    return _load_mesh(Path(mesh_path) if mesh_path else guess, num_cells, required=mesh_path is not None)


def _load_mesh(path: Path, num_cells: int, required: bool):
    import mesh as mesh_lib

    if not path.exists():
        if required:
            raise errors.ExportError(
                f"{path}: no mesh file; expected the run's mesh/mesh.npz "
                f"with {num_cells} cells (label points and cell areas)"
            )
        return None
    mesh = mesh_lib.Mesh.load(path)
    if mesh.num_cells != num_cells:
        raise errors.ExportError(
            f"{path}: mesh has {mesh.num_cells} cells but M1 has {num_cells}; "
            "expected the mesh of the run that trained this model"
        )
    return mesh


def _saved_model_num_cells(loaded, path: Path) -> int:
    """Softmax width of an exported M1: the length of its logits bias."""
    logits = [v for v in loaded.variables if v.name.split("/")[0] == LOGITS_LAYER and len(v.shape) == 1]
    if len(logits) != 1:
        raise errors.ExportError(
            f"{path}: cannot find M1's logits layer {LOGITS_LAYER!r} among the SavedModel's variables"
        )
    return int(logits[0].shape[0])


def _saved_model_image_size(loaded, path: Path) -> int:
    """M1's input side of an exported M1: the size constant of its preprocessing resize."""
    graph = loaded.signatures["serving_default"].graph.as_graph_def()
    for function in graph.library.function:
        consts = {node.name: node for node in function.node_def if node.op == "Const"}
        for node in function.node_def:
            if node.op == "ResizeBilinear" and node.input[1].split(":")[0] in consts:
                size = tf.make_ndarray(consts[node.input[1].split(":")[0]].attr["value"].tensor)
                return int(size[0])
    raise errors.ExportError(
        f"{path}: no preprocessing resize in the serving signature; expected "
        "an M1 export of geoloc_tf.m1.export"
    )
