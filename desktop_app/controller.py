"""The app's pure state machine: ``update(state, message) -> (state, effects)``.

No I/O, no clock, no Dear PyGui: the shell feeds messages (``desktop_app.messages``, each with ``now`` from its
monotonic clock), performs the returned effects on background threads, and renders the state. Everything that
decides what the app does lives in this file, so the tests drive every transition with a fake clock.

The run's phases (issue 5): ``idle → pending → running → stopping → idle``, plus ``failed``. The start handshake
follows API.md: a 202 only says "accepted"; the job counts as running only on the worker's ``training.started``
(or ``job.status: running``) for this job id. No confirmation within ``ack_timeout_s`` repeats the POST with the
same ``Idempotency-Key`` (so never a second job) up to ``max_retries`` times, each with its own timer; while the
WebSocket is down the controller polls ``GET /jobs/{id}`` instead of waiting for events. Then the
"backend did not acknowledge" dialog offers View Logs, Retry and Cancel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Any

from desktop_app import form
from desktop_app import messages as m
from desktop_app import use_panel
from trainer.events import TERMINAL_EVENTS, EventType, JobStatus

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
    """Where the run is; ``allowed_actions`` derives the enabled buttons from it."""

    IDLE = "idle"
    PENDING = "pending"  # start requested, not yet confirmed by the worker
    RUNNING = "running"
    STOPPING = "stopping"
    FAILED = "failed"  # an error dialog is shown


class Action(str, Enum):
    """Things the user can do; a view enables a control only when its action is allowed."""

    START = "start"
    CANCEL_START = "cancel_start"
    STOP = "stop"
    RETRY = "retry"
    DISMISS = "dismiss"
    VIEW_LOGS = "view_logs"
    IMPORT = "import"


@dataclass(frozen=True)
class Timing:
    """The controller's timers, in seconds."""

    ack_timeout_s: float = 30.0  # API.md: each start attempt waits this long for the worker's confirmation
    max_retries: int = 2  # repeats of the POST after the first attempt (same idempotency key)
    poll_interval_s: float = 2.0  # GET /jobs/{id} (or /events) while the WebSocket is down
    health_interval_s: float = 10.0  # GET / for the REST dot
    log_refresh_s: float = 5.0  # View Logs refresh while the dialog is open
    stop_check_s: float = 15.0  # after Stop, poll the job if no terminal event arrived by then


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


@dataclass(frozen=True)
class Connection:
    """Connection health for the status bar: ``ws`` is ``connected``, ``reconnecting`` or ``disconnected``."""

    rest_ok: bool | None = None  # None until the first GET / answered
    rest_detail: str = ""
    last_ping: float | None = None  # Unix seconds of the last GET / that answered
    server: dict[str, Any] = field(default_factory=dict)
    ws: str = "reconnecting"
    ws_detail: str = ""
    next_health: float = 0.0
    health_in_flight: bool = False


@dataclass(frozen=True)
class Results:
    """The job whose results are shown (the last completed one, or one picked in the Jobs list)."""

    job_id: str | None = None
    job: dict[str, Any] | None = None
    series: dict[str, tuple[float, ...]] = field(default_factory=dict)
    loading: bool = False
    problem: m.Problem | None = None
    auto: bool = False  # the newest completed job, shown at launch (not picked by the user)


@dataclass(frozen=True)
class Logs:
    """The View Logs dialog: open or not, whose log, the last lines read."""

    open: bool = False
    job_id: str | None = None
    lines: tuple[str, ...] = ()
    path: str | None = None
    next_refresh: float = 0.0
    in_flight: bool = False
    problem: m.Problem | None = None


@dataclass(frozen=True)
class Catalog:
    """Lists from the server: past jobs and stored datasets."""

    jobs: tuple[dict[str, Any], ...] = ()
    jobs_problem: m.Problem | None = None
    datasets: tuple[dict[str, Any], ...] = ()
    datasets_problem: m.Problem | None = None


