"""Settings of `geoloc predict` (``predict_files``) and `geoloc serve` (``server``), each declared once
(``mesh.settings``); the commands' options are derived from them (``experiments.commands``).
Imports neither TensorFlow nor Keras, so parsing the options stays fast.
"""

from __future__ import annotations

import dataclasses

from data_pipelines.config import (
    FILES_MAX_PIXELS,
    SERVE_MAX_PIXELS,
    DecodeBudget,
    decode_budget,
    max_pixels_setting,
)
from geoloc_tf.inference.formats import FORMATS
from geoloc_tf.retrieval.config import CellRetrievalConfig, engine_setting
from mesh.progress import MODES, PROGRESS_EVERY_S
from mesh.settings import check_settings, nested, setting


def _cell_retrieval():
    """Retrieval inside the top cells in both commands: one declaration, two config classes."""
    return nested(
        CellRetrievalConfig,
        "Beyond the paper: each photo also gets the point found by retrieval inside the top cells "
        "(geoloc_tf.retrieval.cell_retrieval), from the feature index of --index (a run "
        "directory's index of M1's training photos by default); needs a run directory's M1.",
    )


def _cells_per_answer():
    """`top_k` of both commands: one declaration, two config classes."""
    return setting(5, "Cells listed per photo, with probability and label point.", minimum=1)


@dataclasses.dataclass(frozen=True)
class PredictFilesConfig:
    """How `geoloc predict` answers photo files."""

    top_k: int = _cells_per_answer()
    format: str = setting(
        "table", "Output: a table for a person, or JSON, CSV, GeoJSON for programs.", choices=FORMATS
    )
    batch_size: int = setting(
        32, "Photos per forward pass (the next files are read meanwhile).", minimum=1, affects_outputs=False
    )
    max_pixels: int = max_pixels_setting(FILES_MAX_PIXELS)
    progress: str = setting(
        "auto",
        f"Progress with rate and ETA on stderr (a bar on a terminal, else a line every {PROGRESS_EVERY_S:.0f} s); "
        "auto: when a directory is given.",
        choices=MODES,
        affects_outputs=False,
    )
    engine: str = engine_setting()  # how retrieval inside the top cells searches --index
    cell_retrieval: CellRetrievalConfig = _cell_retrieval()
    decode: DecodeBudget = decode_budget()

    def __post_init__(self) -> None:
        check_settings(self)


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """How `geoloc serve` listens, guards itself against hostile clients and batches requests.

    Not in the paper. The limits are what a server that strangers can reach needs: every request
    has a deadline for its headers and for its body, connections are capped in all and per client
    address, a multipart upload has a bounded number of parts, an image is refused from its header
    when it declares more than ``max_pixels`` pixels, and each photo is decoded in a worker
    process under a CPU and a memory limit (``data_pipelines.decode_pool``)."""

    host: str = setting(
        "127.0.0.1",
        "Address to bind; the default (loopback) keeps the server, "
        "which has no authentication, off the network.",
    )
    port: int = setting(8080, "Port to listen on; 0: a free one.", minimum=0, maximum=65535)
    max_body_bytes: int = setting(
        16 * 1024 * 1024, "Larger request bodies get 413 (a 24-megapixel JPEG is about 10 MB).", minimum=1
    )
    max_pixels: int = max_pixels_setting(SERVE_MAX_PIXELS)
    max_batch: int = setting(16, "Photos per forward pass: concurrent requests share one.", minimum=1)
    batch_wait_ms: float = setting(
        5.0, "How long the model thread waits for a batch to fill, ms.", minimum=0.0
    )
    top_k: int = _cells_per_answer()  # a request may ask for another k
    request_timeout_s: float = setting(
        120.0,
        "A request whose photo the model has not answered within this many seconds gets 503.",
        minimum=0.0,
        min_exclusive=True,
    )
    header_timeout_s: float = setting(
        5.0,
        "A connection that has not sent a whole request head within this many seconds is closed "
        "(an idle or slow client holds a socket that long, never a thread or a decode worker).",
        minimum=0.0,
        min_exclusive=True,
    )
    body_timeout_s: float = setting(
        30.0,
        "A request whose body has not arrived within this many seconds gets 408 "
        "(e.g. a Content-Length longer than the body).",
        minimum=0.0,
        min_exclusive=True,
    )
    keep_alive_s: int = setting(
        5, "An idle kept-alive connection is closed after this many seconds.", minimum=1
    )
    max_connections: int = setting(
        4096,
        "Open connections (idle ones included, as uvicorn counts them); a request arriving while "
        "this many are open gets 503 at once. Lowered, with a warning, when the open-file limit "
        "cannot be raised to fit it.",
        minimum=2,
    )
    max_connections_per_client: int = setting(
        64,
        "Open connections from one client address; a further one closes that address's oldest "
        "connection still waiting for a request head (else it is closed itself), so one client "
        "cannot hold --max_connections (browsers open about 6 per server).",
        minimum=1,
    )
    max_parts: int = setting(8, "Fields of a multipart upload besides the image; more get 400.", minimum=1)
    decode_workers: int = setting(
        2,
        "Worker processes decoding cheap photos (at most --decode_fast_pixels, read from the "
        "header): a lane that expensive photos never enter.",
        minimum=1,
        affects_outputs=False,
    )
    decode_slow_workers: int = setting(
        1,
        "Worker processes decoding the other photos (larger, progressive with many scans, BMP "
        "run-length coded); they wait for each other, never for the cheap lane.",
        minimum=1,
        affects_outputs=False,
    )
    decode_fast_pixels: int = setting(
        12_000_000,
        "Largest photo, in declared pixels, decoded in the cheap lane (a 12-megapixel phone photo).",
        minimum=1,
    )
    decode_cpu_s: float = setting(
        10.0,
        "CPU time a photo's decoding may take in its worker; beyond it the worker is ended and "
        "replaced and the request gets 413.",
        minimum=0.0,
        min_exclusive=True,
    )
    decode_memory_mb: int = setting(
        512,
        "Memory a photo's decoding may take in its worker (an address-space limit); a photo whose "
        "declared pixels need more (4 bytes each) gets 413 from its header, one that runs out "
        "while decoding gets 413 and its worker is replaced.",
        minimum=16,
    )
    shutdown_timeout_s: int = setting(
        30,
        "On SIGTERM or Ctrl-C, requests in flight get this many seconds to be answered.",
        minimum=0,
    )
    m2: bool = setting(
        True, "Answer with the run's M2 when a request gives a posting time (--nom2: always M1)."
    )
    engine: str = engine_setting()  # how --index is searched: neighbours, retrieval in the top cells
    cell_retrieval: CellRetrievalConfig = _cell_retrieval()
    decode: DecodeBudget = decode_budget()

    def __post_init__(self) -> None:
        check_settings(self)
