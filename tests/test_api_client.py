"""The GUI's network layer against the real embedded server (``start_server`` on an ephemeral port).

Jobs are held in the queue (``max_concurrent_jobs=0``), so no worker process starts here; the GUI test runs a
real one.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from desktop_app import controller
from desktop_app import messages as m
from desktop_app.api_client import ApiClient, ApiError, EventStream, backoff_delay
from desktop_app.panels.run import Phase
from desktop_app.runtime import Runtime
from embedded_server.serve import ServerHandle, start_server
from embedded_server.settings import AppSettings

HELD = AppSettings(max_concurrent_jobs=0)


@pytest.fixture
def server() -> Iterator[ServerHandle]:
    handle = start_server("127.0.0.1", 0, settings=HELD)
    yield handle
    handle.shutdown(timeout=30)


@pytest.fixture
def api(server: ServerHandle) -> ApiClient:
    return ApiClient(server.url)


def problem_of(call: Any) -> m.Problem:
    with pytest.raises(ApiError) as info:
        call()
    return info.value.problem


# ---------------------------------------------------------------- REST


def test_health(api: ApiClient) -> None:
    body = api.health()
    assert body["status"] == "ok" and body["app"] == "candlecast"


def test_same_idempotency_key_same_job(api: ApiClient) -> None:
    first = api.start_training({"epochs": 1}, "key-a")
    again = api.start_training({"epochs": 1}, "key-a")
    other = api.start_training({"epochs": 1}, "key-b")
    assert first["job_id"] == again["job_id"] != other["job_id"]
    assert {j["job_id"] for j in api.job_list()["jobs"]} == {first["job_id"], other["job_id"]}
    assert api.stop_job(first["job_id"]) == {"status": "cancelled", "job_id": first["job_id"]}
    problem = problem_of(lambda: api.stop_job(first["job_id"]))
    assert problem.status == 409 and problem.detail


def test_422_names_the_field(api: ApiClient) -> None:
    problem = problem_of(lambda: api.start_training({"cv_folds": 99}, "key-c"))
    assert problem.status == 422
    assert any(loc.endswith("cv_folds") for loc, _ in problem.errors), problem


def test_404_is_a_problem(api: ApiClient) -> None:
    problem = problem_of(lambda: api.job("no-such-job"))
    assert problem.status == 404 and "no-such-job" in problem.detail


def test_unreachable_server_is_a_problem_without_status() -> None:
    problem = problem_of(lambda: ApiClient("http://127.0.0.1:9", timeout=(1.0, 1.0)).health())
    assert problem.status is None and "cannot reach" in problem.title


def test_lists_logs_and_events(api: ApiClient) -> None:
    job_id = api.start_training({"epochs": 1}, "key-d")["job_id"]
    assert api.datasets()["datasets"], "the bundled BTCUSDT 1h dataset is listed"
    assert isinstance(api.log_tail(20)["lines"], list)
    events = api.events(job_id, 0)["events"]
    assert events and all(e["job_id"] == job_id for e in events)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert api.events(job_id, events[-1]["seq"])["events"] == []


def test_ws_url() -> None:
    assert ApiClient("http://127.0.0.1:8000/").ws_url == "ws://127.0.0.1:8000/ws"
    assert ApiClient("https://example.org").ws_url == "wss://example.org/ws"


def test_backoff_is_exponential_and_capped() -> None:
    assert [backoff_delay(n, 0.5, 8.0) for n in range(0, 8)] == [0.5, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert backoff_delay(10_000, 0.5, 8.0) == 8.0


# ---------------------------------------------------------------- the runtime: effects → messages


@pytest.fixture
def runtime(api: ApiClient) -> Iterator[Runtime]:
    remembered: list[dict[str, Any]] = []
    rt = Runtime(api, lambda message: None, remembered.append, log_path="/x/backend.log")
    yield rt
    rt.shutdown()


def test_runtime_start_poll_stop(runtime: Runtime) -> None:
    answer = runtime.outcome(m.PostStart({"epochs": 1}, "key-e", 1))
    assert isinstance(answer, m.StartAnswered) and answer.job_id and answer.problem is None
    assert answer.key == "key-e" and answer.attempt == 1
    polled = runtime.outcome(m.PollJob(answer.job_id))
    assert polled.job["status"] == "queued"
    events = runtime.outcome(m.PollEvents(answer.job_id, 0))
    assert any(e["type"] == "job.status" for e in events.events)
    stopped = runtime.outcome(m.StopJob(answer.job_id))
    assert stopped == m.StopAnswered(stopped.now, answer.job_id, status="cancelled")
    results = runtime.outcome(m.LoadResults(answer.job_id))
    assert results.job["status"] == "cancelled" and results.series == {} and results.problem is None


def test_runtime_422_reaches_the_fields(runtime: Runtime) -> None:
    answer = runtime.outcome(m.PostStart({"cv_folds": 0, "epochs": 0}, "key-f", 1))
    assert answer.job_id is None and answer.problem.status == 422
    state = controller.State()
    state, _ = controller.update(state, m.StartClicked(0.0, {"cv_folds": 0}, "key-f"))
    state, _ = controller.update(state, answer)
    assert set(state.field_errors) == {"cv_folds", "epochs"}
    assert state.run.phase is Phase.IDLE


def test_runtime_failures_become_messages(runtime: Runtime) -> None:
    assert runtime.outcome(m.PollJob("nope")).problem.status == 404
    assert runtime.outcome(m.LoadResults("nope")).problem.status == 404
    assert runtime.outcome(m.LoadLogTail("nope")).problem.status == 404
    imported = runtime.outcome(m.ImportDataset("relative/path.csv"))
    assert imported.problem.status == 422 and imported.dataset is None


def test_runtime_health_lists_and_logs(runtime: Runtime) -> None:
    health = runtime.outcome(m.CheckHealth())
    assert health.health["app"] == "candlecast" and health.wall_time > 1e9
    assert runtime.outcome(m.ListJobs()).problem is None
    assert runtime.outcome(m.ListDatasets()).datasets
    tail = runtime.outcome(m.LoadLogTail(None))
    assert tail.path == "/x/backend.log" and isinstance(tail.lines, tuple)


def test_runtime_posts_from_its_threads(api: ApiClient) -> None:
    inbox: queue.SimpleQueue[m.Message] = queue.SimpleQueue()
    saved = threading.Event()
    rt = Runtime(api, inbox.put, lambda config: saved.set())
    try:
        rt.perform((m.CheckHealth(), m.RememberParams({"epochs": 2})))
        assert isinstance(inbox.get(timeout=30), m.HealthAnswered)
        assert saved.wait(30)
    finally:
        rt.shutdown()


# ---------------------------------------------------------------- the WebSocket


class Recorder:
    """Collects what an EventStream reports, with waits on conditions."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.statuses: list[str] = []
        self._changed = threading.Condition()

    def on_message(self, message: dict[str, Any]) -> None:
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    def on_status(self, status: str, detail: str, retry_in: float | None) -> None:
        with self._changed:
            self.statuses.append(status)
            self._changed.notify_all()

    def wait(self, condition: Any, timeout: float = 30) -> None:
        with self._changed:
            assert self._changed.wait_for(condition, timeout), (self.statuses, self.messages[-3:])


