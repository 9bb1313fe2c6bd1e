"""The app's pure state machine: ``update(state, message) -> (state, effects)``.

No I/O, no clock, no Dear PyGui: the shell feeds messages (``desktop_app.messages``, each with ``now`` from its
monotonic clock), performs the returned effects on background threads, and renders the state. The state is one
slice per panel; each slice has its reducer module in ``desktop_app.panels`` (the run's start handshake is the
transition table of ``panels.run``). This module composes them: ``State``, ``PANELS`` and the routing of
``update``, and the buttons ``allowed_actions`` enables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from types import ModuleType

from desktop_app import messages as m
from desktop_app.panels import Effects, Reducer, catalog, connection, importing, logs, results, run, sweeps, use
from desktop_app.panels.catalog import Catalog
from desktop_app.panels.connection import Connection, start_blocked
from desktop_app.panels.importing import Import
from desktop_app.panels.logs import Logs
from desktop_app.panels.results import Results
from desktop_app.panels.run import Phase, Run
from desktop_app.panels.sweeps import Sweeps
from desktop_app.panels.use import UsePanel


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
class State:
    """Everything the window shows, one slice per panel (each written by its module in ``desktop_app.panels``).

    ``field_errors`` maps request fields to messages (the start's 422 or 404) and ``cancel_keys`` holds the keys
    whose 202 must be stopped as soon as it arrives: both belong to the run (``panels.run``).
    """

    run: Run = field(default_factory=Run)
    conn: Connection = field(default_factory=Connection)
    results: Results = field(default_factory=Results)
    logs: Logs = field(default_factory=Logs)
    catalog: Catalog = field(default_factory=Catalog)
    importing: Import = field(default_factory=Import)
    use: UsePanel = field(default_factory=UsePanel)  # the Next bar card and the Compare window
    sweeps: Sweeps = field(default_factory=Sweeps)  # the Sweeps tab
    field_errors: dict[str, str] = field(default_factory=dict)
    cancel_keys: frozenset[str] = frozenset()
    timing: Timing = field(default_factory=Timing)


#: The panels' reducer modules, in the order a message visits them (so a Tick checks health, then the run's
#: timers, then the log refresh; a terminal event refreshes the Jobs list before the run opens its results).
PANELS: tuple[ModuleType, ...] = (connection, catalog, results, importing, run, logs, use, sweeps)


def _routes(panels: tuple[ModuleType, ...]) -> dict[type, tuple[Reducer, ...]]:
    routes: dict[type, tuple[Reducer, ...]] = {}
    for panel in panels:
        for kind, reducer in panel.REDUCERS.items():
            routes[kind] = routes.get(kind, ()) + (reducer,)
    return routes


#: Each message type → the reducers that take it, in ``PANELS`` order.
ROUTES = _routes(PANELS)


def initial(timing: Timing | None = None) -> tuple[State, Effects]:
    """The state at launch and the first requests (jobs, datasets, sweeps; the first Tick asks for health)."""
    return State(timing=timing or Timing()), (m.ListJobs(), m.ListDatasets(), m.ListSweeps())


def update(state: State, msg: m.Message) -> tuple[State, Effects]:
    """Apply one message; returns the new state (the same object when nothing changed) and effects to run.

    Raises ``TypeError`` for an object that is not a known message (a shell bug, never a user error).
    """
    reducers = ROUTES.get(type(msg))
    if reducers is None:
        raise TypeError(f"controller has no transition for {type(msg).__name__}")
    effects: list[m.Effect] = []
    for reduce in reducers:
        state, more = reduce(state, msg)
        effects.extend(more)
    # Several panels may ask for the same request in one step (a completion refreshes the Jobs list as a terminal
    # event and as a completion): it is performed once, in the order first asked.
    return state, tuple(effect for i, effect in enumerate(effects) if effect not in effects[:i])


def allowed_actions(state: State) -> frozenset[Action]:
    """The actions the user may take now (buttons not listed here are disabled)."""
    current = state.run
    allowed = {Action.VIEW_LOGS}
    if not state.importing.busy:
        allowed.add(Action.IMPORT)
    reachable = start_blocked(state) is None
    if current.phase is Phase.IDLE and reachable:
        allowed.add(Action.START)
    elif current.phase is Phase.PENDING:
        allowed.add(Action.CANCEL_START)
    elif current.phase is Phase.RUNNING:
        allowed.add(Action.STOP)
    elif current.phase is Phase.FAILED and current.failure is not None:
        allowed.add(Action.DISMISS)
        if current.failure.retryable and reachable:
            allowed.add(Action.RETRY)
        if current.failure.kind == "unacknowledged":
            allowed.add(Action.CANCEL_START)
    return frozenset(allowed)
