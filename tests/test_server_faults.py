"""Issue 9's fault-injection findings against the real ``candlecast serve`` subprocess: a full disk (a real, small
tmpfs mounted as the data folder; skipped where mounting is not permitted), and requests the server must refuse
cleanly. Real worker subprocesses, websocket-client, raw sockets.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket
from server_fixtures import (
    LONG_JOB,
    REPO_ROOT,
    TINY_JOB,
    assert_problem,
    is_final_status,
    receive_until,
    start_live_server,
    wait_for,
    ws_connect,
)

from embedded_server.serve import ServerError, start_server
from embedded_server.settings import AppSettings

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="tmpfs, POSIX signals")


# ---- a small real disk -------------------------------------------------------------------------------------------


class SmallDisk:
    """A tmpfs of a few MiB mounted at ``path``; ``fill()`` takes every free byte, ``free()`` gives them back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler.bin"

    def fill(self) -> None:
        with open(self.filler, "ab", buffering=0) as handle:
            for chunk in (1 << 16, 4096, 512, 1):
                try:
                    while True:
                        handle.write(b"\0" * chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
        assert os.statvfs(self.path).f_bavail == 0

    def free(self) -> None:
        self.filler.unlink()


@pytest.fixture
def small_data_disk(candlecast_home: Path) -> Iterator[SmallDisk]:
    """``CANDLECAST_HOME/data`` (jobs, the SQLite store) on a 4 MiB tmpfs; config and logs stay on the big disk."""
    folder = candlecast_home / "data"
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield SmallDisk(folder)
    finally:  # the live_server fixture (set up after this one) has stopped the server by now
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=True)


def worker_started(ws: Any, job_id: str) -> dict[str, Any]:
    return receive_until(
        ws, lambda m: m["type"] == "training.started" and m.get("origin") == "worker" and m["job_id"] == job_id
    )[-1]


def test_a_full_disk_never_strands_a_job_and_the_queue_moves_on(small_data_disk, live_server) -> None:
    server = live_server(max_concurrent_jobs=1)
    ws = server.ws()
    ws.recv()
    running = server.post("/start_training", LONG_JOB).json()["job_id"]
    queued = server.post("/start_training", TINY_JOB).json()["job_id"]
    pid = worker_started(ws, running)["pid"]

    small_data_disk.fill()
    # A training.epoch event arrives that the store cannot take, then the worker dies and that cannot be written.
    assert wait_for(lambda: "database or disk is full" in server.output.read_text(), 60)
    os.kill(pid, signal.SIGKILL)
    backend_log = server.home / "logs" / "backend.log"
    assert wait_for(lambda: "job failed (worker): the worker was killed" in backend_log.read_text(), 60)
    assert server.job(running)["status"] == "running" and server.job(queued)["status"] == "queued"
    small_data_disk.free()

    # Bounded wait first (the WebSocket's pings would keep a plain read waiting forever), then what clients saw.
    assert server.wait_status(running, {"failed", "completed", "stopped"}, timeout=60)["status"] == "failed"
    messages = receive_until(ws, is_final_status(running))
    failed = next(m for m in messages if m["type"] == "training.failed" and m["job_id"] == running)
    assert failed["error"].startswith("disk full (") and "SIGKILL" in failed["error"]
    assert failed["exit_code"] == -signal.SIGKILL and messages[-1]["status"] == "failed"
    seqs = [m["seq"] for m in messages if m["type"] not in ("ping", "pong")]
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), "an event was lost, sent twice or out of order"
    assert "cannot store events: disk full" in server.output.read_text()  # some waited in memory, then came
    job = server.job(running)
    assert job["status"] == "failed" and job["error"]["error"] == failed["error"]
    assert job["last_seq"] == messages[-1]["seq"]  # what clients saw is what the store holds

    # The queue moved on, and the server is well: stop the next job as usual.
    assert server.wait_status(queued, {"starting", "running", "completed"})["status"] != "queued"
    server.post(f"/jobs/{queued}/stop")
    assert server.wait_status(queued, {"stopped", "completed", "failed"})["status"] in ("stopped", "completed")
    assert "Traceback" not in server.output.read_text()


