"""``start_server`` (how the GUI embeds the server) and the WebSocket hub on a real port, in-process, without
workers: hello, replay with ``since``, pings, pong, handshake refusals, slow-client drop, and the CLI's start-up
errors. Real workers are in ``test_server_live.py``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import websocket
from server_fixtures import REPO_ROOT, assert_problem, receive_until, ws_connect

from embedded_server.serve import PortInUse, ServerError, ServerHandle, start_server
from embedded_server.services import EXTENSION
from embedded_server.settings import AppSettings
from trainer.events import EventType, make_event


@pytest.fixture
def server() -> Iterator[ServerHandle]:
    """A real server on an ephemeral port in this process, jobs held in the queue."""
    handle = start_server(port=0, settings=AppSettings(max_concurrent_jobs=0))
    yield handle
    handle.shutdown(timeout=30)


def ws_url(handle: ServerHandle, query: str = "") -> str:
    return handle.url.replace("http://", "ws://") + "/ws" + query


def publish(handle: ServerHandle, n: int, job_id: str = "j", pad: int = 0) -> list[int]:
    bus = handle.app.extensions[EXTENSION].bus
    return [
        bus.publish(make_event(EventType.TRAINING_CANCELLED, job_id, reason="x" * pad or str(i)))["seq"]
        for i in range(n)
    ]


def test_start_server_binds_a_free_port_and_shuts_down(server: ServerHandle) -> None:
    assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"
    assert requests.get(server.url + "/", timeout=10).json()["status"] == "ok"
    server.shutdown()
    server.shutdown()  # idempotent
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/", timeout=5)


def test_a_busy_port_is_a_clear_error() -> None:
    with socket.socket() as taken:  # another program on the port (another server would hold the data folder)
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(PortInUse, match=f"port {port} on 127.0.0.1 is already in use.*--port 0"):
            start_server(port=port, settings=AppSettings())


def test_a_non_loopback_address_needs_a_token() -> None:
    with pytest.raises(ServerError, match="refusing to listen on 0.0.0.0 without a token"):
        start_server("0.0.0.0", 0, settings=AppSettings())


def test_cli_start_up_errors_are_one_line_exit_2(server: ServerHandle, tmp_path: Path) -> None:
    def serve(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "desktop_app.cli", "serve", *args]
        env = dict(os.environ, CANDLECAST_HOME=str(home)) if home else None
        return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, timeout=60, env=env)

    in_use = serve("--port", "0")  # ``server`` holds this test's data folder
    assert in_use.returncode == 2 and len(in_use.stderr.splitlines()) == 1
    assert "data folder" in in_use.stderr and server.url in in_use.stderr
    busy = serve("--port", str(server.port), home=tmp_path / "other-home")
    assert busy.returncode == 2 and f"port {server.port} on 127.0.0.1 is already in use" in busy.stderr
    assert "Traceback" not in busy.stderr
    open_host = serve("--host", "0.0.0.0", "--port", "0")
    assert open_host.returncode == 2 and "without a token" in open_host.stderr
    ok = serve("--get", "/")
    assert ok.returncode == 0 and json.loads(ok.stdout)["status"] == "ok"
    assert serve("--get", "/jobs/nope").returncode == 1
    # A reader that stops early (``| head -c 1``): no BrokenPipeError traceback, the answer's exit status.
    piped = subprocess.run(f"{sys.executable} -m desktop_app.cli serve --get /openapi.json | head -c 1 >/dev/null; "
                           "exit ${PIPESTATUS[0]}", shell=True, executable="/bin/bash", capture_output=True,
                           text=True, cwd=REPO_ROOT, timeout=60, env=dict(os.environ, CANDLECAST_HOME=str(tmp_path)))
    assert piped.returncode == 0 and "Traceback" not in piped.stderr, piped.stderr


def _chunked(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """``body`` as a generator: requests then sends it with ``Transfer-Encoding: chunked`` (no Content-Length)."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_the_body_limit_holds_for_chunked_bodies(server: ServerHandle) -> None:
    limit = server.app.config["MAX_CONTENT_LENGTH"]
    url, headers = server.url + "/start_training", {"Content-Type": "application/json"}
    exact = json.dumps({"epochs": 1}).encode().ljust(limit)  # JSON padded with spaces to the limit
    assert requests.post(url, data=_chunked(exact), headers=headers, timeout=30).status_code == 202
    over = requests.post(url, data=_chunked(exact + b" "), headers=headers, timeout=30)
    assert assert_problem(over, 413)["detail"] == "request body is larger than 1 MiB"
    big = json.dumps({"epochs": 1, "pad": "x" * 2 * limit}).encode()
    assert_problem(requests.post(url, data=_chunked(big), headers=headers, timeout=30), 413)
    assert_problem(requests.post(url, data=big, headers=headers, timeout=30), 413)  # with a Content-Length too


