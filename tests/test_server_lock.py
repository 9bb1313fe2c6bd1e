"""One server per data folder (``embedded_server.folder_lock``): a second ``start_server`` or ``candlecast serve`` on a
folder in use is refused with the running server's URL and leaves that server's jobs alone; the lock goes with
``shutdown()``; recovery of unfinished jobs needs the lock. Real servers on port 0, in-process and as subprocesses.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from server_fixtures import REPO_ROOT, TINY_JOB

from embedded_server.folder_lock import INFO_NAME, LOCK_NAME, FolderLock
from embedded_server.serve import DataFolderInUse, PortInUse, ServerError, start_server
from embedded_server.services import EXTENSION
from embedded_server.settings import AppSettings
from trainer import paths

HELD = AppSettings(max_concurrent_jobs=0)


def test_a_second_serve_is_refused_in_one_line_and_leaves_the_first_ones_jobs_alone(live_server) -> None:
    first = live_server(max_concurrent_jobs=0)
    job_id = first.post("/start_training", TINY_JOB).json()["job_id"]
    assert first.job(job_id)["status"] == "queued"

    second = subprocess.run(
        [sys.executable, "-m", "desktop_app.cli", "serve", "--port", "0"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=60,
    )  # fmt: skip
    assert second.returncode == 2, second.stdout + second.stderr
    lines = second.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in second.stderr
    assert lines[0].startswith(f"candlecast: error: data folder {paths.data_dir()} is in use by the Candlecast server")
    assert first.url in lines[0] and f"pid {first.proc.pid}" in lines[0]
    # The refused server did not "recover" the first one's jobs: the queued job is untouched, and it still serves.
    job = first.job(job_id)
    assert job["status"] == "queued"
    events = first.get(f"/jobs/{job_id}/events").json()["events"]
    assert [e.get("status") for e in events if e["type"] == "job.status"] == ["queued"]
    assert first.get("/").json()["jobs"] == {"running": 0, "queued": 1}


def test_start_server_refuses_a_folder_in_use_until_its_server_shuts_down() -> None:
    first = start_server(port=0, settings=HELD)
    second = None
    try:
        info = json.loads((paths.data_dir() / INFO_NAME).read_text())
        assert info["pid"] == os.getpid() and info["url"] == first.url
        with pytest.raises(DataFolderInUse) as refused:
            start_server(port=0, settings=HELD)
        assert refused.value.url == first.url and refused.value.folder == paths.data_dir()
        assert isinstance(refused.value, ServerError) and first.url in str(refused.value)
        first.shutdown(timeout=30)
        assert not (paths.data_dir() / INFO_NAME).exists() and (paths.data_dir() / LOCK_NAME).exists()
        second = start_server(port=0, settings=HELD)  # the lock went with the first server
        assert json.loads((paths.data_dir() / INFO_NAME).read_text())["url"] == second.url
    finally:
        first.shutdown(timeout=30)
        if second is not None:
            second.shutdown(timeout=30)


def test_servers_on_different_data_folders_run_side_by_side(monkeypatch, tmp_path: Path) -> None:
    first = start_server(port=0, settings=HELD)
    monkeypatch.setenv("CANDLECAST_HOME", str(tmp_path / "other-home"))
    try:
        second = start_server(port=0, settings=HELD)
        second.shutdown(timeout=30)
    finally:
        first.shutdown(timeout=30)


def test_a_start_that_fails_after_locking_releases_the_folder() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        with pytest.raises(PortInUse):  # the port is bound after the folder is locked
            start_server(port=taken.getsockname()[1], settings=HELD)
    FolderLock(paths.data_dir()).acquire().release()  # nothing is left holding the folder


@pytest.mark.parametrize("port", [99999, 65536, -1, True, "8000"])
def test_a_port_outside_0_to_65535_is_a_clear_error(port) -> None:
    with pytest.raises(ServerError, match=r"is not a TCP port: use 0\.\.65535"):
        start_server(port=port, settings=HELD)


def test_serve_turns_a_server_error_into_one_user_error(monkeypatch) -> None:
    from trainer.cli_common import UserError
    from embedded_server import serve

    monkeypatch.setattr(serve, "_log_to_console", lambda: None)  # no handler left on the root logger
    args = argparse.Namespace(get=None, host="127.0.0.1", port=99999, token=None)  # past the CLI's own check
    with pytest.raises(UserError, match=r"^port 99999 is not a TCP port: use 0\.\.65535 \(0 picks a free one\)$"):
        serve.run(args)


def test_recovery_needs_the_held_lock_of_its_own_folder(app, tmp_path: Path) -> None:
    manager = app.extensions[EXTENSION].manager
    with pytest.raises(RuntimeError, match="needs the held lock"):
        manager.recover(FolderLock(paths.data_dir()))  # not acquired
    elsewhere = FolderLock(tmp_path / "elsewhere").acquire()
    try:
        with pytest.raises(RuntimeError, match="needs the held lock"):
            manager.recover(elsewhere)
    finally:
        elsewhere.release()
    own = FolderLock(paths.data_dir()).acquire()
    try:
        assert manager.recover(own) == []
    finally:
        own.release()