@dataclass(frozen=True)
class Import:
    """Import data…: busy while the request runs; ``show`` while its report (or error) is on screen."""

    busy: bool = False
    path: str | None = None
    dataset: dict[str, Any] | None = None
    problem: m.Problem | None = None
    show: bool = False


@dataclass(frozen=True)
class State:
    """Everything the window shows. ``field_errors`` maps request fields to messages (a 422 from the server)."""

    run: Run = field(default_factory=Run)
    conn: Connection = field(default_factory=Connection)
    results: Results = field(default_factory=Results)
    logs: Logs = field(default_factory=Logs)
    catalog: Catalog = field(default_factory=Catalog)
    importing: Import = field(default_factory=Import)
    field_errors: dict[str, str] = field(default_factory=dict)
    cancel_keys: frozenset[str] = frozenset()  # keys whose 202 must be stopped as soon as it arrives
    timing: Timing = field(default_factory=Timing)
    use: use_panel.UsePanel = field(default_factory=use_panel.UsePanel)  # Next bar card, Compare window


Effects = tuple[m.Effect, ...]


def initial(timing: Timing | None = None) -> tuple[State, Effects]:
    """The state at launch and the first requests (health, jobs, datasets)."""
    return State(timing=timing or Timing()), (m.ListJobs(), m.ListDatasets())


def allowed_actions(state: State) -> frozenset[Action]:
    """The actions the user may take now (buttons not listed here are disabled)."""
    run = state.run
    allowed = {Action.VIEW_LOGS}
    if not state.importing.busy:
        allowed.add(Action.IMPORT)
    reachable = start_blocked(state) is None
    if run.phase is Phase.IDLE and reachable:
        allowed.add(Action.START)
    elif run.phase is Phase.PENDING:
        allowed.add(Action.CANCEL_START)
    elif run.phase is Phase.RUNNING:
        allowed.add(Action.STOP)
    elif run.phase is Phase.FAILED and run.failure is not None:
        allowed.add(Action.DISMISS)
        if run.failure.retryable and reachable:
            allowed.add(Action.RETRY)
        if run.failure.kind == "unacknowledged":
            allowed.add(Action.CANCEL_START)
    return frozenset(allowed)


def start_blocked(state: State) -> str | None:
    """Why Start (and Retry) are disabled although no run is going on, or None: the server did not answer its
    last health check. A click then is ignored, never queued to be sent when the server is back."""
    if state.conn.rest_ok is False:
        detail = f" ({state.conn.rest_detail})" if state.conn.rest_detail else ""
        return f"The server does not answer{detail}. Start is enabled again as soon as it does."
    return None


def job_duration_s(job: dict[str, Any] | None) -> float | None:
    """A job's duration in seconds, ``finished_at − started_at`` of ``GET /jobs/{id}`` (ISO-8601 UTC): the one
    figure the status line, the Elapsed field and the Results header show. None while either is missing."""
    try:
        started = datetime.fromisoformat(str((job or {})["started_at"]))
        finished = datetime.fromisoformat(str((job or {})["finished_at"]))
    except (KeyError, TypeError, ValueError):
        return None
    return max(0.0, (finished - started).total_seconds())


def update(state: State, msg: m.Message) -> tuple[State, Effects]:
    """Apply one message; returns the new state (the same object when nothing changed) and effects to run.

    Raises ``TypeError`` for an object that is not a known message (a shell bug, never a user error).
    """
    handler = _HANDLERS.get(type(msg)) or _use_handler(type(msg))
    if handler is None:
        raise TypeError(f"controller has no transition for {type(msg).__name__}")
    state, effects = handler(state, msg)
    # Several rules may ask for the same request in one step (a completion refreshes the Jobs list as a terminal
    # event and as a completion): it is performed once, in the order first asked.
    return state, tuple(effect for i, effect in enumerate(effects) if effect not in effects[:i])


