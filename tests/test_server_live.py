"""End to end: the real ``candlecast serve`` subprocess on an ephemeral port, real worker subprocesses training on
the bundled BTCUSDT 1 h candles with tiny configs, websocket-client as the WebSocket client.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import (
    LONG_JOB,
    TINY_JOB,
    WORKER_TIMEOUT,
    LiveServer,
    assert_problem,
    is_final_status,
    receive_until,
    start_live_server,
    wait_for,
    wait_gone,
    ws_connect,
)

from embedded_server.job_store import JobStore

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")]

CHURN_CLIENTS = 50


def job_events(messages: list[dict[str, Any]], job_id: str) -> list[dict[str, Any]]:
    return [m for m in messages if m.get("job_id") == job_id]


def wait_worker_started(ws: Any, job_id: str) -> dict[str, Any]:
    """Read until the worker's own ``training.started`` for ``job_id``; returns it."""
    return receive_until(
        ws, lambda m: m["type"] == "training.started" and m.get("origin") == "worker" and m["job_id"] == job_id
    )[-1]


def torch_mapped(pid: int) -> bool:
    """Whether process ``pid`` has any torch library mapped (Linux ``/proc``)."""
    return "torch" in Path(f"/proc/{pid}/maps").read_text()


def churn(server: LiveServer, errors: list[str]) -> None:
    """Connect, replay from seq 0, check the replay has no hole, disconnect; ``CHURN_CLIENTS`` times."""
    for _ in range(CHURN_CLIENTS):
        try:
            ws = ws_connect(server.ws_url + "?since=0", timeout=30)
            hello = json.loads(ws.recv())
            replayed = [json.loads(ws.recv())["seq"] for _ in range(hello["seq"])] if hello["seq"] else []
            if replayed != list(range(1, hello["seq"] + 1)):
                errors.append(f"replay up to {hello['seq']} was {replayed}")
            ws.close()
        except Exception as exc:  # reported by the test thread
            errors.append(repr(exc))


def test_happy_path_with_clients_churning(live_server) -> None:
    server = live_server()
    steady = server.ws()
    hello = json.loads(steady.recv())
    assert hello["type"] == "hello" and hello["seq"] == 0

    resp = server.post("/start_training", {**TINY_JOB, "epochs": 2, "cv_folds": 2})
    assert resp.status_code == 202, resp.text
    accepted = resp.json()
    job_id, expected_pid = accepted["job_id"], accepted["expected_pid"]
    assert accepted["status"] == "accepted" and isinstance(expected_pid, int) and accepted["queue_position"] is None

    errors: list[str] = []
    churner = threading.Thread(target=churn, args=(server, errors))
    churner.start()
    messages = receive_until(steady, is_final_status(job_id))
    churner.join(WORKER_TIMEOUT)
    assert not churner.is_alive() and errors == []

    seqs = [m["seq"] for m in messages if m["type"] not in ("ping", "pong")]
    assert seqs == list(range(1, len(seqs) + 1)), "the steady client missed or reordered events"
    events = job_events(messages, job_id)
    kinds = [e["type"] for e in events]
    server_started = next(e for e in events if e["type"] == "training.started")
    assert server_started["origin"] == "server" and server_started["expected_pid"] == expected_pid
    worker_started = next(e for e in events if e["type"] == "training.started" and e.get("origin") == "worker")
    assert worker_started["pid"] == expected_pid and worker_started["rows"] > 1000
    assert kinds.index("training.started") < kinds.index("training.epoch") < kinds.index("training.completed")
    epochs = [e for e in events if e["type"] == "training.epoch"]
    assert {e["fold"] for e in epochs} == {1, 2}  # early stopping may skip an epoch, never a fold
    assert all(0 <= e["fraction"] <= 1 and e["epochs"] == 2 and e["folds"] == 2 for e in epochs)
    statuses = [e["status"] for e in events if e["type"] == "job.status"]
    assert statuses == ["queued", "starting", "running", "completed"]
    completed = next(e for e in events if e["type"] == "training.completed")

    job = server.job(job_id)
    assert job["status"] == "completed" and job["pid"] == expected_pid
    assert job["metrics"] == completed["metrics"] and job["metrics"]["pooled"]["model"]["crps"] > 0
    assert job["last_seq"] == events[-1]["seq"] and job["progress"]["fraction"] == 1.0
    for name in ("model", "metrics", "predictions", "report"):
        assert Path(job["artifacts"][name]).is_file(), name
    polled = server.get(f"/jobs/{job_id}/events").json()
    assert polled["events"] == events and polled["last_seq"] == events[-1]["seq"]
    predictions = server.get(f"/jobs/{job_id}/predictions").json()
    assert predictions["count"] > 100 and set(predictions["predictions"][0]) == set(predictions["columns"])
    assert server.get(f"/jobs/{job_id}/predictions?format=csv").text.startswith(
        "timestamp,fold,y,mu,sigma,p_up,p_up_raw"
    )
    worker_log = server.get(f"/jobs/{job_id}/log?n=2").json()
    assert worker_log["count"] == len(worker_log["lines"]) == 2 and worker_log["requested"] == 2
    assert f"worker pid {expected_pid}" in " ".join(server.get(f"/jobs/{job_id}/log").json()["lines"])
    assert any(job_id in line for line in server.get("/status/log_tail?n=10000").json()["lines"])

    since = events[2]["seq"]
    expected = [m for m in messages if m["type"] not in ("ping", "pong") and m["seq"] > since]
    replay = ws_connect(server.ws_url + f"?since={since}", timeout=30)
    assert json.loads(replay.recv())["type"] == "hello"
    assert [json.loads(replay.recv()) for _ in expected] == expected
    replay.close()
    steady.close()
    assert wait_gone(expected_pid)
    if sys.platform.startswith("linux"):
        assert not torch_mapped(server.proc.pid), "torch was imported into the server process"