def test_hello_then_live_events(server: ServerHandle) -> None:
    publish(server, 2)
    ws = ws_connect(ws_url(server), timeout=10)
    hello = json.loads(ws.recv())
    assert hello["type"] == "hello" and hello["app"] == "candlecast" and hello["seq"] == 2 and hello["jobs"] == []
    publish(server, 3)
    assert [json.loads(ws.recv())["seq"] for _ in range(3)] == [3, 4, 5]
    ws.close()


def test_replay_since_then_live_in_order(server: ServerHandle) -> None:
    publish(server, 10)
    ws = ws_connect(ws_url(server, "?since=4"), timeout=10)
    assert json.loads(ws.recv())["seq"] == 10
    replayed = [json.loads(ws.recv()) for _ in range(6)]
    assert [e["seq"] for e in replayed] == [5, 6, 7, 8, 9, 10]
    assert all(e["type"] == "training.cancelled" and e["job_id"] == "j" for e in replayed)
    publish(server, 1)
    assert json.loads(ws.recv())["seq"] == 11
    ws.close()


def test_ping_every_interval_and_pong_on_request(server: ServerHandle) -> None:
    server.app.config["WS_PING_INTERVAL_S"] = 0.3
    ws = ws_connect(ws_url(server), timeout=10)
    ws.recv()  # hello
    ws.send(json.dumps({"type": "ping"}))
    ws.send("not json")  # logged and dropped
    messages = receive_until(ws, lambda m: m["type"] == "ping")
    assert {"type": "pong"}.items() <= messages[0].items() and "timestamp" in messages[0]
    pings = [m for m in receive_until(ws, lambda m: m["type"] == "ping")]
    assert pings[-1]["last_seq"] == 0 and isinstance(pings[-1]["timestamp"], float)
    assert "seq" not in pings[-1] and "seq" not in messages[0]  # only events carry a seq (issue 9, item 19)
    ws.close()


def test_handshake_refusals(server: ServerHandle) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as bad_since:
        ws_connect(ws_url(server, "?since=-1"), timeout=10)
    assert bad_since.value.status_code == 422
    with pytest.raises(websocket.WebSocketBadStatusException) as foreign:
        ws_connect(ws_url(server), timeout=10, origin="https://evil.example")
    assert foreign.value.status_code == 403
    with pytest.raises(websocket.WebSocketBadStatusException) as rebinding:
        ws_connect(ws_url(server), timeout=10, host="attacker.example")
    assert rebinding.value.status_code == 403
    assert_problem(requests.get(server.url + "/ws", timeout=10), 426)
    ok = ws_connect(ws_url(server), timeout=10, origin=f"http://localhost:{server.port}")
    assert json.loads(ok.recv())["type"] == "hello"
    ok.close()


def test_websocket_token_in_the_query() -> None:
    handle = start_server(port=0, token="tok-tok-tok", settings=AppSettings(max_concurrent_jobs=0))
    try:
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            ws_connect(ws_url(handle), timeout=10)
        assert refused.value.status_code == 401
        ws = ws_connect(ws_url(handle, "?token=tok-tok-tok"), timeout=10)
        assert json.loads(ws.recv())["type"] == "hello"
        ws.close()
        assert requests.get(handle.url + "/", headers={"Authorization": "Bearer tok-tok-tok"}, timeout=10).ok
    finally:
        handle.shutdown(timeout=30)


def test_a_client_that_stops_reading_is_dropped_and_others_get_every_event(server: ServerHandle, caplog) -> None:
    svc = server.app.extensions[EXTENSION]
    svc.bus.client_queue = 20
    stuck = socket.socket()  # a raw WebSocket client that never reads: small buffers so they fill soon
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(("127.0.0.1", server.port))
    stuck.sendall(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    steady = ws_connect(ws_url(server), timeout=30)
    assert json.loads(steady.recv())["type"] == "hello"
    sent, received = [], []
    for _ in range(600):  # 12 MB: far more than the stuck client's socket buffers hold
        sent += publish(server, 1, pad=20_000)
        received.append(json.loads(steady.recv())["seq"])  # the steady client keeps up, one event at a time
    assert received == sent
    assert svc.bus.subscriber_count == 1  # only the steady client is still fed
    assert any("too slow: 20 events waiting" in r.getMessage() for r in caplog.records)
    steady.close()
    stuck.close()
