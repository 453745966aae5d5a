"""The requests of `geoloc serve`: a POST /predict body (raw image or multipart upload) and its
options, read within limits and turned into a ``Job`` for the model thread, or an ``HttpError``.

The body is read only when it announces its length (411 otherwise: a chunked body is refused) and
that length is within ``max_body_bytes`` (413), and must arrive within ``body_timeout_s`` (408).
Multipart uploads are parsed by Starlette's parser (python-multipart) with at most one file part
and ``max_parts`` other fields. The photo is then checked by the image decoder
and decoded once (``data_pipelines.images.decode_for_model``) in a worker process of the server's
decode pool (``data_pipelines.decode_pool``): 413 over ``max_pixels``, the decode budget or the
worker's CPU or memory limit, 415 animated, truncated or not a supported image. Options are parsed
strictly (``data_pipelines.values``): 400 for a malformed or out-of-range value.
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from http import HTTPStatus
from typing import Any, Callable

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from data_pipelines import images, values
from geoloc_tf import errors
from geoloc_tf.inference.batcher import HttpError, Job
from geoloc_tf.inference.config import ServerConfig

RAW_TYPES = ("application/octet-stream",)  # besides image/*
#: A text field of a multipart upload (posted_at, outdoor, top_k) is short.
MAX_FIELD_BYTES = 1024
MAX_TOP_K = 1000


def media_type(header: str | None) -> str:
    """The media type of a Content-Type header, lower case, without parameters."""
    message = EmailMessage()
    message["Content-Type"] = header or "application/octet-stream"
    return message.get_content_type()


async def read_body(request: Request, config: ServerConfig) -> bytes:
    """The whole body of ``request`` within the body limits (HttpError 411, 413, 408)."""
    if "chunked" in request.headers.get("transfer-encoding", "").lower():
        raise HttpError(HTTPStatus.LENGTH_REQUIRED, "chunked bodies are not accepted; send Content-Length")
    length_text = request.headers.get("content-length")
    if length_text is None:
        raise HttpError(HTTPStatus.LENGTH_REQUIRED, "POST /predict needs a Content-Length")
    try:
        length = values.ascii_int(length_text)
    except values.ValueProblem:
        raise HttpError(
            HTTPStatus.BAD_REQUEST, "Content-Length: expected a byte count in ASCII digits"
        ) from None
    if length > config.max_body_bytes:
        raise HttpError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"body of {length:,} bytes is over the limit of {config.max_body_bytes:,} bytes (--max_body_bytes)",
        )
    try:
        async with asyncio.timeout(config.body_timeout_s):
            return await request.body()
    except TimeoutError:
        raise HttpError(
            HTTPStatus.REQUEST_TIMEOUT,
            f"the body did not arrive within {config.body_timeout_s:g} s (--body_timeout_s); "
            f"Content-Length said {length:,} bytes",
        ) from None


async def read_upload(request: Request, config: ServerConfig) -> tuple[bytes, dict[str, str], str | None]:
    """(image bytes, options, file name) of a POST /predict request: query options, overridden
    by the fields of a multipart upload."""
    body = await read_body(request, config)
    kind = media_type(request.headers.get("content-type"))
    options = dict(request.query_params)
    if kind == "multipart/form-data":
        try:
            form = await request.form(max_files=1, max_fields=config.max_parts, max_part_size=MAX_FIELD_BYTES)
        except (MultiPartException, HTTPException) as error:
            message = getattr(error, "message", None) or getattr(error, "detail", None) or str(error)
            raise HttpError(HTTPStatus.BAD_REQUEST, f"malformed multipart upload: {message}") from None
        try:
            upload = form.get("image")
            if upload is None:
                raise HttpError(
                    HTTPStatus.BAD_REQUEST,
                    f"multipart upload without an 'image' field; got fields {sorted(form.keys())}",
                )
            if not isinstance(upload, UploadFile):
                raise HttpError(
                    HTTPStatus.BAD_REQUEST,
                    "the multipart field 'image' must be a file part (with a filename), "
                    "e.g. curl -F image=@photo.jpg",
                )
            image, name = await upload.read(), upload.filename
            for key, value in form.multi_items():
                if key != "image" and isinstance(value, str):
                    options[key] = value
        finally:
            await form.close()
        return image, options, name
    if kind.startswith("image/") or kind in RAW_TYPES:
        return body, options, None
    raise HttpError(
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        f"Content-Type {kind}: expected image/jpeg (or another image/*), "
        "application/octet-stream or multipart/form-data",
    )


def call_here(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in this process: ``make_job``'s decoder when no pool is given."""
    return function(*args)


def make_job(
    image: bytes,
    options: dict[str, str],
    name: str | None,
    config: ServerConfig,
    side: int,
    decode: Callable[..., Any] = call_here,
) -> Job:
    """The decoded photo (for a model with ``side`` px input) and options of a request (HttpError
    400/413/415). Runs on a thread: the photo is decoded once, through ``decode(function, *args)`` (the
    server's: ``DecodePool.run`` in a worker process of the photo's lane, which may also raise
    ``decode_pool.OverLimit``, ``WorkerDied`` or ``Busy``)."""
    from geoloc_tf.inference.neighbours import MAX_NEIGHBOURS
    from geoloc_tf.inference.photo_predictor import parse_outdoor, parse_posted_at

    if not image:
        raise HttpError(
            HTTPStatus.BAD_REQUEST,
            "empty image; send the photo as the body or as the multipart field 'image'",
        )
    try:
        posted_at = parse_posted_at(options["posted_at"]) if options.get("posted_at") else None
        outdoor = parse_outdoor(options["outdoor"]) if options.get("outdoor") else None
        top_k = values.ascii_int(options.get("top_k", str(config.top_k)), 1, MAX_TOP_K)
    except errors.InferenceError as error:
        raise HttpError(HTTPStatus.BAD_REQUEST, str(error)) from None
    except values.ValueProblem as problem:
        raise HttpError(HTTPStatus.BAD_REQUEST, f"top_k={problem}") from None
    try:
        neighbours = values.ascii_int(options.get("neighbours") or "0", 0, MAX_NEIGHBOURS)
    except values.ValueProblem as problem:
        raise HttpError(HTTPStatus.BAD_REQUEST, f"neighbours={problem}") from None
    try:
        checked = decode(images.decode_for_model, image, config.decode.within(config.max_pixels), side)
    except images.BadImage as error:
        status = (
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE
            if error.reason in images.OVER_BUDGET
            else HTTPStatus.UNSUPPORTED_MEDIA_TYPE
        )
        raise HttpError(status, f"{name or 'request body'}: {error}") from None
    return Job(checked, posted_at, outdoor, top_k, name, neighbours)