def test_stream_gets_hello_and_live_events(server: ServerHandle, api: ApiClient) -> None:
    rec = Recorder()
    stream = EventStream(api.ws_url, rec.on_message, rec.on_status).start()
    try:
        rec.wait(lambda: rec.statuses == ["connected"] and any(x["type"] == "hello" for x in rec.messages))
        job_id = api.start_training({"epochs": 1}, "key-g")["job_id"]
        rec.wait(lambda: any(x.get("job_id") == job_id for x in rec.messages))
        seqs = [x["seq"] for x in rec.messages if x.get("job_id") == job_id]
        assert stream.last_seq == max(seqs)
    finally:
        stream.close()


def test_stream_replays_since(server: ServerHandle, api: ApiClient) -> None:
    job_id = api.start_training({"epochs": 1}, "key-h")["job_id"]
    stored = api.events(job_id, 0)["events"]
    rec = Recorder()
    stream = EventStream(api.ws_url, rec.on_message, rec.on_status, since=0).start()
    try:
        rec.wait(lambda: len([x for x in rec.messages if x.get("job_id") == job_id]) >= len(stored))
        replayed = [x["seq"] for x in rec.messages if x.get("job_id") == job_id]
        assert replayed[: len(stored)] == [e["seq"] for e in stored]
    finally:
        stream.close()


def test_stream_reconnects_after_the_server_went_away(candlecast_home: Any) -> None:
    first = start_server("127.0.0.1", 0, settings=HELD)
    port = first.port
    api = ApiClient(first.url)
    rec = Recorder()
    stream = EventStream(api.ws_url, rec.on_message, rec.on_status, initial_backoff_s=0.05, max_backoff_s=0.2,
                         disconnected_after=3).start()
    second = None
    try:
        rec.wait(lambda: "connected" in rec.statuses)
        api.start_training({"epochs": 1}, "key-i")
        rec.wait(lambda: stream.last_seq is not None and stream.last_seq > 0)
        seen = stream.last_seq
        first.shutdown(timeout=30)
        rec.wait(lambda: "disconnected" in rec.statuses)
        down = rec.statuses[rec.statuses.index("connected") + 1:]
        assert down[0] == "reconnecting" and "disconnected" in down  # yellow first, red once it keeps failing
        assert stream.last_seq >= seen and f"since={stream.last_seq}" in stream.connect_url()
        second = start_server("127.0.0.1", port, settings=HELD)
        rec.wait(lambda: len([x for x in rec.messages if x["type"] == "hello"]) == 2)
        assert rec.statuses[-1] == "connected"
    finally:
        stream.close()
        if second is not None:
            second.shutdown(timeout=30)
    assert not stream._thread.is_alive()


def test_close_is_prompt_while_connected(server: ServerHandle, api: ApiClient) -> None:
    rec = Recorder()
    stream = EventStream(api.ws_url, rec.on_message, rec.on_status).start()
    rec.wait(lambda: "connected" in rec.statuses)
    started = time.monotonic()
    stream.close(timeout=10)
    assert not stream._thread.is_alive()
    assert time.monotonic() - started < 10  # abort() wakes the blocked recv (bounded, not a speed check)
