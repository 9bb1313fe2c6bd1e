"""The REST routes of API.md. Each validates its input with a ``schemas`` model, makes one call into the job
manager, store or catalog, and serialises a ``schemas`` model. Errors are raised as ``Problem`` (problem+json).
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, request
from pydantic import BaseModel
from werkzeug.exceptions import ClientDisconnected

from embedded_server.datasets import dataset_problem, import_dataset, list_datasets
from embedded_server.job_manager import ManagerClosed
from embedded_server.job_store import JobRecord, utc_now
from embedded_server.log_tail import tail_lines, tail_rotated
from embedded_server.problems import Problem, validate_model
from embedded_server.schemas import (
    DatasetList,
    EventList,
    EventsQuery,
    Health,
    ImportRequest,
    Job,
    JobList,
    JobsQuery,
    JobSummary,
    LogLines,
    PredictionList,
    PredictionsQuery,
    StartAccepted,
    StopAccepted,
    StopTrainingRequest,
    TailQuery,
    TrainingStartRequest,
)
from embedded_server.services import services
from trainer import __version__

bp = Blueprint("api", __name__)

M = TypeVar("M", bound=BaseModel)
PREDICTION_COLUMNS = ("timestamp", "fold", "y", "mu", "sigma", "p_up", "p_up_raw")
#: Longest ``Idempotency-Key`` accepted (keys are client-chosen strings, usually a UUID).
MAX_IDEMPOTENCY_KEY = 255


# ---- input helpers ----------------------------------------------------------------------------------------------


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
        raise Problem(
            422,
            f"the body must be a JSON object, not {type(body).__name__}",
            errors=[{"loc": ["body"], "msg": "not an object"}],
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


def query(model: type[M]) -> M:
    """The query string parsed into ``model`` (unknown parameters are ignored; bad values are a 422)."""
    known = {k: v for k, v in request.args.items() if k in model.model_fields}
    return validate_model(model, known, "query")


def get_job(job_id: str) -> JobRecord:
    """The job ``job_id`` or a 404 problem (also for ids that could not name a job folder)."""
    try:
        services().manager.job_dir(job_id)
        return services().store.get_job(job_id)
    except KeyError:
        raise Problem(404, f"no job {job_id!r}") from None


def dump(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``model`` as a JSON response."""
    return Response(model.model_dump_json(), status=status, mimetype="application/json", headers=headers)


# ---- routes -----------------------------------------------------------------------------------------------------


@bp.get("/")
def health() -> Response:
    svc = services()
    return dump(
        Health(
            status="ok",
            app="candlecast",
            version=__version__,
            pid=os.getpid(),
            uptime_s=round(time.monotonic() - svc.started_monotonic, 3),
            time=utc_now(),
            jobs=svc.manager.counts(),
            spare_worker=svc.manager.spare_info(),
        )
    )


@bp.post("/start_training")
def start_training() -> Response:
    svc = services()
    body = json_body()
    config = validate_model(TrainingStartRequest, {**svc.settings.training, **body}, "body")
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (0 < len(key) <= MAX_IDEMPOTENCY_KEY):
        raise Problem(
            422,
            f"Idempotency-Key must be 1..{MAX_IDEMPOTENCY_KEY} characters",
            errors=[{"loc": ["header", "Idempotency-Key"], "msg": "length out of range"}],
        )
    problem = dataset_problem(config)
    if problem:
        raise problem
    try:
        sub = svc.manager.submit(config, key)
    except ManagerClosed as exc:
        raise Problem(503, str(exc)) from None
    if not sub.created:
        message = (
            f"repeated Idempotency-Key: this is job {sub.job.job_id} from the first request ({sub.job.status.value})"
        )
    elif sub.expected_pid is not None:
        message = f"job {sub.job.job_id} started: worker pid {sub.expected_pid}"
    elif sub.queue_position is not None:
        message = f"job {sub.job.job_id} queued at position {sub.queue_position}"
    else:
        message = f"job {sub.job.job_id} is {sub.job.status.value}"
    accepted = StartAccepted(
        status="accepted",
        job_id=sub.job.job_id,
        expected_pid=sub.expected_pid,
        message=message,
        queue_position=sub.queue_position,
    )
    return dump(accepted, 202, headers={"Location": f"/jobs/{sub.job.job_id}"})


