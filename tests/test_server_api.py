"""The REST API in-process (Flask test client): validation errors of every kind, local-machine safety, queued jobs,
idempotency, logs, predictions, datasets and the OpenAPI document. No worker starts here (``app`` holds the
queue); ``test_server_live.py`` runs real workers.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path

import pytest
from conftest import SHARED_DATA
from server_fixtures import assert_problem

from flask import Blueprint, Flask, Response

from embedded_server import datasets, operations, problems, schemas
from embedded_server.openapi import OPERATIONS, build_openapi
from embedded_server.services import EXTENSION
from trainer.config import TIMEFRAME_SECONDS, TrainingConfig
from trainer.data import catalog
from trainer.data.candles import CandleError
from trainer.data.store import load_dataset

JSON = {"Content-Type": "application/json"}


def start(client, body=None, **kwargs):
    return client.post(
        "/start_training", data=json.dumps(body or {}), headers={**JSON, **kwargs.pop("headers", {})}, **kwargs
    )


# ---- health and documents ---------------------------------------------------------------------------------------


def test_health(client) -> None:
    body = client.get("/").get_json()
    assert body["status"] == "ok" and body["app"] == "candlecast"
    assert body["jobs"] == {"running": 0, "queued": 0}
    assert body["uptime_s"] >= 0 and body["time"].endswith("Z") and body["pid"] > 0


def test_openapi_covers_every_route_of_the_app(app, client) -> None:
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"] == "3.1.0"
    routes = {
        (method.lower(), re.sub(r"<(\w+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert routes == documented == {(op.method, op.path) for op in OPERATIONS}
    body_schema = doc["paths"]["/start_training"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    name = body_schema["$ref"].rsplit("/", 1)[-1]
    assert set(doc["components"]["schemas"][name]["properties"]) == set(TrainingConfig.model_fields)
    assert doc["components"]["schemas"][name]["additionalProperties"] is False


def test_openapi_is_json_serialisable_without_an_app() -> None:
    assert json.loads(json.dumps(build_openapi()))["info"]["title"] == "Candlecast local API"


def test_an_operation_answers_only_through_its_model(monkeypatch) -> None:
    """A view that hands back its model's JSON by hand, or another model, is a 500: every answer is its model."""
    monkeypatch.setattr(operations, "OPERATIONS", [])  # this test's operations stay out of the served document
    bp = Blueprint("probe", __name__)

    @operations.operation(bp, "GET", "/by_hand", "probe", ok="ok", model=schemas.LogLines)
    def by_hand() -> Response:
        return Response(json.dumps({"lines": [], "count": 0, "requested": 1}), mimetype="application/json")

    @operations.operation(bp, "GET", "/wrong_model", "probe", ok="ok", model=schemas.LogLines)
    def wrong_model() -> schemas.StopAccepted:
        return schemas.StopAccepted(status="stopping", job_id="x")

    @operations.operation(bp, "GET", "/right", "probe", status=201, ok="ok", model=schemas.LogLines)
    def right() -> tuple[schemas.LogLines, dict[str, str]]:
        return schemas.LogLines(lines=["a"], count=1, requested=1), {"X-Probe": "1"}

    probe = Flask(__name__)
    problems.register_error_handlers(probe)
    probe.register_blueprint(bp)
    client = probe.test_client()
    assert "must return its LogLines" in assert_problem(client.get("/by_hand"), 500)["detail"]
    assert "returned StopAccepted" in assert_problem(client.get("/wrong_model"), 500)["detail"]
    resp = client.get("/right")
    assert resp.status_code == 201 and resp.headers["X-Probe"] == "1" and resp.get_json()["lines"] == ["a"]
    assert [op.path for op in operations.OPERATIONS] == ["/by_hand", "/wrong_model", "/right"]


def test_a_declaration_needs_declared_path_parameters_and_is_made_once(monkeypatch) -> None:
    monkeypatch.setattr(operations, "OPERATIONS", [])
    with pytest.raises(ValueError, match="no path parameter 'probe_id'"):
        operations.declare("GET", "/probes/{probe_id}", "probe", ok="ok")
    op = operations.declare("GET", "/probe/{job_id}", "probe", ok="ok")
    assert op.path_parameters == (operations.PATH_PARAMETERS["job_id"],)
    with pytest.raises(ValueError, match="declared twice"):
        operations.declare("GET", "/probe/{job_id}", "probe", ok="ok")


