"""``GET /openapi.json``: an OpenAPI 3.1 document built from the operations the routes declare
(``operations.operation``) and the pydantic models they use.

The JSON Schemas come from pydantic (``models_json_schema``), so a field added to a model appears here without a
second edit, and a route declared appears here with its models, statuses and parameters.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from embedded_server import routes, sweep_routes, use_routes, ws  # noqa: F401  (their declarations fill OPERATIONS)
from embedded_server.operations import OPERATIONS, Operation, problem
from embedded_server.schemas import ProblemDetails
from trainer import __version__

__all__ = ["COMMON", "OPERATIONS", "build_openapi"]

REF = "#/components/schemas/{model}"

#: Every route may answer these (the Host/Origin guard and the token; the HTTP server's limits).
COMMON = {
    403: "Host or Origin refused (local-machine safety).",
    401: "Bearer token missing or wrong.",
    414: "URL too long.",
    431: "A header line too long, or too many headers.",
    503: "The server serves its limit of connections; retry shortly.",
}


def _components() -> tuple[dict[tuple[type[BaseModel], str], dict[str, Any]], dict[str, Any]]:
    models: list[tuple[type[BaseModel], str]] = []
    for op in OPERATIONS:
        for model in (op.body, op.query):
            if model is not None:
                models.append((model, "validation"))
        for answer in op.responses.values():
            if answer.model is not None:
                models.append((answer.model, "serialization"))
    models.append((ProblemDetails, "serialization"))
    refs, defs = models_json_schema(list(dict.fromkeys(models)), ref_template=REF)
    return refs, defs.get("$defs", {})


def _parameters(op: Operation, components: dict[str, Any], refs: dict[Any, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": p.name, "in": "path", "required": True, "schema": p.schema} for p in op.path_parameters
    ]
    if op.query is not None:
        name = refs[(op.query, "validation")]["$ref"].rsplit("/", 1)[-1]
        for field_name, schema in components[name]["properties"].items():
            params.append({"name": field_name, "in": "query", "required": False, "schema": schema})
    return params + list(op.headers)


def build_openapi(app: Flask | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document (a JSON-ready dict). ``app`` adds the bearer scheme when it requires a token."""
    refs, components = _components()
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        responses: dict[str, Any] = {}
        common = {status: problem(text) for status, text in COMMON.items() if status not in op.responses}
        for status, answer in {**op.responses, **common}.items():
            entry: dict[str, Any] = {"description": answer.description}
            if answer.media:
                schema = refs[(answer.model, "serialization")] if answer.model is not None else {"type": "object"}
                entry["content"] = {answer.media: {"schema": schema}}
                entry["content"].update({media: {"schema": extra} for media, extra in answer.also.items()})
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
