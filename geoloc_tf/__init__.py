"""geoloc_tf: models (M1, M2, M3), training, evaluation, prediction and export, on TensorFlow/Keras 3.

Library code here takes plain arguments or config dataclasses; it never reads absl flags.

Its config modules (``geoloc_tf.m1.config``, ``geoloc_tf.runtime_config``, ...) import neither
TensorFlow nor Keras, so that the runner parses flags fast: the package only checks here that
TensorFlow is installed, and the modules that use it import it.
"""

import importlib.util as _importlib_util

if _importlib_util.find_spec("tensorflow") is None:  # pragma: no cover - depends on the install
    raise ImportError(
        "geoloc_tf needs TensorFlow 2.21: install geoloc with the 'cpu' or 'gpu' extra, e.g. "
        "pip install -e \".[cpu]\" (see BUILD.md)")