# ---------------------------------------------------------------- the user


def _on_start(state: State, msg: m.StartClicked) -> tuple[State, Effects]:
    if Action.START not in allowed_actions(state):
        return state, ()
    return _begin_start(replace(state, field_errors={}), msg.now, msg.config, msg.key)


def _begin_start(state: State, now: float, config: dict[str, Any], key: str) -> tuple[State, Effects]:
    run = Run(
        phase=Phase.PENDING,
        config=dict(config),
        key=key,
        attempt=1,
        deadline=now + state.timing.ack_timeout_s,
        message="Sending start request…",
    )
    return replace(state, run=run), (m.PostStart(run.config, key, 1), m.RememberParams(run.config))


def _abandon_start(state: State) -> tuple[State, Effects]:
    """Give up the current start request: stop its job, or stop it when its 202 arrives."""
    run = state.run
    if run.job_id is not None:
        return state, (m.StopJob(run.job_id),)
    if run.key is not None:
        return replace(state, cancel_keys=state.cancel_keys | {run.key}), ()
    return state, ()


def _on_cancel(state: State, msg: m.CancelClicked) -> tuple[State, Effects]:
    if Action.CANCEL_START not in allowed_actions(state):
        return state, ()
    state, effects = _abandon_start(state)
    run = replace(state.run, phase=Phase.IDLE, deadline=None, failure=None, message="Start request cancelled")
    return replace(state, run=run), effects


def _on_retry(state: State, msg: m.RetryClicked) -> tuple[State, Effects]:
    if Action.RETRY not in allowed_actions(state):
        return state, ()
    config = state.run.config
    state, stop = _abandon_start(state)
    state, start = _begin_start(state, msg.now, config, msg.key)
    return state, stop + start


def _on_stop(state: State, msg: m.StopClicked) -> tuple[State, Effects]:
    run = state.run
    if Action.STOP not in allowed_actions(state) or run.job_id is None:
        return state, ()
    run = replace(
        run, phase=Phase.STOPPING, deadline=msg.now + state.timing.stop_check_s, message="Stopping…"
    )
    return replace(state, run=run), (m.StopJob(run.job_id),)


def _on_dismiss(state: State, msg: m.DismissClicked) -> tuple[State, Effects]:
    if state.run.phase is not Phase.FAILED:
        return state, ()
    failure = state.run.failure
    effects: Effects = ()
    if failure is not None and failure.kind == "unacknowledged":
        state, effects = _abandon_start(state)  # closing that dialog means "don't start it"
    run = replace(state.run, phase=Phase.IDLE, deadline=None, failure=None, message="Ready")
    return replace(state, run=run), effects


def _on_logs_opened(state: State, msg: m.LogsOpened) -> tuple[State, Effects]:
    same = state.logs.open and state.logs.job_id == msg.job_id
    logs = replace(
        state.logs,
        open=True,
        job_id=msg.job_id,
        lines=state.logs.lines if same else (),
        path=state.logs.path if same else None,
        problem=None,
        in_flight=True,
        next_refresh=msg.now + state.timing.log_refresh_s,
    )
    return replace(state, logs=logs), (_load_log(logs),)


def _on_logs_closed(state: State, msg: m.LogsClosed) -> tuple[State, Effects]:
    if not state.logs.open:
        return state, ()
    return replace(state, logs=replace(state.logs, open=False)), ()


def _on_job_opened(state: State, msg: m.JobOpened) -> tuple[State, Effects]:
    return replace(state, results=Results(job_id=msg.job_id, loading=True)), (m.LoadResults(msg.job_id),)


def _on_jobs_refresh(state: State, msg: m.JobsRefreshClicked) -> tuple[State, Effects]:
    return state, (m.ListJobs(),)


