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
- Errors are JSON ``{"error": ..., "status": ...}`` on one line: 400 a malformed upload, time or
  value, 404 an unknown path, 405 a wrong method, 408 a body that did not arrive in time, 411 no
  Content-Length, 413 a body over ``--max_body_bytes``, an image over ``--max_pixels``, an image
  whose declared pixels need more than ``--decode_memory_mb`` to decode (4 bytes each, from the
  header) or whose decoding went over ``--decode_cpu_s`` of CPU or ``--decode_memory_mb`` of
  memory in its worker, 415 a body that is not a still image of a supported format (or whose
  decoder process crashed), 431 a request head over ``MAX_HEAD_BYTES`` (16 KiB), 500 a photo the
  model could not answer (the trace is in the log, never in the answer), 503 a request arriving
  while ``--max_connections`` connections are open, or no decode worker or no answer within
  ``--request_timeout_s``.

Limits, and what a client past them gets:

- a request head must be complete within ``--header_timeout_s`` (5 s) of the connection's opening
  or of its previous answer: closed; over 16 KiB, in one packet or many: 431;
- connections from one client address: at most ``--max_connections_per_client`` (64); a further
  one takes the place of that address's oldest connection still waiting for a request head
  (idle, or sending one slowly), which is closed; when every one of them is answering a request,
  the new one is closed at once. So idle sockets cannot lock out even a client that shares their
  address (a NAT): its new connection, which sends its head at once, evicts them;
- connections in all: ``--max_connections`` (4096, idle ones included: uvicorn's
  ``limit_concurrency`` compares a new request with the open connections and with the requests in
  flight); a request beyond gets 503. At start the soft limit of open files is raised toward the
  hard one to fit them; when the hard one is too low the cap is lowered with a warning;
- an idle kept-alive connection: closed after ``--keep_alive_s``; a body: ``--body_timeout_s``
  and ``--max_body_bytes``; a multipart upload: ``--max_parts``;
- a photo: ``--max_pixels`` from its header; then decoded in a worker process
  (``data_pipelines.decode_pool``) under ``--decode_cpu_s`` of CPU and ``--decode_memory_mb`` of
  memory, in one of two lanes chosen from its header: ``--decode_workers`` processes for cheap
  photos (at most ``--decode_fast_pixels``, few JPEG scans and markers, no BMP run-length
  coding) and ``--decode_slow_workers`` for the others, so expensive photos arriving together
  wait for each other and never occupy the workers that valid photos need. Workers run niced
  below the event loop and the model thread; one past a limit is killed and replaced, one that
  grew is replaced after its answer, so the server's memory comes back after large photos;
- a request's answer: ``--request_timeout_s``.

