"""The request's JSON body, read with the limits and messages of API.md ("Errors"): 415, 400, 408, 413, 422."""

from __future__ import annotations

import json
from typing import Any

from flask import current_app, request
from werkzeug.exceptions import ClientDisconnected

from embedded_server.problems import Problem

#: A parsed JSON value's kind in JSON's own words (``json.loads`` gives these Python types).
_JSON_KINDS = {list: "an array", str: "a string", bool: "true or false", int: "a number", float: "a number",
               type(None): "null"}


def json_body() -> dict[str, Any]:
    """The request's JSON object; ``{}`` for an empty body. 415 if not JSON, 400 if malformed (or nested deeper or
    holding an integer longer than Python's parser takes), 422 if not an object, 413 if over ``MAX_CONTENT_LENGTH``.
    """
    data = _read_body(current_app.config["MAX_CONTENT_LENGTH"])
    if not data.strip():
        return {}
    if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
        raise Problem(415, f"the body must be JSON (Content-Type: application/json), not {request.mimetype or 'none'}")
    try:
        body = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise Problem(400, f"the body is not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise Problem(400, f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise Problem(400, "the JSON body is nested too deeply") from None
    except ValueError as exc:  # an integer of more digits than int() converts (sys.get_int_max_str_digits)
        raise Problem(400, f"the JSON body holds a number too large to read: {exc}") from None
    if not isinstance(body, dict):
        kind = _JSON_KINDS[type(body)]
        raise Problem(
            422,
            f"the request body must be a JSON object, not {kind}",
            errors=[{"loc": ["body"], "msg": f"must be a JSON object, not {kind}"}],
        )
    return body


def _read_body(limit: int) -> bytes:
    """The request body, at most ``limit`` bytes, else a 413 ``Problem``.

    Werkzeug refuses a ``Content-Length`` over the limit itself, but a chunked body has none, and its wrapped
    stream stops silently at the limit (the truncated body then looked like malformed JSON, a 400). So a chunked
    body is read from the server's own de-chunked stream (``wsgi.input_terminated``: the server ends it, so it is
    safe to read directly), up to ``limit + 1`` bytes in as many reads as it takes; one byte too many is a 413.
    """
    stream = request.stream
    if request.content_length is None and request.environ.get("wsgi.input_terminated"):
        stream = request.environ["wsgi.input"]
    chunks: list[bytes] = []
    size = 0
    try:
        while size <= limit:
            chunk = stream.read(limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (TimeoutError, ClientDisconnected) as exc:  # Werkzeug turns a read timeout into ClientDisconnected
        if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
            raise Problem(408, "the body did not arrive within the server's request timeout") from None
        raise Problem(400, "the body ended before its Content-Length") from None
    except OSError as exc:  # e.g. a malformed chunk header
        raise Problem(400, f"the body could not be read: {exc}") from None
    if size > limit:
        shown = f"{limit // 2**20} MiB" if limit % 2**20 == 0 else f"{limit} bytes"
        raise Problem(413, f"request body is larger than {shown}")
    return b"".join(chunks)
