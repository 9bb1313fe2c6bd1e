"""The View Logs dialog: the backend log or a job's worker log, re-read every ``log_refresh_s`` while open."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from desktop_app import messages as m
from desktop_app.panels import Effects, Reducer

if TYPE_CHECKING:
    from desktop_app.controller import State


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


def _load(logs: Logs) -> m.LoadLogTail:
    """Read the dialog's log; for a job's worker log, also its file path until that is known."""
    return m.LoadLogTail(logs.job_id, with_path=logs.job_id is not None and logs.path is None)


def _on_opened(state: State, msg: m.LogsOpened) -> tuple[State, Effects]:
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
    return replace(state, logs=logs), (_load(logs),)


def _on_closed(state: State, msg: m.LogsClosed) -> tuple[State, Effects]:
    if not state.logs.open:
        return state, ()
    return replace(state, logs=replace(state.logs, open=False)), ()


def _on_tick(state: State, msg: m.Tick) -> tuple[State, Effects]:
    logs = state.logs
    if not logs.open or logs.in_flight or msg.now < logs.next_refresh:
        return state, ()
    logs = replace(logs, in_flight=True, next_refresh=msg.now + state.timing.log_refresh_s)
    return replace(state, logs=logs), (_load(logs),)


def _on_tail(state: State, msg: m.LogTailLoaded) -> tuple[State, Effects]:
    logs = state.logs
    if msg.job_id != logs.job_id:
        return state, ()
    logs = replace(logs, in_flight=False)
    if msg.problem is not None:
        logs = replace(logs, problem=msg.problem)
    else:
        logs = replace(logs, lines=msg.lines, path=msg.path or logs.path, problem=None)
    return replace(state, logs=logs), ()


REDUCERS: dict[type, Reducer] = {
    m.LogsOpened: _on_opened,
    m.LogsClosed: _on_closed,
    m.Tick: _on_tick,
    m.LogTailLoaded: _on_tail,
}
