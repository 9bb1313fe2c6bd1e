"""``scripts/debug_connection.sh`` against a real server on port 0, a closed port, and a port some other program holds."""

from __future__ import annotations

import functools
import http.server
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "debug_connection.sh"

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="debug_connection.sh needs curl (apt-get install curl)")


def debug(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_a_healthy_server_passes_every_step(live_server):
    server = live_server()
    port = server.url.rsplit(":", 1)[1]
    done = debug("--port", port)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert out.count("  ok: ") == 3, out  # listening, health, websocket
    assert "101 Switching Protocols, then hello" in out
    assert "serving on" in out  # a backend.log line, from GET /status/log_tail
    assert "(no job is running, starting or queued)" in out
    assert "All checks passed" in out and "FAILED" not in out


def test_a_queued_job_is_listed_without_a_pid(live_server):
    server = live_server(max_concurrent_jobs=0)  # held in the queue: no worker, no pid
    job_id = server.post("/start_training", {"epochs": 1}).json()["job_id"]
    done = debug("--port", server.url.rsplit(":", 1)[1])
    line = next(line for line in done.stdout.splitlines() if job_id in line)
    assert "queued" in line and "no worker yet" in line and "None" not in line, done.stdout


def test_a_closed_port_fails_at_step_1_and_says_what_to_try():
    with socket.socket() as sock:  # a port that was free a moment ago and that nobody listens on now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = debug("--port", str(port))
    assert done.returncode == 1
    assert f"FAILED: nothing answers on 127.0.0.1:{port}" in done.stdout
    assert "- step 1 (listening):" in done.stdout and "candlecast serve" in done.stdout
    assert "2. GET /" not in done.stdout  # nothing after a dead port


def test_another_program_on_the_port_fails_at_step_2(tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        done = debug("--port", str(server.server_address[1]))
    finally:
        server.shutdown()
        server.server_close()
    port = server.server_address[1]
    out = done.stdout
    assert done.returncode == 1, out
    step2 = out.split("2. GET / is healthy\n", 1)[1].splitlines()[0]
    # One line: what answers, with at most its status and content type, never its page.
    assert step2 == f"  FAILED: something answers on 127.0.0.1:{port}, but it is not Candlecast (HTTP 200, text/html; charset=utf-8)"
    assert "<" not in out and "html>" not in out.lower()
    assert "3-5. skipped" in out and "3. /ws" not in out and "5. running" not in out  # nothing asks it more
    assert out.count("FAILED") == 1 and "(no job is running" not in out
    assert "Verdict: another program, not Candlecast, holds" in out
    assert "- step 2 (health): another program uses port" in out and "- step 3" not in out


def test_bad_usage_is_exit_2():
    done = debug("--port", "eighty")
    assert done.returncode == 2 and "--port must be a number" in done.stderr
