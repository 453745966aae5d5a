"""geoloc_tf: models (M1, M2, M3), training, evaluation, prediction and export, on Keras 3.

Library code here takes plain arguments or config dataclasses; it never reads absl flags. The config
modules (``m2.config``, ``m3.config``, ``task_configs``) and ``run_layout`` import without
TensorFlow, so the runner parses flags fast.

The models (``m1.inception_v4``, ``m2.model``, ``m3.model``) import only Keras, so on the JAX or
PyTorch backend the package imports without TensorFlow installed (this is what lets
``experiments.benchmarks.m1_bench`` run on a GPU machine that has no TensorFlow); the modules that
need TensorFlow (tf.data input, training loops, export) import it themselves and fail with
"No module named 'tensorflow'". On the TensorFlow backend, a missing TensorFlow is reported here.
"""

import importlib.util as _util
import json as _json
import os as _os
import sys as _sys


def keras_backend() -> str:
    """The Keras backend this process uses or will use: the imported ``keras``'s, else what Keras
    will read when imported (``KERAS_BACKEND``, else ``backend`` of ``$KERAS_HOME/keras.json`` or
    ``~/.keras/keras.json``, else "tensorflow"), without importing Keras."""
    keras = _sys.modules.get("keras")
    if keras is not None and hasattr(keras, "backend"):
        return keras.backend.backend()
    if _os.environ.get("KERAS_BACKEND"):
        return _os.environ["KERAS_BACKEND"]
    home = _os.environ.get("KERAS_HOME") or _os.path.join(_os.path.expanduser("~"), ".keras")
    try:
        with open(_os.path.join(home, "keras.json")) as file:
            return str(_json.load(file).get("backend", "tensorflow"))
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


if keras_backend() == "tensorflow" and _util.find_spec("tensorflow") is None:  # pragma: no cover
    raise ImportError(
        "geoloc_tf needs TensorFlow 2.21 on the Keras 'tensorflow' backend: install geoloc with the "
        "'cpu' or 'gpu' extra, e.g. pip install -e \".[cpu]\" (see BUILD.md), or set KERAS_BACKEND=jax"
    )