The HTTP stack is Starlette on uvicorn (h11), not a hand-written one. Why these: uvicorn is the
most used ASGI server, with a cap on concurrent connections (``limit_concurrency``), keep-alive
timeouts and a graceful shutdown on SIGTERM that lets requests in flight be answered; Starlette is
the small toolkit under FastAPI (whose validation and OpenAPI layers two endpoints do not need),
with a streaming multipart parser that bounds the number of parts. uvicorn has no deadline for a
request's head, no cap per client and no bound on a head that arrives whole, so
``HeadTimeoutH11`` (its h11 protocol plus one timer, a count of connections per address and a
size check, given through uvicorn's ``http`` option) adds them; the body's deadline is the endpoint's (``http_request.read_body``). An asyncio server holds a slow
client with a socket, not a thread.

Concurrent requests are batched: the event loop reads requests; a thread per request waiting for
its decode worker (at most ``THREADS_PER_DECODE_WORKER`` per worker of a lane; the others wait in
the event loop) sends the photo to the pool; one model thread (``batcher``) takes up to
``--max_batch`` waiting photos per forward pass, waiting at most ``--batch_wait_ms`` for a batch
to fill, and answers each request alone when a batch fails. The server binds to 127.0.0.1 unless
told otherwise: it has no authentication.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import importlib.resources
import json
import logging
import re
import resource
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

from data_pipelines import decode_pool, values
from geoloc_tf import errors
from geoloc_tf.inference.batcher import Batcher, HttpError
from geoloc_tf.inference.config import ServerConfig
from geoloc_tf.inference.http_request import make_job, read_upload
from geoloc_tf.inference.neighbours import NearestPhotos

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: Connections the kernel queues before the server accepts them.
BACKLOG = 2048
#: Largest request head (request line and headers) accepted, bytes; a larger one gets 431.
MAX_HEAD_BYTES = 16 * 1024
#: The end of a request head (h11 also accepts bare newlines).
HEAD_END = re.compile(rb"\r?\n\r?\n")
#: How long a connection refused with 431 stays open for the client to read the answer, s.
HEAD_LINGER_S = 2.0
#: Open files the server needs besides its connections (model, index, decode workers' pipes).
FILES_BESIDES_CONNECTIONS = 256
#: Requests that may wait for a decode worker on threads, per worker of the lane; the others
#: wait in the event loop, holding no thread.
THREADS_PER_DECODE_WORKER = 2
#: A body at least this large makes the server give freed memory back to the OS within
#: ``TRIM_EVERY_S`` (``GeolocServer.release_memory``).
LARGE_BODY_BYTES = 1 << 20
TRIM_EVERY_S = 2.0
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


def head_timeout_protocol(
    seconds: float, per_client: int, max_head_bytes: int = MAX_HEAD_BYTES
) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a deadline for each request's head (``header_timeout_s``), a
    cap on the connections open from one client address (``max_connections_per_client``) and a
    bound on the head's size that holds however the head arrives."""
    # The open connections of each client address, oldest first (the event loop's thread only).
    open_from: dict[str, dict[Any, None]] = {}  # HeadTimeoutH11 connections

    class HeadTimeoutH11(H11Protocol):
        """Closes a connection whose request head is not complete ``seconds`` after it opened or
        after its previous answer (slowloris-style clients), makes room for a connection beyond
        ``per_client`` from one address by closing that address's oldest one still waiting for
        a head (else closes the new one), and answers a head over ``max_head_bytes`` with 431.

        The head's size is checked here because h11's ``max_incomplete_event_size`` bounds only
        a head still incomplete in its buffer: a head that arrives whole in one read (up to the
        256 KiB asyncio reads at once) is parsed whatever its size."""

        head_deadline: asyncio.TimerHandle | None = None
        address: str | None = None  # counted in open_from while open
        refusing = False  # a 431 was sent: what the client still sends is discarded

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            peer = transport.get_extra_info("peername")
            address = str(peer[0]) if isinstance(peer, tuple) and peer else None
            if address is not None:
                mine = open_from.setdefault(address, {})
                if len(mine) >= per_client:
                    waiting = next((c for c in mine if c.conn.their_state is h11.IDLE), None)
                    if waiting is None:
                        log.debug("closed a connection from %s: %d already busy", address, per_client)
                        self.transport.close()
                        return
                    waiting.forget_address()
                    waiting.transport.close()
                    log.debug("closed the oldest idle connection of %s for a new one", address)
                mine[self] = None
                self.address = address
            self.arm_head_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self.arm_head_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            self.forget_address()
            if self.head_deadline is not None:
                self.head_deadline.cancel()
            super().connection_lost(exc)

        def forget_address(self) -> None:
            """No longer counted among its address's open connections."""
            if self.address is not None:
                mine = open_from.get(self.address, {})
                mine.pop(self, None)
                if not mine:
                    open_from.pop(self.address, None)
                self.address = None

        def data_received(self, data: bytes) -> None:
            if self.refusing:
                return
            if self.conn.their_state is h11.IDLE:  # reading a request head
                pending = self.conn.trailing_data[0]
                if len(pending) + len(data) > max_head_bytes:
                    head = pending + data
                    if HEAD_END.search(head, 0, max_head_bytes + 4) is None:
                        self.refuse_head()
                        return
            super().data_received(data)

        def refuse_head(self) -> None:
            """431 with a JSON error, then the connection closes once the client has stopped
            sending (or after ``HEAD_LINGER_S``): closing at once with unread bytes would reset
            it before the client reads the answer."""
            self.refusing = True
            body = json.dumps(
                {
                    "error": f"request head over {max_head_bytes:,} bytes (request line and headers)",
                    "status": HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE.value,
                }
            ).encode()
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
                b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
            )
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(HEAD_LINGER_S, self.transport.close)
            log.info("refused a request head over %d bytes", max_head_bytes)

        def arm_head_deadline(self) -> None:
            if self.head_deadline is not None:
                self.head_deadline.cancel()
            self.head_deadline = self.loop.call_later(seconds, self.head_too_slow)

        def head_too_slow(self) -> None:
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                log.debug("closed a connection that sent no whole request head within %g s", seconds)
                self.transport.close()

    return HeadTimeoutH11