def test_submit_on_a_full_disk_is_a_507_that_leaves_nothing_behind(small_data_disk, live_server) -> None:
    server = live_server(max_concurrent_jobs=0)  # jobs stay queued: no worker needed
    jobs = small_data_disk.path / "jobs"
    before = sorted(jobs.iterdir())
    small_data_disk.fill()
    body = assert_problem(server.post("/start_training", TINY_JOB), 507)
    assert str(small_data_disk.path) in body["detail"] and "free of" in body["detail"], body
    assert "disk full" in body["detail"]
    assert sorted(jobs.iterdir()) == before
    assert server.get("/jobs").json()["count"] == 0
    small_data_disk.free()
    assert server.post("/start_training", TINY_JOB).status_code == 202
    assert len(list(jobs.iterdir())) == len(before) + 1


# ---- requests the server must refuse cleanly ---------------------------------------------------------------------


def test_deep_nesting_and_huge_integers_are_400_not_500(live_server) -> None:
    server = live_server(max_concurrent_jobs=0)
    headers = {"Content-Type": "application/json"}
    deep = server.session.post(server.url + "/start_training", data="[" * 100_000, headers=headers, timeout=30)
    assert "nested too deeply" in assert_problem(deep, 400)["detail"]
    deep_object = '{"epochs": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert_problem(server.session.post(server.url + "/datasets/import", data=deep_object, headers=headers), 400)
    huge = server.session.post(server.url + "/start_training", data='{"epochs": ' + "9" * 5000 + "}", headers=headers)
    assert "too large" in assert_problem(huge, 400)["detail"]
    # The WebSocket hub survives the same messages and still answers a ping.
    ws = server.ws()
    ws.recv()
    ws.send("[" * 100_000)
    ws.send('{"type": "ping", "n": ' + "9" * 5000 + "}")
    ws.send('{"type": "ping"}')
    assert receive_until(ws, lambda m: m["type"] == "pong")[-1]["type"] == "pong"
    ws.close()
    assert "Traceback" not in server.output.read_text()


# ---- start-up ----------------------------------------------------------------------------------------------------


