"""Server fixtures and helpers, imported by ``conftest.py``.

- ``make_app(**settings)`` / ``app`` / ``client``: the Flask app in-process (test client, no socket). ``app`` holds
  every job in the queue (``max_concurrent_jobs=0``) so API-level tests never start a worker; the tests that run
  real workers use ``live_server``.
- ``live_server(**settings)``: the real ``candlecast serve --port 0`` in a subprocess, with those settings in its
  ``config.json``; reads the port it prints, polls ``GET /``, and ends with terminate → wait → kill.
- ``assert_problem(resp, status)``: the one check of API.md's error shape.
- ``ws_connect``/``receive_until``: a websocket-client connection and a reader that stops on a predicate.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket

from embedded_server.app import close_app, create_app
from embedded_server.logging_setup import configure_logging
from embedded_server.settings import AppSettings
from trainer import paths
from trainer.processes import end_process

REPO_ROOT = Path(__file__).resolve().parent.parent
#: A training job small enough for tests: one fold, one epoch, a short window.
TINY_JOB = {"epochs": 1, "cv_folds": 1, "lookback": 8, "batch_size": 512}
#: A job that runs until it is stopped (long enough for any stop test).
LONG_JOB = {"epochs": 1000, "cv_folds": 2, "lookback": 8, "batch_size": 512}
#: Seconds to wait for anything a real worker does (torch import on a busy 2-core machine included).
WORKER_TIMEOUT = 120


def assert_problem(resp: Any, status: int) -> dict[str, Any]:
    """Assert ``resp`` (Flask test or requests response) is an RFC 9457 problem with ``status``; return its body."""
    assert resp.status_code == status, (resp.status_code, _text(resp))
    assert resp.headers["Content-Type"].startswith("application/problem+json"), resp.headers["Content-Type"]
    body = json.loads(_text(resp))
    assert {"type", "title", "status", "detail"} <= body.keys(), body
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"].strip(), body
    if status == 422:
        assert body["errors"], body
        for error in body["errors"]:
            assert isinstance(error["loc"], list) and error["loc"] and isinstance(error["msg"], str), error
    return body


def _text(resp: Any) -> str:
    return resp.get_data(as_text=True) if hasattr(resp, "get_data") else resp.text


# ---- in-process app ---------------------------------------------------------------------------------------------


@pytest.fixture
def make_app() -> Iterator[Callable[..., Any]]:
    """Factory: ``make_app(config=None, **settings)`` builds an app on this test's CANDLECAST_HOME; closed after."""
    apps = []

    def factory(config: dict[str, Any] | None = None, **settings: Any) -> Any:
        app_settings = AppSettings(**settings)
        configure_logging(paths.log_dir(), app_settings.log_level)  # as ``serve`` does; create_app leaves logging alone
        application = create_app(config, settings=app_settings)
        apps.append(application)
        return application

    yield factory
    for application in apps:
        close_app(application, timeout=30)


@pytest.fixture
def app(make_app: Callable[..., Any]) -> Any:
    """The app with every job held in the queue (no worker process starts)."""
    return make_app(max_concurrent_jobs=0)


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


# ---- real server in a subprocess --------------------------------------------------------------------------------


@dataclass
class LiveServer:
    """A running ``candlecast serve`` subprocess."""

    proc: subprocess.Popen[bytes]
    url: str
    home: Path
    output: Path
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/ws"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.url + path, timeout=30, **kwargs)

    def post(self, path: str, body: dict[str, Any] | None = None, **kwargs: Any) -> requests.Response:
        return self.session.post(self.url + path, json=body, timeout=30, **kwargs)

    def ws(self, query: str = "") -> websocket.WebSocket:
        return ws_connect(self.ws_url + query)

    def job(self, job_id: str) -> dict[str, Any]:
        resp = self.get(f"/jobs/{job_id}")
        assert resp.status_code == 200, resp.text
        return resp.json()

    def wait_status(self, job_id: str, statuses: set[str], timeout: float = WORKER_TIMEOUT) -> dict[str, Any]:
        """Poll ``GET /jobs/{id}`` until its status is one of ``statuses``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job["status"] in statuses:
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} never reached {statuses}: {self.job(job_id)['status']}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Signal the server, wait for it to exit (kill after ``timeout``); returns its exit code."""
        code, killed = end_process(self.proc, timeout, sig)
        if killed:
            raise AssertionError(f"server ignored {signal.Signals(sig).name} for {timeout} s")
        return code


