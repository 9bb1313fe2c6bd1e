"""The wire contract of API.md shared by the server and the GUI: job statuses, event types, and one documented
record per event.

Light on purpose (standard library only): the server (``embedded_server.job_states`` keeps the legal moves between
statuses) and the GUI controller import the same names, so a status or event type is spelt in one place. The worker writes these as JSON lines on its stdout without ``seq``;
the server's event bus assigns ``seq`` (strictly increasing, persisted) before storing and broadcasting.
Every event carries ``type``, ``job_id`` and ``timestamp`` (Unix seconds, float). Clients ignore keys they
don't know, so adding a key is safe; renaming one is not.
"""

from __future__ import annotations

import time
from enum import Enum
from typing import Any, Literal, TypedDict, get_type_hints


class JobStatus(str, Enum):
    """A job's ``status`` value (API.md, "Job"); the legal moves between them are ``embedded_server.job_states``."""

    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


#: Statuses a job never leaves.
TERMINAL_STATUSES: frozenset[JobStatus] = frozenset(
    {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELLED, JobStatus.INTERRUPTED}
)


class EventType(str, Enum):
    """The ``type`` of every event a job produces."""

    TRAINING_STARTED = "training.started"
    TRAINING_EPOCH = "training.epoch"
    TRAINING_FOLD_COMPLETED = "training.fold_completed"
    TRAINING_COMPLETED = "training.completed"
    TRAINING_FAILED = "training.failed"
    TRAINING_STOPPED = "training.stopped"
    TRAINING_CANCELLED = "training.cancelled"
    JOB_STATUS = "job.status"
    SWEEP_STARTED = "sweep.started"
    SWEEP_TRIAL_COMPLETED = "sweep.trial_completed"
    SWEEP_COMPLETED = "sweep.completed"
    SWEEP_FAILED = "sweep.failed"
    SWEEP_STOPPED = "sweep.stopped"


#: Events after which a job produces nothing more.
TERMINAL_EVENTS = frozenset(
    {
        EventType.TRAINING_COMPLETED,
        EventType.TRAINING_FAILED,
        EventType.TRAINING_STOPPED,
        EventType.TRAINING_CANCELLED,
    }
)


#: The event types a worker may send (the server sends the others); anything else from a worker is dropped.
WORKER_EVENTS = frozenset(
    {
        EventType.TRAINING_STARTED,
        EventType.TRAINING_EPOCH,
        EventType.TRAINING_FOLD_COMPLETED,
        EventType.TRAINING_COMPLETED,
        EventType.TRAINING_FAILED,
        EventType.TRAINING_STOPPED,
    }
)


class _Base(TypedDict):
    type: str
    job_id: str
    timestamp: float


class TrainingStartedServer(_Base):
    """Sent by the server right after the 202: the request was accepted, nothing runs yet."""

    origin: Literal["server"]
    symbol: str
    timeframe: str
    epoch: int
    fold: int
    expected_pid: int | None


class TrainingStartedWorker(_Base):
    """Sent by the worker once its process runs and its data are loaded: the only proof training started.

    ``rows``: candles the job uses; ``samples``: training/evaluation samples made from them (windows with a label,
    none across a gap; ``trainer.features``); ``partial_candles``: how many of the candles a resample to a higher
    timeframe built from only some of their lower bars (``trainer.data.store``; 0 when not resampled)."""

    origin: Literal["worker"]
    pid: int
    symbol: str
    timeframe: str
    epoch: int
    fold: int
    rows: int
    samples: int
    partial_candles: int
    device: str


class TrainingEpoch(_Base):
    """One finished epoch. ``fold`` and ``epoch`` count from 1; losses are mean NLL per sample (nats,
    on standardised returns); ``fraction`` is the share of the whole job done (0..1); times in seconds."""

    fold: int
    folds: int
    epoch: int
    epochs: int
    train_loss: float
    val_loss: float
    lr: float
    samples_per_s: float
    elapsed_s: float
    eta_s: float
    fraction: float


class TrainingFoldCompleted(_Base):
    """One walk-forward fold evaluated; ``metrics`` as in ``metrics.json``'s ``folds[i]``."""

    fold: int
    metrics: dict[str, Any]


class TrainingCompleted(_Base):
    """The job finished: pooled ``metrics`` (``metrics.json``), ``artifacts`` paths, ``duration_s`` seconds, and
    the compact ``verdicts``: ``{headline: {direction, distribution: {outcome, text} | null}, tests: {baseline:
    {score: {verdict, t, p, skill}}}}`` (``trainer.verdicts.compact``; the full tests are in
    ``metrics.pooled.verdicts``). ``outcome`` is ``beats_all``, ``beats_some``, ``no_skill`` or ``beats_none``; ``verdict``
    is ``better``, ``no_difference`` or ``worse`` (at 5 %)."""

    metrics: dict[str, Any]
    artifacts: dict[str, str]
    duration_s: float
    verdicts: dict[str, Any]


