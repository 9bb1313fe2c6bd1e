"""``/ws``: the live event stream (API.md, "WebSocket").

On connect: ``hello`` (with the current ``seq``), then, for ``?since=SEQ``, every retained event after SEQ in
order, then live events. A ``ping`` every ``WS_PING_INTERVAL_S`` (15 s); a client's ``{"type": "ping"}`` gets a
``pong``; both carry ``last_seq`` (the newest event's ``seq``; named apart so that no two messages share a ``seq``); other client messages are logged and dropped. Everything is sent from this connection's own thread
(simple-websocket's ``send`` is not thread-safe); the event bus only fills the bounded queue, so a slow client
is dropped (its socket shut down) instead of blocking anyone.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from typing import Any

from flask import current_app, g, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed, Server

from embedded_server.job_store import iter_pages
from embedded_server.operations import INVALID, declare, query_model
from embedded_server.schemas import JobSummary, WsQuery
from embedded_server.services import services
from trainer import __version__

log = logging.getLogger(__name__)

sock = Sock()

#: How long the connection thread waits on its queue before checking for client messages and the ping clock.
POLL_S = 0.25
#: Jobs listed in ``hello`` (newest first).
HELLO_JOBS = 50


def hello_message(seq: int, jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """The first message on every connection: who we are, the current ``seq`` and the recent jobs."""
    return {"type": "hello", "app": "candlecast", "version": __version__, "seq": seq, "jobs": jobs}


def ping_message(kind: str, last_seq: int) -> dict[str, Any]:
    """A keep-alive ``ping`` (every interval) or the ``pong`` answering a client's ping, with ``last_seq``, the
    ``seq`` of the newest event (not a ``seq`` of its own: that belongs to events only)."""
    return {"type": kind, "last_seq": last_seq, "timestamp": time.time()}


def _send(ws: Server, message: dict[str, Any]) -> None:
    ws.send(json.dumps(message, allow_nan=False))


def _hard_close(ws: Server) -> None:
    """Shut the socket down without blocking, so a send stuck on a client that stopped reading returns."""
    try:
        ws.sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _answer(ws: Server, raw: str | bytes, peer: str) -> None:
    try:
        message = json.loads(raw)
    except (ValueError, TypeError, RecursionError):  # not JSON, a huge integer, or nested too deeply
        message = None
    if isinstance(message, dict) and message.get("type") == "ping":
        _send(ws, ping_message("pong", services().bus.last_seq))
    else:
        log.info("ignoring a WebSocket message from %s: %.100r", peer, raw)


#: ``/ws`` in ``/openapi.json`` (flask-sock serves the route itself).
WS_OPERATION = declare(
    "GET",
    "/ws",
    "WebSocket event stream (hello, replay with since, live events, ping)",
    status=101,
    ok="Switching to the WebSocket protocol.",
    media="",
    errors={426: "Not a WebSocket handshake.", **INVALID},
    query=WsQuery,
)


@sock.route("/ws")
def events(ws: Server) -> None:
    svc = services()
    peer = f"{request.remote_addr}:{request.environ.get('REMOTE_PORT', '?')}"
    since: int | None = g.ws_query.since
    interval = float(current_app.config["WS_PING_INTERVAL_S"])
    sub = svc.bus.subscribe(peer)
    sub.on_drop = lambda: _hard_close(ws)
    try:
        jobs = [JobSummary.from_record(j).model_dump(mode="json") for j in svc.store.list_jobs(limit=HELLO_JOBS)]
        _send(ws, hello_message(sub.registered_seq, jobs))
        if since is not None:
            for event in iter_pages(svc.store, since, sub.registered_seq):
                _send(ws, event)
        next_ping = time.monotonic() + interval
        while ws.connected and sub.dropped is None:
            text = sub.get(timeout=max(0.0, min(POLL_S, next_ping - time.monotonic())))
            if text is not None:
                ws.send(text)
            incoming = ws.receive(timeout=0)
            if incoming is not None:
                _answer(ws, incoming, peer)
            if time.monotonic() >= next_ping:
                _send(ws, ping_message("ping", svc.bus.last_seq))
                next_ping += interval
        if sub.dropped is not None and ws.connected:
            ws.close(reason=1001, message=sub.dropped[:120])
    except (ConnectionClosed, OSError):
        pass  # the client went away (or was dropped): nothing to tell it
    finally:
        svc.bus.unsubscribe(sub)


@sock.bp.before_request
def _check_handshake() -> None:
    """Refuse a bad ``since`` (422) before the upgrade (a plain HTTP request never gets here: see ``problems``)."""
    g.ws_query = query_model(WS_OPERATION.query)
