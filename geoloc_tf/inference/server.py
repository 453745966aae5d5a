"""The HTTP server of `geoloc serve`: photos answered by a trained model.

The command (``experiments.commands.serve``; the ``serve`` extra of setup.py installs this stack) loads the model and calls ``serve``; its settings are
``geoloc_tf.inference.config.ServerConfig``.

- ``POST /predict``: the photo as a raw body (``Content-Type: image/jpeg``, ``image/png``, ...,
  or ``application/octet-stream``; ``?posted_at=ISO8601&outdoor=P&top_k=K`` in the query) or as a
  ``multipart/form-data`` upload (file field ``image``; optional fields ``posted_at``, ``outdoor``,
  ``top_k``). The answer is the JSON record of `geoloc predict` (``"model"`` says whether M1 or,
  with a posting time, M2 answered, §3.2).
  With ``neighbours=K`` (a server with a feature index, ``--index``) the record also holds the K
  nearest indexed photos (``geoloc_tf.inference.neighbours``): rank, feature distance, lat, lon,
  km from the answer.
- ``GET /``: the page (``static/``): choose or drop a photo, see the answer on a world map. It
  sends POST /predict like any client, so every limit below applies to it. ``GET /page.js`` and
  ``GET /page.css`` are its script and style: a fixed set of files read from the package at start,
  never a path from the request.
- ``GET /basemap.geojson``: the coastlines and borders under the page's map
  (``mesh.basemap.geojson_bytes("110m")``).
- ``GET /cells?ids=3,7,1``: GeoJSON polygons of those mesh cells (``mesh.geojson.cells_geojson``),
  at most ``MAX_CELL_IDS`` per request; an id that is not a cell gets 400.
- ``GET /healthz``: ``{"status": "ok", ...}`` with the model's name, the request counts and the
  feature index's size (null without one).
- Errors are JSON ``{"error": ..., "status": ...}``: 400 a malformed upload, time or value, 404 an
  unknown path, 405 a wrong method, 408 a body that did not arrive in time, 411 no Content-Length,
  413 a body over ``--max_body_bytes`` or an image over ``--max_pixels``, 415 a body that is not a
  still image of a supported format, 500 a photo the model could not answer (the trace is in the
  log, never in the answer), 503 over ``--max_connections`` or no answer within
  ``--request_timeout_s``.

The HTTP stack is Starlette on uvicorn (h11), not a hand-written one. Why these: uvicorn is the
most used ASGI server, with a cap on concurrent connections (``limit_concurrency``), keep-alive
timeouts and a graceful shutdown on SIGTERM that lets requests in flight be answered; Starlette is
the small toolkit under FastAPI (whose validation and OpenAPI layers two endpoints do not need),
with a streaming multipart parser that bounds the number of parts. uvicorn has no deadline for a
request's head, so ``HeadTimeoutH11`` (its h11 protocol plus one timer, given through uvicorn's
``http`` option) closes a connection that has not sent a whole head within ``--header_timeout_s``;
the body's deadline is the endpoint's (``http_request.read_body``). An asyncio server holds a slow
client with a socket, not a thread.

Concurrent requests are batched: the event loop reads requests; a bounded pool of
``--decode_threads`` threads checks each photo with the image decoder; one model thread
(``batcher``) takes up to ``--max_batch`` waiting photos per forward pass, waiting at most
``--batch_wait_ms`` for a batch to fill, and answers each request alone when a batch fails. The
server binds to 127.0.0.1 unless told otherwise: it has no authentication.
"""

from __future__ import annotations

import asyncio
import collections
import importlib.resources
import logging
import signal
import socket
import threading
from http import HTTPStatus
from typing import Any

