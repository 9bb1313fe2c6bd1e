"""``GET /openapi.json``: an OpenAPI 3.1 document built from the same pydantic models the routes use.

``OPERATIONS`` lists every route with its request body, query and response models; the JSON Schemas come from
pydantic (``models_json_schema``), so a field added to a model appears here without a second edit. A test
checks that ``OPERATIONS`` and the app's URL map name the same routes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from embedded_server import schemas as s
from embedded_server.job_manager import JOB_ID_PATTERN
from trainer import __version__

REF = "#/components/schemas/{model}"
PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Operation:
    """One route: ``responses`` maps a status to (description, model or None, media type)."""

    method: str
    path: str
    summary: str
    responses: dict[int, tuple[str, type[BaseModel] | None, str]]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    headers: list[dict[str, Any]] = field(default_factory=list)


def _ok(description: str, model: type[BaseModel] | None, media: str = "application/json") -> tuple[str, Any, str]:
    return description, model, media


def _err(description: str) -> tuple[str, Any, str]:
    return description, s.ProblemDetails, PROBLEM


NOT_FOUND = {404: _err("No such job.")}
INVALID = {422: _err("Invalid field (errors lists each one).")}
BODY_ERRORS = {
    400: _err("Malformed JSON (or nested too deeply, or a number too large)."),
    408: _err("The body did not arrive within the server's request timeout."),
    413: _err("Body over 1 MiB."),
    415: _err("Body is not JSON."),
    **INVALID,
}
#: Routes that write to the data folder.
WRITES = {507: _err("The data folder's disk is full; detail names the folder and its free space.")}
IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "A repeat of the same key returns the first request's job instead of starting another.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}

OPERATIONS: list[Operation] = [
    Operation("get", "/", "Health check", {200: _ok("The server is up.", s.Health)}),
    Operation(
        "post",
        "/start_training",
        "Start (or queue) a training job",
        {
            202: _ok("Accepted: started now (expected_pid) or queued (queue_position).", s.StartAccepted),
            404: _err("No dataset for this symbol and timeframe."),
            503: _err("The server is shutting down."),
            **BODY_ERRORS,
            **WRITES,
        },
        body=s.TrainingStartRequest,
        headers=[IDEMPOTENCY],
    ),
    Operation("get", "/jobs", "List jobs, newest first", {200: _ok("Jobs.", s.JobList), **INVALID}, query=s.JobsQuery),
    Operation("get", "/jobs/{job_id}", "One job", {200: _ok("The job.", s.Job), **NOT_FOUND}),
    Operation(
        "post",
        "/jobs/{job_id}/stop",
        "Stop a running job or cancel a queued one",
        {
            202: _ok("Stopping or cancelled.", s.StopAccepted),
            409: _err("The job has finished."),
            **NOT_FOUND,
            **WRITES,
        },
    ),
    Operation(
        "post",
        "/stop_training",
        "Stop a job (default: the running one)",
        {
            202: _ok("Stopping or cancelled.", s.StopAccepted),
            409: _err("No job running, several running, or the job has finished."),
            **NOT_FOUND,
            **BODY_ERRORS,
            **WRITES,
        },
        body=s.StopTrainingRequest,
    ),
    Operation(
        "get",
        "/jobs/{job_id}/events",
        "A job's stored events (polling fallback for the WebSocket)",
        {200: _ok("Events after since.", s.EventList), **NOT_FOUND, **INVALID},
        query=s.EventsQuery,
    ),
    Operation(
        "get",
        "/jobs/{job_id}/log",
        "The last lines of a job's worker.log",
        {200: _ok("Log lines.", s.LogLines), **NOT_FOUND, **INVALID},
        query=s.TailQuery,
    ),
    Operation(
        "get",
        "/jobs/{job_id}/predictions",
        "Out-of-fold predictions",
        {
            200: ("Predictions (JSON records, or the CSV file for format=csv).", s.PredictionList, "application/json"),
            404: _err("No such job, or no predictions yet."),
            **INVALID,
        },
        query=s.PredictionsQuery,
    ),
    Operation(
        "get",
        "/status/log_tail",
        "The last lines of backend.log",
        {200: _ok("Log lines (none if there is no log yet).", s.LogLines), **INVALID},
        query=s.TailQuery,
    ),
    Operation("get", "/datasets", "Datasets a job can train on", {200: _ok("Datasets.", s.DatasetList)}),
    Operation(
        "post",
        "/datasets/import",
        "Import a candle file into the dataset store",
        {201: _ok("The imported dataset with its import report.", s.ImportedDataset), **BODY_ERRORS, **WRITES},
        body=s.ImportRequest,
    ),
    Operation("get", "/openapi.json", "This document", {200: _ok("OpenAPI 3.1.", None)}),
    Operation(
        "get",
        "/ws",
        "WebSocket event stream (hello, replay with since, live events, ping)",
        {
            101: ("Switching to the WebSocket protocol.", None, ""),
            426: _err("Not a WebSocket handshake."),
            **INVALID,
        },
        query=s.WsQuery,
    ),
]

#: Every route may answer these (the Host/Origin guard and the token).
COMMON = {
    403: _err("Host or Origin refused (local-machine safety)."),
    401: _err("Bearer token missing or wrong."),
    414: _err("URL too long."),
    431: _err("A header line too long, or too many headers."),
    503: _err("The server serves its limit of connections; retry shortly."),
}


def _components() -> tuple[dict[tuple[type[BaseModel], str], dict[str, Any]], dict[str, Any]]:
    models: list[tuple[type[BaseModel], str]] = []
    for op in OPERATIONS:
        for model in (op.body, op.query):
            if model is not None:
                models.append((model, "validation"))
        for _, model, _ in op.responses.values():
            if model is not None:
                models.append((model, "serialization"))
    models.append((s.ProblemDetails, "serialization"))
    refs, defs = models_json_schema(list(dict.fromkeys(models)), ref_template=REF)
    return refs, defs.get("$defs", {})


def _parameters(op: Operation, components: dict[str, Any], refs: dict[Any, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    if "{job_id}" in op.path:
        params.append(
            {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": JOB_ID_PATTERN}}
        )
    if op.query is not None:
        name = refs[(op.query, "validation")]["$ref"].rsplit("/", 1)[-1]
        for field_name, schema in components[name]["properties"].items():
            params.append({"name": field_name, "in": "query", "required": False, "schema": schema})
    return params + op.headers


def build_openapi(app: Flask | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document (a JSON-ready dict). ``app`` adds the bearer scheme when it requires a token."""
    refs, components = _components()
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        responses: dict[str, Any] = {}
        common = {status: answer for status, answer in COMMON.items() if status not in op.responses}
        for status, (description, model, media) in {**op.responses, **common}.items():
            entry: dict[str, Any] = {"description": description}
            if media:
                schema = refs[(model, "serialization")] if model is not None else {"type": "object"}
                entry["content"] = {media: {"schema": schema}}
                if op.path == "/jobs/{job_id}/predictions" and status == 200:
                    entry["content"]["text/csv"] = {"schema": {"type": "string"}}
            responses[str(status)] = entry
        operation: dict[str, Any] = {
            "summary": op.summary,
            "operationId": f"{op.method}_{op.path.strip('/').replace('/', '_').replace('{', '').replace('}', '') or 'health'}",
            "parameters": _parameters(op, components, refs),
            "responses": responses,
        }
        if op.body is not None:
            operation["requestBody"] = {
                "required": any(f.is_required() for f in op.body.model_fields.values()),
                "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
            }
        paths.setdefault(op.path, {})[op.method] = operation
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Candlecast local API",
            "version": __version__,
            "description": "REST and WebSocket API of the Candlecast server (API.md). Errors are problem+json.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": components},
    }
    if app is not None and app.config.get("TOKEN"):
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document
