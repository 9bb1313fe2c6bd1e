"""The warm spare worker (config.json ``warm_worker``): a real ``candlecast serve`` keeps one worker process with
torch loaded; a job takes it, a new one replaces it, a dead one is replaced, stop and shutdown leave nothing.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import pytest
from server_fixtures import LONG_JOB, TINY_JOB, WORKER_TIMEOUT, LiveServer, pid_alive, wait_for, wait_gone

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")]


def spare(server: LiveServer) -> dict[str, Any] | None:
    return server.get("/").json()["spare_worker"]


def wait_spare(server: LiveServer, not_pid: int | None = None) -> dict[str, Any]:
    """The spare of ``server`` once there is one (other than ``not_pid``)."""
    found: list[dict[str, Any]] = []

    def ready() -> bool:
        info = spare(server)
        if info is not None and info["pid"] != not_pid:
            found.append(info)
            return True
        return False

    assert wait_for(ready, WORKER_TIMEOUT), f"no new spare worker: {server.get('/').json()}"
    return found[-1]


def test_a_job_takes_the_spare_and_a_new_one_replaces_it(live_server) -> None:
    server = live_server()
    first = wait_spare(server)
    assert first["rss_mib"] is None or first["rss_mib"] > 0
    assert wait_for(lambda: spare(server)["ready"], WORKER_TIMEOUT)  # its imports done, it says so
    if sys.platform.startswith("linux"):
        assert "torch" in open(f"/proc/{first['pid']}/maps").read()  # what "warm" means: torch is loaded
    accepted = server.post("/start_training", TINY_JOB).json()
    assert accepted["expected_pid"] == first["pid"]  # the spare became this job's worker: one process per job
    job = server.wait_status(accepted["job_id"], {"completed"})
    assert job["pid"] == first["pid"]
    second = wait_spare(server, not_pid=first["pid"])
    assert second["pid"] != first["pid"] and pid_alive(second["pid"])
    assert wait_gone(first["pid"])  # the job's process ended with its job; it never takes a second one
    assert server.stop() == 0
    assert wait_gone(second["pid"], 10)  # shutdown with a spare alive leaves no process behind


def test_a_spare_that_dies_is_replaced_and_jobs_still_run(live_server) -> None:
    server = live_server()
    dead = wait_spare(server)["pid"]
    os.kill(dead, signal.SIGKILL)
    replacement = wait_spare(server, not_pid=dead)
    accepted = server.post("/start_training", TINY_JOB).json()
    assert accepted["expected_pid"] == replacement["pid"]
    assert server.wait_status(accepted["job_id"], {"completed"})["status"] == "completed"


def test_stop_right_after_the_hand_off(live_server) -> None:
    server = live_server()
    pid = wait_spare(server)["pid"]
    job_id = server.post("/start_training", LONG_JOB).json()["job_id"]
    assert server.post(f"/jobs/{job_id}/stop").status_code == 202
    job = server.wait_status(job_id, {"stopped", "failed", "completed"})
    assert job["status"] == "stopped", job
    assert wait_gone(pid)


def test_warm_worker_off_starts_each_job_cold(live_server) -> None:
    server = live_server(warm_worker=False)
    assert spare(server) is None
    accepted = server.post("/start_training", TINY_JOB).json()
    assert accepted["expected_pid"] is not None
    assert server.wait_status(accepted["job_id"], {"completed"})["status"] == "completed"
    assert spare(server) is None
