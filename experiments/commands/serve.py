"""`geoloc serve`: a small HTTP server answering photos with a trained model.

    geoloc serve --model=RUN_DIR [--host=127.0.0.1] [--port=8080] [--max_body_bytes=16777216]
                 [--index=RUN_DIR/index/m1_train]

``GET /`` is a page for a browser: drop a photo, see the top cells, the 50 % and 90 % regions and
the label point on a world map, and, with a feature index (``--index``, default the run's index of
M1's training photos when `geoloc index` has built it), the nearest indexed photos; with
--cell_retrieval_cells each answer also holds ``retrieval``, the point of retrieval inside the top
cells in that index (``geoloc_tf.retrieval.cell_retrieval``; a run directory's M1 only).
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

from experiments.commands import Command, missing_files_are_user_errors
from experiments.commands.predict import define_index_input, define_model_inputs, index_path, open_retrieval
from experiments.errors import ConfigError
from geoloc_tf.inference.config import ServerConfig


def _define_inputs(flag_values: flags.FlagValues) -> None:
    define_model_inputs(flag_values)
    define_index_input(
        flag_values,
        "whose nearest photos the page shows, and that retrieval inside the top cells "
        "(--cell_retrieval_cells) searches",
    )


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
    predictor = Predictor.load(inputs.model, inputs.mesh, with_m2=config.m2)
    predictor = open_retrieval(config.cell_retrieval, config.engine, inputs.model, inputs.index, predictor)
    serve(predictor, config, nearest)
    return 0


COMMAND = Command(
    name="serve",
    summary="HTTP server: a page at / and POST /predict answer a photo with a trained model (bound "
    "to 127.0.0.1 unless --host says otherwise; no authentication).",
    sections={"": ServerConfig},
    define_inputs=_define_inputs,
    run=_run,
)
