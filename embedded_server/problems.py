"""Every error the API returns: ``application/problem+json`` (RFC 9457) ``{type, title, status, detail, errors?}``.

Routes raise ``Problem`` (or let ``IllegalTransition``/``HTTPException`` escape); the handlers registered by
``register_error_handlers`` turn each into the one shape. An unexpected exception becomes a 500 problem whose
``detail`` names the error, with the full traceback in ``backend.log``; never Werkzeug's HTML page. A disk that
refuses a write (``storage.StorageFull``, or a full-disk error from SQLite) is a 507 naming the folder and its free
space.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, TypeVar

from flask import Flask, Response, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.routing.exceptions import WebsocketMismatch

from embedded_server.job_states import IllegalTransition
from embedded_server.storage import StorageFull, is_write_failure
from trainer import paths
from trainer.config import error_message

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
M = TypeVar("M", bound=BaseModel)


class Problem(Exception):
    """An API error: HTTP ``status``, a one-line ``detail`` and, for 422, field ``errors`` ``[{loc, msg}]``."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


def problem_body(status: int, detail: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The problem+json object; ``title`` is the HTTP reason phrase, as RFC 9457 asks for ``about:blank``."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return body


def problem_response(
    status: int, detail: str, errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None
) -> Response:
    """The problem+json response (``problem_body``)."""
    response = Response(json.dumps(problem_body(status, detail, errors)), status=status, mimetype=MEDIA_TYPE)
    response.headers.update(headers or {})
    return response


def _message(error: Any, allowed: Sequence[str]) -> str:
    """A pydantic error's message for a user (``trainer.config.error_message``; ``allowed``: the top-level fields,
    for an unknown one), never a raw regex (a field with a pattern says what it allows: ``schemas.matching``)."""
    if error["type"] == "string_pattern_mismatch":
        return "not in the allowed form (see this field's pattern in /openapi.json)"
    return error_message(error, allowed if len(error["loc"]) == 1 else ())


def validation_problem(exc: ValidationError, where: str, allowed: Sequence[str] = ()) -> Problem:
    """A 422 listing each pydantic error as ``{loc: [where, field…], msg}`` (``where``: body, query, header); its
    ``detail`` is one line naming the first field at fault and what is wrong with it. ``allowed``: the model's
    field names, offered for an unknown top-level field."""
    errors = [{"loc": [where, *(str(p) for p in e["loc"])], "msg": _message(e, allowed)} for e in exc.errors()]
    first = errors[0]
    field = ".".join(first["loc"][1:])
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    subject = f"invalid {where} field {field}" if field else f"invalid {where}"
    return Problem(422, f"{subject}: {first['msg']}{more}", errors=errors)


def validate_model(model: type[M], data: Mapping[str, Any], where: str) -> M:
    """``model`` built from ``data``, or a 422 ``Problem`` listing every field error (``loc`` starts with ``where``)."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise validation_problem(exc, where, list(model.model_fields)) from None


def register_error_handlers(app: Flask) -> None:
    """Map ``Problem``, ``IllegalTransition``, every ``HTTPException`` and any other exception to problem+json."""

    @app.errorhandler(Problem)
    def _problem(exc: Problem) -> Response:
        return problem_response(exc.status, exc.detail, exc.errors, exc.headers)

    @app.errorhandler(IllegalTransition)
    def _illegal(exc: IllegalTransition) -> Response:
        return problem_response(409, str(exc))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        if isinstance(exc, WebsocketMismatch):  # a plain HTTP request to /ws
            return problem_response(
                426,
                f"{request.path} is a WebSocket endpoint: connect with a WebSocket client",
                headers={"Upgrade": "websocket"},
            )
        status = exc.code or 500
        detail = {
            404: f"no route {request.path}",
            405: f"{request.method} is not allowed on {request.path}",
            413: "request body is larger than 1 MiB",
        }.get(status, exc.description or HTTPStatus(status).phrase)
        headers = {"Allow": ", ".join(exc.valid_methods)} if getattr(exc, "valid_methods", None) else None
        return problem_response(status, detail, headers=headers)

    @app.errorhandler(StorageFull)
    def _storage_full(exc: StorageFull) -> Response:
        log.error("%s %s refused: %s", request.method, request.path, exc)
        return problem_response(507, str(exc))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if is_write_failure(exc):  # the disk, not a bug: say so (507), like StorageFull
            return _storage_full(StorageFull(paths.data_dir(), exc))
        log.exception("unhandled error in %s %s", request.method, request.path)
        return problem_response(500, f"internal error: {type(exc).__name__}: {exc} (traceback in backend.log)")
