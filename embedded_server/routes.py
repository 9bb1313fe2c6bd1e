"""The REST routes of API.md, each declared once with ``operations.operation`` (its route and its OpenAPI operation
in one place). Each gets its body and query as ``schemas`` models, makes one call into the job manager, store or
catalog, and returns a ``schemas`` model. Errors are raised as ``Problem`` (problem+json).
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from typing import Any

from flask import Blueprint, Response, current_app, request

from embedded_server.datasets import dataset_problem, import_dataset, list_datasets, window_problem
from embedded_server.job_manager import JOB_ID_PATTERN, ManagerClosed
from embedded_server.job_store import JobRecord, utc_now
from embedded_server.log_tail import tail_lines, tail_rotated
from embedded_server.operations import BODY_ERRORS, INVALID, NOT_FOUND, WRITES, operation, path_parameter
from embedded_server.problems import Problem
from embedded_server.schemas import (
    DatasetList,
    EventList,
    EventsQuery,
    Health,
    ImportedDataset,
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

PREDICTION_COLUMNS = ("timestamp", "fold", "y", "mu", "sigma", "p_up", "p_up_raw")
#: Longest ``Idempotency-Key`` accepted (keys are client-chosen strings, usually a UUID).
MAX_IDEMPOTENCY_KEY = 255
IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "A repeat of the same key returns the first request's job instead of starting another.",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY},
}


def get_job(job_id: str) -> JobRecord:
    """The job ``job_id`` or a 404 problem (also for ids that could not name a job folder). An id not stored yet
    may be a job ``candlecast train`` has just completed: those are listed first (``JobManager.adopt_cli_jobs``)."""
    svc = services()
    try:
        svc.manager.job_dir(job_id)
        return svc.store.get_job(job_id)
    except KeyError:
        if job_id in svc.manager.adopt_cli_jobs():
            return svc.store.get_job(job_id)
        raise Problem(404, f"no job {job_id!r}") from None


#: ``{job_id}``: an unknown job is a 404 before the query or body is read.
path_parameter("job_id", {"type": "string", "pattern": JOB_ID_PATTERN}, check=get_job)


# ---- routes -----------------------------------------------------------------------------------------------------


@operation(bp, "GET", "/", "Health check", ok="The server is up.", model=Health)
def health() -> Health:
    svc = services()
    return Health(
        status="ok",
        app="candlecast",
        version=__version__,
        pid=os.getpid(),
        uptime_s=round(time.monotonic() - svc.started_monotonic, 3),
        time=utc_now(),
        jobs=svc.manager.counts(),
        spare_worker=svc.manager.spare_info(),
    )


@operation(
    bp,
    "POST",
    "/start_training",
    "Start (or queue) a training job",
    status=202,
    ok="Accepted: started now (expected_pid) or queued (queue_position).",
    model=StartAccepted,
    errors={
        404: "No dataset for this symbol and timeframe.",
        503: "The server is shutting down.",
        **BODY_ERRORS,
        **WRITES,
    },
    body=TrainingStartRequest,
    body_defaults=lambda: services().settings.training,
    headers=[IDEMPOTENCY],
)
def start_training(body: TrainingStartRequest) -> tuple[StartAccepted, dict[str, str]]:
    svc = services()
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (0 < len(key) <= MAX_IDEMPOTENCY_KEY):
        raise Problem(
            422,
            f"Idempotency-Key must be 1..{MAX_IDEMPOTENCY_KEY} characters",
            errors=[{"loc": ["header", "Idempotency-Key"], "msg": "length out of range"}],
        )
    problem = dataset_problem(body) or window_problem(body)
    if problem:
        raise problem
    try:
        sub = svc.manager.submit(body, key)
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
    return accepted, {"Location": f"/jobs/{sub.job.job_id}"}


@operation(bp, "GET", "/jobs", "List jobs, newest first", ok="Jobs.", model=JobList, errors=INVALID, query=JobsQuery)
def list_jobs(query: JobsQuery) -> JobList:
    services().manager.adopt_cli_jobs()  # jobs ``candlecast train`` completed meanwhile are listed too
    store = services().store
    filters = {"symbol": query.symbol, "timeframe": query.timeframe, "sweep_id": query.sweep}
    records = store.list_jobs(query.status, query.limit, query.offset, **filters)
    jobs = [JobSummary.from_record(j, query.includes("metrics"), query.includes("config")) for j in records]
    total = store.count_jobs(query.status, **filters)
    return JobList(jobs=jobs, count=len(jobs), total=total, offset=query.offset)


@operation(bp, "GET", "/jobs/{job_id}", "One job", ok="The job.", model=Job, errors=NOT_FOUND)
def job_detail(job_id: str) -> Job:
    return Job.from_record(get_job(job_id), services().manager.jobs_dir / job_id)


@operation(
    bp,
    "POST",
    "/jobs/{job_id}/stop",
    "Stop a running job or cancel a queued one",
    status=202,
    ok="Stopping or cancelled.",
    model=StopAccepted,
    errors={409: "The job has finished.", **NOT_FOUND, **WRITES},
)
def stop_job(job_id: str) -> StopAccepted:
    status = services().manager.stop(job_id)  # IllegalTransition → 409
    return StopAccepted(status=status, job_id=job_id)


@operation(
    bp,
    "POST",
    "/stop_training",
    "Stop a job (default: the running one)",
    status=202,
    ok="Stopping or cancelled.",
    model=StopAccepted,
    errors={409: "No job running, several running, or the job has finished.", **NOT_FOUND, **BODY_ERRORS, **WRITES},
    body=StopTrainingRequest,
)
def stop_training(body: StopTrainingRequest) -> StopAccepted:
    job_id = body.job_id
    if job_id is None:
        running = services().manager.running_job_ids()
        if not running:
            raise Problem(409, "no job is running")
        if len(running) > 1:
            raise Problem(409, f"{len(running)} jobs are running ({', '.join(running)}); name one with job_id")
        job_id = running[0]
    get_job(job_id)
    return stop_job(job_id)


@operation(
    bp,
    "GET",
    "/jobs/{job_id}/events",
    "A job's stored events (polling fallback for the WebSocket)",
    ok="Events after since.",
    model=EventList,
    errors={**NOT_FOUND, **INVALID},
    query=EventsQuery,
)
def job_events(job_id: str, query: EventsQuery) -> EventList:
    events = services().store.events_since(query.since, job_id=job_id, limit=query.limit)
    last = events[-1]["seq"] if events else query.since
    return EventList.model_validate({"events": events, "last_seq": last})


@operation(
    bp,
    "GET",
    "/jobs/{job_id}/log",
    "The last lines of a job's worker.log",
    ok="Log lines.",
    model=LogLines,
    errors={**NOT_FOUND, **INVALID},
    query=TailQuery,
)
def job_log(job_id: str, query: TailQuery) -> LogLines:
    lines = tail_lines(services().manager.jobs_dir / job_id / "worker.log", query.n)
    return LogLines(lines=lines, count=len(lines), requested=query.n)


@operation(
    bp,
    "GET",
    "/jobs/{job_id}/predictions",
    "Out-of-fold predictions",
    ok="Predictions (JSON records, or the CSV file for format=csv).",
    model=PredictionList,
    also={"text/csv": {"type": "string"}},
    errors={404: "No such job, or no predictions yet.", **INVALID},
    query=PredictionsQuery,
)
def job_predictions(job_id: str, query: PredictionsQuery) -> PredictionList | Response:
    path = services().manager.jobs_dir / job_id / "predictions.csv"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise Problem(404, f"job {job_id} has no predictions yet (they are written when it completes)") from None
    if query.format == "csv":
        return Response(
            text, mimetype="text/csv", headers={"Content-Disposition": f"inline; filename={job_id}-predictions.csv"}
        )
    rows = [_prediction_row(r) for r in csv.DictReader(io.StringIO(text))]
    return PredictionList(job_id=job_id, count=len(rows), columns=list(PREDICTION_COLUMNS), predictions=rows)


def _prediction_row(row: dict[str, str]) -> dict[str, Any]:
    def number(value: str | None, kind: type) -> Any:
        if value is None or value.strip() in ("", "nan", "NaN"):
            return None
        return kind(float(value)) if kind is int else float(value)

    return {c: number(row.get(c), int if c == "fold" else float) for c in PREDICTION_COLUMNS}


@operation(
    bp,
    "GET",
    "/status/log_tail",
    "The last lines of backend.log",
    ok="Log lines (none if there is no log yet).",
    model=LogLines,
    errors=INVALID,
    query=TailQuery,
)
def log_tail(query: TailQuery) -> LogLines:
    lines = tail_rotated(services().log_path, query.n)
    return LogLines(lines=lines, count=len(lines), requested=query.n)


@operation(bp, "GET", "/datasets", "Datasets a job can train on", ok="Datasets.", model=DatasetList)
def datasets() -> DatasetList:
    return DatasetList.model_validate({"datasets": list_datasets()})


@operation(
    bp,
    "POST",
    "/datasets/import",
    "Import a candle file into the dataset store",
    status=201,
    ok="The imported dataset with its import report.",
    model=ImportedDataset,
    errors={**BODY_ERRORS, **WRITES},
    body=ImportRequest,
)
def datasets_import(body: ImportRequest) -> ImportedDataset:
    return import_dataset(body)


@operation(bp, "GET", "/openapi.json", "This document", ok="OpenAPI 3.1.")
def openapi() -> Response:
    from embedded_server.openapi import build_openapi  # it imports this module (its routes are its operations)

    return Response(json.dumps(build_openapi(current_app)), mimetype="application/json")
