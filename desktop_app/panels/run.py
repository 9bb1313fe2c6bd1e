"""The one run this window drives, as a state machine: ``TRANSITIONS[phase][message type]``.

The phases (issue 5): ``idle → pending → running → stopping → idle``, plus ``failed`` (an error dialog is shown).
The start handshake follows API.md: a 202 only says "accepted"; the job counts as running only on the worker's
``training.started`` (or ``job.status: running``) for this job id. No confirmation within ``ack_timeout_s`` repeats
the POST with the same ``Idempotency-Key`` (so never a second job) up to ``max_retries`` times, each with its own
timer; while the WebSocket is down the run polls ``GET /jobs/{id}`` instead of waiting for events. Then the
"backend did not acknowledge" dialog offers View Logs, Retry and Cancel.

Every (phase, message) pair is in exactly one place: ``TRANSITIONS`` (a handler and the phases it may lead to),
``IGNORED`` (nothing to do in that phase) or ``ILLEGAL`` (a click the phase does not allow: logged and dropped).
Everything that moves the run between phases lives in this file (h11's ``_state.py`` rule).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

from desktop_app import form
from desktop_app import messages as m
from desktop_app.panels import Effects, Reducer
from desktop_app.panels.connection import start_blocked
from desktop_app.panels.results import job_duration_s, open_results
from trainer.events import EventType, JobStatus

if TYPE_CHECKING:
    from desktop_app.controller import State, Timing

log = logging.getLogger(__name__)
E, S = EventType, JobStatus

UNACKNOWLEDGED = "Unable to start training: backend did not acknowledge. Check backend logs for details."
AWAITING = "Training accepted – awaiting confirmation…"
#: Events kept while the 202 (and so our job id) has not arrived: they may already confirm our job.
EARLY_EVENTS_KEPT = 256
#: The error window's title for each kind of failure (the panel then says only where the details are).
FAILURE_TITLES = {"training": "Training failed", "lost": "Training failed", "rejected": "Unable to start training",
                  "unacknowledged": "Unable to start training"}
IMPORT_HINT = "File → Import data…"


class Phase(str, Enum):
    """Where the run is; ``controller.allowed_actions`` derives the enabled buttons from it."""

    IDLE = "idle"
    PENDING = "pending"  # start requested, not yet confirmed by the worker
    RUNNING = "running"
    STOPPING = "stopping"
    FAILED = "failed"  # an error dialog is shown


@dataclass(frozen=True)
class Progress:
    """Where training is: ``fold``/``epoch`` count from 1; ``fraction`` of the whole job (0..1); ETA seconds."""

    fold: int
    folds: int
    epoch: int
    epochs: int
    fraction: float
    eta_s: float | None


@dataclass(frozen=True)
class LossPoint:
    """One finished epoch's mean NLL per sample (nats) on the training and validation slices."""

    fold: int
    epoch: int
    train_loss: float
    val_loss: float


@dataclass(frozen=True)
class Failure:
    """What the error dialog shows.

    ``kind``: ``unacknowledged`` (no confirmation after every attempt), ``rejected`` (the server refused the
    start), ``training`` (``training.failed``), ``lost`` (the job vanished or was interrupted).
    """

    kind: str
    message: str
    stage: str | None = None
    error_type: str | None = None
    traceback_tail: str = ""
    exit_code: int | None = None

    @property
    def retryable(self) -> bool:
        """Whether the dialog offers [Retry] (a fresh start with the same parameters)."""
        return self.kind in {"unacknowledged", "rejected", "lost"}


@dataclass(frozen=True)
class Run:
    """The one job this window drives (the Jobs list shows the others)."""

    phase: Phase = Phase.IDLE
    config: dict[str, Any] = field(default_factory=dict)
    key: str | None = None  # Idempotency-Key of the current start request
    job_id: str | None = None
    attempt: int = 0  # 1 = the first POST, up to 1 + max_retries
    accepted: bool = False  # the 202 arrived
    deadline: float | None = None  # pending: acknowledgement deadline; stopping: next check of the job
    next_poll: float = 0.0
    poll_in_flight: bool = False
    last_seq: int = 0  # highest seq applied for this job: WS and polling may both deliver an event
    early: tuple[dict[str, Any], ...] = ()
    progress: Progress | None = None
    losses: tuple[LossPoint, ...] = ()
    latest: dict[str, Any] = field(default_factory=dict)  # the last training.epoch event
    folds_done: int = 0
    fold_metrics: dict[str, Any] = field(default_factory=dict)  # the last training.fold_completed's metrics
    failure: Failure | None = None
    message: str = "Ready"
    ended: JobStatus | None = None  # how the run ended: completed, stopped, cancelled or failed; None until then
    duration_s: float | None = None  # the completed job's duration (``job_duration_s``), once its results loaded


