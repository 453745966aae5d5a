"""`geoloc serve`: a small HTTP server answering photos with a trained model.

    geoloc serve --model=RUN_DIR [--host=127.0.0.1] [--port=8080] [--max_body_bytes=16777216]

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
from typing import Any

from absl import flags

from experiments.commands import Command
from experiments.commands.predict import define_model_inputs
from experiments.errors import ConfigError
from geoloc_tf.inference.config import ServerConfig

#: Modules of the ``serve`` extra (setup.py).
SERVE_MODULES = ("starlette", "uvicorn", "h11", "multipart", "anyio")


def _run(configs: dict[str, Any], inputs: flags.FlagValues, _: list[str]) -> int:
    missing = [name for name in SERVE_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"geoloc serve needs the serve extra ({', '.join(missing)} not installed): "
            'pip install "geoloc[serve]" (or -e ".[serve]" in a checkout)'
        )
    from geoloc_tf.inference.photo_predictor import Predictor
    from geoloc_tf.inference.server import serve

    config: ServerConfig = configs[""]
    logging.basicConfig(level=logging.INFO, format="%(levelname).1s %(name)s] %(message)s")
    serve(Predictor.load(inputs.model, inputs.mesh, with_m2=config.m2), config)
    return 0


COMMAND = Command(
    name="serve",
    summary="HTTP server: POST /predict answers a photo with a trained model (bound to 127.0.0.1 "
    "unless --host says otherwise; no authentication).",
    sections={"": ServerConfig},
    define_inputs=define_model_inputs,
    run=_run,
)