def write_settings(home: Path, **settings: Any) -> Path:
    """Write ``config.json`` under ``home`` with the default settings updated by ``settings``."""
    path = home / "config" / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(AppSettings(**settings).model_dump(mode="json")), encoding="utf-8")
    return path


def start_live_server(home: Path, *args: str, timeout: float = 60, token: str | None = None) -> LiveServer:
    """Start ``candlecast serve --port 0`` with CANDLECAST_HOME=``home``; returns once ``GET /`` answers 200.
    With ``token``, the server's session (and the readiness check) sends it as a bearer token."""
    session = requests.Session()
    if token is not None:
        session.headers["Authorization"] = f"Bearer {token}"
    output = home / f"serve-{time.monotonic_ns()}.out"
    env = dict(os.environ, CANDLECAST_HOME=str(home), PYTHONUNBUFFERED="1")
    env.pop("CANDLECAST_PORT", None)
    with open(output, "wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "desktop_app.cli", "serve", "--port", "0", *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env=env,
        )
    deadline = time.monotonic() + timeout
    url = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server exited with {proc.returncode}: {output.read_text()}"
        if url is None:
            found = re.search(r"(http://127\.0\.0\.1:\d+)", output.read_text(errors="replace"))
            url = found.group(1) if found else None
        if url is not None:
            try:
                if session.get(url + "/", timeout=2).status_code == 200:
                    return LiveServer(proc, url, home, output, session)
            except requests.ConnectionError:
                pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"server did not answer within {timeout} s: {output.read_text()}")


@pytest.fixture
def live_server(candlecast_home: Path) -> Iterator[Callable[..., LiveServer]]:
    """Factory: ``live_server(**settings)`` starts a real server (settings written to its config.json first)."""
    servers: list[LiveServer] = []

    def factory(**settings: Any) -> LiveServer:
        write_settings(candlecast_home, **settings)
        server = start_live_server(candlecast_home)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.session.close()
        end_process(server.proc)


# ---- WebSocket helpers ------------------------------------------------------------------------------------------


def ws_connect(url: str, timeout: float = WORKER_TIMEOUT, **kwargs: Any) -> websocket.WebSocket:
    """A websocket-client connection whose ``recv`` gives up after ``timeout`` seconds."""
    return websocket.create_connection(url, timeout=timeout, **kwargs)


def receive_until(
    ws: websocket.WebSocket, done: Callable[[dict[str, Any]], bool], limit: int = 100_000
) -> list[dict[str, Any]]:
    """Every message (decoded) up to and including the first for which ``done`` is true."""
    messages = []
    for _ in range(limit):
        message = json.loads(ws.recv())
        messages.append(message)
        if done(message):
            return messages
    raise AssertionError(f"no final message in {limit}")


def is_final_status(job_id: str) -> Callable[[dict[str, Any]], bool]:
    """Predicate: the ``job.status`` event that puts ``job_id`` in a terminal status."""
    terminal = {"completed", "failed", "stopped", "cancelled", "interrupted"}
    return lambda m: m.get("type") == "job.status" and m.get("job_id") == job_id and m.get("status") in terminal


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        try:
            return "zombie" not in status.read_text()
        except OSError:
            return False
    return True


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> bool:
    """Poll ``condition`` every 50 ms until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def wait_gone(pid: int, timeout: float = 30) -> bool:
    """Wait until process ``pid`` has exited; True if it did within ``timeout``."""
    return wait_for(lambda: not pid_alive(pid), timeout)