def _on_import(state: State, msg: m.ImportRequested) -> tuple[State, Effects]:
    if state.importing.busy:
        return state, ()
    importing = Import(busy=True, path=msg.path)
    return replace(state, importing=importing), (m.ImportDataset(msg.path, msg.symbol, msg.timeframe),)


def _on_field_edited(state: State, msg: m.FieldEdited) -> tuple[State, Effects]:
    if msg.name not in state.field_errors:
        return state, ()
    errors = {name: text for name, text in state.field_errors.items() if name != msg.name}
    return replace(state, field_errors=errors), ()


def _on_import_closed(state: State, msg: m.ImportReportClosed) -> tuple[State, Effects]:
    return replace(state, importing=replace(state.importing, show=False)), ()


# ---------------------------------------------------------------- the clock


def _on_tick(state: State, msg: m.Tick) -> tuple[State, Effects]:
    effects: list[m.Effect] = []
    for step in (_tick_health, _tick_run, _tick_logs):
        state, more = step(state, msg.now)
        effects.extend(more)
    return state, tuple(effects)


def _tick_health(state: State, now: float) -> tuple[State, Effects]:
    conn = state.conn
    if conn.health_in_flight or now < conn.next_health:
        return state, ()
    conn = replace(conn, health_in_flight=True, next_health=now + state.timing.health_interval_s)
    return replace(state, conn=conn), (m.CheckHealth(),)


def _tick_run(state: State, now: float) -> tuple[State, Effects]:
    run, timing = state.run, state.timing
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
    can_poll = run.job_id is not None and not run.poll_in_flight and now >= run.next_poll
    if ws_down and can_poll and run.phase in (Phase.PENDING, Phase.RUNNING, Phase.STOPPING):
        run = replace(run, poll_in_flight=True, next_poll=now + timing.poll_interval_s)
        if run.phase is Phase.PENDING:
            effect: m.Effect = m.PollJob(run.job_id or "")
        else:  # the events carry the loss curve and the terminal event with its details
            effect = m.PollEvents(run.job_id or "", run.last_seq)
        return replace(state, run=run), (effect,)
    return state, ()


def _tick_logs(state: State, now: float) -> tuple[State, Effects]:
    logs = state.logs
    if not logs.open or logs.in_flight or now < logs.next_refresh:
        return state, ()
    logs = replace(logs, in_flight=True, next_refresh=now + state.timing.log_refresh_s)
    return replace(state, logs=logs), (_load_log(logs),)


def _load_log(logs: Logs) -> m.LoadLogTail:
    """Read the dialog's log; for a job's worker log, also its file path until that is known."""
    return m.LoadLogTail(logs.job_id, with_path=logs.job_id is not None and logs.path is None)


# ---------------------------------------------------------------- the server's answers


def _on_start_answered(state: State, msg: m.StartAnswered) -> tuple[State, Effects]:
    if msg.key in state.cancel_keys:
        if msg.job_id is None:
            return state, ()
        return replace(state, cancel_keys=state.cancel_keys - {msg.key}), (m.StopJob(msg.job_id),)
    run = state.run
    if run.phase is not Phase.PENDING or msg.key != run.key:
        return state, ()  # an answer to a request given up on (its job, if any, is already stopped)
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


def _accepted(state: State, now: float, job_id: str) -> tuple[State, Effects]:
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
    effects: list[m.Effect] = []
    for event in early:  # events that raced ahead of the 202 may already confirm this job
        if event.get("job_id") == job_id:
            state, more = _on_event(state, m.ServerEvent(now, event))
            effects.extend(more)
    return state, tuple(effects)


def _on_stop_answered(state: State, msg: m.StopAnswered) -> tuple[State, Effects]:
    run = state.run
    if msg.job_id != run.job_id or run.phase is not Phase.STOPPING:
        return state, ()
    if msg.problem is None:
        if msg.status == S.CANCELLED:
            return _ended(state, S.CANCELLED, "Training cancelled before it started"), ()
        return replace(state, run=replace(run, message="Stopping… (the worker finishes its current step)")), ()
    if msg.problem.status == 409:  # it finished meanwhile: ask how
        return state, (m.PollJob(run.job_id),)
    run = replace(run, phase=Phase.RUNNING, deadline=None, message="Stop failed: " + msg.problem.line())
    return replace(state, run=run), ()


