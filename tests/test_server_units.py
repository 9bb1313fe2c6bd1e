"""The server's parts on their own: job states, the SQLite store, the event bus, log tails, settings, logging."""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
import threading
from pathlib import Path

import pytest

from embedded_server import job_manager, supervision
from embedded_server.event_bus import EventBus
from embedded_server.job_states import ALLOWED, TERMINAL, IllegalTransition, JobStatus, transition
from embedded_server.job_store import JobStore
from embedded_server.log_tail import tail_lines, tail_rotated
from embedded_server.logging_setup import configure_logging, job_logger
from embedded_server.security import check_host, check_origin, is_loopback
from embedded_server.settings import AppSettings, load_settings
from embedded_server.worker_process import worker_command
from trainer import events
from trainer.events import EventType, make_event

S = JobStatus


# ---- job states -------------------------------------------------------------------------------------------------


def test_the_transition_table_is_api_md() -> None:
    assert ALLOWED[S.QUEUED] == {S.STARTING, S.CANCELLED}
    assert ALLOWED[S.STARTING] == {S.RUNNING, S.FAILED, S.STOPPED, S.INTERRUPTED}
    assert ALLOWED[S.RUNNING] == {S.COMPLETED, S.FAILED, S.STOPPED, S.INTERRUPTED}
    assert TERMINAL == {S.COMPLETED, S.FAILED, S.STOPPED, S.CANCELLED, S.INTERRUPTED}


def test_the_table_covers_every_status_of_the_wire_contract() -> None:
    """One status enum for server and GUI (``trainer.events``); every status has its row, a terminal one no move."""
    assert JobStatus is events.JobStatus and TERMINAL is events.TERMINAL_STATUSES
    assert list(ALLOWED) == list(JobStatus)
    assert {status for status, moves in ALLOWED.items() if not moves} == TERMINAL


@pytest.mark.parametrize("current", list(JobStatus))
@pytest.mark.parametrize("target", list(JobStatus))
def test_every_move_is_allowed_or_raises(current: JobStatus, target: JobStatus) -> None:
    if target in ALLOWED[current]:
        assert transition("j", current, target) is target
    else:
        with pytest.raises(IllegalTransition, match=f"is {current.value}; it cannot become {target.value}"):
            transition("j", current, target)


def test_an_illegal_move_changes_nothing_in_the_store(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "db.sqlite")
    store.create_job("j1", {"epochs": 1}, None)
    store.set_status("j1", S.STARTING, pid=123)
    store.set_status("j1", S.RUNNING)
    store.set_status("j1", S.COMPLETED, metrics={"pooled": {}})
    before = store.get_job("j1")
    for target in JobStatus:
        with pytest.raises(IllegalTransition):
            store.set_status("j1", target, pid=999, metrics=None)
    assert store.get_job("j1") == before


# ---- store ------------------------------------------------------------------------------------------------------