def test_stop_while_running_and_cancel_while_queued(live_server) -> None:
    server = live_server()
    ws = server.ws()
    ws.recv()
    running = server.post("/start_training", LONG_JOB).json()
    queued = server.post("/start_training", TINY_JOB).json()
    assert queued["expected_pid"] is None and queued["queue_position"] == 1
    wait_worker_started(ws, running["job_id"])

    cancel = server.post(f"/jobs/{queued['job_id']}/stop")
    assert cancel.status_code == 202 and cancel.json() == {"status": "cancelled", "job_id": queued["job_id"]}
    stop = server.post("/stop_training")
    assert stop.status_code == 202 and stop.json() == {"status": "stopping", "job_id": running["job_id"]}
    again = server.post(f"/jobs/{running['job_id']}/stop")  # asking twice is fine while it stops...
    if again.status_code != 202:  # ...and refused once it has stopped (the worker may obey within milliseconds)
        assert_problem(again, 409)
        assert server.job(running["job_id"])["status"] == "stopped"
    else:
        assert again.json() == {"status": "stopping", "job_id": running["job_id"]}
    messages = receive_until(ws, is_final_status(running["job_id"]))
    kinds = [(m["type"], m.get("status")) for m in job_events(messages, running["job_id"])]
    assert ("training.stopped", None) in kinds and kinds[-1] == ("job.status", "stopped")
    stopped_event = next(m for m in job_events(messages, running["job_id"]) if m["type"] == "training.stopped")
    stopped = server.job(running["job_id"])
    assert stopped["status"] == "stopped" and stopped["error"] is None
    # The job itself says why it ended, as its terminal event did: in the job, in the list, and after a restart.
    assert stopped["stop_reason"] == stopped_event["reason"] and "stopped on request" in stopped["stop_reason"]
    cancelled = server.job(queued["job_id"])
    assert cancelled["status"] == "cancelled" and cancelled["pid"] is None and cancelled["started_at"] is None
    assert cancelled["stop_reason"] == "stopped on request"
    listed = {j["job_id"]: j for j in server.get("/jobs").json()["jobs"]}
    assert listed[running["job_id"]]["stop_reason"] == stopped["stop_reason"]
    assert listed[queued["job_id"]]["stop_reason"] == "stopped on request"
    assert wait_gone(running["expected_pid"])
    assert_problem(server.post(f"/jobs/{running['job_id']}/stop"), 409)
    assert wait_for(lambda: server.get("/").json()["jobs"] == {"running": 0, "queued": 0})  # the slot is freed


def test_a_killed_worker_becomes_training_failed(live_server) -> None:
    server = live_server()
    ws = server.ws()
    ws.recv()
    job_id = server.post("/start_training", LONG_JOB).json()["job_id"]
    pid = wait_worker_started(ws, job_id)["pid"]
    os.kill(pid, signal.SIGKILL)
    messages = receive_until(ws, is_final_status(job_id))
    failed = next(m for m in messages if m["type"] == "training.failed")
    assert failed["job_id"] == job_id and failed["exit_code"] == -signal.SIGKILL
    assert failed["stage"] == "worker" and failed["error_type"] == "WorkerKilled" and "SIGKILL" in failed["error"]
    assert "killed by signal 9 (SIGKILL) without a final event: often the system ran out of memory (check `dmesg`)" \
        in failed["error"]  # a hint at the usual cause
    assert "trainer" in failed["traceback_tail"]  # the worker's last log lines
    assert messages[-1]["status"] == "failed"
    job = server.job(job_id)
    assert job["status"] == "failed" and job["error"]["exit_code"] == -9