@pytest.fixture
def read_only_home(tmp_path: Path) -> Iterator[Path]:
    """An empty folder nobody may write: a read-only tmpfs as root (root ignores permission bits), else mode 555."""
    folder = tmp_path / "read-only-home"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def test_a_read_only_home_is_one_line_and_exit_2(read_only_home: Path) -> None:
    env = dict(os.environ, CANDLECAST_HOME=str(read_only_home))
    env.pop("CANDLECAST_PORT", None)
    done = subprocess.run(
        [sys.executable, "-m", "desktop_app.cli", "serve", "--port", "0"],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("candlecast: error: cannot create the config folder"), lines
    assert str(read_only_home / "config") in lines[0] and "CANDLECAST_HOME" in lines[0]


# ---- the token: one rule, three sources --------------------------------------------------------------------------


def serve_once(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``candlecast serve --port 0 ARGS`` that is expected to refuse to start."""
    environ = dict(os.environ, CANDLECAST_HOME=str(home), **env)
    environ.pop("CANDLECAST_PORT", None)
    return subprocess.run(
        [sys.executable, "-m", "desktop_app.cli", "serve", "--port", "0", *args],
        capture_output=True, text=True, env=environ, cwd=REPO_ROOT, timeout=120,
    )


def assert_refused(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("candlecast: error: "), lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_an_invalid_token_refuses_to_start_whatever_its_source(candlecast_home: Path, tmp_path: Path) -> None:
    assert_refused(serve_once(candlecast_home, "--token", "abc"), "--token: the token must be 8 to 256")
    assert_refused(serve_once(candlecast_home, "--token", "with space!"), "may hold only letters")
    token_file = tmp_path / "token.txt"
    token_file.write_text("short\n", encoding="utf-8")
    assert_refused(serve_once(candlecast_home, "--token-file", str(token_file)), f"--token-file {token_file}")
    assert_refused(serve_once(candlecast_home, CANDLECAST_TOKEN="1"), "CANDLECAST_TOKEN: the token must be 8")


def test_a_bad_token_in_config_json_keeps_every_other_setting(candlecast_home: Path) -> None:
    config = candlecast_home / "config" / "config.json"
    config.parent.mkdir(parents=True)
    original = json.dumps({"schema_version": 2, "token": "short", "max_concurrent_jobs": 3, "log_level": "DEBUG"})
    config.write_text(original, encoding="utf-8")
    assert_refused(serve_once(candlecast_home), str(config), 'field "token"', "8 to 256")
    assert config.read_text(encoding="utf-8") == original  # nothing reset, nothing moved aside
    assert sorted(p.name for p in config.parent.iterdir()) == ["config.json"]


@pytest.mark.parametrize("source", ["token-file", "env"])
def test_the_token_can_stay_out_of_ps(candlecast_home: Path, tmp_path: Path, monkeypatch, source: str) -> None:
    token = "s3cret.Token_of-our~own"
    args: tuple[str, ...] = ()
    if source == "env":
        monkeypatch.setenv("CANDLECAST_TOKEN", token)
    else:
        path = tmp_path / "token"
        path.write_text(token + "\n", encoding="utf-8")
        args = ("--token-file", str(path))
    server = start_live_server(candlecast_home, *args, token=token)
    try:
        assert token not in " ".join(server.proc.args)
        assert_problem(requests.get(server.url + "/", timeout=30), 401)
        ws = ws_connect(server.ws_url + f"?token={token}", timeout=30)
        assert json.loads(ws.recv())["type"] == "hello"
        ws.close()
    finally:
        server.stop()


def test_the_settings_model_and_start_server_follow_the_same_rule() -> None:
    with pytest.raises(ValueError, match="token must be 8 to 256"):
        AppSettings(token="seven77")
    assert AppSettings(token="eight888").token == "eight888"
    with pytest.raises(ServerError, match="the token may hold only"):
        start_server(port=0, token="not/url/safe", settings=AppSettings())


# ---- /openapi.json and the server agree ----------------------------------------------------------------------------


#: Bodies the server refuses with a 422 that the served schema once accepted (issue 9, item 8).
REFUSED_BODIES = [
    ("/start_training", {"dataset": ""}, "TrainingStartRequest"),
    ("/start_training", {"dataset": "btcusdt-1h"}, "TrainingStartRequest"),
    ("/start_training", {"dataset": "../../etc"}, "TrainingStartRequest"),
    ("/datasets/import", {"path": "0"}, "ImportRequest"),
    ("/datasets/import", {"path": "candles.csv"}, "ImportRequest"),
]


def test_the_served_schema_refuses_what_the_server_refuses(live_server) -> None:
    import jsonschema_rs

    server = live_server(max_concurrent_jobs=0)
    document = server.get("/openapi.json").json()
    for path, body, schema in REFUSED_BODIES:
        validator = jsonschema_rs.validator_for({"$ref": f"#/components/schemas/{schema}", **document})
        assert not validator.is_valid(body), f"/openapi.json accepts {body}"
        detail = assert_problem(server.post(path, body), 422)["detail"]
        assert "not a dataset id" in detail or "not an absolute path" in detail, detail
        # Not too strict: a well-formed value passes both (the server may still find no such file: a 422 saying so).
        good = {"dataset": "bundled:BTCUSDT-1h"} if "dataset" in body else {"path": "/no/such/candles.csv"}
        assert validator.is_valid(good)
        answer = server.post(path, good)
        assert answer.status_code == 202 or "no such file" in answer.json()["detail"], answer.text


# ---- errors before Flask, timeouts, the connection cap (raw sockets) ------------------------------------------------


def raw_exchange(server: Any, data: bytes, timeout: float = 30) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def parse_problem(raw: bytes, status: int) -> dict[str, Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].split(" ")[1] == str(status), lines[0]
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    assert headers["content-type"] == "application/problem+json", headers
    problem = json.loads(body)
    assert problem["status"] == status and problem["detail"], problem
    return problem


def test_oversized_request_lines_and_headers_are_problem_json(live_server) -> None:
    server = live_server(max_concurrent_jobs=0)
    host = server.url.removeprefix("http://").encode()
    long_url = raw_exchange(server, b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert "URL is too long" in parse_problem(long_url, 414)["detail"]
    big_header = b"GET / HTTP/1.1\r\nHost: " + host + b"\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"
    assert "header line is too long" in parse_problem(raw_exchange(server, big_header), 431)["detail"]
    many = b"".join(b"X-%d: 1\r\n" % i for i in range(150))
    many_headers = b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n" + many + b"\r\n"
    assert "too many header lines" in parse_problem(raw_exchange(server, many_headers), 431)["detail"]
    for path in ("/openapi.json",):
        document = server.get(path).json()
        assert {"414", "431"} <= document["paths"]["/"]["get"]["responses"].keys()


def test_a_half_sent_request_is_dropped_and_an_idle_websocket_is_not(live_server) -> None:
    server = live_server(max_concurrent_jobs=0, request_timeout_s=1)
    ws = server.ws()
    ws.recv()  # hello
    host = server.url.removeprefix("http://").encode()
    # Half a request: no blank line ends the headers. The server closes it after its 1 s timeout; before the fix it
    # waited forever (this read would give up after 30 s and fail).
    assert raw_exchange(server, b"POST /start_training HTTP/1.1\r\nHost: " + host + b"\r\n") == b""
    body_missing = b"POST /start_training HTTP/1.1\r\nHost: " + host + b"\r\nContent-Type: application/json\r\n"
    answer = raw_exchange(server, body_missing + b"Content-Length: 100\r\n\r\n{")  # the body stops early
    assert "did not arrive" in parse_problem(answer, 408)["detail"]
    # The WebSocket client has been idle for longer than the timeout by now, and still gets events.
    job_id = server.post("/start_training", TINY_JOB).json()["job_id"]
    queued = receive_until(ws, lambda m: m.get("type") == "job.status" and m.get("job_id") == job_id)
    assert queued[-1]["status"] == "queued"
    ws.close()


def test_connections_past_the_cap_get_a_503_problem(live_server) -> None:
    cap = 6
    server = live_server(max_concurrent_jobs=0, max_connections=cap)
    server.session.close()
    clients = []
    try:
        while len(clients) <= cap:  # WebSocket clients hold their connection (and its slot) open
            try:
                clients.append(ws_connect(server.ws_url, timeout=30))
            except websocket.WebSocketBadStatusException as refused:
                assert refused.status_code == 503
                break
        assert cap - 1 <= len(clients) <= cap  # a keep-alive connection of the readiness check may hold one
        problem = parse_problem(raw_exchange(server, b""), 503)
        assert f"limit of {cap} connections" in problem["detail"]
        clients.pop().close()
        assert wait_for(lambda: _health(server) == 200)  # a freed slot serves again
    finally:
        for client in clients:
            client.close()


def _health(server: Any) -> int:
    try:
        return requests.get(server.url + "/", timeout=10).status_code
    except requests.ConnectionError:
        return 0


# ---- leftovers of crashes --------------------------------------------------------------------------------------------


def test_leftovers_of_crashes_are_removed_at_the_next_start(live_server, candlecast_home: Path) -> None:
    first = live_server(max_concurrent_jobs=0)
    kept_job = first.post("/start_training", TINY_JOB).json()["job_id"]
    assert first.stop() == 0
    config, jobs = candlecast_home / "config", candlecast_home / "data" / "jobs"
    old = time.time() - 3600

    def make(path: Path, *, folder: bool = False, age: float = old) -> Path:
        if folder:
            path.mkdir()
        else:
            path.write_text("{}", encoding="utf-8")
        os.utime(path, (age, age))
        return path

    gone = [
        make(config / ".config.json.k2j4h1x_.tmp"),
        make(config / ".layout.json.a1b2c3d4.tmp"),
        make(jobs / kept_job / ".metrics.json.zz99yy88.tmp"),
    ]
    orphan = jobs / "20240101-120000-abcdef"  # killed between its folder and its row
    orphan.mkdir()
    make(orphan / "config.json")
    make(orphan / ".config.json.qwertyui.tmp")
    os.utime(orphan, (old, old))
    empty_orphan = make(jobs / "20240101-120001-abcdef", folder=True)
    kept = [
        make(config / ".config.json.fresh123.tmp", age=time.time()),  # may be a write in progress
        make(config / "notes.tmp"),  # not a name of ours
        make(jobs / "cli-20240101-120000-abcdef", folder=True),  # candlecast train's own folder
        make(jobs / "20240101-120002-abcdef", folder=True),  # a job id without a row, but holding more than ours
    ]
    make(kept[-1] / "metrics.json")

    second = live_server(max_concurrent_jobs=0)
    for path in [*gone, orphan, empty_orphan]:
        assert not path.exists(), path
    for path in kept:
        assert path.exists(), path
    assert second.job(kept_job)["status"] == "cancelled" and (jobs / kept_job / "config.json").is_file()
    output = second.output.read_text()
    assert output.count("removed a leftover of an earlier crash") == 5 and str(orphan) in output