def test_seq_keeps_increasing_across_reopen_and_pruning(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = JobStore(path)
    store.create_job("j1", {}, None)
    seqs = [
        store.append_event(make_event(EventType.JOB_STATUS, "j1", status="queued", previous=None)) for _ in range(5)
    ]
    assert seqs == [1, 2, 3, 4, 5]
    assert store.prune_events(keep=2) == 3
    store.close()
    reopened = JobStore(path)
    assert reopened.last_seq() == 5
    assert reopened.append_event(make_event(EventType.TRAINING_CANCELLED, "j1", reason="x")) == 6
    assert [e["seq"] for e in reopened.events_since(0)] == [4, 5, 6]
    assert reopened.get_job("j1").last_seq == 6
    assert (tmp_path / "db.sqlite-wal").exists()  # WAL mode


def test_events_since_filters_by_job_and_range(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "db.sqlite")
    for job in ("a", "b", "a", "b", "a"):
        store.append_event(make_event(EventType.TRAINING_CANCELLED, job, reason=job))
    assert [e["seq"] for e in store.events_since(0, job_id="a")] == [1, 3, 5]
    assert [e["seq"] for e in store.events_since(1, upto=4)] == [2, 3, 4]
    assert [e["seq"] for e in store.events_since(0, limit=2)] == [1, 2]


def test_idempotency_key_is_unique(tmp_path: Path) -> None:
    import sqlite3

    store = JobStore(tmp_path / "db.sqlite")
    store.create_job("j1", {}, "key-1")
    with pytest.raises(sqlite3.IntegrityError):
        store.create_job("j2", {}, "key-1")
    assert store.find_by_idempotency_key("key-1").job_id == "j1"
    assert store.find_by_idempotency_key("other") is None


def test_an_older_store_gets_each_stopped_or_cancelled_job_s_reason_from_its_events(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "db.sqlite"
    store = JobStore(path)
    for job_id, status, kind in (("s", S.STOPPED, EventType.TRAINING_STOPPED), ("c", S.CANCELLED, None)):
        store.create_job(job_id, {}, None)
        if kind is not None:
            store.set_status(job_id, S.STARTING)
        store.append_event(make_event(kind or EventType.TRAINING_CANCELLED, job_id, reason=f"why {job_id}"))
        store.set_status(job_id, status)
    store.create_job("q", {}, None)
    store.close()
    with sqlite3.connect(path) as db:  # the file as a version without the column left it
        db.execute("ALTER TABLE jobs DROP COLUMN stop_reason")
    db.close()
    reopened = JobStore(path)
    assert [reopened.get_job(j).stop_reason for j in ("s", "c", "q")] == ["why s", "why c", None]
    reopened.set_status("q", S.CANCELLED, stop_reason="now")
    assert reopened.get_job("q").stop_reason == "now"


# ---- event bus --------------------------------------------------------------------------------------------------


def test_bus_assigns_seq_in_order_and_feeds_subscribers(tmp_path: Path) -> None:
    bus = EventBus(JobStore(tmp_path / "db.sqlite"))
    early = bus.subscribe("early")
    bus.publish(make_event(EventType.TRAINING_CANCELLED, "j", reason="1"))
    late = bus.subscribe("late")
    assert late.registered_seq == 1
    bus.publish(make_event(EventType.TRAINING_CANCELLED, "j", reason="2"))
    assert [json.loads(early.get(0))["seq"], json.loads(early.get(0))["seq"]] == [1, 2]
    second = json.loads(late.get(0))
    assert second["seq"] == 2 and second["reason"] == "2" and late.get(0) is None


def test_a_slow_subscriber_is_dropped_and_the_others_get_everything(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bus = EventBus(JobStore(tmp_path / "db.sqlite"), client_queue=5)
    slow, steady = bus.subscribe("slow-client"), bus.subscribe("steady-client")
    closed = []
    slow.on_drop = lambda: closed.append(True)
    received = []
    with caplog.at_level(logging.WARNING):
        for i in range(20):
            bus.publish(make_event(EventType.TRAINING_CANCELLED, "j", reason=str(i)))
            received.append(json.loads(steady.get(0))["seq"])  # steady reads as it goes; slow never reads
    assert received == list(range(1, 21))
    assert slow.dropped and "too slow" in slow.dropped and closed == [True]
    assert bus.subscriber_count == 1
    assert any("dropping WebSocket client slow-client: too slow" in r.getMessage() for r in caplog.records)


def test_closing_the_bus_wakes_and_drops_everyone(tmp_path: Path) -> None:
    bus = EventBus(JobStore(tmp_path / "db.sqlite"))
    sub = bus.subscribe("c")
    bus.close()
    assert sub.get(1) is None and sub.dropped == "server shutting down"
    assert bus.subscribe("late").dropped == "server shutting down"


# ---- log tail ---------------------------------------------------------------------------------------------------


def test_tail_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert tail_lines(tmp_path / "nope.log", 10) == []
    assert tail_rotated(tmp_path / "nope.log", 10) == []


@pytest.mark.parametrize("ending", [b"\n", b""])
def test_tail_reads_lines_across_blocks(tmp_path: Path, ending: bytes) -> None:
    path = tmp_path / "x.log"
    lines = [f"line {i} " + "x" * (i % 300) for i in range(3000)]
    path.write_bytes("\n".join(lines).encode() + ending)
    assert tail_lines(path, 1) == lines[-1:]
    assert tail_lines(path, 777) == lines[-777:]
    assert tail_lines(path, 5000) == lines


def test_tail_handles_crlf_and_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_bytes(b"first\r\n\xff\xfebad \xe9t\xe9\r\nlast\r\n")
    assert tail_lines(path, 2) == ["\ufffd\ufffdbad \ufffdt\ufffd", "last"]


def test_tail_continues_into_rotated_files(tmp_path: Path) -> None:
    path = tmp_path / "backend.log"
    (tmp_path / "backend.log.2").write_text("".join(f"old2 {i}\n" for i in range(3)))
    (tmp_path / "backend.log.1").write_text("".join(f"old1 {i}\n" for i in range(4)))
    path.write_text("new 0\nnew 1\n")
    assert tail_rotated(path, 3) == ["old1 3", "new 0", "new 1"]
    assert tail_rotated(path, 100) == [f"old2 {i}" for i in range(3)] + [f"old1 {i}" for i in range(4)] + [
        "new 0",
        "new 1",
    ]
    path.unlink()  # just rotated, nothing written yet
    assert tail_rotated(path, 2) == ["old1 2", "old1 3"]


# ---- settings ---------------------------------------------------------------------------------------------------


def test_missing_settings_are_created_with_defaults(candlecast_home: Path) -> None:
    loaded = load_settings()
    assert loaded.settings == AppSettings() and loaded.warning is None
    assert json.loads(loaded.path.read_text())["schema_version"] == 2
    assert loaded.path == candlecast_home / "config" / "config.json"


@pytest.mark.parametrize(
    "content, reason",
    [
        ("{not json", "not valid JSON"),
        ('{"schema_version": 2, "port": "eighty"}', "port"),
        ('{"schema_version": 2, "prot": 8000}', "prot"),
        ('{"schema_version": 2, "training": {"epochs": 0}}', "training"),
        ('{"schema_version": 1}', "schema_version"),
    ],
)
def test_a_corrupt_settings_file_is_moved_aside_never_fatal(candlecast_home: Path, content: str, reason: str) -> None:
    path = candlecast_home / "config" / "config.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    loaded = load_settings()
    assert loaded.settings == AppSettings()
    assert reason in loaded.warning and "was corrupt" in loaded.warning and "Using the defaults" in loaded.warning
    backups = list(path.parent.glob("config.json.bak.*"))
    assert len(backups) == 1 and backups[0].read_text() == content
    assert json.loads((path.parent / "config.json.default").read_text()) == AppSettings().model_dump(mode="json")


def test_settings_keep_valid_values_and_port_env_overrides(
    candlecast_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = candlecast_home / "config" / "config.json"
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps({"schema_version": 2, "port": 9001, "max_concurrent_jobs": 2, "training": {"epochs": 3}})
    )
    assert load_settings().settings.port == 9001
    monkeypatch.setenv("CANDLECAST_PORT", "9123")
    settings = load_settings().settings
    assert (settings.port, settings.max_concurrent_jobs, settings.training) == (9123, 2, {"epochs": 3})
    monkeypatch.setenv("CANDLECAST_PORT", "http")
    with pytest.raises(ValueError, match="CANDLECAST_PORT='http' is not a TCP port"):
        load_settings()


# ---- security helpers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]", "LOCALHOST."])
def test_loopback_names(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["evil.example", "localhost.evil.example", "0.0.0.0", "192.168.1.5", "", "::"])
def test_not_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_host_and_origin_checks() -> None:
    assert check_host("127.0.0.1:8000", 8000) is None
    assert check_host("localhost", 8000) is None
    assert check_host("[::1]:8000", 8000) is None
    assert "port 9000" in check_host("localhost:9000", 8000)
    assert "DNS rebinding" in check_host("attacker.example:8000", 8000)
    assert "not host[:port]" in check_host("localhost:99999", 8000)
    assert check_origin("http://localhost:3000") is None
    assert check_origin("https://127.0.0.1") is None
    assert check_origin("null") is not None
    assert check_origin("https://evil.example") is not None
    assert check_origin("file://") is not None


# ---- logging ----------------------------------------------------------------------------------------------------


def test_backend_log_is_one_utc_line_per_record_with_job_id(tmp_path: Path) -> None:
    path = configure_logging(tmp_path, "INFO")
    try:
        logger = logging.getLogger("candlecast.test")
        job_logger(logger, "job-7").warning("hello %s", "there")
        logger.debug("not at INFO")
        try:
            raise ValueError("boom\nsecond line")
        except ValueError:
            logger.exception("failed")
        for handler in logging.getLogger().handlers:
            handler.flush()
        lines = path.read_text().splitlines()
    finally:
        configure_logging(Path(os.environ["CANDLECAST_HOME"]), "INFO")
    assert len(lines) == 2
    time_part, level, name, job, *message = lines[0].split(" ")
    assert time_part.endswith("Z") and time_part[10] == "T"
    assert (level, name, job, " ".join(message)) == ("WARNING", "candlecast.test", "[job=job-7]", "hello there")
    assert (
        " ERROR candlecast.test [job=-] failed\\nTraceback" in lines[1] and "ValueError: boom\\nsecond line" in lines[1]
    )


# ---- worker command ---------------------------------------------------------------------------------------------


def test_worker_command_from_source_and_frozen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert worker_command(tmp_path) == [sys.executable, "-m", "trainer.worker", "--job-dir", str(tmp_path)]
    assert worker_command(None) == [sys.executable, "-m", "trainer.worker", "--spare"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert worker_command(tmp_path) == [sys.executable, "worker", "--job-dir", str(tmp_path)]
    assert worker_command(None) == [sys.executable, "worker", "--spare"]


@pytest.mark.parametrize("job_id", ["20240101-000000-abcdef", "a", "A_b-9"])
def test_valid_job_ids(job_id: str) -> None:
    assert job_manager.is_valid_job_id(job_id)


@pytest.mark.parametrize("job_id", ["", "..", "../x", "a/b", "a\\b", ".hidden", "x" * 65, "a b", "-a"])
def test_job_ids_that_could_leave_the_jobs_folder_are_refused(job_id: str) -> None:
    assert not job_manager.is_valid_job_id(job_id)


# ---- steps a full disk refused ----------------------------------------------------------------------------------


def test_steps_the_disk_refuses_wait_in_order_and_run_once_it_takes_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervision, "WRITE_RETRY_S", 0.01)
    lock, settled = threading.RLock(), threading.Event()
    retry = supervision.WriteRetry(lock, settled.set)
    disk_full, done = [True], []

    def step(name: str):
        def run(late: str | None) -> None:
            if disk_full[0]:
                raise OSError(errno.ENOSPC, "No space left on device")
            done.append((name, late))

        return run

    with lock:  # the manager's lock: the settler waits for it
        retry.run("a", step("first"))
        retry.run("b", step("second"))  # waits behind the first one, never tried before it
        assert retry.pending and retry.job_ids() == ["a", "b"] and done == []
        disk_full[0] = False
    assert settled.wait(30)
    late = "disk full (No space left on device)"
    assert done == [("first", late), ("second", late)] and not retry.pending
    with lock:
        retry.run("c", step("third"))
    assert done[-1] == ("third", None)

    def bug(late: str | None) -> None:
        raise ValueError("not the disk")

    with lock, pytest.raises(ValueError):  # a bug is never kept for a retry
        retry.run("d", bug)
    assert not retry.pending