Step = tuple["State", Effects]


# ---------------------------------------------------------------- the user


def _on_start(state: State, msg: m.StartClicked) -> Step:
    if start_blocked(state) is not None:
        return state, ()
    return _begin_start(replace(state, field_errors={}), msg.now, msg.config, msg.key)


def _begin_start(state: State, now: float, config: dict[str, Any], key: str) -> Step:
    run = Run(
        phase=Phase.PENDING,
        config=dict(config),
        key=key,
        attempt=1,
        deadline=now + state.timing.ack_timeout_s,
        message="Sending start request…",
    )
    return replace(state, run=run), (m.PostStart(run.config, key, 1), m.RememberParams(run.config))


def _abandon_start(state: State) -> Step:
    """Give up the current start request: stop its job, or stop it when its 202 arrives."""
    run = state.run
    if run.job_id is not None:
        return state, (m.StopJob(run.job_id),)
    if run.key is not None:
        return replace(state, cancel_keys=state.cancel_keys | {run.key}), ()
    return state, ()


def _unacknowledged(run: Run) -> bool:
    return run.failure is not None and run.failure.kind == "unacknowledged"


def _on_cancel(state: State, msg: m.CancelClicked) -> Step:
    if state.run.phase is Phase.FAILED and not _unacknowledged(state.run):
        return state, ()  # only the not-acknowledged dialog has [Cancel]
    state, effects = _abandon_start(state)
    run = replace(state.run, phase=Phase.IDLE, deadline=None, failure=None, message="Start request cancelled")
    return replace(state, run=run), effects


def _on_retry(state: State, msg: m.RetryClicked) -> Step:
    failure = state.run.failure
    if failure is None or not failure.retryable or start_blocked(state) is not None:
        return state, ()
    config = state.run.config
    state, stop = _abandon_start(state)
    state, start = _begin_start(state, msg.now, config, msg.key)
    return state, stop + start


def _on_stop(state: State, msg: m.StopClicked) -> Step:
    run = state.run
    if run.job_id is None:
        return state, ()
    run = replace(run, phase=Phase.STOPPING, deadline=msg.now + state.timing.stop_check_s, message="Stopping…")
    return replace(state, run=run), (m.StopJob(run.job_id),)


def _on_dismiss(state: State, msg: m.DismissClicked) -> Step:
    effects: Effects = ()
    if _unacknowledged(state.run):
        state, effects = _abandon_start(state)  # closing that dialog means "don't start it"
    run = replace(state.run, phase=Phase.IDLE, deadline=None, failure=None, message="Ready")
    return replace(state, run=run), effects


def _on_field_edited(state: State, msg: m.FieldEdited) -> Step:
    if msg.name not in state.field_errors:
        return state, ()
    errors = {name: text for name, text in state.field_errors.items() if name != msg.name}
    return replace(state, field_errors=errors), ()


# ---------------------------------------------------------------- the clock


