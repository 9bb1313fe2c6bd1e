"""The sweep routes of API.md (``POST /sweeps``, ``GET /sweeps``, ``GET /sweeps/{sweep_id}``,
``GET /sweeps/{sweep_id}/importance``, ``POST /sweeps/{sweep_id}/stop``), each declared once with
``operations.operation``. A space is validated against the ``TrainingConfig`` schema and its datasets resolved before
anything runs (422/404). Parameter importance is computed in the predictor process (scikit-learn stays out of here)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from embedded_server.datasets import dataset_problem
from embedded_server.job_manager import ManagerClosed
from embedded_server.operations import BODY_ERRORS, INVALID, WRITES, operation, path_parameter
from embedded_server.problems import Problem
from embedded_server.routes import IDEMPOTENCY, MAX_IDEMPOTENCY_KEY
from embedded_server.services import services
from embedded_server.sweep_schemas import (
    Best,
    Sweep,
    SweepAccepted,
    SweepImportance,
    SweepList,
    SweepsQuery,
    SweepStartRequest,
    SweepStopAccepted,
    SweepSummary,
    Trial,
)
from embedded_server.sweep_store import SweepRecord
from embedded_server.sweeps import SWEEP_ID_PATTERN, SweepConflict, ray_problem
from embedded_server.use_routes import ask_predictor
from trainer.sweep_space import Choices

bp = Blueprint("sweeps", __name__)
NO_SWEEP = {404: "No such sweep."}


def get_sweep(sweep_id: str) -> SweepRecord:
    """The sweep ``sweep_id`` or a 404 problem."""
    try:
        return services().sweeps.store.get(sweep_id)
    except KeyError:
        raise Problem(404, f"no sweep {sweep_id!r}") from None


path_parameter("sweep_id", {"type": "string", "pattern": SWEEP_ID_PATTERN}, check=get_sweep)


def _datasets_problem(body: SweepStartRequest) -> Problem | None:
    """A 404/422 for the first symbol/timeframe/dataset choice (on top of the base) that resolves no candles."""
    defaults = services().settings.training
    probes: list[dict[str, Any]] = [{}]
    for name in ("symbol", "timeframe", "dataset"):
        dim = body.space.get(name)
        if isinstance(dim, Choices):
            probes += [{name: value} for value in dim.choices]
    for params in probes:
        try:
            config = body.trial_config(params, defaults, "inner")
        except ValueError:
            continue  # a combination the schema refuses fails only that trial
        if (problem := dataset_problem(config)) is not None:
            return problem
    return None


@operation(
    bp,
    "POST",
    "/sweeps",
    "Start a sweep (an Optuna search whose trials are jobs)",
    status=202,
    ok="Accepted: the sweep runs (GET /sweeps/{sweep_id}).",
    model=SweepAccepted,
    errors={404: "A dataset of the space has no candles.", 503: "The server is shutting down.", **BODY_ERRORS,
            **WRITES},
    body=SweepStartRequest,
    body_defaults=lambda: {"ray_address": services().settings.ray_address} if services().settings.ray_address else {},
    headers=[IDEMPOTENCY],
)
def start_sweep(body: SweepStartRequest) -> tuple[SweepAccepted, dict[str, str]]:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (0 < len(key) <= MAX_IDEMPOTENCY_KEY):
        raise Problem(422, f"Idempotency-Key must be 1..{MAX_IDEMPOTENCY_KEY} characters",
                      errors=[{"loc": ["header", "Idempotency-Key"], "msg": "length out of range"}])
    if (why := ray_problem(body)) is not None:
        raise Problem(422, why, errors=[{"loc": ["body", "ray_address"], "msg": why}])
    if (problem := _datasets_problem(body)) is not None:
        raise problem
    try:
        record, created = services().sweeps.start(body, key)
    except ManagerClosed as exc:
        raise Problem(503, str(exc)) from None
    message = f"sweep {record.sweep_id} started" if created else f"repeated Idempotency-Key: sweep {record.sweep_id}"
    answer = SweepAccepted(status="accepted", sweep_id=record.sweep_id, message=message)
    return answer, {"Location": f"/sweeps/{record.sweep_id}"}


def _summary(record: SweepRecord) -> SweepSummary:
    return SweepSummary(
        sweep_id=record.sweep_id, status=record.status, created_at=record.created_at,
        finished_at=record.finished_at, trials=record.request["trials"], objective=record.request["objective"],
        executor="ray" if record.request.get("ray_address") else "local",
        best_value=(record.result or {}).get("best_value"),
    )


@operation(bp, "GET", "/sweeps", "List sweeps, newest first", ok="Sweeps.", model=SweepList, errors=INVALID,
           query=SweepsQuery)
def list_sweeps(query: SweepsQuery) -> SweepList:
    sweeps = [_summary(r) for r in services().sweeps.store.list(query.status, query.limit)]
    return SweepList(sweeps=sweeps, count=len(sweeps))


@operation(bp, "GET", "/sweeps/{sweep_id}", "One sweep with its trials", ok="The sweep.", model=Sweep,
           errors=NO_SWEEP)
def sweep_detail(sweep_id: str) -> Sweep:
    record = get_sweep(sweep_id)
    study = services().sweeps.study(sweep_id)
    trials = [] if study is None else [_trial(t) for t in study.get_trials(deepcopy=False)]
    complete = [t for t in trials if t.state == "complete" and t.value is not None]
    best = min(complete, key=lambda t: t.value) if complete else None  # type: ignore[arg-type,return-value]
    return Sweep(
        sweep_id=sweep_id, status=record.status, request=record.request, created_at=record.created_at,
        finished_at=record.finished_at, trials=trials, done=sum(t.state not in ("running", "waiting") for t in trials),
        total=record.request["trials"],
        best=Best(trial=best.number, params=best.params, value=best.value) if best else None,
        final=record.result, error=record.error,
    )


@operation(
    bp,
    "GET",
    "/sweeps/{sweep_id}/importance",
    "Parameter importance over a sweep's complete trials (Optuna's fANOVA)",
    ok="Each varying option's share of the objective's variance, most important first (empty, with a note, before "
       "there is anything to apportion).",
    model=SweepImportance,
    errors={503: "The predictor process is not available.", **NO_SWEEP},
)
def sweep_importance(sweep_id: str) -> SweepImportance:
    record = get_sweep(sweep_id)
    result = ask_predictor({"op": "importance", "journal": str(services().sweeps.journal(sweep_id)), "study": sweep_id})
    return SweepImportance.model_validate({**result, "sweep_id": sweep_id, "objective": record.request["objective"]})


#: Optuna's ``TrialState`` names → the API's trial states.
_STATES = {"RUNNING": "running", "WAITING": "waiting", "COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}


def _trial(trial: Any) -> Trial:
    state = _STATES[trial.state.name]
    return Trial(
        number=trial.number, state=state, params=trial.params, value=trial.value if state == "complete" else None,
        intermediate={str(step): v for step, v in trial.intermediate_values.items()},
        job_id=trial.user_attrs.get("job_id"), node_id=trial.user_attrs.get("node_id"),
    )


@operation(
    bp,
    "POST",
    "/sweeps/{sweep_id}/stop",
    "Stop a running sweep (its running trials are stopped)",
    status=202,
    ok="Stopping.",
    model=SweepStopAccepted,
    errors={409: "The sweep has ended.", **NO_SWEEP},
)
def stop_sweep(sweep_id: str) -> SweepStopAccepted:
    try:
        services().sweeps.stop(sweep_id)
    except SweepConflict as exc:
        raise Problem(409, str(exc)) from None
    return SweepStopAccepted(status="stopping", sweep_id=sweep_id)
