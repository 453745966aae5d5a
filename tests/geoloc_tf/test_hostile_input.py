"""Hostile and unusual input to `geoloc serve` and `geoloc predict`, replayed against the real server
(a `geoloc serve` process on 127.0.0.1, or the in-process server) and the real command, with the
hand-set tiny run of conftest.build_tiny_run (every photo: cell 3 at 40 %; M2: cell 5).

Each test names the row of the hostile-input table it replays:
 1 a PNG declaring 16000x16000 pixels (31 KB)       413 from its header; memory stays flat
 2 an animated GIF beside valid requests            415 alone; the others 200
 3 posting times past year 9999 / before 1970       400 alone; the others 200
 4 ``top_k=²`` (a Unicode digit)                    400 with a JSON answer
 5 a body shorter than its Content-Length; slow     408; connections closed after the head
   heads; many slow connections                     deadline, no thread each, a cap
 6 200,000 empty multipart parts                    400 after the part limit
 7 `geoloc predict` on a folder with an animated    one error line, the others printed, exit 1
   GIF; a batch whose forward pass fails            answered again photo by photo
13 a .keras file with a Lambda layer                one error line, exit 2
A photo the model fails on, in a batch with others, gets a 500 without trace or path; the
others are answered (per-request isolation). SIGTERM answers the request in flight, then exits 0.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments.benchmarks.serve_bench import ServeProcess, png_bomb, proc_status
from tests.geoloc_tf.conftest import build_tiny_run, jpeg

MiB = 1 << 20


# ---------------------------------------------------------------------- hostile files
def animated_gif(frames: int = 3) -> bytes:
    images = [Image.new("RGB", (40, 30), (80 * i, 30, 200 - 50 * i)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return out.getvalue()


def test_the_hostile_files_are_what_they_claim():
    bomb = png_bomb(16000)
    assert len(bomb) < 40_000
    assert bomb[12:16] == b"IHDR" and (bomb[16:20], bomb[20:24]) == ((16000).to_bytes(4, "big"),) * 2
    with Image.open(io.BytesIO(png_bomb(64))) as image:
        image.load()  # a real, decodable PNG
    with Image.open(io.BytesIO(animated_gif())) as image:
        assert image.is_animated and image.n_frames == 3


def test_the_decoder_refuses_from_the_header():
    from data_pipelines import images
    from data_pipelines.config import DecodeBudget

    serve = DecodeBudget().within(50_000_000)
    with pytest.raises(images.BadImage) as refused:
        images.decode_for_model(png_bomb(16000), serve, 299)
    assert refused.value.reason == images.TOO_LARGE and "16000x16000" in str(refused.value)
    with pytest.raises(images.BadImage) as refused:
        images.decode_for_model(animated_gif(), serve, 299)
    assert refused.value.reason == images.ANIMATED and "3 frames" in str(refused.value)
    with pytest.raises(images.BadImage) as refused:
        images.decode_for_model(b"II*\x00" + bytes(64), serve, 299)  # a TIFF header
    assert refused.value.reason == images.UNSUPPORTED
    with pytest.raises(images.BadImage) as refused:
        images.decode_for_model(jpeg(64, 64, 1)[:300], serve, 299)  # truncated
    assert refused.value.reason == images.UNREADABLE
    assert images.check_image(png_bomb(64), 64 * 64).width == 64  # at the limit: fine
    still = io.BytesIO()
    Image.new("RGB", (9, 7), (1, 2, 3)).save(still, format="GIF")
    pixels = images.decode_for_model(still.getvalue(), DecodeBudget().within(100), 299)
    assert pixels.shape == (7, 9, 3) and pixels.dtype == np.uint8  # palette -> RGB
    np.testing.assert_array_equal(pixels, np.broadcast_to([1, 2, 3], (7, 9, 3)))


# ---------------------------------------------------------------------- HTTP helpers
def post(address, body: bytes, headers: dict[str, str], path: str = "/predict") -> tuple[int, dict]:
    conn = http.client.HTTPConnection(*address, timeout=120)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw.startswith(b"{") else {"raw": raw.decode()}
    finally:
        conn.close()


def post_jpeg(address, seed: int, query: str = "") -> tuple[int, dict]:
    return post(address, jpeg(64, 64, seed), {"Content-Type": "image/jpeg"}, "/predict" + query)


def at_once(*calls) -> list:
    """Runs the calls on threads started together; their results in order."""
    results: list = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i, call):
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    return results


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    return build_tiny_run(tmp_path_factory.mktemp("hostile_run"), export=False)


@pytest.fixture(scope="module")
def served(tiny_run):
    server = ServeProcess(
        tiny_run,
        "--header_timeout_s=3",
        "--body_timeout_s=1",
        "--max_connections=24",
        "--batch_wait_ms=20",
    )
    yield server
    server.stop()


# ---------------------------------------------------------------------- the server, rows 1-6
def test_row1_a_decompression_bomb_is_refused_from_its_header_and_memory_stays_flat(served):
    address = served.address
    for seed in range(3):  # warm: the model's batch sizes traced, allocators settled
        assert post_jpeg(address, seed)[0] == 200
    idle = proc_status(served.pid)["VmRSS"]
    Path(f"/proc/{served.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
    bomb, medium = png_bomb(16000), png_bomb(8000)
    answers = at_once(
        lambda: post(address, bomb, {"Content-Type": "image/png"}),
        lambda: post(address, medium, {"Content-Type": "image/png"}),
        lambda: post(address, bomb, {"Content-Type": "application/octet-stream"}),
        lambda: post_jpeg(address, 7),
        lambda: post_jpeg(address, 8),
    )
    statuses = [status for status, _ in answers]
    assert statuses == [413, 413, 413, 200, 200]
    assert "16000x16000" in answers[0][1]["error"] and "max_pixels" in answers[0][1]["error"]
    peak = proc_status(served.pid)["VmHWM"]
    print(f"serve memory: idle {idle / 1024:.0f} MiB, peak while refusing bombs {peak / 1024:.0f} MiB")
    assert (peak - idle) * 1024 < 512 * MiB  # the bombs alone would need 768 MB each, decoded


def test_row2_an_animated_gif_fails_alone_and_valid_requests_beside_it_get_200(served):
    address = served.address
    answers = at_once(
        lambda: post(address, animated_gif(), {"Content-Type": "image/gif"}),
        lambda: post_jpeg(address, 1),
        lambda: post_jpeg(address, 2),
        lambda: post_jpeg(address, 3),
    )
    (gif_status, gif), *valid = answers
    assert gif_status == 415 and "animated" in gif["error"] and gif["status"] == 415
    assert "Traceback" not in gif["error"] and "/" not in gif["error"].replace("image/", "")
    assert [s for s, _ in valid] == [200, 200, 200]
    assert all(r["top_k"][0]["cell"] == 3 for _, r in valid)


@pytest.mark.parametrize(
    "posted_at",
    ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "1969-12-31T23:59:59Z", "99999999999999"],
)
def test_row3_posting_times_out_of_range_fail_alone(served, posted_at):
    from urllib.parse import quote

    address = served.address
    answers = at_once(
        lambda: post_jpeg(address, 4, f"?posted_at={quote(posted_at)}"),
        lambda: post_jpeg(address, 5, "?posted_at=2014-06-01T14:30:00Z"),
        lambda: post_jpeg(address, 6),
    )
    (status, refused), (m2_status, m2), (m1_status, m1) = answers
    assert status == 400 and "1970-01-01 .. 2100-12-31" in refused["error"]
    assert (m2_status, m2["model"], m2["top_k"][0]["cell"]) == (200, "m2", 5)
    assert (m1_status, m1["model"]) == (200, "m1")


def test_row4_unicode_digits_get_400_with_an_answer(served):
    for query, words in [
        ("?top_k=%C2%B2", "top_k="),  # ² : isdigit() is true, int() fails
        ("?top_k=%D9%A3", "top_k="),  # Arabic-Indic 3: int() would take it
        ("?outdoor=%D9%A0.5", "outdoor="),
        ("?posted_at=%EF%BC%92%EF%BC%90%EF%BC%91%EF%BC%94", "posted_at="),  # full-width 2014
    ]:
        status, payload = post_jpeg(served.address, 9, query)
        assert (status, payload["status"]) == (400, 400), query
        assert payload["error"].startswith(words), payload
    assert post_jpeg(served.address, 9, "?top_k=2")[0] == 200


def test_row5_a_body_shorter_than_its_length_gets_408(served):
    with socket.create_connection(served.address, timeout=30) as conn:
        conn.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
            b"Content-Length: 5000\r\n\r\n" + jpeg(32, 32, 1)[:100]
        )
        started = time.monotonic()
        response = http.client.HTTPResponse(conn)
        response.begin()
        payload = json.loads(response.read())
        waited = time.monotonic() - started
    assert response.status == 408 and payload["status"] == 408 and "body_timeout_s" in payload["error"]
    assert waited < 20  # the 1 s deadline, not forever


def test_row5_slow_heads_are_closed_hold_no_thread_and_the_cap_holds(served):
    address = served.address
    before = proc_status(served.pid)["Threads"]
    slow = []
    for _ in range(60):
        conn = socket.create_connection(address, timeout=30)
        conn.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")  # never finishes its head
        slow.append(conn)
    try:
        time.sleep(0.3)
        during = proc_status(served.pid)["Threads"]
        assert during - before <= 2  # an asyncio server holds a socket, not a thread
        # Over --max_connections=24: refused at once, not queued behind the slow ones.
        assert post_jpeg(address, 1)[0] == 503
        started = time.monotonic()
        closed = [conn.recv(1024) == b"" for conn in slow]  # the server hangs up on each
        assert all(closed) and time.monotonic() - started < 20
    finally:
        for conn in slow:
            conn.close()
    assert post_jpeg(address, 1)[0] == 200  # the slots are free again


def test_row6_many_empty_multipart_parts_get_400_at_the_part_limit(served):
    boundary = "b0undary"
    part = f'--{boundary}\r\nContent-Disposition: form-data; name="f"\r\n\r\n\r\n'.encode()
    body = part * 200_000 + f"--{boundary}--\r\n".encode()
    assert 10 * MiB < len(body) < 16 * MiB
    status, payload = post(
        served.address, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert status == 400 and "multipart" in payload["error"]
    assert post_jpeg(served.address, 2)[0] == 200


def test_healthz_names_no_path_and_counts_the_refusals(served):
    conn = http.client.HTTPConnection(*served.address, timeout=30)
    conn.request("GET", "/healthz")
    health = json.loads(conn.getresponse().read())
    conn.close()
    assert "/" not in health["model"] and health["status"] == "ok"
    assert health["errors"].get("413", 0) >= 1 or health["errors"].get("400", 0) >= 1


def test_sigterm_answers_the_request_in_flight_then_exits_0(tiny_run):
    server = ServeProcess(tiny_run, "--batch_wait_ms=3000", "--max_batch=4")
    try:
        answer: list = []
        client = threading.Thread(target=lambda: answer.append(post_jpeg(server.address, 3)))
        client.start()
        time.sleep(1.0)  # the request waits in the model thread for its batch to fill
        server.process.send_signal(signal.SIGTERM)
        client.join(timeout=60)
        assert answer and answer[0][0] == 200 and answer[0][1]["top_k"][0]["cell"] == 3
        assert server.process.wait(timeout=60) == 0
        assert any("every request in flight was answered" in line for line in server.log)
    finally:
        server.stop()


# ---------------------------------------------------------------------- per-request isolation
class PoisonedPredictor:
    """The real predictor, except that a batch holding the poison photo raises (as a model can on
    input it cannot take), with a message holding a path that must not reach a client."""

    def __init__(self, predictor, poison: bytes):
        from data_pipelines import images
        from data_pipelines.config import DecodeBudget

        # the model gets the photo decoded once (the server's decode_for_model)
        self.predictor = predictor
        self.poison = images.decode_for_model(poison, DecodeBudget(), predictor.m1.image_size)

    def __getattr__(self, name):
        return getattr(self.predictor, name)

    def predict(self, images, **options):
        if any(np.array_equal(image, self.poison) for image in images):
            raise RuntimeError("failed in /home/someone/secret/model.py line 3")
        return self.predictor.predict(images, **options)


def test_a_photo_the_model_fails_on_gets_500_without_trace_and_its_batch_is_answered(tiny_run):
    from geoloc_tf.inference.config import ServerConfig
    from geoloc_tf.inference.photo_predictor import Predictor
    from geoloc_tf.inference.server import start_server, stop_server

    poison = jpeg(48, 48, 99)
    server = start_server(
        PoisonedPredictor(Predictor.load(tiny_run), poison),
        ServerConfig(port=0, max_batch=8, batch_wait_ms=300.0),
    )
    try:
        address = server.host_port
        answers = at_once(
            lambda: post(address, poison, {"Content-Type": "image/jpeg"}),
            lambda: post_jpeg(address, 1),
            lambda: post_jpeg(address, 2),
            lambda: post_jpeg(address, 3),
        )
        (status, failed), *valid = answers
        assert status == 500 and failed == {
            "error": "the model could not answer this photo; the server log has the details",
            "status": 500,
        }
        assert [s for s, _ in valid] == [200, 200, 200]
        assert server.batcher.retried_batches >= 1  # they did share a batch, answered alone
    finally:
        stop_server(server)


# ---------------------------------------------------------------------- geoloc predict, rows 7, 13
def test_row7_predict_on_a_folder_with_an_animated_gif_keeps_the_other_answers(tiny_run, tmp_path, capsys):
    from experiments.cli import main as geoloc

    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(jpeg(60, 60, 1))
    (folder / "b.gif").write_bytes(animated_gif())
    (folder / "c.png").write_bytes(png_bomb(12000))
    (folder / "d.jpg").write_bytes(jpeg(61, 62, 2))
    code = geoloc(["predict", str(folder), f"--model={tiny_run}", "--format=json", "--max_pixels=50000000"])
    captured = capsys.readouterr()
    assert code == 1
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "b.gif" in errors[0] and "animated" in errors[0]
    assert "c.png" in errors[1] and "12000x12000" in errors[1]
    records = json.loads(captured.out)
    assert [Path(r["file"]).name for r in records] == ["a.jpg", "d.jpg"]
    assert all(r["top_k"][0]["cell"] == 3 for r in records)


def test_row7_a_batch_that_fails_is_answered_photo_by_photo(tiny_run, tmp_path):
    from geoloc_tf.inference.config import PredictFilesConfig
    from geoloc_tf.inference.photo_predictor import Predictor
    from geoloc_tf.inference.predict_files import predict_files

    poison = jpeg(50, 50, 42)
    files = []
    for i, data in enumerate([jpeg(60, 60, 1), poison, jpeg(60, 60, 2)]):
        files.append(tmp_path / f"{i}.jpg")
        files[-1].write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    done, failed = predict_files(
        PoisonedPredictor(Predictor.load(tiny_run), poison),
        files,
        out,
        PredictFilesConfig(format="json", batch_size=3),
        err=err,
    )
    assert (done, failed) == (2, 1)
    assert [Path(r["file"]).name for r in json.loads(out.getvalue())] == ["0.jpg", "2.jpg"]
    (line,) = err.getvalue().splitlines()
    assert line.startswith("error: ") and "1.jpg" in line and "could not answer" in line


def test_row13_a_keras_file_with_a_lambda_is_refused_in_one_line(tiny_run, tmp_path, capsys):
    import shutil

    import keras

    from experiments.cli import main as geoloc
    from geoloc_tf.run_layout import RunLayout

    run = tmp_path / "stranger_run"
    shutil.copytree(tiny_run, run)
    inputs = keras.Input((75, 75, 3))
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(keras.layers.GlobalAveragePooling2D()(inputs))
    keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(outputs)).save(RunLayout(run).m1_model)
    photo = tmp_path / "one.jpg"
    photo.write_bytes(jpeg(60, 60, 1))
    assert geoloc(["predict", str(photo), f"--model={run}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Lambda" in err[0] and "safe mode" in err[0]


def test_predict_refuses_a_fifo_without_blocking(tiny_run, tmp_path, capsys):
    from experiments.cli import main as geoloc

    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    photo = tmp_path / "one.jpg"
    photo.write_bytes(jpeg(60, 60, 1))
    assert geoloc(["predict", str(fifo), str(photo), f"--model={tiny_run}", "--format=csv"]) == 1
    captured = capsys.readouterr()
    assert "pipe.jpg: a FIFO; not a photo file" in captured.err
    assert len(captured.out.splitlines()) == 2 and "one.jpg" in captured.out
