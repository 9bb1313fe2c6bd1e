"""One declaration per API operation: ``@operation(bp, "POST", "/start_training", …)`` registers the Flask route
*and* records the ``Operation`` that ``openapi.build_openapi`` turns into ``/openapi.json``, so the document cannot
drift from the routes.

The declared models are the ones used at run time. The wrapper the route runs: checks each path parameter
(``PathParameter.check``, e.g. a 404 for an unknown job, so that comes before any 422), validates the JSON body
(``body``, after ``body_defaults``) and the query string (``query``) and hands them to the view as the keyword
arguments ``body`` and ``query``; the view returns an instance of its success ``model`` (or ``(model, headers)``),
serialised with the success status. A view may return a ``Response`` of its own only for a body that is not the
model's (the CSV of ``format=csv``, the OpenAPI document itself), never the model's JSON: every JSON answer goes
through its model.

``declare`` records an operation whose route something else serves (``/ws``, a flask-sock route).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Blueprint, Response, request
from pydantic import BaseModel

from embedded_server.problems import MEDIA_TYPE as PROBLEM
from embedded_server.problems import validate_model
from embedded_server.request_body import json_body
from embedded_server.schemas import ProblemDetails

JSON = "application/json"
M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])
_PATH_PARAMETER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Answer:
    """One documented response: ``description``; its body's ``model`` (None: a free-form object) in ``media``
    (``""``: no body); ``also``: other media types the same status may carry, each with its JSON Schema."""

    description: str
    model: type[BaseModel] | None = None
    media: str = JSON
    also: Mapping[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class PathParameter:
    """A ``{name}`` in a path: its JSON Schema, and ``check(value)`` run before anything else is read (raises a
    ``Problem``, e.g. 404 for a job that does not exist)."""

    name: str
    schema: dict[str, Any]
    check: Callable[[str], object] | None = None


@dataclass(frozen=True)
class Operation:
    """One API operation: lower-case ``method``, OpenAPI ``path`` (``/jobs/{job_id}``), ``status`` of its success
    answer, ``responses`` (status → ``Answer``, the success first), the ``body`` and ``query`` models, its
    ``path_parameters`` and extra OpenAPI header ``headers``."""

    method: str
    path: str
    summary: str
    status: int
    responses: dict[int, Answer]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    path_parameters: tuple[PathParameter, ...] = ()
    headers: tuple[dict[str, Any], ...] = ()

    @property
    def success(self) -> Answer:
        return self.responses[self.status]


#: Every declared operation, in declaration order (``openapi`` imports the modules that declare them).
OPERATIONS: list[Operation] = []
#: The path parameters, by name (``path_parameter``); each ``{name}`` in a declared path is one of them.
PATH_PARAMETERS: dict[str, PathParameter] = {}

# ---- shared error answers (status → description) ----------------------------------------------------------------

NOT_FOUND = {404: "No such job."}
INVALID = {422: "Invalid field (errors lists each one)."}
BODY_ERRORS = {
    400: "Malformed JSON (or nested too deeply, or a number too large).",
    408: "The body did not arrive within the server's request timeout.",
    413: "Body over 1 MiB.",
    415: "Body is not JSON.",
    **INVALID,
}
#: Routes that write to the data folder.
WRITES = {507: "The data folder's disk is full; detail names the folder and its free space."}


def problem(description: str) -> Answer:
    """An error answer: problem+json (``ProblemDetails``)."""
    return Answer(description, ProblemDetails, PROBLEM)


def path_parameter(name: str, schema: dict[str, Any], check: Callable[[str], object] | None = None) -> PathParameter:
    """Declare what ``{name}`` in any path holds (see ``PathParameter``) and return it."""
    PATH_PARAMETERS[name] = PathParameter(name, schema, check)
    return PATH_PARAMETERS[name]


def declare(
    method: str,
    path: str,
    summary: str,
    *,
    ok: str,
    status: int = 200,
    model: type[BaseModel] | None = None,
    media: str = JSON,
    also: Mapping[str, dict[str, Any]] | None = None,
    errors: Mapping[int, str] | None = None,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    headers: Sequence[dict[str, Any]] = (),
) -> Operation:
    """Record an operation (arguments as ``operation``'s) and return it; registers no route."""
    unknown = [name for name in _PATH_PARAMETER.findall(path) if name not in PATH_PARAMETERS]
    if unknown:
        raise ValueError(f"{method} {path}: no path parameter {unknown[0]!r} is declared (path_parameter)")
    parameters = tuple(PATH_PARAMETERS[name] for name in _PATH_PARAMETER.findall(path))
    responses = {status: Answer(ok, model, media, also or {})} | {s: problem(d) for s, d in (errors or {}).items()}
    op = Operation(method.lower(), path, summary, status, responses, body, query, parameters, tuple(headers))
    if any((o.method, o.path) == (op.method, op.path) for o in OPERATIONS):
        raise ValueError(f"{method} {path} is declared twice")
    OPERATIONS.append(op)
    return op


def operation(
    bp: Blueprint,
    method: str,
    path: str,
    summary: str,
    *,
    body_defaults: Callable[[], Mapping[str, Any]] | None = None,
    **declared: Any,
) -> Callable[[F], F]:
    """Declare an operation and register its route on ``bp``; the view is returned unchanged (callable directly).

    ``ok``: the success answer's description, ``status`` (default 200) and ``model``; ``media``/``also``: its media
    types; ``errors``: status → description of each problem+json answer; ``body``/``query``: the request's models
    (``body_defaults()`` fills body fields the request leaves out); ``headers``: OpenAPI header parameters. Each
    ``{name}`` of ``path`` is the ``path_parameter`` of that name. Raises ``ValueError`` for a path parameter never
    declared, or an operation declared twice.
    """
    op = declare(method, path, summary, **declared)

    def register(view: F) -> F:
        @functools.wraps(view)
        def run(**path_values: str) -> Response:
            for parameter in op.path_parameters:
                if parameter.check is not None:
                    parameter.check(path_values[parameter.name])
            inputs: dict[str, Any] = {}
            if op.body is not None:
                defaults = body_defaults() if body_defaults is not None else {}
                inputs["body"] = validate_model(op.body, {**defaults, **json_body()}, "body")
            if op.query is not None:
                inputs["query"] = query_model(op.query)
            return _answer(op, view(**path_values, **inputs))

        bp.add_url_rule(_PATH_PARAMETER.sub(r"<\1>", path), view_func=run, methods=[op.method.upper()])
        return view

    return register


def query_model(model: type[M]) -> M:
    """The query string parsed into ``model`` (unknown parameters are ignored; bad values are a 422)."""
    known = {k: v for k, v in request.args.items() if k in model.model_fields}
    return validate_model(model, known, "query")


def _answer(op: Operation, result: Any) -> Response:
    """The view's ``result`` as the operation's success response (see the module doc)."""
    if isinstance(result, Response):
        if op.success.model is not None and result.mimetype == op.success.media:
            raise TypeError(f"{op.method.upper()} {op.path} must return its {op.success.model.__name__}, not JSON")
        return result
    model, headers = result if isinstance(result, tuple) else (result, None)
    expected = op.success.model
    if expected is None or not isinstance(model, expected):
        raise TypeError(f"{op.method.upper()} {op.path} returned {type(model).__name__}, not its declared model")
    return Response(model.model_dump_json(), status=op.status, mimetype=op.success.media, headers=headers)