def test_an_unknown_job_is_404_before_its_query_is_read(client) -> None:
    for path in ("/jobs/nope/events?limit=0", "/jobs/nope/log?n=-1", "/jobs/nope/predictions?format=xml"):
        assert "no job 'nope'" in assert_problem(client.get(path), 404)["detail"]


# ---- validation errors ------------------------------------------------------------------------------------------


def test_malformed_json_is_400(client) -> None:
    body = assert_problem(client.post("/start_training", data="{epochs: 2", headers=JSON), 400)
    assert "malformed JSON at line 1, column 2" in body["detail"]
    assert_problem(client.post("/start_training", data=b"\xff\xfe{}", headers=JSON), 400)


def test_body_that_is_not_json_is_415(client) -> None:
    resp = client.post(
        "/start_training", data="epochs=2", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert "application/x-www-form-urlencoded" in assert_problem(resp, 415)["detail"]


def test_body_over_1_mib_is_413(client) -> None:
    big = json.dumps({"symbol": "BTCUSDT", "pad": "x" * (1024 * 1024)})
    assert_problem(client.post("/start_training", data=big, headers=JSON), 413)


@pytest.mark.parametrize(
    "body, loc",
    [
        ({"epochs": 0}, ["body", "epochs"]),
        ({"epochs": "many"}, ["body", "epochs"]),
        ({"epochs": "3"}, ["body", "epochs"]),  # no silent coercion: a wrong type is refused
        ({"epochs": True}, ["body", "epochs"]),
        ({"cv_folds": 2.0}, ["body", "cv_folds"]),
        ({"use_cv": "yes"}, ["body", "use_cv"]),
        ({"learning_rate": "0.01"}, ["body", "learning_rate"]),
        ({"cv_folds": 21}, ["body", "cv_folds"]),
        ({"timeframe": "7m"}, ["body", "timeframe"]),
        ({"learning_rate": 0}, ["body", "learning_rate"]),
        ({"calibration_method": "magic"}, ["body", "calibration_method"]),
        ({"epoch": 3}, ["body", "epoch"]),  # a typo is refused, never trained with a default
        ({"symbol": "!"}, ["body", "symbol"]),
        ({"dataset": "../../etc"}, ["body", "dataset"]),
        ({"dataset": "BTCUSDT-1h", "timeframe": "4h"}, ["body", "dataset"]),  # another timeframe than the job's
    ],
)
def test_invalid_fields_are_422_with_field_errors(client, body, loc) -> None:
    problem = assert_problem(start(client, body), 422)
    assert problem["errors"][0]["loc"] == loc


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"typo_field": 1}, "invalid body field typo_field: unknown field; allowed: symbol, timeframe, batch_size, "),
        ({"epoch": 3}, "invalid body field epoch: unknown field; did you mean epochs?"),
        ({"epochs": "3"}, "invalid body field epochs: must be an integer"),
        ({"epochs": 0}, "invalid body field epochs: must be at least 1"),
        ({"cv_folds": 21}, "invalid body field cv_folds: must be at most 20"),
        ({"learning_rate": 0}, "invalid body field learning_rate: must be greater than 0"),
        ({"learning_rate": "0.01"}, "invalid body field learning_rate: must be a number"),
        ({"use_cv": "yes"}, "invalid body field use_cv: must be true or false"),
        ({"symbol": 3}, "invalid body field symbol: must be a string"),
        ({"distribution": "normal"}, "invalid body field distribution: must be 'gaussian', 'student_t' or 'laplace'"),
    ],
)
def test_validation_messages_are_in_the_user_s_words(client, body, detail) -> None:
    problem = assert_problem(start(client, body), 422)
    assert problem["detail"].startswith(detail) and "Input should" not in problem["detail"], problem["detail"]


def test_several_errors_are_all_listed(client) -> None:
    problem = assert_problem(start(client, {"epochs": -1, "seed": -1, "bogus": 1}), 422)
    assert {tuple(e["loc"]) for e in problem["errors"]} == {("body", "epochs"), ("body", "seed"), ("body", "bogus")}
    assert "(and 2 more)" in problem["detail"]