import anyio
import h11
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from data_pipelines import values
from geoloc_tf import errors
from geoloc_tf.inference.batcher import Batcher, HttpError
from geoloc_tf.inference.config import ServerConfig
from geoloc_tf.inference.http_request import make_job, read_upload
from geoloc_tf.inference.neighbours import NearestPhotos

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: Connections the kernel queues before the server accepts them.
BACKLOG = 2048
#: Largest request head (request line and headers) accepted, bytes.
MAX_HEAD_BYTES = 16 * 1024
#: Most cells one GET /cells answers (the page asks in chunks of 500).
MAX_CELL_IDS = 1000
#: The files of the page, by path: (file in static/, content type). Nothing else is served from
#: the package, so no request path can reach another file.
STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/page.js": ("page.js", "text/javascript; charset=utf-8"),
    "/page.css": ("page.css", "text/css; charset=utf-8"),
}
#: The page loads only what this server sends (no CDN, no tiles); the chosen photo's preview is
#: a blob: URL.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; object-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
ENDPOINTS = "GET / (the page), POST /predict, GET /cells?ids=..., GET /basemap.geojson or GET /healthz"


def head_timeout_protocol(seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a deadline for each request's head (``header_timeout_s``)."""

    class HeadTimeoutH11(H11Protocol):
        """Closes a connection whose request head is not complete ``seconds`` after it opened or
        after its previous answer (slowloris-style clients)."""

        head_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self.arm_head_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self.arm_head_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            if self.head_deadline is not None:
                self.head_deadline.cancel()
            super().connection_lost(exc)

        def arm_head_deadline(self) -> None:
            if self.head_deadline is not None:
                self.head_deadline.cancel()
            self.head_deadline = self.loop.call_later(seconds, self.head_too_slow)

        def head_too_slow(self) -> None:
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                log.info("closed a connection that sent no whole request head within %g s", seconds)
                self.transport.close()

    return HeadTimeoutH11


class GeolocServer:
    """The app, its model thread and its listening socket; ``run`` serves until stopped."""

    def __init__(self, predictor, config: ServerConfig, nearest: NearestPhotos | None = None):
        from mesh.basemap import geojson_bytes

        self.config = config
        self.predictor = predictor
        self.nearest = nearest
        self.batcher = Batcher(predictor, config.max_batch, config.batch_wait_ms / 1000.0, nearest)
        self.errors: collections.Counter[int] = collections.Counter()
        self.static = {route: (_static_file(name), kind) for route, (name, kind) in STATIC_FILES.items()}
        self.basemap = geojson_bytes("110m")
        self.cell_features: dict[int, dict[str, Any]] = {}  # GeoJSON features drawn so far
        self.socket = _bind(config.host, config.port)
        self.decode_limiter: anyio.CapacityLimiter | None = None  # made in the server's event loop
        app = Starlette(
            routes=[
                *(Route(route, self.page, methods=["GET"]) for route in STATIC_FILES),
                Route("/predict", self.predict, methods=["POST"]),
                Route("/cells", self.cells, methods=["GET"]),
                Route("/basemap.geojson", self.basemap_geojson, methods=["GET"]),
                Route("/healthz", self.healthz, methods=["GET"]),
            ],
            exception_handlers={HTTPException: self.http_exception, Exception: self.unexpected},
        )
        self.uvicorn = uvicorn.Server(
            uvicorn.Config(
                app,
                http=head_timeout_protocol(config.header_timeout_s),
                lifespan="off",
                log_config=None,
                access_log=False,
                server_header=False,
                limit_concurrency=config.max_connections,
                timeout_keep_alive=config.keep_alive_s,
                timeout_graceful_shutdown=config.shutdown_timeout_s,
                h11_max_incomplete_event_size=MAX_HEAD_BYTES,
            )
        )

    # ------------------------------------------------------------------ addresses
    @property
    def host_port(self) -> tuple[str, int]:
        """The (host, port) the server listens on."""
        host, port = self.socket.getsockname()[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.host_port
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    # ------------------------------------------------------------------ endpoints
    async def predict(self, request: Request) -> Response:
        try:
            image, options, name = await read_upload(request, self.config)
            if self.decode_limiter is None:
                self.decode_limiter = anyio.CapacityLimiter(self.config.decode_threads)
            job = await anyio.to_thread.run_sync(
                make_job,
                image,
                options,
                name,
                self.config,
                self.predictor.m1.image_size,
                limiter=self.decode_limiter,
            )
            if job.neighbours and self.nearest is None:
                raise HttpError(
                    HTTPStatus.BAD_REQUEST,
                    "neighbours: this server has no feature index (geoloc serve --index=DIR; "
                    "geoloc index builds one)",
                )
            future = asyncio.wrap_future(self.batcher.submit(job))
            try:
                async with asyncio.timeout(self.config.request_timeout_s):
                    record = await future
            except TimeoutError:
                job.future.cancel()
                raise HttpError(
                    HTTPStatus.SERVICE_UNAVAILABLE,
                    f"no answer within {self.config.request_timeout_s:g} s; the server is overloaded",
                ) from None
        except HttpError as error:
            return self.error(error.status, str(error))
        return JSONResponse(record)

    async def healthz(self, request: Request) -> Response:
        return JSONResponse(self.health())

    async def page(self, request: Request) -> Response:
        content, kind = self.static[request.url.path]
        return Response(content, media_type=kind, headers=PAGE_HEADERS)

    async def basemap_geojson(self, request: Request) -> Response:
        return Response(
            self.basemap,
            media_type="application/geo+json",
            headers={"Cache-Control": "max-age=86400", "X-Content-Type-Options": "nosniff"},
        )

    async def cells(self, request: Request) -> Response:
        """GeoJSON of the cells ``?ids=`` (comma-separated class ids), in that order."""
        try:
            ids = parse_cell_ids(request.query_params.get("ids", ""), self.predictor.m1.num_cells)
        except HttpError as error:
            return self.error(error.status, str(error))
        collection = await anyio.to_thread.run_sync(self.cell_collection, ids)
        return JSONResponse(collection, media_type="application/geo+json")

    def cell_collection(self, ids: list[int]) -> dict[str, Any]:
        """The cells ``ids`` as a FeatureCollection; each cell's polygon is built once
        (``mesh.geojson.cells_geojson``) and kept (at most one per cell of the mesh)."""
        from mesh.geojson import cells_geojson

        missing = sorted(set(ids) - self.cell_features.keys())
        if missing:
            features = cells_geojson(self.predictor.m1.mesh, missing)["features"]
            self.cell_features.update(zip(missing, features))
        return {"type": "FeatureCollection", "features": [self.cell_features[i] for i in ids]}

    async def http_exception(self, request: Request, error: Exception) -> Response:
        status = HTTPStatus(getattr(error, "status_code", 500))
        if status == HTTPStatus.NOT_FOUND:
            message = f"no such path {request.url.path}; try {ENDPOINTS}"
        elif status == HTTPStatus.METHOD_NOT_ALLOWED:
            message = f"{request.method} is not allowed on {request.url.path}; use {ENDPOINTS}"
        else:
            message = str(getattr(error, "detail", status.phrase))
        return self.error(status, message)

    async def unexpected(self, request: Request, error: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return self.error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error; the server log has the details")

    def error(self, status: HTTPStatus, message: str) -> Response:
        self.errors[int(status)] += 1
        return JSONResponse({"error": message, "status": int(status)}, status_code=int(status))

    def health(self) -> dict[str, Any]:
        m1 = self.predictor.m1
        return {
            "status": "ok",
            "model": m1.path.name,  # a name, never the server's file system layout
            "num_cells": m1.num_cells,
            "m2": self.predictor.has_m2,
            "answered": self.batcher.requests,
            "batches": self.batcher.batches,
            "largest_batch": self.batcher.largest_batch,
            "errors": {str(k): v for k, v in sorted(self.errors.items())},
            "top_k": self.config.top_k,
            "index": None if self.nearest is None else self.nearest.summary(),
        }

    # ------------------------------------------------------------------ running
    def run(self) -> None:
        """Serves until SIGTERM / Ctrl-C (main thread) or ``stop``; requests in flight are
        answered first (up to ``shutdown_timeout_s``), then the model thread stops."""
        self.batcher.start()
        try:
            self.uvicorn.run(sockets=[self.socket])
        finally:
            self.batcher.stop()
            self.socket.close()

    def stop(self) -> None:
        self.uvicorn.should_exit = True


def parse_cell_ids(text: str, num_cells: int) -> list[int]:
    """The cell ids of ``?ids=3,7,1``: 1..MAX_CELL_IDS ids in ASCII digits, each a cell of the
    mesh (0..num_cells-1), else HttpError 400 naming the bad one."""
    parts = text.split(",") if text.strip() else []
    if not parts or len(parts) > MAX_CELL_IDS:
        raise HttpError(
            HTTPStatus.BAD_REQUEST,
            f"ids: got {len(parts)} cell ids; expected 1..{MAX_CELL_IDS} comma-separated, e.g. ?ids=3,7,1",
        )
    try:
        return [values.ascii_int(part, 0, num_cells - 1) for part in parts]
    except values.ValueProblem as problem:
        raise HttpError(
            HTTPStatus.BAD_REQUEST, f"ids: {problem} (the mesh has cells 0..{num_cells - 1})"
        ) from None


def _static_file(name: str) -> bytes:
    """A file of the page, from the package's ``static/`` (package data, setup.py)."""
    return (importlib.resources.files("geoloc_tf.inference") / "static" / name).read_bytes()


def _bind(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port`` (InferenceError naming them when that fails)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)  # connections queue from now on, before uvicorn accepts them
    except OSError as error:
        raise errors.InferenceError(
            f"cannot listen on {host}:{port} ({error.strerror or error}); try another --port or --host"
        ) from None
    sock.set_inheritable(True)
    return sock


def start_server(
    predictor, config: ServerConfig = ServerConfig(), nearest: NearestPhotos | None = None
) -> GeolocServer:
    """Serves on a background thread (``config.port=0`` picks a free port: see ``.url``) and
    returns once the server accepts connections. Stop it with ``stop_server``."""
    server = GeolocServer(predictor, config, nearest)
    thread = threading.Thread(target=server.run, name="geoloc-http", daemon=True)
    thread.start()
    server.thread = thread  # type: ignore[attr-defined]
    while not server.uvicorn.started:
        if not thread.is_alive():
            raise errors.InferenceError(f"the server on {server.url} stopped while starting; see the log")
        thread.join(0.01)
    return server


def stop_server(server: GeolocServer) -> None:
    server.stop()
    server.thread.join(timeout=60)  # type: ignore[attr-defined]


def warm_up(predictor) -> None:
    """One tiny prediction (and one through M2) so the first request does not pay the tracing."""
    import numpy as np

    predictor.predict([np.zeros((8, 8, 3), np.uint8)], posted_at=[0 if predictor.has_m2 else None])


def serve(predictor, config: ServerConfig, nearest: NearestPhotos | None = None) -> None:
    """Warms the model up, binds ``config.host:config.port`` and answers requests until SIGTERM
    or Ctrl-C. A port that cannot be bound raises InferenceError naming it. ``nearest``: the
    feature index whose photos the page shows beside an answer."""
    warm_up(predictor)
    if nearest is not None:
        nearest.check_model(predictor)
    server = GeolocServer(predictor, config, nearest)
    if config.host not in LOOPBACK:
        log.warning("listening on %s: reachable from other machines, with no authentication", config.host)
    log.info(
        "serving %s on %s (the page: open %s/ in a browser; POST /predict, GET /healthz); M2 %s; "
        "feature index: %s; SIGTERM or Ctrl-C stops",
        predictor.m1.path.name,
        server.url,
        server.url,
        "on" if predictor.has_m2 else "absent",
        "none" if nearest is None else f"{len(nearest.index):,} photos",
    )
    previous = signal.signal(signal.SIGTERM, _terminated) if _main_thread() else None
    try:
        server.run()
    except Terminated:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    log.info("stopped; every request in flight was answered")


class Terminated(Exception):
    """SIGTERM, raised once uvicorn has shut down gracefully (it re-raises the signals it caught):
    a clean stop, exit status 0."""


def _terminated(signum, frame) -> None:
    raise Terminated()


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
