"""geoloc_tf: models (M1, M2, M3), training, evaluation, prediction and export, on TensorFlow/Keras 3.

Library code here takes plain arguments or config dataclasses; it never reads absl flags. The config
modules (``m2.config``, ``m3.config``, ``task_configs``) and ``run_layout`` import without
TensorFlow, so the runner parses flags fast; the package only checks that TensorFlow is installed.
"""

import importlib.util as _util

if _util.find_spec("tensorflow") is None:  # pragma: no cover - depends on the install
    raise ImportError(
        "geoloc_tf needs TensorFlow 2.21: install geoloc with the 'cpu' or 'gpu' extra, e.g. "
        'pip install -e ".[cpu]" (see BUILD.md)'
    )