def raise_open_file_limit(connections: int) -> int:
    """Raises this process's soft limit of open files toward its hard limit so that
    ``connections`` sockets fit beside ``FILES_BESIDES_CONNECTIONS`` other files; returns the
    connection cap that fits (``connections``, or less with a warning when the hard limit is
    too low: never a cap the process cannot honour)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + FILES_BESIDES_CONNECTIONS
    if hard != resource.RLIM_INFINITY and wanted > hard:
        fits = max(2, hard - FILES_BESIDES_CONNECTIONS)
        log.warning(
            "--max_connections=%d needs %d open files but this process may open at most %d "
            "(ulimit -Hn); serving at most %d connections",
            connections,
            wanted,
            hard,
            fits,
        )
        connections, wanted = fits, hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return connections


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
        self.stopped = threading.Event()
        self.large_bodies = False  # set by requests, cleared by release_memory
        self.max_connections = raise_open_file_limit(config.max_connections)
        self.pool = decode_pool.DecodePool(
            {"fast": config.decode_workers, "slow": config.decode_slow_workers},
            decode_pool.Limits(cpu_s=config.decode_cpu_s, memory_mb=config.decode_memory_mb),
        )
        self.limiters: dict[str, anyio.CapacityLimiter] = {}  # made in the server's event loop
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
                http=head_timeout_protocol(config.header_timeout_s, config.max_connections_per_client),
                lifespan="off",
                log_config=None,
                access_log=False,
                server_header=False,
                limit_concurrency=self.max_connections,
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
            self.large_bodies |= len(image) >= LARGE_BODY_BYTES
            lane = self.lane(image)
            decode = functools.partial(self.pool.run, lane, wait_s=self.config.request_timeout_s)
            try:
                job = await anyio.to_thread.run_sync(
                    make_job,
                    image,
                    options,
                    name,
                    self.config,
                    self.predictor.m1.image_size,
                    decode,
                    limiter=self.limiter(lane),
                )
            except decode_pool.OverLimit as over:
                raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, self.over_limit(over)) from None
            except decode_pool.WorkerDied:
                raise HttpError(
                    HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                    "the image decoder failed on this photo (its worker process ended)",
                ) from None
            except decode_pool.Busy:
                raise HttpError(
                    HTTPStatus.SERVICE_UNAVAILABLE,
                    f"no decode worker was free within {self.config.request_timeout_s:g} s; "
                    "the server is overloaded",
                ) from None
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

    def lane(self, image: bytes) -> str:
        """The decode pool's lane of ``image``, from its header (``decode_pool.photo_route``):
        "fast" for a cheap photo, or one that the decoder refuses from its header (over
        ``max_pixels``), else "slow". HttpError 413 for a photo whose declared pixels need
        more memory than ``decode_memory_mb`` to decode (4 bytes each, as RGBA)."""
        route = decode_pool.photo_route(image, self.config.decode_fast_pixels)
        if route.pixels > self.config.max_pixels:
            return "fast"
        needed_mb = route.pixels * 4 / decode_pool.MiB
        if needed_mb > self.config.decode_memory_mb:
            raise HttpError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"image of {route.width}x{route.height} pixels needs about {needed_mb:,.0f} MB to "
                f"decode, over the limit of {self.config.decode_memory_mb:,} MB (--decode_memory_mb)",
            )
        return "fast" if route.cheap else "slow"

    def limiter(self, lane: str) -> anyio.CapacityLimiter:
        if lane not in self.limiters:
            workers = self.pool.lanes[lane]
            self.limiters[lane] = anyio.CapacityLimiter(workers * THREADS_PER_DECODE_WORKER)
        return self.limiters[lane]

    def over_limit(self, over: decode_pool.OverLimit) -> str:
        if over.limit == "memory":
            return (
                f"decoding this photo needed more than {self.config.decode_memory_mb:,} MB "
                "(--decode_memory_mb)"
            )
        return f"decoding this photo was stopped: it {over} (--decode_cpu_s={self.config.decode_cpu_s:g})"

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
            "decode_workers": {**self.pool.lanes, "replaced": self.pool.replaced},
        }

    # ------------------------------------------------------------------ running
    def run(self) -> None:
        """Serves until SIGTERM / Ctrl-C (main thread) or ``stop``; requests in flight are
        answered first (up to ``shutdown_timeout_s``), then the model thread stops."""
        self.pool.start()
        self.batcher.start()
        trimming = threading.Thread(target=self.release_memory, name="geoloc-trim", daemon=True)
        trimming.start()
        try:
            self.uvicorn.run(sockets=[self.socket])
        finally:
            self.stopped.set()
            self.batcher.stop()
            self.pool.close()
            self.socket.close()

    def release_memory(self) -> None:
        """Every ``TRIM_EVERY_S``, after large bodies arrived, gives the freed heap back to the OS
        (``decode_pool.release_free_memory``): glibc keeps freed buffers of a few MB in the heap,
        so a burst of 16 MB uploads would otherwise hold hundreds of MB long after."""
        while not self.stopped.wait(TRIM_EVERY_S):
            if self.large_bodies:
                self.large_bodies = False
                decode_pool.release_free_memory()

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