def test_a_body_that_is_not_an_object_is_422(client) -> None:
    problem = assert_problem(client.post("/start_training", data="[1]", headers=JSON), 422)
    assert problem["errors"] == [{"loc": ["body"], "msg": "must be a JSON object, not an array"}]


@pytest.mark.parametrize(
    "path",
    ["/jobs?limit=0", "/jobs?status=done", "/status/log_tail?n=0", "/status/log_tail?n=10001", "/status/log_tail?n=x"],
)
def test_query_values_out_of_range_are_422(client, path) -> None:
    assert assert_problem(client.get(path), 422)["errors"][0]["loc"][0] == "query"


def _patterned_fields() -> list[tuple[str, str, type]]:
    """``(where, field, model)`` of every body and query field of the API whose OpenAPI schema has a ``pattern``."""
    found = set()
    for op in OPERATIONS:
        for where, model in (("body", op.body), ("query", op.query)):
            if model is None:
                continue
            for name, schema in model.model_json_schema()["properties"].items():
                if "pattern" in json.dumps(schema):
                    found.add((where, name, model))
    return sorted(found, key=lambda f: (f[0], f[1], f[2].__name__))


def test_every_field_with_a_pattern_says_in_words_what_it_allows() -> None:
    """A value a field's pattern refuses gets one line naming the field and what it allows, never the regex (the
    rule is in one place, ``schemas.matching`` and ``problems.validation_problem``, so every route has it)."""
    fields = _patterned_fields()
    assert {("query", "include"), ("query", "jobs"), ("body", "job_id"), ("body", "path"), ("body", "dataset")} <= {
        (where, name) for where, name, _ in fields}
    for where, name, model in fields:
        with pytest.raises(problems.Problem) as info:
            problems.validate_model(model, {name: "!"}, where)
        detail = info.value.detail
        assert detail.startswith(f"invalid {where} field {name}: "), detail
        assert "\n" not in detail and "pattern" not in detail and "^" not in detail, detail


def test_pattern_refusals_of_a_real_server_are_one_human_line(live_server) -> None:
    server = live_server(max_concurrent_jobs=0, warm_worker=False)
    cases = [
        (server.get("/compare", params={"jobs": "A"}), "invalid query field jobs: must be 2 to 4 job ids separated "
                                                       "by commas (A,B), not 'A'"),
        (server.get("/jobs", params={"include": "bogus"}), "invalid query field include: must be metrics, config or "
                                                           "metrics,config, not 'bogus'"),
        (server.post("/stop_training", {"job_id": "../x"}), "invalid body field job_id: must be a job id (1 to 64 "
                                                            "letters, digits, - and _, not starting with - or _), not '../x'"),
    ]
    for resp, detail in cases:
        problem = assert_problem(resp, 422)
        assert problem["detail"] == detail and problem["errors"][0]["msg"] in detail, problem


def test_refusals_of_non_finite_numbers_and_non_object_bodies_are_in_json_s_words(live_server) -> None:
    server = live_server(max_concurrent_jobs=0, warm_worker=False)

    def raw(path: str, text: str):
        return server.session.post(server.url + path, data=text, headers=JSON, timeout=30)

    cases = [
        (raw("/start_training", '{"weight_decay": NaN}'), "invalid body field weight_decay: must be a finite number, "
                                                          "not NaN"),
        (raw("/start_training", '{"learning_rate": Infinity}'), "invalid body field learning_rate: must be a finite "
                                                                "number, not Infinity"),
        (raw("/start_training", '{"weight_decay": -Infinity}'), "invalid body field weight_decay: must be a finite "
                                                                "number, not -Infinity"),
        (raw("/start_training", "[1, 2]"), "the request body must be a JSON object, not an array"),
        (raw("/start_training", "null"), "the request body must be a JSON object, not null"),
        (raw("/sweeps", '"x"'), "the request body must be a JSON object, not a string"),
        (raw("/stop_training", "3.5"), "the request body must be a JSON object, not a number"),
        (raw("/sweeps", '{"space": {"learning_rate": {"low": 0.001, "high": 0.1}}, "base": {"weight_decay": NaN}}'),
         "weight_decay"),
    ]
    for resp, detail in cases:
        problem = assert_problem(resp, 422)
        assert detail in problem["detail"] and problem["errors"][0]["msg"] in problem["detail"], problem
        assert not re.search(r"\b(list|NoneType|str|float|dict)\b|less than|greater than", problem["detail"]), problem
    assert "finite number, not NaN" in assert_problem(cases[-1][0], 422)["detail"]
    candle = {"open_time": 1, "open": 1.0, "high": 1.0, "low": 1.0, "close": float("nan"), "volume": 1.0}
    with pytest.raises(problems.Problem) as info:  # every request model has the rule, not only the training one
        problems.validate_model(schemas.PredictRequest, {"candles": [candle]}, "body")
    assert info.value.detail == "invalid body field candles.0.close: must be a finite number, not NaN"