def _on_tick(state: State, msg: m.Tick) -> Step:
    run, timing, now = state.run, state.timing, msg.now
    if run.phase is Phase.PENDING and run.deadline is not None and now >= run.deadline:
        if run.attempt <= timing.max_retries:
            attempt = run.attempt + 1
            run = replace(run, attempt=attempt, deadline=now + timing.ack_timeout_s)
            run = replace(run, message=f"No confirmation after {timing.ack_timeout_s:g} s – asking again"
                                       f"{_retry_note(run, timing)}…")
            return replace(state, run=run), (m.PostStart(run.config, run.key or "", attempt),)
        failure = Failure(kind="unacknowledged", message=UNACKNOWLEDGED)
        run = replace(run, phase=Phase.FAILED, deadline=None, failure=failure, message=UNACKNOWLEDGED)
        return replace(state, run=run), ()
    if run.phase is Phase.STOPPING and run.deadline is not None and now >= run.deadline and run.job_id:
        run = replace(run, deadline=now + timing.stop_check_s)
        return replace(state, run=run), (m.PollJob(run.job_id),)
    ws_down = state.conn.ws != "connected"
    if ws_down and run.job_id is not None and not run.poll_in_flight and now >= run.next_poll:
        run = replace(run, poll_in_flight=True, next_poll=now + timing.poll_interval_s)
        if run.phase is Phase.PENDING:
            effect: m.Effect = m.PollJob(run.job_id)
        else:  # the events carry the loss curve and the terminal event with its details
            effect = m.PollEvents(run.job_id, run.last_seq)
        return replace(state, run=run), (effect,)
    return state, ()


# ---------------------------------------------------------------- the server's answers


def _on_late_start_answer(state: State, msg: m.StartAnswered) -> Step:
    """An answer to a start request given up on: a 202 of a cancelled request gets its job stopped."""
    if msg.key not in state.cancel_keys or msg.job_id is None:
        return state, ()
    return replace(state, cancel_keys=state.cancel_keys - {msg.key}), (m.StopJob(msg.job_id),)


def _on_start_answered(state: State, msg: m.StartAnswered) -> Step:
    run = state.run
    if msg.key in state.cancel_keys or msg.key != run.key:
        return _on_late_start_answer(state, msg)
    if msg.job_id is not None:
        return _accepted(state, msg.now, msg.job_id)
    problem = msg.problem or m.Problem(None, "no answer")
    if problem.status == 422 and problem.errors:
        errors = form.problem_fields(problem.errors)
        run = Run(config=run.config, message="The server rejected the parameters: " + _fields_line(errors))
        return replace(state, run=run, field_errors=errors), ()
    if problem.status == 404:  # no candles for this symbol and timeframe: retrying cannot help, importing can
        return _no_dataset(state), ()
    if problem.status is not None and 400 <= problem.status < 500 and problem.status not in (408, 429):
        failure = Failure(kind="rejected", message="Unable to start training: " + problem.line())
        return _fail(state, failure), ()
    # No answer or a 5xx: the attempt's timer repeats the request (same key, so never a second job).
    then = "will ask again" if run.attempt <= state.timing.max_retries else "no retries left"
    message = f"No answer to the start request{_retry_note(run, state.timing)}: {problem.line()} – {then}"
    return replace(state, run=replace(run, message=message)), ()


def _no_dataset(state: State) -> State:
    """The start's 404: mark the field that named the missing candles and say how to get them."""
    config = state.run.config
    pair = f"{config.get('symbol', '?')} {config.get('timeframe', '?')}"
    if config.get("dataset"):
        errors = {"dataset": f"no stored dataset {config['dataset']!r}: pick one (▾ next to Symbol) or import it"}
    else:
        errors = {"symbol": f"no candles for {pair}: import a file with {IMPORT_HINT}"}
    message = (f"No candles for {pair}. Import a candle file with {IMPORT_HINT}, or pick a stored dataset with "
               "▾ next to Symbol, then Start again.")
    return replace(state, run=Run(config=config, message=message), field_errors=errors)


def _accepted(state: State, now: float, job_id: str) -> Step:
    run = state.run
    if run.job_id is not None and run.job_id != job_id:
        # The server ignored the idempotency key and made a second job: stop that one, keep ours.
        return state, (m.StopJob(job_id),)
    first = run.job_id is None
    early = run.early
    run = replace(
        run,
        job_id=job_id,
        accepted=True,
        deadline=now + state.timing.ack_timeout_s,
        early=(),
        next_poll=now if first else run.next_poll,
    )
    state = replace(state, run=replace(run, message=_awaiting(run, state.timing)))
    # Events that raced ahead of the 202 may already confirm this job.
    return _each_event(state, now, (event for event in early if event.get("job_id") == job_id))