def _on_job_polled(state: State, msg: m.JobPolled) -> tuple[State, Effects]:
    run = state.run
    if msg.job_id != run.job_id:
        return state, ()
    state = replace(state, run=replace(run, poll_in_flight=False))
    if not _tracking(state.run):
        return state, ()
    if msg.problem is not None:
        if msg.problem.status == 404:
            return _fail(state, Failure(kind="lost", message=f"Job {msg.job_id} is unknown to the server.")), ()
        return replace(state, run=replace(state.run, message="Checking the job failed: " + msg.problem.line())), ()
    job = msg.job or {}
    state, effects = _apply_status(state, msg.now, str(job.get("status", "")), job)
    if state.run.phase in (Phase.RUNNING, Phase.STOPPING) and isinstance(job.get("progress"), dict):
        state = replace(state, run=replace(state.run, progress=_progress(job["progress"], state.run.progress)))
    return state, effects


def _on_events_polled(state: State, msg: m.EventsPolled) -> tuple[State, Effects]:
    if msg.job_id != state.run.job_id:
        return state, ()
    state = replace(state, run=replace(state.run, poll_in_flight=False))
    effects: list[m.Effect] = []
    for event in msg.events:
        state, more = _on_event(state, m.ServerEvent(msg.now, event))
        effects.extend(more)
    return state, tuple(effects)


def _on_ws(state: State, msg: m.WsChanged) -> tuple[State, Effects]:
    conn = state.conn
    if conn.ws == msg.status and conn.ws_detail == msg.detail:
        return state, ()
    changed = conn.ws != msg.status
    conn = replace(conn, ws=msg.status, ws_detail=msg.detail)
    # A WebSocket that drops or comes back says something about the REST side too: check it now.
    if changed and not conn.health_in_flight:
        conn = replace(conn, health_in_flight=True, next_health=msg.now + state.timing.health_interval_s)
        return replace(state, conn=conn), (m.CheckHealth(),)
    return replace(state, conn=conn), ()


def _on_health(state: State, msg: m.HealthAnswered) -> tuple[State, Effects]:
    conn = replace(state.conn, health_in_flight=False)
    if msg.problem is None:
        conn = replace(conn, rest_ok=True, rest_detail="", last_ping=msg.wall_time, server=msg.health or {})
    else:
        conn = replace(conn, rest_ok=False, rest_detail=msg.problem.line())
    return replace(state, conn=conn), ()


def _on_jobs_listed(state: State, msg: m.JobsListed) -> tuple[State, Effects]:
    if msg.problem is not None:
        return replace(state, catalog=replace(state.catalog, jobs_problem=msg.problem)), ()
    state = replace(state, catalog=replace(state.catalog, jobs=msg.jobs, jobs_problem=None))
    latest = use_panel.latest_completed(msg.jobs)
    if state.results.job_id is None and state.run.job_id is None and latest is not None:  # after a restart
        return replace(state, results=Results(job_id=latest, loading=True, auto=True)), (m.LoadResults(latest),)
    return state, ()


def _use_handler(kind: type) -> Callable[[State, Any], tuple[State, Effects]] | None:
    """The ``use_panel`` reducer of ``kind`` applied to ``State.use`` (None when it has none)."""
    reducer = use_panel.HANDLERS.get(kind)
    if reducer is None:
        return None

    def handle(state: State, msg: Any) -> tuple[State, Effects]:
        use, effects = reducer(state.use, msg)
        return (state if use is state.use else replace(state, use=use)), effects

    return handle