def test_unknown_job_and_route_are_404(client) -> None:
    for path in [
        "/jobs/nope",
        "/jobs/nope/events",
        "/jobs/nope/log",
        "/jobs/nope/predictions",
        "/jobs/..%2f..%2fetc",
        "/x",
    ]:
        assert_problem(client.get(path), 404)
    assert_problem(client.post("/jobs/nope/stop"), 404)
    assert_problem(
        client.post("/stop_training", data=json.dumps({"job_id": "20240101-000000-abcdef"}), headers=JSON), 404
    )


def test_unknown_dataset_is_404_naming_the_import_command(client) -> None:
    detail = assert_problem(start(client, {"symbol": "ETHUSDT"}), 404)["detail"]
    assert "no dataset 'ETHUSDT-1h'" in detail and "candlecast import FILE --symbol ETHUSDT --timeframe 1h" in detail


@pytest.mark.parametrize("dataset", ["NOPE-1h", "ETHUSDT-1h", "bundled:BTCUSDT-4h"])
def test_an_unknown_dataset_id_is_404_naming_the_catalog(client, dataset) -> None:
    detail = assert_problem(start(client, {"dataset": dataset}), 404)["detail"]
    assert detail.startswith(f"no dataset {dataset!r}") and "GET /datasets" in detail


def test_a_resampled_timeframe_is_accepted(client) -> None:
    assert start(client, {"timeframe": "4h"}).status_code == 202  # 4h is built from the bundled 1h candles
    assert start(client, {"dataset": "BTCUSDT-1d"}).status_code == 202  # the id alone: BTCUSDT 1d, not 1h


def test_the_server_accepts_exactly_what_the_worker_loads(client, tmp_path) -> None:
    """One resolution rule (``trainer.data.sources``) for both sides: stored candles whose catalog metadata a crash
    never wrote still train (the server said 404 to them), resampled ones too; a bundled id never falls back."""
    path = tmp_path / "ETHUSDT-1h.csv"
    rows = "".join(f"{1704067200 + 3600 * i},{100 + i},{102 + i},{99 + i},{101 + i},{10 + i}\n" for i in range(100))
    path.write_text("timestamp,open,high,low,close,volume\n" + rows)
    assert client.post("/datasets/import", data=json.dumps({"path": str(path)}), headers=JSON).status_code == 201
    catalog.stored_paths("ETHUSDT-1h")["metadata"].unlink()  # the candles are written, the catalog entry is not
    for timeframe, dataset in (("1h", None), ("4h", None), ("1h", "ETHUSDT-1h")):
        body = {"symbol": "ETHUSDT", "timeframe": timeframe, "dataset": dataset}
        assert start(client, body).status_code == 202, body
        assert len(load_dataset("ETHUSDT", timeframe, dataset).candles) == 100 * 3600 // TIMEFRAME_SECONDS[timeframe]
    assert_problem(start(client, {"symbol": "ETHUSDT", "dataset": "bundled:ETHUSDT-1h"}), 404)
    with pytest.raises(CandleError):
        load_dataset("ETHUSDT", "1h", "bundled:ETHUSDT-1h")