def _on_stop_answered(state: State, msg: m.StopAnswered) -> Step:
    run = state.run
    if msg.job_id != run.job_id:
        return state, ()
    if msg.problem is None:
        if msg.status == S.CANCELLED:
            return _ended(state, S.CANCELLED, "Training cancelled before it started"), ()
        return replace(state, run=replace(run, message="Stopping… (the worker finishes its current step)")), ()
    if msg.problem.status == 409:  # it finished meanwhile: ask how
        return state, (m.PollJob(run.job_id),)
    run = replace(run, phase=Phase.RUNNING, deadline=None, message="Stop failed: " + msg.problem.line())
    return replace(state, run=run), ()


def _on_job_polled(state: State, msg: m.JobPolled) -> Step:
    if msg.job_id != state.run.job_id:
        return state, ()
    state = replace(state, run=replace(state.run, poll_in_flight=False))
    if not _tracking(state.run):
        return state, ()
    if msg.problem is not None:
        if msg.problem.status == 404:
            return _fail(state, Failure(kind="lost", message=f"Job {msg.job_id} is unknown to the server.")), ()
        return replace(state, run=replace(state.run, message="Checking the job failed: " + msg.problem.line())), ()
    job = msg.job or {}
    state, effects = _apply_status(state, str(job.get("status", "")), job)
    if state.run.phase in (Phase.RUNNING, Phase.STOPPING) and isinstance(job.get("progress"), dict):
        state = replace(state, run=replace(state.run, progress=_progress(job["progress"], state.run.progress)))
    return state, effects


def _on_events_polled(state: State, msg: m.EventsPolled) -> Step:
    if msg.job_id != state.run.job_id:
        return state, ()
    state = replace(state, run=replace(state.run, poll_in_flight=False))
    return _each_event(state, msg.now, msg.events)


def _on_results(state: State, msg: m.ResultsLoaded) -> Step:
    """The completed run's results arrived: their ``job_duration_s`` completes the status line."""
    run = state.run
    if msg.job_id != run.job_id or msg.job_id != state.results.job_id or run.ended != S.COMPLETED:
        return state, ()
    duration = job_duration_s(msg.job)
    if duration is None:
        return state, ()
    return replace(state, run=replace(run, duration_s=duration, message=f"Training completed in {duration:.1f} s")), ()


# ---------------------------------------------------------------- events


def _tracking(run: Run) -> bool:
    """Whether events of ``run.job_id`` can still change the run (a dialog waiting on it counts)."""
    if run.phase in (Phase.PENDING, Phase.RUNNING, Phase.STOPPING):
        return True
    return run.phase is Phase.FAILED and run.failure is not None and run.failure.kind in {"unacknowledged", "training"}


def _each_event(state: State, now: float, events: Any) -> Step:
    """Feed ``events`` through the table one by one (the phase may change between them)."""
    effects: list[m.Effect] = []
    for event in events:
        state, more = reduce(state, m.ServerEvent(now, event))
        effects.extend(more)
    return state, tuple(effects)


def _on_event(state: State, msg: m.ServerEvent) -> Step:
    event = msg.event
    kind = event.get("type")
    run = state.run
    if kind == "hello":
        return _on_hello(state, event)
    if kind in ("ping", "pong"):
        return state, ()
    if run.phase is Phase.PENDING and run.job_id is None:
        early = (run.early + (event,))[-EARLY_EVENTS_KEPT:]
        return replace(state, run=replace(run, early=early)), ()
    if event.get("job_id") != run.job_id or run.job_id is None or not _tracking(run):
        return state, ()  # another job's event never changes this job's state
    seq = event.get("seq")
    if isinstance(seq, int):
        if seq <= run.last_seq:
            return state, ()  # already applied (delivered by both the WebSocket and a poll)
        state = replace(state, run=replace(run, last_seq=seq))
    return _apply_event(state, event)


def _on_hello(state: State, hello: dict[str, Any]) -> Step:
    """The WebSocket's ``hello`` (after a reconnect) lists the jobs' statuses: ours may have moved meanwhile."""
    effects: list[m.Effect] = []
    run = state.run
    for summary in hello.get("jobs") or ():
        if isinstance(summary, dict) and run.job_id and summary.get("job_id") == run.job_id and _tracking(run):
            state, more = _apply_status(state, str(summary.get("status", "")), summary)
            effects.extend(more)
    return state, tuple(effects)


