"""Property-based API test: schemathesis generates valid and invalid requests for every operation of
``/openapi.json`` and checks that nothing answers 5xx and every answer has a documented status, content type
and schema. The app holds every job in the queue (``max_concurrent_jobs=0``), so the many accepted
``POST /start_training`` cases never start a worker.

(``schemathesis.pytest.from_fixture`` needs a pytest attribute that pytest 9 removed, so each operation's
strategy is driven with ``hypothesis.given`` inside an ordinary test.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from embedded_server.openapi import OPERATIONS

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
#: Examples per operation and mode: enough to hit every field's edge values, few enough to stay fast.
EXAMPLES = 40


def _cases() -> list:
    """Valid requests for every operation; invalid ones for each operation that takes any input."""
    cases = []
    for op in OPERATIONS:
        name = f"{op.method.upper()} {op.path}"
        cases.append(pytest.param(op, GenerationMode.POSITIVE, id=f"{name} valid"))
        if op.body or op.query or op.headers or "{" in op.path:
            cases.append(pytest.param(op, GenerationMode.NEGATIVE, id=f"{name} invalid"))
    return cases


@pytest.mark.parametrize("operation, mode", _cases())
def test_no_server_errors_and_documented_answers(make_app, operation, mode) -> None:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", make_app(max_concurrent_jobs=0))
    api_operation = schema[operation.path][operation.method.upper()]

    @given(case=api_operation.as_strategy(mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS)

    check()
