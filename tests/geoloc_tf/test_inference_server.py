"""`geoloc serve` answering real HTTP requests on loopback, with the hand-set tiny run of
conftest.build_tiny_run (every photo: cell 3 at 40 %, cell 7 at 30 %, ...; M2 answers cell 5)."""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from pathlib import Path

import pytest

from tests.geoloc_tf.conftest import build_tiny_run, jpeg, png

MAX_BODY = 200_000


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return build_tiny_run(tmp_path_factory.mktemp("tiny_run"), export=False)


@pytest.fixture(scope="module")
def server(tiny_run):
    from geoloc_tf.inference.config import ServerConfig
    from geoloc_tf.inference.photo_predictor import Predictor
    from geoloc_tf.inference.server import start_server, stop_server

    predictor = Predictor.load(tiny_run)
    running = start_server(
        predictor, ServerConfig(port=0, max_body_bytes=MAX_BODY, max_batch=8, batch_wait_ms=50.0, top_k=3)
    )
    yield running
    stop_server(running)


def request(
    server,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    connection: http.client.HTTPConnection | None = None,
) -> tuple[int, dict]:
    host, port = server.host_port
    conn = connection or http.client.HTTPConnection(host, port, timeout=60)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    payload = json.loads(response.read())
    if connection is None:
        conn.close()
    return response.status, payload


def multipart(fields: dict[str, tuple[bytes, str | None]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, (content, filename) in fields.items():
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        parts.append(
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_healthz_names_the_model(server):
    status, payload = request(server, "GET", "/healthz")
    assert status == 200 and payload["status"] == "ok" and payload["m2"] is True
    assert payload["num_cells"] > 10


def test_raw_jpeg_body_gets_the_predict_record(server):
    status, record = request(server, "POST", "/predict", jpeg(80, 90, 1), {"Content-Type": "image/jpeg"})
    assert status == 200
    assert record["model"] == "m1" and [t["cell"] for t in record["top_k"]] == [3, 7, 1]
    assert abs(record["top_k"][0]["probability"] - 0.4) < 1e-5
    assert record["mass_sets"][0]["cells"] == [3, 7]


def test_multipart_upload_with_a_posting_time_is_answered_by_m2(server):
    body, content_type = multipart(
        {
            "image": (png(50, 60, 2), "holiday.png"),
            "posted_at": (b"2014-06-01T14:30:00Z", None),
            "top_k": (b"2", None),
        }
    )
    status, record = request(server, "POST", "/predict", body, {"Content-Type": content_type})
    assert status == 200 and record["file"] == "holiday.png"
    assert record["model"] == "m2" and record["posted_at"] == "2014-06-01T14:30:00Z"
    assert [t["cell"] for t in record["top_k"]] == [5, 2]


@pytest.mark.parametrize(
    "body,headers,expected,words",
    [
        (b"x" * (MAX_BODY + 1), {"Content-Type": "image/jpeg"}, 413, "over the limit"),
        (b"plain text, not a photo", {"Content-Type": "image/jpeg"}, 415, "request body"),
        (b"{}", {"Content-Type": "application/json"}, 415, "Content-Type application/json"),
        (None, {"Content-Type": "image/jpeg"}, 400, "empty image"),
    ],
)
def test_bad_requests_get_4xx_and_the_server_keeps_serving(server, body, headers, expected, words):
    host, port = server.host_port
    conn = http.client.HTTPConnection(host, port, timeout=60)
    status, payload = request(
        server, "POST", "/predict", body if body is not None else b"", headers, connection=conn
    )
    assert status == expected and payload["status"] == expected and words in payload["error"]
    # The same connection (the refused body was drained) and a new one both still get answers.
    status, record = request(
        server, "POST", "/predict", jpeg(64, 64, 3), {"Content-Type": "image/jpeg"}, connection=conn
    )
    assert status == 200 and record["top_k"][0]["cell"] == 3
    conn.close()
    assert request(server, "GET", "/healthz")[0] == 200


def test_bad_options_and_paths(server):
    photo = jpeg(64, 64, 4)
    cases = [
        ("/predict?posted_at=June", 400, "ISO 8601 time"),
        ("/predict?outdoor=2", 400, "expected a probability"),
        ("/predict?top_k=0", 400, "top_k"),
        ("/elsewhere", 404, "no such path"),
    ]
    for path, expected, words in cases:
        status, payload = request(server, "POST", path, photo, {"Content-Type": "image/jpeg"})
        assert (status, words in payload["error"]) == (expected, True), path
    assert request(server, "GET", "/predict")[0] == 405
    body, content_type = multipart({"photo": (photo, "a.jpg")})
    status, payload = request(server, "POST", "/predict", body, {"Content-Type": content_type})
    assert status == 400 and "'image' field" in payload["error"]


def test_concurrent_requests_are_batched(server):
    before = server.batcher.batches
    answers: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def client(seed: int) -> None:
        answer = request(
            server, "POST", "/predict?top_k=1", jpeg(70, 70, seed), {"Content-Type": "image/jpeg"}
        )
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(answers) == 12
    assert all(status == 200 and [t["cell"] for t in r["top_k"]] == [3] for status, r in answers)
    batches = server.batcher.batches - before
    assert batches < 12 and server.batcher.largest_batch > 1  # some requests shared a pass


def test_geoloc_serve_refuses_a_missing_model(tmp_path: Path, capsys):
    from experiments.cli import main as geoloc

    assert geoloc(["serve", f"--model={tmp_path / 'nothing'}", "--port=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "nothing" in err and "\n" not in err


def test_geoloc_serve_on_a_port_in_use_is_one_line(server, tiny_run, capsys):
    from experiments.cli import main as geoloc

    host, port = server.host_port
    assert host == "127.0.0.1"  # loopback unless told otherwise
    assert geoloc(["serve", f"--model={tiny_run}", f"--port={port}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: cannot listen on 127.0.0.1:{port}") and len(err) == 1