def _apply_event(state: State, event: dict[str, Any]) -> Step:
    kind = event.get("type")
    run = state.run
    if run.phase is Phase.FAILED and run.failure is not None and run.failure.kind == "training":
        if kind == E.TRAINING_FAILED:  # the details may follow a bare job.status: failed
            return _fail(state, _failure_from(event)), ()
        return state, ()
    if kind == E.TRAINING_STARTED:
        return (_confirm(state) if event.get("origin") == "worker" else state), ()
    if kind == E.JOB_STATUS:
        return _apply_status(state, str(event.get("status", "")), event)
    if kind == E.TRAINING_EPOCH:
        return _record_epoch(state, event), ()
    if kind == E.TRAINING_FOLD_COMPLETED:
        metrics = event.get("metrics") if isinstance(event.get("metrics"), dict) else {}
        return replace(state, run=replace(run, folds_done=run.folds_done + 1, fold_metrics=metrics)), ()
    if kind == E.TRAINING_COMPLETED:
        return _completed(state)
    if kind == E.TRAINING_FAILED:
        return _fail(state, _failure_from(event)), ()
    if kind == E.TRAINING_STOPPED:
        return _ended(state, S.STOPPED, "Training stopped" + _reason(event.get("reason"))), ()
    if kind == E.TRAINING_CANCELLED:
        return _ended(state, S.CANCELLED, "Training cancelled" + _reason(event.get("reason"))), ()
    return state, ()


def _apply_status(state: State, status: str, job: dict[str, Any]) -> Step:
    """Apply a job status seen in ``job.status``, a poll or the hello's summaries."""
    run = state.run
    if status == S.RUNNING:
        return _confirm(state), ()
    if status == S.COMPLETED:
        return _completed(state)
    if status == S.FAILED:
        error = job.get("error")
        failure = _failure_from(error if isinstance(error, dict) else {"error": error or "the job failed"})
        if run.phase is Phase.FAILED and run.failure is not None and run.failure.kind == "training":
            return state, ()  # keep the details training.failed gave
        return _fail(state, failure), ()
    if status == S.STOPPED:
        return _ended(state, S.STOPPED, "Training stopped" + _reason(job.get("stop_reason"))), ()
    if status == S.CANCELLED:
        return _ended(state, S.CANCELLED, "Training cancelled" + _reason(job.get("stop_reason"))), ()
    if status == S.INTERRUPTED:
        return _fail(state, Failure(kind="lost", message="The job was interrupted (the server restarted).")), ()
    if status in (S.QUEUED, S.STARTING) and run.phase is Phase.PENDING and run.accepted:
        return replace(state, run=replace(run, message=_awaiting(run, state.timing, status))), ()
    return state, ()


# ---------------------------------------------------------------- moves between phases


def _confirm(state: State) -> State:
    run = state.run
    if run.phase is not Phase.PENDING and not (run.phase is Phase.FAILED and _unacknowledged(run)):
        return state
    run = replace(run, phase=Phase.RUNNING, deadline=None, failure=None, message="Training running", ended=None)
    return replace(state, run=run)


def _record_epoch(state: State, event: dict[str, Any]) -> State:
    run = state.run
    point = LossPoint(
        fold=int(event.get("fold", 0)),
        epoch=int(event.get("epoch", 0)),
        train_loss=_number(event.get("train_loss")),
        val_loss=_number(event.get("val_loss")),
    )
    return replace(
        state,
        run=replace(run, progress=_progress(event, run.progress), losses=run.losses + (point,), latest=dict(event)),
    )


def _completed(state: State) -> Step:
    """The job completed: open its results (whose ``job_duration_s`` then completes the message)."""
    run = state.run
    if run.job_id is None:
        return state, ()
    run = replace(run, phase=Phase.IDLE, deadline=None, failure=None, message="Training completed", ended=S.COMPLETED)
    state, effects = open_results(replace(state, run=run), run.job_id)
    return state, effects + (m.ListJobs(),)


def _fail(state: State, failure: Failure) -> State:
    """Show ``failure`` in the error window; the panel's line only points there (the message is shown once)."""
    ended = S.FAILED if failure.kind in ("training", "lost") else None  # the others never started the job
    message = f"{FAILURE_TITLES[failure.kind]} – the error window says why"
    run = replace(state.run, phase=Phase.FAILED, deadline=None, failure=failure, message=message, ended=ended)
    return replace(state, run=run)