class TrainingFailed(_Base):
    """The job failed. ``stage``: where (``config``, ``data``, ``train``, ``evaluate``, ``artifacts``,
    ``worker``, ``start``); ``exit_code`` is the worker's exit status, the same as the job's ``error.exit_code``:
    1 when the worker reports its own failure (it exits with 1 right after), the observed status when the server
    reports a worker that died (negative: killed by that signal), null when no worker process could be created."""

    stage: str
    error_type: str
    error: str
    traceback_tail: str
    exit_code: int | None


class TrainingStopped(_Base):
    """The job was stopped on request before it finished."""

    reason: str


class TrainingCancelled(_Base):
    """A queued job was cancelled before its worker started."""

    reason: str


class JobStatusChanged(_Base):
    """A job's status changed (every change, see ``embedded_server.job_states``); values are ``JobStatus``."""

    status: str
    previous: str | None


class _SweepBase(TypedDict):
    type: str
    job_id: str | None
    timestamp: float
    sweep_id: str


class SweepStarted(_SweepBase):
    """A sweep started, or resumed after a restart (``resumed``, with the ``done`` trials it already has);
    ``job_id`` is null. ``executor`` is ``local`` or ``ray``."""

    trials: int
    parallel: int
    objective: str
    sampler: str
    executor: str
    resumed: bool
    done: int


class SweepTrialCompleted(_SweepBase):
    """One trial ended (``job_id``: its job). ``state``: ``complete``, ``pruned`` (ended early on purpose, by the
    pruner or the sweep's stop: its job ends ``stopped``, or ``cancelled`` if still queued) or ``failed``;
    ``value``: its objective on the inner walk-forward (null unless complete); ``best_trial``/``best_value``: the
    best so far (null: none yet); ``node_id``: the Ray node it ran on (null when local)."""

    trial: int
    state: str
    value: float | None
    params: dict[str, Any]
    best_trial: int | None
    best_value: float | None
    node_id: str | None


class SweepCompleted(_SweepBase):
    """The sweep ran its trials and scored the best one once on the final, untouched test period.
    ``best_value``: its inner objective (the number the search saw); ``final_value``: the same objective on the
    final period (``final_job_id``, a job with ``final_holdout: final``); ``verdicts``: that job's compact
    verdicts (``training.completed``); the final figures are null when that job failed (``final_error``)."""

    best_trial: int
    best_params: dict[str, Any]
    best_value: float
    final_job_id: str | None
    final_value: float | None
    verdicts: dict[str, Any] | None
    final_error: str | None


class SweepFailed(_SweepBase):
    """The sweep could not go on (no trial completed, its study could not be read or written): ``error``."""

    error: str


class SweepStopped(_SweepBase):
    """The sweep was stopped on request (or by a server shutdown, after which it resumes): ``reason``."""

    reason: str


#: The record type of each event; for the server started/worker started pair, see ``origin``.
EVENT_RECORDS: dict[EventType, tuple[type, ...]] = {
    EventType.TRAINING_STARTED: (TrainingStartedServer, TrainingStartedWorker),
    EventType.TRAINING_EPOCH: (TrainingEpoch,),
    EventType.TRAINING_FOLD_COMPLETED: (TrainingFoldCompleted,),
    EventType.TRAINING_COMPLETED: (TrainingCompleted,),
    EventType.TRAINING_FAILED: (TrainingFailed,),
    EventType.TRAINING_STOPPED: (TrainingStopped,),
    EventType.TRAINING_CANCELLED: (TrainingCancelled,),
    EventType.JOB_STATUS: (JobStatusChanged,),
    EventType.SWEEP_STARTED: (SweepStarted,),
    EventType.SWEEP_TRIAL_COMPLETED: (SweepTrialCompleted,),
    EventType.SWEEP_COMPLETED: (SweepCompleted,),
    EventType.SWEEP_FAILED: (SweepFailed,),
    EventType.SWEEP_STOPPED: (SweepStopped,),
}


def required_fields(record: type) -> frozenset[str]:
    """The keys an event of this record type must carry (``type``, ``job_id``, ``timestamp`` included)."""
    return frozenset(get_type_hints(record))


def make_event(event_type: EventType | str, job_id: str, **fields: Any) -> dict[str, Any]:
    """Build one event dict: ``{type, job_id, timestamp, **fields}`` (no ``seq``; the server adds it).

    Raises ``ValueError`` for an unknown type or when a field its record requires is missing, so a worker
    or server bug is caught where the event is made, not in a client.
    """
    kind = EventType(event_type)
    event: dict[str, Any] = {"type": kind.value, "job_id": job_id, "timestamp": time.time(), **fields}
    records = EVENT_RECORDS[kind]
    missing = [sorted(required_fields(r) - event.keys()) for r in records]
    if all(missing):
        raise ValueError(f"{kind.value} event is missing fields {min(missing, key=len)}")
    return event