def test_a_dataset_too_short_for_the_window_is_422_before_a_job_starts(client, tmp_path) -> None:
    """The stored row count (catalog metadata, no candles read) against feature warm-up + lookback + horizon."""
    path = tmp_path / "ETHUSDT-1h.csv"
    rows = "".join(f"{1704067200 + 3600 * i},{100 + i},{102 + i},{99 + i},{101 + i},{10 + i}\n" for i in range(100))
    path.write_text("timestamp,open,high,low,close,volume\n" + rows)
    assert client.post("/datasets/import", data=json.dumps({"path": str(path)}), headers=JSON).status_code == 201
    assert start(client, {"symbol": "ETHUSDT", "lookback": 75}).status_code == 202  # 24 + 75 + 1 = 100 bars
    problem = assert_problem(start(client, {"symbol": "ETHUSDT", "lookback": 70, "forecast_horizon": 7}), 422)
    assert problem["detail"] == ("dataset 'ETHUSDT-1h' has 100 bars; lookback 70 and horizon 7 need 101 consecutive "
                                 "bars (feature warm-up 24 + lookback 70 + horizon 7)")
    assert problem["errors"][0]["loc"] == ["body", "lookback"]
    assert client.get("/jobs").get_json()["total"] == 1  # the refused request made no job


def test_wrong_method_is_405_problem(client) -> None:
    resp = client.get("/start_training")
    assert_problem(resp, 405)
    assert "POST" in resp.headers["Allow"]


