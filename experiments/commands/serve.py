"""`geoloc serve`: a small HTTP server answering photos with a trained model.

    geoloc serve --model=RUN_DIR [--host=127.0.0.1] [--port=8080] [--max_body_bytes=16777216]
                 [--index=RUN_DIR/index/m1_train]

``GET /`` is a page for a browser: drop a photo, see the top cells, the 50 % and 90 % regions and
the label point on a world map, and, with a feature index (``--index``, default the run's index of
M1's training photos when `geoloc index` has built it), the nearest indexed photos.
``POST /predict`` with a photo (a raw body or a multipart upload, optional posting time, outdoor
probability and k) answers the JSON record of `geoloc predict`; ``GET /healthz`` reports the model
and the request counts; requests, answers and error statuses are described in
``geoloc_tf.inference.server``. Concurrent requests share forward passes (``--max_batch``,
``--batch_wait_ms``). The server binds to 127.0.0.1 unless told otherwise: it has no
authentication. Settings: ``geoloc_tf.inference.config.ServerConfig``; the model is the tool's own
option. Ctrl-C stops it.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

from absl import flags

from experiments.commands import Command, missing_files_are_user_errors
from experiments.commands.predict import define_model_inputs
from experiments.errors import ConfigError
from geoloc_tf.inference.config import ServerConfig


def _define_inputs(flag_values: flags.FlagValues) -> None:
    define_model_inputs(flag_values)
    flags.DEFINE_string(
        "index",
        None,
        "Feature index whose nearest photos the page shows (geoloc index writes one; default: "
        "the run's index of M1's training photos if it exists; --index= (empty): none).",
        flag_values=flag_values,
    )


def index_path(model: str, index: str | None) -> Path | None:
    """The feature index `geoloc serve` opens: ``--index`` when given (empty: none), else the run's
    index of M1's training photos when ``model`` is a run directory that has one."""
    from data_pipelines.splits import M1_TRAIN
    from geoloc_tf.retrieval.feature_index import META_FILE
    from geoloc_tf.run_layout import RunLayout

    if index is not None:
        return Path(index) if index else None
    default = RunLayout(model).index_dir(M1_TRAIN)
    return default if (default / META_FILE).is_file() else None


#: Modules of the ``serve`` extra (setup.py).
SERVE_MODULES = ("starlette", "uvicorn", "h11", "multipart", "anyio")


def _run(configs: dict[str, Any], inputs: flags.FlagValues, _: list[str]) -> int:
    missing = [name for name in SERVE_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"geoloc serve needs the serve extra ({', '.join(missing)} not installed): "
            'pip install "geoloc[serve]" (or -e ".[serve]" in a checkout)'
        )
    from geoloc_tf.inference.neighbours import NearestPhotos
    from geoloc_tf.inference.photo_predictor import Predictor
    from geoloc_tf.inference.server import serve

    config: ServerConfig = configs[""]
    logging.basicConfig(level=logging.INFO, format="%(levelname).1s %(name)s] %(message)s")
    index = index_path(inputs.model, inputs.index)
    with missing_files_are_user_errors():
        nearest = None if index is None else NearestPhotos.open(index, config.engine)
    serve(Predictor.load(inputs.model, inputs.mesh, with_m2=config.m2), config, nearest)
    return 0


COMMAND = Command(
    name="serve",
    summary="HTTP server: a page at / and POST /predict answer a photo with a trained model (bound "
    "to 127.0.0.1 unless --host says otherwise; no authentication).",
    sections={"": ServerConfig},
    define_inputs=_define_inputs,
    run=_run,
)
