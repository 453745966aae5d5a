"""The requests of `geoloc serve`: a POST /predict body (raw image or multipart upload) and its
query options, parsed into a ``Job`` for the model thread, or an ``HttpError`` to answer.

Multipart bodies are split by the small parser below (the ``cgi`` module is gone in Python 3.13);
part headers are read by the ``email`` package.
"""

from __future__ import annotations

import dataclasses
import threading
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import HTTP
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from geoloc_tf import errors

RAW_TYPES = ("application/octet-stream",)  # besides image/*


class HttpError(Exception):
    """A request answered with an error status and a JSON error body."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass
class Job:
    """A photo of one request, waiting for the model thread's answer."""

    image: bytes
    posted_at: int | None
    outdoor: float | None
    top_k: int
    name: str | None
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    result: dict[str, Any] | None = None
    error: BaseException | None = None


def _media_type(header: str | None) -> tuple[str, dict[str, str]]:
    message = EmailMessage()
    message["Content-Type"] = header or "application/octet-stream"
    params = {k: str(v) for k, v in message["Content-Type"].params.items()}
    return message.get_content_type(), params


def parse_multipart(body: bytes, boundary: str) -> dict[str, tuple[bytes, str | None]]:
    """Fields of a multipart/form-data body (RFC 7578): name -> (content, filename)."""
    if not boundary:
        raise HttpError(HTTPStatus.BAD_REQUEST, "multipart/form-data without a boundary")
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    pieces = (b"\r\n" + body).split(delimiter)
    if len(pieces) < 3 or not pieces[-1].startswith(b"--"):
        raise HttpError(
            HTTPStatus.BAD_REQUEST, f"malformed multipart body: no closing --{boundary}-- delimiter"
        )
    fields: dict[str, tuple[bytes, str | None]] = {}
    for piece in pieces[1:-1]:  # pieces[0] is the preamble, the last one the epilogue
        _, _, piece = piece.partition(b"\r\n")  # the rest of the delimiter line
        head, separator, content = piece.partition(b"\r\n\r\n")
        if not separator:
            raise HttpError(
                HTTPStatus.BAD_REQUEST, "malformed multipart part: no blank line after its headers"
            )
        headers = BytesHeaderParser(policy=HTTP).parsebytes(head + b"\r\n\r\n")
        disposition = headers.get("Content-Disposition")
        params = disposition.params if disposition is not None else {}
        name = params.get("name")
        if name is None:
            raise HttpError(
                HTTPStatus.BAD_REQUEST, "multipart part without Content-Disposition: form-data; name=..."
            )
        fields[str(name)] = (content, params.get("filename"))
    return fields


def parse_predict_request(content_type: str | None, query: str, body: bytes, default_top_k: int) -> Job:
    """The photo and options of a POST /predict request (HttpError 400/415 when unusable)."""
    from geoloc_tf.inference.m1_model import validate_image_bytes
    from geoloc_tf.inference.photo_predictor import parse_outdoor, parse_posted_at

    media, params = _media_type(content_type)
    options = {k: v[-1] for k, v in parse_qs(query).items()}
    name = None
    if media == "multipart/form-data":
        fields = parse_multipart(body, params.get("boundary", ""))
        if "image" not in fields:
            raise HttpError(
                HTTPStatus.BAD_REQUEST,
                f"multipart upload without an 'image' field; got fields {sorted(fields)}",
            )
        image, name = fields.pop("image")
        for key, (value, _) in fields.items():
            options[key] = value.decode("utf-8", "replace")
    elif media.startswith("image/") or media in RAW_TYPES:
        image = body
    else:
        raise HttpError(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            f"Content-Type {media}: expected image/jpeg (or another image/*), "
            "application/octet-stream or multipart/form-data",
        )
    if not image:
        raise HttpError(
            HTTPStatus.BAD_REQUEST,
            "empty image; send the photo as the body or as the multipart field 'image'",
        )
    try:
        image = validate_image_bytes(image, name or "request body")
    except errors.InferenceError as error:
        raise HttpError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, str(error)) from None
    try:
        posted_at = parse_posted_at(options["posted_at"]) if options.get("posted_at") else None
        outdoor = parse_outdoor(options["outdoor"]) if options.get("outdoor") else None
    except errors.InferenceError as error:
        raise HttpError(HTTPStatus.BAD_REQUEST, str(error)) from None
    top_k = options.get("top_k", str(default_top_k))
    if not top_k.isdigit() or not 1 <= int(top_k) <= 1000:
        raise HttpError(HTTPStatus.BAD_REQUEST, f"top_k={top_k!r}: expected an integer 1..1000")
    return Job(image, posted_at, outdoor, int(top_k), name)
