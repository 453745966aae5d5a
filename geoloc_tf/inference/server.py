"""The HTTP server of `geoloc serve`: photos answered by a trained model.

The command (``experiments.commands.serve``) loads the model and calls ``serve``; its settings are
``geoloc_tf.inference.config.ServerConfig``.

- ``POST /predict``: the photo as a raw body (``Content-Type: image/jpeg``, ``image/png``, ...,
  or ``application/octet-stream``; ``?posted_at=ISO8601&outdoor=P&top_k=K`` in the query) or as a
  ``multipart/form-data`` upload (field ``image``; optional fields ``posted_at``, ``outdoor``,
  ``top_k``). The answer is the JSON record of `geoloc predict` (``"model"`` says whether M1 or,
  with a posting time, M2 answered, §3.2).
- ``GET /healthz``: ``{"status": "ok", ...}`` with the model and the request counts.
- Errors are JSON ``{"error": ..., "status": ...}``: 413 body over ``--max_body_bytes``, 415 a body
  that is not an image (or an unknown content type), 400 a malformed upload, time or value, 411 no
  Content-Length, 404 an unknown path, 405 a wrong method.

Concurrent requests are batched: handler threads (``http.server.ThreadingHTTPServer``) validate
(``http_request``) and queue their photo; one model thread (``batcher``) takes up to
``--max_batch`` waiting photos per forward pass, waiting at most ``--batch_wait_ms`` for a batch to
fill. The server binds to 127.0.0.1 unless told otherwise: it has no authentication.
"""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import urlsplit

from geoloc_tf import errors
from geoloc_tf.inference.batcher import Batcher
from geoloc_tf.inference.config import ServerConfig
from geoloc_tf.inference.http_request import HttpError, parse_predict_request

log = logging.getLogger(__name__)


class _Handler(BaseHTTPRequestHandler):
    server_version = "geoloc"
    protocol_version = "HTTP/1.1"
    server: "GeolocHTTPServer"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = urlsplit(self.path).path
        if path == "/healthz":
            self._json(HTTPStatus.OK, self.server.health())
        elif path == "/predict":
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "use POST /predict with a photo")
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no such path {path}; try POST /predict or GET /healthz")

    def do_POST(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        if url.path != "/predict":
            self._drain_or_close()
            self._error(HTTPStatus.NOT_FOUND, f"no such path {url.path}; try POST /predict")
            return
        try:
            body = self._read_body()
            job = parse_predict_request(
                self.headers.get("Content-Type"), url.query, body, self.server.config.top_k
            )
            result = self.server.batcher.submit(job, self.server.config.request_timeout_s)
        except HttpError as error:
            self._error(error.status, str(error))
            return
        self._json(HTTPStatus.OK, result)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise HttpError(
                HTTPStatus.LENGTH_REQUIRED, "chunked bodies are not accepted; send Content-Length"
            )
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            raise HttpError(HTTPStatus.LENGTH_REQUIRED, "POST /predict needs a Content-Length")
        limit = self.server.config.max_body_bytes
        if int(length) > limit:
            self._drain_or_close()
            raise HttpError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"body of {int(length):,} bytes is over the limit of {limit:,} bytes (--max_body_bytes)",
            )
        return self.rfile.read(int(length))

    def _drain_or_close(self) -> None:
        """Reads and drops a refused body of a modest size (so the client reads the answer on a
        kept connection); a larger one closes the connection instead."""
        length = self.headers.get("Content-Length", "")
        left = int(length) if length.isdigit() else -1
        if 0 <= left <= 4 * self.server.config.max_body_bytes:
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
        else:
            self.close_connection = True

    def _json(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: HTTPStatus, message: str) -> None:
        self.server.count_error(status)
        self._json(status, {"error": message, "status": int(status)})

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
        log.debug("%s %s", self.address_string(), format % args)


class GeolocHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer holding the predictor's batcher and the configuration."""

    daemon_threads = True

    def __init__(self, predictor, config: ServerConfig):
        super().__init__((config.host, config.port), _Handler)
        self.config = config
        self.predictor = predictor
        self.batcher = Batcher(predictor, config.max_batch, config.batch_wait_ms / 1000.0)
        self.errors: dict[int, int] = {}
        self._lock = threading.Lock()

    @property
    def host_port(self) -> tuple[str, int]:
        """The (host, port) the server listens on."""
        host, port = self.server_address[:2]
        return cast(str, host), int(port)  # an AF_INET socket's address names its host as a str

    @property
    def url(self) -> str:
        host, port = self.host_port
        return f"http://{host}:{port}"

    def count_error(self, status: HTTPStatus) -> None:
        with self._lock:
            self.errors[int(status)] = self.errors.get(int(status), 0) + 1

    def health(self) -> dict[str, Any]:
        m1 = self.predictor.m1
        return {
            "status": "ok",
            "model": str(m1.path),
            "num_cells": m1.num_cells,
            "m2": self.predictor.has_m2,
            "answered": self.batcher.requests,
            "batches": self.batcher.batches,
            "largest_batch": self.batcher.largest_batch,
            "errors": {str(k): v for k, v in sorted(self.errors.items())},
        }


def start_server(predictor, config: ServerConfig = ServerConfig()) -> GeolocHTTPServer:
    """Binds, starts the model thread and serves on a background thread (``config.port=0``
    picks a free port: see ``.url``). Stop it with ``stop_server``."""
    server = GeolocHTTPServer(predictor, config)
    server.batcher.start()
    threading.Thread(target=server.serve_forever, name="geoloc-http", daemon=True).start()
    return server


def stop_server(server: GeolocHTTPServer) -> None:
    server.shutdown()
    server.server_close()
    server.batcher.stop()


def warm_up(predictor) -> None:
    """One tiny prediction (and one through M2) so the first request does not pay the tracing."""
    import numpy as np
    import tensorflow as tf

    image = tf.io.encode_jpeg(np.zeros((8, 8, 3), np.uint8)).numpy()
    predictor.predict([image], posted_at=[0 if predictor.has_m2 else None])


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve(predictor, config: ServerConfig) -> None:
    """Warms the model up, binds ``config.host:config.port`` and answers requests until Ctrl-C.

    A port that cannot be bound raises InferenceError naming it."""
    warm_up(predictor)
    try:
        server = GeolocHTTPServer(predictor, config)
    except OSError as error:
        raise errors.InferenceError(
            f"cannot listen on {config.host}:{config.port} ({error.strerror}); try another --port"
        ) from None
    server.batcher.start()
    if config.host not in LOOPBACK:
        log.warning("listening on %s: reachable from other machines, with no authentication", config.host)
    log.info(
        "serving %s on %s (POST /predict, GET /healthz); M2 %s; Ctrl-C stops",
        predictor.m1.path,
        server.url,
        "on" if predictor.has_m2 else "absent",
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        server.server_close()
        server.batcher.stop()