def _ended(state: State, how: JobStatus, message: str) -> State:
    """The run ended ``how`` (``stopped`` or ``cancelled``): back to idle, its last progress kept to say where."""
    run = replace(state.run, phase=Phase.IDLE, deadline=None, failure=None, message=message, ended=how)
    return replace(state, run=run)


# ---------------------------------------------------------------- small helpers


def _failure_from(event: dict[str, Any]) -> Failure:
    """A ``training.failed`` event (or a failed job's ``error``) as the error window's sentence; the stage, error
    type and exit code are kept apart for its small print."""
    stage = event.get("stage")
    error_type = event.get("error_type")
    exit_code = event.get("exit_code")
    return Failure(
        kind="training",
        message=f"Training failed: {event.get('error') or 'the job failed'}",
        stage=str(stage) if stage else None,
        error_type=str(error_type) if error_type else None,
        traceback_tail=str(event.get("traceback_tail") or ""),
        exit_code=exit_code if isinstance(exit_code, int) else None,
    )


def _progress(source: dict[str, Any], previous: Progress | None) -> Progress:
    def pick(key: str, default: Any) -> Any:
        value = source.get(key)
        return default if value is None else value

    base = previous or Progress(0, 0, 0, 0, 0.0, None)
    eta = source.get("eta_s", base.eta_s)
    return Progress(
        fold=int(pick("fold", base.fold)),
        folds=int(pick("folds", base.folds)),
        epoch=int(pick("epoch", base.epoch)),
        epochs=int(pick("epochs", base.epochs)),
        fraction=min(1.0, max(0.0, float(pick("fraction", base.fraction)))),
        eta_s=float(eta) if isinstance(eta, (int, float)) else None,
    )


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else float("nan")


def _retry_note(run: Run, timing: Timing) -> str:
    """`` (retry 1/2)`` while a repeated start request is the current attempt; empty for the first."""
    return f" (retry {run.attempt - 1}/{timing.max_retries})" if run.attempt > 1 else ""


def _awaiting(run: Run, timing: Timing, status: str | None = None) -> str:
    """The pending message after a 202: ``AWAITING``, the job's status when known, and which retry it is."""
    notes = [f"job {status}"] if status else []
    if run.attempt > 1:
        notes.append(f"retry {run.attempt - 1}/{timing.max_retries}")
    return f"{AWAITING} ({', '.join(notes)})" if notes else AWAITING


def _reason(reason: str | None) -> str:
    return f" ({reason})" if reason else ""


def _fields_line(errors: dict[str, str]) -> str:
    return "; ".join(f"{name}: {text}" for name, text in errors.items())


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Transition:
    """What a message does in a phase: ``handler`` makes the step; ``to`` lists the phases it may end in."""

    handler: Callable[[Any, Any], Step]
    to: frozenset[Phase]


def _to(handler: Callable[[Any, Any], Step], *phases: Phase) -> Transition:
    return Transition(handler, frozenset(phases))


I, P, R, T, F = Phase.IDLE, Phase.PENDING, Phase.RUNNING, Phase.STOPPING, Phase.FAILED
ENDS = (I, R, F)  # where a job's status or event can take a run that follows it: running, ended, failed