def _on_datasets_listed(state: State, msg: m.DatasetsListed) -> tuple[State, Effects]:
    if msg.problem is not None:
        return replace(state, catalog=replace(state.catalog, datasets_problem=msg.problem)), ()
    return replace(state, catalog=replace(state.catalog, datasets=msg.datasets, datasets_problem=None)), ()


def _on_results(state: State, msg: m.ResultsLoaded) -> tuple[State, Effects]:
    if msg.job_id != state.results.job_id:
        return state, ()
    results = Results(job_id=msg.job_id, job=msg.job, series=msg.series, loading=False, problem=msg.problem,
                      auto=state.results.auto)
    state = replace(state, results=results)
    # The Next bar card: this job's latest forecast (none for a job without a model).
    use, effects = use_panel.next_bar_for(state.use, msg.job_id, (msg.job or {}).get("status") == S.COMPLETED)
    state = replace(state, use=use)
    run = state.run
    duration = job_duration_s(msg.job)
    if msg.job_id == run.job_id and run.ended == S.COMPLETED and run.phase is Phase.IDLE and duration is not None:
        state = replace(state, run=replace(run, duration_s=duration, message=f"Training completed in {duration:.1f} s"))
    return state, effects


def _on_log_tail(state: State, msg: m.LogTailLoaded) -> tuple[State, Effects]:
    logs = state.logs
    if msg.job_id != logs.job_id:
        return state, ()
    logs = replace(logs, in_flight=False)
    if msg.problem is not None:
        logs = replace(logs, problem=msg.problem)
    else:
        logs = replace(logs, lines=msg.lines, path=msg.path or logs.path, problem=None)
    return replace(state, logs=logs), ()


def _on_import_answered(state: State, msg: m.ImportAnswered) -> tuple[State, Effects]:
    importing = Import(busy=False, path=msg.path, dataset=msg.dataset, problem=msg.problem, show=True)
    return replace(state, importing=importing), ((m.ListDatasets(),) if msg.problem is None else ())


# ---------------------------------------------------------------- events


def _tracking(run: Run) -> bool:
    """Whether events of ``run.job_id`` can still change the run (a dialog waiting on it counts)."""
    if run.phase in (Phase.PENDING, Phase.RUNNING, Phase.STOPPING):
        return True
    return run.phase is Phase.FAILED and run.failure is not None and run.failure.kind in {"unacknowledged", "training"}


def _on_event(state: State, msg: m.ServerEvent) -> tuple[State, Effects]:
    event = msg.event
    kind = event.get("type")
    if kind in ("ping", "pong"):
        return state, ()
    if kind == "hello":
        return _on_hello(state, msg.now, event)
    effects: Effects = (m.ListJobs(),) if kind in TERMINAL_EVENTS else ()
    run = state.run
    if run.phase is Phase.PENDING and run.job_id is None:
        early = (run.early + (event,))[-EARLY_EVENTS_KEPT:]
        return replace(state, run=replace(run, early=early)), effects
    if event.get("job_id") != run.job_id or run.job_id is None or not _tracking(run):
        return state, effects  # another job's event never changes this job's state
    seq = event.get("seq")
    if isinstance(seq, int):
        if seq <= run.last_seq:
            return state, effects  # already applied (delivered by both the WebSocket and a poll)
        state = replace(state, run=replace(run, last_seq=seq))
    state, more = _apply_event(state, msg.now, event)
    return state, effects + more


def _on_hello(state: State, now: float, hello: dict[str, Any]) -> tuple[State, Effects]:
    effects: list[m.Effect] = [m.ListJobs()]
    run = state.run
    for summary in hello.get("jobs") or ():
        if isinstance(summary, dict) and run.job_id and summary.get("job_id") == run.job_id and _tracking(run):
            state, more = _apply_status(state, now, str(summary.get("status", "")), summary)
            effects.extend(more)
    return state, tuple(effects)