def test_an_unexpected_error_is_a_500_problem_with_the_traceback_in_the_log(app, client, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(app.extensions[EXTENSION].store, "list_jobs", broken)
    assert "RuntimeError: disk on fire" in assert_problem(client.get("/jobs"), 500)["detail"]
    for handler in logging.getLogger().handlers:
        handler.flush()
    log = app.extensions[EXTENSION].log_path.read_text()
    assert "unhandled error in GET /jobs" in log and "RuntimeError: disk on fire" in log and "Traceback" in log


# ---- local-machine safety ---------------------------------------------------------------------------------------


def test_a_foreign_host_header_is_403(make_app) -> None:
    client = make_app({"BIND_PORT": 8000}, max_concurrent_jobs=0).test_client()
    assert client.get("/", headers={"Host": "localhost:8000"}).status_code == 200
    assert client.get("/", headers={"Host": "127.0.0.1:8000"}).status_code == 200
    assert "DNS rebinding" in assert_problem(client.get("/", headers={"Host": "attacker.example:8000"}), 403)["detail"]
    assert_problem(client.get("/", headers={"Host": "localhost:9999"}), 403)
    assert_problem(client.get("/ws", headers={"Host": "attacker.example"}), 403)


def test_a_cross_site_origin_is_403_on_changes_and_websocket_handshakes(client) -> None:
    evil = {"Origin": "https://evil.example"}
    assert "cross-site" in assert_problem(start(client, {}, headers=evil), 403)["detail"]
    assert_problem(client.post("/stop_training", headers=evil), 403)
    handshake = {
        **evil,
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "x",
        "Sec-WebSocket-Version": "13",
    }
    assert_problem(client.get("/ws", headers=handshake), 403)
    assert client.get("/jobs", headers=evil).status_code == 200  # a read: the browser's CORS rules hide the answer
    assert start(client, {}, headers={"Origin": "http://localhost:5173"}).status_code == 202


def test_a_token_is_required_when_configured(make_app) -> None:
    client = make_app({"TOKEN": "s3cret-token"}, max_concurrent_jobs=0).test_client()
    resp = client.get("/")
    assert_problem(resp, 401)
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert_problem(client.get("/", headers={"Authorization": "Bearer wrong-token"}), 401)
    assert client.get("/", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200


def test_plain_get_on_the_websocket_route_is_426(client) -> None:
    assert_problem(client.get("/ws"), 426)


# ---- jobs without workers ---------------------------------------------------------------------------------------


def test_a_queued_job_has_no_pid_but_a_queue_position(client) -> None:
    first = start(client, {"epochs": 2, "cv_folds": 2})
    assert first.status_code == 202
    body = first.get_json()
    assert body["status"] == "accepted" and body["expected_pid"] is None and body["queue_position"] == 1
    assert first.headers["Location"] == f"/jobs/{body['job_id']}"
    second = start(client, {}).get_json()
    assert second["queue_position"] == 2 and second["job_id"] != body["job_id"]
    job = client.get(f"/jobs/{body['job_id']}").get_json()
    assert job["status"] == "queued" and job["pid"] is None
    assert job["config"] == TrainingConfig(epochs=2, cv_folds=2).model_dump(mode="json")
    assert job["progress"] == {"fold": 0, "folds": 2, "epoch": 0, "epochs": 2, "fraction": 0.0, "eta_s": None}
    assert client.get("/").get_json()["jobs"] == {"running": 0, "queued": 2}
    listed = client.get("/jobs?status=queued&limit=1").get_json()
    assert listed["count"] == 1 and listed["jobs"][0]["job_id"] == second["job_id"]


def test_the_settings_training_block_gives_defaults(make_app) -> None:
    client = make_app(max_concurrent_jobs=0, training={"epochs": 3, "lookback": 16}).test_client()
    job_id = start(client, {"lookback": 32}).get_json()["job_id"]
    config = client.get(f"/jobs/{job_id}").get_json()["config"]
    assert (config["epochs"], config["lookback"]) == (3, 32)


def test_idempotent_retry_returns_the_first_job(client) -> None:
    key = {"Idempotency-Key": "3f1c2a8e-retry"}
    first = start(client, {"epochs": 2}, headers=key).get_json()
    again = start(client, {"epochs": 2}, headers=key)
    assert again.status_code == 202
    assert again.get_json()["job_id"] == first["job_id"] and "repeated Idempotency-Key" in again.get_json()["message"]
    assert client.get("/jobs").get_json()["count"] == 1
    other = start(client, {"epochs": 2}, headers={"Idempotency-Key": "another"}).get_json()
    assert other["job_id"] != first["job_id"]
    assert_problem(start(client, {}, headers={"Idempotency-Key": "k" * 256}), 422)


def test_cancel_a_queued_job_then_stopping_it_again_is_409(client) -> None:
    job_id = start(client, {}).get_json()["job_id"]
    resp = client.post(f"/jobs/{job_id}/stop")
    assert resp.status_code == 202 and resp.get_json() == {"status": "cancelled", "job_id": job_id}
    job = client.get(f"/jobs/{job_id}").get_json()
    assert job["status"] == "cancelled" and job["finished_at"]
    assert "cancelled; it cannot become stopped" in assert_problem(client.post(f"/jobs/{job_id}/stop"), 409)["detail"]
    assert client.get(f"/jobs/{job_id}").get_json() == job  # the refused move changed nothing
    events = client.get(f"/jobs/{job_id}/events").get_json()
    kinds = [(e["type"], e.get("status") or e.get("origin") or e.get("reason")) for e in events["events"]]
    assert kinds == [
        ("job.status", "queued"),
        ("training.started", "server"),
        ("training.cancelled", "stopped on request"),
        ("job.status", "cancelled"),
    ]
    seqs = [e["seq"] for e in events["events"]]
    assert seqs == sorted(seqs) and events["last_seq"] == seqs[-1] == job["last_seq"]
    later = client.get(f"/jobs/{job_id}/events?since={seqs[1]}").get_json()
    assert [e["seq"] for e in later["events"]] == seqs[2:]
    assert client.get(f"/jobs/{job_id}/events?since={seqs[-1]}").get_json() == {"events": [], "last_seq": seqs[-1]}


def test_stop_training_without_a_running_job_is_409(client) -> None:
    assert "no job is running" in assert_problem(client.post("/stop_training"), 409)["detail"]
    job_id = start(client, {}).get_json()["job_id"]
    resp = client.post("/stop_training", data=json.dumps({"job_id": job_id}), headers=JSON)
    assert resp.get_json() == {"status": "cancelled", "job_id": job_id}
    assert_problem(client.post("/stop_training", data=json.dumps({"job": job_id}), headers=JSON), 422)


# ---- logs, predictions, datasets --------------------------------------------------------------------------------


def test_log_tail_of_a_missing_log_is_empty(app, client) -> None:
    app.extensions[EXTENSION].log_path.unlink()
    assert client.get("/status/log_tail").get_json() == {"lines": [], "count": 0, "requested": 200}


def test_log_tail_reads_the_end_of_a_large_log(app, client) -> None:
    path: Path = app.extensions[EXTENSION].log_path
    with open(path, "w", encoding="utf-8") as handle:  # ~40 MB of lines
        for i in range(400_000):
            handle.write(f"2024-01-01T00:00:00.000Z INFO filler [job=-] line {i:07d} {'x' * 64}\n")
    body = client.get("/status/log_tail?n=200").get_json()
    assert body["count"] == body["requested"] == 200
    assert body["lines"][0].split()[-2:-1] == ["0399800"] and body["lines"][-1].split()[-2] == "0399999"


def test_log_tail_after_rotation_and_with_bad_bytes(app, client) -> None:
    path: Path = app.extensions[EXTENSION].log_path
    path.with_name("backend.log.1").write_bytes(b"older 1\nolder 2 \xff\n")
    path.write_bytes(b"newest\n")
    body = client.get("/status/log_tail?n=3").get_json()
    assert body == {"lines": ["older 1", "older 2 \ufffd", "newest"], "count": 3, "requested": 3}


def test_job_log_and_predictions_of_a_job_folder(app, client) -> None:
    job_id = start(client, {}).get_json()["job_id"]
    folder = app.extensions[EXTENSION].manager.jobs_dir / job_id
    assert "no predictions yet" in assert_problem(client.get(f"/jobs/{job_id}/predictions"), 404)["detail"]
    assert client.get(f"/jobs/{job_id}/log").get_json() == {"lines": [], "count": 0, "requested": 200}
    (folder / "worker.log").write_text("a\nb\nc\n")
    assert client.get(f"/jobs/{job_id}/log?n=2").get_json() == {"lines": ["b", "c"], "count": 2, "requested": 2}
    csv_text = "timestamp,fold,y,mu,sigma,p_up,p_up_raw\n1700000000.0,1,0.001,0.0,0.01,0.52,0.55\n1700003600.0,1,-0.002,,0.01,0.48,0.47\n"
    (folder / "predictions.csv").write_text(csv_text)
    body = client.get(f"/jobs/{job_id}/predictions").get_json()
    assert body["count"] == 2 and body["columns"] == ["timestamp", "fold", "y", "mu", "sigma", "p_up", "p_up_raw"]
    assert body["predictions"][0] == {
        "timestamp": 1700000000.0,
        "fold": 1,
        "y": 0.001,
        "mu": 0.0,
        "sigma": 0.01,
        "p_up": 0.52,
        "p_up_raw": 0.55,
    }
    assert body["predictions"][1]["mu"] is None
    raw = client.get(f"/jobs/{job_id}/predictions?format=csv")
    assert raw.mimetype == "text/csv" and raw.get_data(as_text=True) == csv_text
    assert_problem(client.get(f"/jobs/{job_id}/predictions?format=xml"), 422)


def test_datasets_lists_the_bundled_candles(client) -> None:
    datasets = client.get("/datasets").get_json()["datasets"]
    bundled = [d for d in datasets if d["source"] == "bundled"]
    assert bundled[0]["symbol"] == "BTCUSDT" and bundled[0]["timeframe"] == "1h" and bundled[0]["rows"] == 58419


@pytest.mark.parametrize(
    "body, status, loc",
    [
        ({}, 422, ["body", "path"]),
        ({"path": "relative/file.csv"}, 422, ["body", "path"]),
        ({"path": "/no/such/file.csv"}, 422, ["body", "path"]),
        ({"path": "/tmp/x.csv", "symbol": "B!"}, 422, ["body", "symbol"]),
        ({"path": "/tmp", "timeframe": "7m"}, 422, ["body", "timeframe"]),
    ],
)
def test_dataset_import_refusals(client, body, status, loc) -> None:
    resp = client.post("/datasets/import", data=json.dumps(body), headers=JSON)
    assert assert_problem(resp, status)["errors"][0]["loc"] == loc


def test_dataset_import_of_a_directory_says_it_is_one(client, tmp_path) -> None:
    resp = client.post("/datasets/import", data=json.dumps({"path": str(tmp_path)}), headers=JSON)
    problem = assert_problem(resp, 422)
    assert "a directory, not a file" in problem["detail"] and "no such file" not in problem["detail"]


def test_dataset_import_refusals_never_echo_the_file(client, tmp_path) -> None:
    path = tmp_path / "passwd"
    path.write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    problem = assert_problem(client.post("/datasets/import", data=json.dumps({"path": str(path)}), headers=JSON), 422)
    assert problem["detail"].startswith(f"{path}: not a candle table")  # the path the request gave
    rest = json.dumps(problem).replace(json.dumps(str(path))[1:-1], "")  # the temp path may hold "root"
    assert "root" not in rest and "daemon" not in rest


def test_dataset_import_names_the_request_field_it_needs(client, tmp_path) -> None:
    path = tmp_path / "candles.csv"  # no symbol in the file or its name
    rows = "".join(f"{1704067200 + 3600 * i},{100 + i},{102 + i},{99 + i},{101 + i},{10 + i}\n" for i in range(100))
    path.write_text("timestamp,open,high,low,close,volume\n" + rows)
    problem = assert_problem(client.post("/datasets/import", data=json.dumps({"path": str(path)}), headers=JSON), 422)
    assert problem["detail"].endswith("give the symbol (e.g. BTCUSDT) in the request's symbol field")
    assert "--symbol" not in problem["detail"] and problem["errors"][0]["loc"] == ["body", "symbol"]
    done = client.post("/datasets/import", data=json.dumps({"path": str(path), "symbol": "eth/usdt"}), headers=JSON)
    assert done.status_code == 201 and done.get_json()["dataset"]["id"] == "ETHUSDT-1h"


def test_dataset_import_appends_a_few_candles_to_a_stored_dataset(client, tmp_path) -> None:
    """The training-window minimum is the merged dataset's: 5 new candles append to 100 stored ones (201), while a
    new dataset of 5 is still refused (422, nothing stored)."""
    def hours(path: Path, first: int, count: int) -> str:
        rows = "".join(f"{1704067200 + 3600 * i},{100 + i},{102 + i},{99 + i},{101 + i},{10 + i}\n"
                       for i in range(first, first + count))
        path.write_text("timestamp,open,high,low,close,volume\n" + rows)
        return json.dumps({"path": str(path)})

    five = hours(tmp_path / "ETHUSDT-1h-new.csv", 100, 5)
    problem = assert_problem(client.post("/datasets/import", data=five, headers=JSON), 422)
    assert ": only 5 usable row(s) of 5; one training window" in problem["detail"]
    assert problem["errors"][0]["loc"] == ["body", "path"]
    assert "ETHUSDT-1h" not in {d["id"] for d in client.get("/datasets").get_json()["datasets"]}
    stored = client.post("/datasets/import", data=hours(tmp_path / "ETHUSDT-1h.csv", 0, 100), headers=JSON)
    assert stored.status_code == 201, stored.get_data(as_text=True)
    appended = client.post("/datasets/import", data=five, headers=JSON)
    assert appended.status_code == 201, appended.get_data(as_text=True)
    body = appended.get_json()
    assert body["report"]["merge"]["added"] == 5 and body["dataset"]["rows"] == 105


def test_dataset_import_answers_only_what_its_model_holds(client, tmp_path, monkeypatch) -> None:
    """The importer's JSON goes through ``ImportedDataset``: an importer printing anything else is a 500."""
    path = tmp_path / "candles.csv"
    path.write_text("timestamp,open,high,low,close,volume\n")
    printer = [sys.executable, "-c", "print('{\"dataset\": {\"id\": \"X-1h\"}, \"report\": {}}')"]
    monkeypatch.setattr(datasets, "import_command", lambda *_: printer)
    body = {"path": str(path)}
    problem = assert_problem(client.post("/datasets/import", data=json.dumps(body), headers=JSON), 500)
    assert problem["detail"] == f"the importer printed no dataset JSON for {path}; details in backend.log"


FORMATS = SHARED_DATA / "formats"


@pytest.mark.skipif(not FORMATS.exists(), reason="shared format samples not checked out")
def test_dataset_import_runs_the_importer_and_reports_refusals(client) -> None:
    feather = FORMATS / "freqtrade_BTC_USDT-1d.feather"
    resp = client.post("/datasets/import", data=json.dumps({"path": str(feather)}), headers=JSON)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["dataset"]["id"] == "BTCUSDT-1d" and body["dataset"]["rows"] == body["report"]["rows_kept"] > 100
    assert "BTCUSDT-1d" in {d["id"] for d in client.get("/datasets").get_json()["datasets"]}

    head = FORMATS / "binance_spot_klines_ms_BTCUSDT-5m-2024-12.head.csv"
    problem = assert_problem(client.post("/datasets/import", data=json.dumps({"path": str(head)}), headers=JSON), 422)
    assert problem["detail"].startswith(f"{head}: only 5 usable row(s)") and problem["errors"][0]["loc"] == [
        "body",
        "path",
    ]
