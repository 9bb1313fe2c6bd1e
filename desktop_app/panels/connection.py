"""The status bar's connection health: the REST dot (``GET /`` every ``health_interval_s``) and the WebSocket."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from desktop_app import messages as m
from desktop_app.panels import Effects, Reducer

if TYPE_CHECKING:
    from desktop_app.controller import State


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


def start_blocked(state: State) -> str | None:
    """Why Start (and Retry) are disabled although no run is going on, or None: the server did not answer its
    last health check. A click then is ignored, never queued to be sent when the server is back."""
    if state.conn.rest_ok is False:
        detail = f" ({state.conn.rest_detail})" if state.conn.rest_detail else ""
        return f"The server does not answer{detail}. Start is enabled again as soon as it does."
    return None


def _on_tick(state: State, msg: m.Tick) -> tuple[State, Effects]:
    conn = state.conn
    if conn.health_in_flight or msg.now < conn.next_health:
        return state, ()
    conn = replace(conn, health_in_flight=True, next_health=msg.now + state.timing.health_interval_s)
    return replace(state, conn=conn), (m.CheckHealth(),)


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


REDUCERS: dict[type, Reducer] = {m.Tick: _on_tick, m.WsChanged: _on_ws, m.HealthAnswered: _on_health}