def _apply_event(state: State, now: float, event: dict[str, Any]) -> tuple[State, Effects]:
    kind = event.get("type")
    run = state.run
    if run.phase is Phase.FAILED and run.failure is not None and run.failure.kind == "training":
        if kind == E.TRAINING_FAILED:  # the details may follow a bare job.status: failed
            return _fail(state, _failure_from(event)), ()
        return state, ()
    if kind == E.TRAINING_STARTED:
        if event.get("origin") == "worker":
            return _confirm(state), ()
        return state, ()
    if kind == E.JOB_STATUS:
        return _apply_status(state, now, str(event.get("status", "")), event)
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
        return _ended(state, S.STOPPED, "Training stopped" + _reason(event)), ()
    if kind == E.TRAINING_CANCELLED:
        return _ended(state, S.CANCELLED, "Training cancelled" + _reason(event)), ()
    return state, ()


def _apply_status(state: State, now: float, status: str, job: dict[str, Any]) -> tuple[State, Effects]:
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
        return _ended(state, S.STOPPED, "Training stopped"), ()
    if status == S.CANCELLED:
        return _ended(state, S.CANCELLED, "Training cancelled"), ()
    if status == S.INTERRUPTED:
        return _fail(state, Failure(kind="lost", message="The job was interrupted (the server restarted).")), ()
    if status in (S.QUEUED, S.STARTING) and run.phase is Phase.PENDING and run.accepted:
        return replace(state, run=replace(run, message=_awaiting(run, state.timing, status))), ()
    return state, ()


def _confirm(state: State) -> State:
    run = state.run
    unacknowledged = run.phase is Phase.FAILED and run.failure is not None and run.failure.kind == "unacknowledged"
    if run.phase is not Phase.PENDING and not unacknowledged:
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


def _completed(state: State) -> tuple[State, Effects]:
    """The job completed: load its results (whose ``job_duration_s`` then completes the message)."""
    run = state.run
    if run.job_id is None:
        return state, ()
    run = replace(run, phase=Phase.IDLE, deadline=None, failure=None, message="Training completed", ended=S.COMPLETED)
    results = Results(job_id=run.job_id, loading=True)
    return replace(state, run=run, results=results), (m.LoadResults(run.job_id), m.ListJobs())


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
    error = str(event.get("error") or "the job failed")
    exit_code = event.get("exit_code")
    return Failure(
        kind="training",
        message=f"Training failed: {error}",
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


def _reason(event: dict[str, Any]) -> str:
    reason = event.get("reason")
    return f" ({reason})" if reason else ""


def _fields_line(errors: dict[str, str]) -> str:
    return "; ".join(f"{name}: {text}" for name, text in errors.items())


_HANDLERS: dict[type, Callable[[State, Any], tuple[State, Effects]]] = {
    m.Tick: _on_tick,
    m.StartClicked: _on_start,
    m.CancelClicked: _on_cancel,
    m.RetryClicked: _on_retry,
    m.StopClicked: _on_stop,
    m.DismissClicked: _on_dismiss,
    m.LogsOpened: _on_logs_opened,
    m.LogsClosed: _on_logs_closed,
    m.JobOpened: _on_job_opened,
    m.JobsRefreshClicked: _on_jobs_refresh,
    m.ImportRequested: _on_import,
    m.ImportReportClosed: _on_import_closed,
    m.FieldEdited: _on_field_edited,
    m.StartAnswered: _on_start_answered,
    m.StopAnswered: _on_stop_answered,
    m.JobPolled: _on_job_polled,
    m.EventsPolled: _on_events_polled,
    m.ServerEvent: _on_event,
    m.WsChanged: _on_ws,
    m.HealthAnswered: _on_health,
    m.JobsListed: _on_jobs_listed,
    m.DatasetsListed: _on_datasets_listed,
    m.ResultsLoaded: _on_results,
    m.LogTailLoaded: _on_log_tail,
    m.ImportAnswered: _on_import_answered,
}