@bp.get("/jobs")
def list_jobs() -> Response:
    params = query(JobsQuery)
    jobs = [JobSummary.from_record(j) for j in services().store.list_jobs(params.status, params.limit)]
    return dump(JobList(jobs=jobs, count=len(jobs)))


@bp.get("/jobs/<job_id>")
def job_detail(job_id: str) -> Response:
    return dump(Job.from_record(get_job(job_id), services().manager.jobs_dir / job_id))


@bp.post("/jobs/<job_id>/stop")
def stop_job(job_id: str) -> Response:
    get_job(job_id)
    status = services().manager.stop(job_id)  # IllegalTransition → 409
    return dump(StopAccepted(status=status, job_id=job_id), 202)


@bp.post("/stop_training")
def stop_training() -> Response:
    params = validate_model(StopTrainingRequest, json_body(), "body")
    job_id = params.job_id
    if job_id is None:
        running = services().manager.running_job_ids()
        if not running:
            raise Problem(409, "no job is running")
        if len(running) > 1:
            raise Problem(409, f"{len(running)} jobs are running ({', '.join(running)}); name one with job_id")
        job_id = running[0]
    return stop_job(job_id)


@bp.get("/jobs/<job_id>/events")
def job_events(job_id: str) -> Response:
    get_job(job_id)
    params = query(EventsQuery)
    events = services().store.events_since(params.since, job_id=job_id, limit=params.limit)
    last = events[-1]["seq"] if events else params.since
    return dump(EventList.model_validate({"events": events, "last_seq": last}))


@bp.get("/jobs/<job_id>/log")
def job_log(job_id: str) -> Response:
    get_job(job_id)
    params = query(TailQuery)
    lines = tail_lines(services().manager.jobs_dir / job_id / "worker.log", params.n)
    return dump(LogLines(lines=lines, count=len(lines), requested=params.n))


@bp.get("/jobs/<job_id>/predictions")
def job_predictions(job_id: str) -> Response:
    get_job(job_id)
    params = query(PredictionsQuery)
    path = services().manager.jobs_dir / job_id / "predictions.csv"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise Problem(404, f"job {job_id} has no predictions yet (they are written when it completes)") from None
    if params.format == "csv":
        return Response(
            text, mimetype="text/csv", headers={"Content-Disposition": f"inline; filename={job_id}-predictions.csv"}
        )
    rows = [_prediction_row(r) for r in csv.DictReader(io.StringIO(text))]
    return dump(PredictionList(job_id=job_id, count=len(rows), columns=list(PREDICTION_COLUMNS), predictions=rows))


def _prediction_row(row: dict[str, str]) -> dict[str, Any]:
    def number(value: str | None, kind: type) -> Any:
        if value is None or value.strip() in ("", "nan", "NaN"):
            return None
        return kind(float(value)) if kind is int else float(value)

    return {c: number(row.get(c), int if c == "fold" else float) for c in PREDICTION_COLUMNS}


@bp.get("/status/log_tail")
def log_tail() -> Response:
    params = query(TailQuery)
    lines = tail_rotated(services().log_path, params.n)
    return dump(LogLines(lines=lines, count=len(lines), requested=params.n))


@bp.get("/datasets")
def datasets() -> Response:
    return dump(DatasetList.model_validate({"datasets": list_datasets()}))


@bp.post("/datasets/import")
def datasets_import() -> Response:
    params = validate_model(ImportRequest, json_body(), "body")
    return Response(json.dumps(import_dataset(params)), status=201, mimetype="application/json")


@bp.get("/openapi.json")
def openapi() -> Response:
    from embedded_server.openapi import build_openapi

    return Response(json.dumps(build_openapi(current_app)), mimetype="application/json")
