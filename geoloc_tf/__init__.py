"""geoloc_tf: models (M1, M2, M3), training, evaluation, prediction and export, on TensorFlow/Keras 3.

Library code here takes plain arguments or config dataclasses; it never reads absl flags.
"""

try:
    import tensorflow as _tf  # noqa: F401
except ImportError as _error:  # pragma: no cover - depends on the install
    raise ImportError(
        "geoloc_tf needs TensorFlow 2.21: install geoloc with the 'cpu' or 'gpu' extra, e.g. "
        "pip install -e \".[cpu]\" (see BUILD.md)") from _error
