"""Routes that use trained jobs (issue 13): forecasts from a job's model, a comparison of jobs and an exact
rerun. Declared with ``operations.operation`` like every route; the work that needs torch or the candles runs in
the predictor process (``predictor_process``), never in the server.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint

from embedded_server.job_manager import ManagerClosed
from embedded_server.job_states import JobStatus
from embedded_server.operations import BODY_ERRORS, INVALID, NOT_FOUND, WRITES, operation
from embedded_server.predictor_process import PredictorUnavailable
from embedded_server.problems import Problem
from embedded_server.routes import get_job
from embedded_server.schemas import (
    CompareQuery,
    Comparison,
    PredictRequest,
    PredictResult,
    RerunAccepted,
    RerunRequest,
)
from embedded_server.services import services
from trainer.config import TrainingConfig
from trainer.paths import PROVENANCE_FILE

bp = Blueprint("use", __name__)


def ask_predictor(message: dict[str, Any]) -> Any:
    """The predictor's ``result`` for ``message``; its refusal as that status's problem, an absent predictor as 503."""
    predictor = services().predictor
    if predictor is None:
        raise Problem(503, "no predictor process in this server")
    try:
        answer = predictor.call(message)
    except PredictorUnavailable as exc:
        raise Problem(503, str(exc)) from None
    if not answer.get("ok"):
        status, detail = int(answer.get("status", 500)), str(answer.get("detail") or "the predictor failed")
        errors = [{"loc": answer.get("loc") or ["body"], "msg": detail}] if status == 422 else None
        raise Problem(status, detail, errors=errors)
    return answer["result"]


@operation(
    bp,
    "POST",
    "/jobs/{job_id}/predict",
    "Forecasts of a completed job for the latest closed candles",
    ok="One forecast per candle, oldest first.",
    model=PredictResult,
    errors={
        409: "The job has not completed, or its model file is missing or from an incompatible version.",
        503: "The predictor process is not available.",
        **NOT_FOUND,
        **BODY_ERRORS,
    },
    body=PredictRequest,
)
def predict(job_id: str, body: PredictRequest) -> PredictResult:
    job = get_job(job_id)
    if job.status is not JobStatus.COMPLETED:
        raise Problem(409, f"job {job_id} is {job.status.value}; only a completed job has a model to predict with")
    given = [name for name in ("dataset", "path", "candles") if getattr(body, name) is not None]
    if len(given) > 1:
        raise Problem(422, f"give one of dataset, path and candles, not {' and '.join(given)}",
                      errors=[{"loc": ["body", given[1]], "msg": f"conflicts with {given[0]}"}])
    request = body.model_dump(mode="json", exclude_none=True)
    result = ask_predictor({"op": "predict", "job_dir": str(services().manager.jobs_dir / job_id), "request": request})
    return PredictResult.model_validate(result)


def recorded_fingerprint(job_id: str) -> dict[str, Any] | None:
    """The dataset fingerprint the job recorded (``provenance.json``), or None."""
    try:
        text = (services().manager.jobs_dir / job_id / PROVENANCE_FILE).read_text(encoding="utf-8")
        return json.loads(text)["dataset"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


@operation(
    bp,
    "POST",
    "/jobs/{job_id}/rerun",
    "Start a new job with the same config on the same dataset",
    status=202,
    ok="Accepted: the new job (as POST /start_training) and the fingerprints compared.",
    model=RerunAccepted,
    errors={
        404: "No such job, or its dataset no longer exists.",
        409: "The dataset changed since the job ran (or the job recorded none): allow_changed_data reruns anyway.",
        503: "The server is shutting down, or the predictor process is not available.",
        **BODY_ERRORS,
        **WRITES,
    },
    body=RerunRequest,
)
def rerun(job_id: str, body: RerunRequest) -> tuple[RerunAccepted, dict[str, str]]:
    job = get_job(job_id)
    old = recorded_fingerprint(job_id)
    now = ask_predictor({"op": "fingerprint", "config": job.config})
    changed = None if old is None else any(old.get(k) != now[k] for k in ("sha256", "rows"))
    if changed is not False and not body.allow_changed_data:
        if old is None:
            detail = f"job {job_id} recorded no dataset fingerprint, so a rerun cannot be checked for the same data"
        else:
            detail = (
                f"the dataset of job {job_id} changed since it ran: it had {old['rows']} candles up to "
                f"{old['last_open_time']} (sha256 {old['sha256'][:12]}…), now {now['rows']} up to "
                f"{now['last_open_time']} (sha256 {now['sha256'][:12]}…)"
            )
        raise Problem(409, f"{detail}; send allow_changed_data: true (candlecast rerun --allow-changed-data) to rerun")
    try:
        sub = services().manager.submit(TrainingConfig(**job.config))
    except ManagerClosed as exc:
        raise Problem(503, str(exc)) from None
    new_id = sub.job.job_id
    accepted = RerunAccepted(
        status="accepted", job_id=new_id, expected_pid=sub.expected_pid, queue_position=sub.queue_position,
        message=f"job {new_id} reruns job {job_id}" + (" on changed data" if changed else ""),
        rerun_of=job_id, dataset_changed=changed, fingerprint=now,
    )
    return accepted, {"Location": f"/jobs/{new_id}"}


@operation(
    bp,
    "GET",
    "/compare",
    "Compare 2 to 4 completed jobs",
    ok="Config differences, metrics side by side, reliability and PIT, pairwise DM tests on shared bars.",
    model=Comparison,
    errors={
        404: "No such job.",
        409: "A job has not completed (or has no results).",
        503: "The predictor process is not available.",
        **INVALID,
    },
    query=CompareQuery,
)
def compare(query: CompareQuery) -> Comparison:
    ids = query.ids()
    if twice := next((job_id for i, job_id in enumerate(ids) if job_id in ids[:i]), None):
        msg = f"job {twice} is named twice"
        raise Problem(422, msg, errors=[{"loc": ["query", "jobs"], "msg": msg}])
    for job_id in ids:
        job = get_job(job_id)
        if job.status is not JobStatus.COMPLETED:
            raise Problem(409, f"job {job_id} is {job.status.value}; only completed jobs can be compared")
    job_dirs = [str(services().manager.jobs_dir / job_id) for job_id in ids]
    return Comparison.model_validate(ask_predictor({"op": "compare", "job_dirs": job_dirs}))