def test_a_job_the_worker_fails_keeps_its_reason_and_exit_code(live_server, candlecast_home: Path) -> None:
    server = live_server()
    ws = server.ws()
    ws.recv()
    # 1 d candles resampled from the bundled 1 h ones: far fewer gap-free bars than the window needs.
    job_id = server.post("/start_training", {**TINY_JOB, "timeframe": "1d", "lookback": 4096}).json()["job_id"]
    messages = receive_until(ws, is_final_status(job_id))
    failed = next(m for m in messages if m["type"] == "training.failed")
    assert failed["stage"] == "data" and "no usable samples" in failed["error"] and failed["exit_code"] == 1
    assert [m["status"] for m in messages if m["type"] == "job.status"] == ["queued", "starting", "failed"]
    assert server.job(job_id)["error"]["error"] == failed["error"]
    # Shut down at once, while the worker (its job already finished) is still exiting: no error, and the
    # shutdown waits for it, so the job's exit code is recorded.
    assert server.stop(signal.SIGTERM) == 0
    assert "Traceback" not in server.output.read_text()
    store = JobStore(candlecast_home / "data" / "candlecast.db")
    try:
        assert store.get_job(job_id).error["exit_code"] == 1
    finally:
        store.close()


def test_a_worker_that_never_starts_is_killed_after_the_start_timeout(live_server) -> None:
    server = live_server(start_timeout_s=0.5)  # far less than importing torch takes
    ws = server.ws()
    ws.recv()
    accepted = server.post("/start_training", TINY_JOB).json()
    messages = receive_until(ws, is_final_status(accepted["job_id"]))
    failed = next(m for m in messages if m["type"] == "training.failed")
    assert failed["stage"] == "start" and failed["error_type"] == "StartTimeout"
    assert "did not report training.started within 0.5 s" in failed["error"]
    assert not any(m.get("origin") == "worker" for m in messages)
    assert wait_gone(accepted["expected_pid"])


def start_running_and_queued(server):
    """A long job whose worker has started and a tiny one queued behind it; returns (ws, running, queued)."""
    ws = server.ws()
    ws.recv()
    running = server.post("/start_training", LONG_JOB).json()
    queued = server.post("/start_training", TINY_JOB).json()
    wait_worker_started(ws, running["job_id"])
    return ws, running, queued


def test_server_restart_marks_unfinished_jobs_interrupted(live_server, candlecast_home: Path) -> None:
    server = live_server()
    ws, running, queued = start_running_and_queued(server)
    last_seq = server.job(running["job_id"])["last_seq"]
    server.proc.kill()  # no shutdown at all: the worker sees stdin EOF and stops by itself
    server.proc.wait(30)
    ws.close()
    assert wait_gone(running["expected_pid"], timeout=60), "the orphaned worker kept running"

    again = start_live_server(candlecast_home)
    try:
        job = again.job(running["job_id"])
        assert job["status"] == "interrupted" and job["last_seq"] > last_seq
        assert again.job(queued["job_id"])["status"] == "cancelled"
        assert again.job(queued["job_id"])["stop_reason"] == "the server restarted before the job started"
        ws = again.ws("?since=0")
        hello = json.loads(ws.recv())
        replay = [json.loads(ws.recv()) for _ in range(hello["seq"])]
        assert [m["seq"] for m in replay] == list(range(1, hello["seq"] + 1))  # seq survived the restart
        assert {"type": "job.status", "status": "interrupted", "previous": "running"}.items() <= next(
            m for m in replay if m.get("status") == "interrupted"
        ).items()
        ws.close()
        assert again.stop(signal.SIGTERM) == 0
    finally:
        again.proc.kill()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_shutdown_signal_stops_workers_gracefully(live_server, candlecast_home: Path, sig: int) -> None:
    server = live_server()
    ws, running, queued = start_running_and_queued(server)
    assert server.stop(sig) == 0
    assert wait_gone(running["expected_pid"], timeout=5), "a worker outlived the server"
    output = server.output.read_text()
    assert "stopping workers and shutting down" in output and "Traceback" not in output
    store = JobStore(candlecast_home / "data" / "candlecast.db")
    try:
        assert store.get_job(running["job_id"]).status.value == "stopped"
        assert store.get_job(queued["job_id"]).status.value == "cancelled"
        kinds = [e["type"] for e in store.events_since(0, job_id=running["job_id"])]
        assert "training.stopped" in kinds
    finally:
        store.close()