TRANSITIONS: dict[Phase, dict[type, Transition]] = {
    I: {
        m.StartClicked: _to(_on_start, I, P),  # stays idle while the server does not answer (start_blocked)
        m.StartAnswered: _to(_on_late_start_answer, I),
        m.ResultsLoaded: _to(_on_results, I),
        m.FieldEdited: _to(_on_field_edited, I),
    },
    P: {
        m.CancelClicked: _to(_on_cancel, I),
        m.StartAnswered: _to(_on_start_answered, P, *ENDS),  # a 202 replays the early events; 4xx: idle or failed
        m.Tick: _to(_on_tick, P, F),  # the acknowledgement timer: ask again, or the dialog
        m.JobPolled: _to(_on_job_polled, P, *ENDS),
        m.EventsPolled: _to(_on_events_polled, P, *ENDS),
        m.ServerEvent: _to(_on_event, P, *ENDS),
        m.FieldEdited: _to(_on_field_edited, P),
    },
    R: {
        m.StopClicked: _to(_on_stop, T),
        m.StartAnswered: _to(_on_late_start_answer, R),
        m.Tick: _to(_on_tick, R),
        m.JobPolled: _to(_on_job_polled, *ENDS),
        m.EventsPolled: _to(_on_events_polled, *ENDS),
        m.ServerEvent: _to(_on_event, *ENDS),
        m.FieldEdited: _to(_on_field_edited, R),
    },
    T: {
        m.StopAnswered: _to(_on_stop_answered, T, I, R),  # cancelled before it started; or the stop failed
        m.StartAnswered: _to(_on_late_start_answer, T),
        m.Tick: _to(_on_tick, T),
        m.JobPolled: _to(_on_job_polled, T, I, F),
        m.EventsPolled: _to(_on_events_polled, T, I, F),
        m.ServerEvent: _to(_on_event, T, I, F),
        m.FieldEdited: _to(_on_field_edited, T),
    },
    F: {
        m.CancelClicked: _to(_on_cancel, I, F),  # only the not-acknowledged dialog has [Cancel]
        m.RetryClicked: _to(_on_retry, P, F),
        m.DismissClicked: _to(_on_dismiss, I),
        m.StartAnswered: _to(_on_late_start_answer, F),
        m.JobPolled: _to(_on_job_polled, *ENDS),  # a confirmation after the dialog still starts the run
        m.EventsPolled: _to(_on_events_polled, *ENDS),
        m.ServerEvent: _to(_on_event, *ENDS),
        m.FieldEdited: _to(_on_field_edited, F),
    },
}

#: Nothing to do in that phase: no timer runs, no job is followed, no results are awaited. Dropped silently.
IGNORED: dict[Phase, frozenset[type]] = {
    I: frozenset({m.Tick, m.JobPolled, m.EventsPolled, m.ServerEvent, m.StopAnswered}),
    P: frozenset({m.StopAnswered, m.ResultsLoaded}),
    R: frozenset({m.StopAnswered, m.ResultsLoaded}),
    T: frozenset({m.ResultsLoaded}),
    F: frozenset({m.Tick, m.StopAnswered, m.ResultsLoaded}),
}

#: Clicks the phase does not allow (``controller.allowed_actions`` disables them, so one only comes from a click
#: that raced the re-render): logged and dropped, the state unchanged.
ILLEGAL: dict[Phase, frozenset[type]] = {
    I: frozenset({m.CancelClicked, m.RetryClicked, m.StopClicked, m.DismissClicked}),
    P: frozenset({m.StartClicked, m.RetryClicked, m.StopClicked, m.DismissClicked}),
    R: frozenset({m.StartClicked, m.CancelClicked, m.RetryClicked, m.DismissClicked}),
    T: frozenset({m.StartClicked, m.CancelClicked, m.RetryClicked, m.StopClicked, m.DismissClicked}),
    F: frozenset({m.StartClicked, m.StopClicked}),
}

#: Every message type the run takes part in.
MESSAGES: frozenset[type] = frozenset().union(*TRANSITIONS.values(), *IGNORED.values(), *ILLEGAL.values())


def reduce(state: State, msg: m.Message) -> Step:
    """One step of the run: the table's handler for ``(state.run.phase, type(msg))``; an ignored or illegal
    message returns ``state`` itself and no effects (an illegal one is logged). A handler that ends in a phase its
    entry does not list is logged as an error (a bug in this file), never raised: the window keeps running."""
    phase = state.run.phase
    transition = TRANSITIONS[phase].get(type(msg))
    if transition is None:
        if type(msg) in ILLEGAL[phase]:
            log.info("run: %s is not allowed while %s; ignored", type(msg).__name__, phase.value)
        return state, ()
    state, effects = transition.handler(state, msg)
    if state.run.phase not in transition.to:
        log.error("run: %s while %s led to %s, which TRANSITIONS does not list", type(msg).__name__, phase.value,
                  state.run.phase.value)
    return state, effects


REDUCERS: dict[type, Reducer] = dict.fromkeys(MESSAGES, reduce)
