"""The controller's every transition, driven with a fake clock (no GUI, no network, no threads)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from desktop_app import controller as c
from desktop_app import messages as m
from desktop_app.controller import Action
from desktop_app.panels import results as r
from desktop_app.panels import run as rn
from desktop_app.panels.connection import start_blocked
from desktop_app.panels.run import Phase

CONFIG = {"symbol": "BTCUSDT", "timeframe": "1h", "epochs": 1, "cv_folds": 1}
TIMING = c.Timing()


class Driver:
    """Feeds messages at a fake time and keeps every effect, like the shell does."""

    def __init__(self) -> None:
        self.state, self.effects = c.initial(TIMING)
        self.now = 1000.0
        self.seq = 0
        self.effects = list(self.effects)

    def send(self, msg_type, **fields) -> tuple:
        new, effects = c.update(self.state, msg_type(now=self.now, **fields))
        # Every step keeps to the run's transition table: a listed move, or the run left as it was.
        transition = rn.TRANSITIONS[self.state.run.phase].get(msg_type)
        assert new.run.phase in transition.to if transition else new.run is self.state.run
        self.state = new
        self.effects.extend(effects)
        return effects

    def advance(self, seconds: float) -> tuple:
        self.now += seconds
        return self.send(m.Tick)

    def event(self, kind: str, job_id: str, **fields) -> tuple:
        self.seq += 1
        return self.send(m.ServerEvent, event={"type": kind, "seq": self.seq, "job_id": job_id, "timestamp": 0.0, **fields})

    def ws(self, status: str) -> tuple:
        return self.send(m.WsChanged, status=status)

    @property
    def run(self) -> rn.Run:
        return self.state.run


def of_type(effects, kind) -> list:
    return [e for e in effects if isinstance(e, kind)]


@pytest.fixture
def d() -> Driver:
    driver = Driver()
    driver.ws("connected")
    driver.effects.clear()
    return driver


def pending(d: Driver, key: str = "key-1") -> None:
    effects = d.send(m.StartClicked, config=CONFIG, key=key)
    assert effects == (m.PostStart(CONFIG, key, 1), m.RememberParams(CONFIG))


def accepted(d: Driver, job_id: str = "job-1", key: str = "key-1") -> None:
    pending(d, key)
    d.send(m.StartAnswered, key=key, attempt=1, job_id=job_id)


def running(d: Driver, job_id: str = "job-1") -> None:
    accepted(d, job_id)
    d.event("training.started", job_id, origin="worker", pid=1, symbol="BTCUSDT", timeframe="1h", epoch=0, fold=0)
    assert d.run.phase is Phase.RUNNING


# ---------------------------------------------------------------- start handshake


def test_launch_asks_for_jobs_datasets_and_health() -> None:
    state, effects = c.initial(TIMING)
    assert effects == (m.ListJobs(), m.ListDatasets(), m.ListSweeps())
    assert state.run.phase is Phase.IDLE
    assert allowed_actions_names(state) == {"start", "view_logs", "import"}
    state, effects = c.update(state, m.Tick(now=5.0))
    assert effects == (m.CheckHealth(),)


def allowed_actions_names(state: c.State) -> set[str]:
    return {a.value for a in c.allowed_actions(state)}


def test_start_sends_the_request_and_waits_for_the_202(d: Driver) -> None:
    pending(d)
    run = d.run
    assert run.phase is Phase.PENDING and run.key == "key-1" and run.attempt == 1 and run.job_id is None
    assert run.deadline == d.now + 30
    assert allowed_actions_names(d.state) == {"cancel_start", "view_logs", "import"}


def test_202_shows_awaiting_and_restarts_the_30_s_timer(d: Driver) -> None:
    pending(d)
    d.now += 12
    d.send(m.StartAnswered, key="key-1", attempt=1, job_id="job-1")
    assert d.run.phase is Phase.PENDING and d.run.job_id == "job-1" and d.run.accepted
    assert d.run.message == rn.AWAITING
    assert d.run.deadline == d.now + 30


def test_server_started_event_does_not_confirm_but_worker_started_does(d: Driver) -> None:
    accepted(d)
    d.event("training.started", "job-1", origin="server", symbol="BTCUSDT", timeframe="1h", epoch=0, fold=0,
            expected_pid=None)
    assert d.run.phase is Phase.PENDING
    d.event("training.started", "job-1", origin="worker", pid=7, symbol="BTCUSDT", timeframe="1h", epoch=0, fold=0)
    assert d.run.phase is Phase.RUNNING and d.run.message == "Training running" and d.run.deadline is None
    assert Action.STOP in c.allowed_actions(d.state)


def test_job_status_running_confirms(d: Driver) -> None:
    accepted(d)
    d.event("job.status", "job-1", status="starting", previous="queued")
    assert d.run.phase is Phase.PENDING and "starting" in d.run.message
    d.event("job.status", "job-1", status="running", previous="starting")
    assert d.run.phase is Phase.RUNNING


def test_events_for_other_jobs_never_change_this_job(d: Driver) -> None:
    accepted(d)
    before = d.state
    d.event("training.started", "job-other", origin="worker", pid=9, symbol="X", timeframe="1h", epoch=0, fold=0)
    d.event("job.status", "job-other", status="running", previous="starting")
    d.event("training.epoch", "job-other", fold=1, folds=1, epoch=1, epochs=1, train_loss=1.0, val_loss=1.0)
    d.event("training.failed", "job-other", stage="train", error_type="X", error="boom", traceback_tail="", exit_code=1)
    assert d.run == replace(before.run)
    running_state = d.state
    d.event("training.completed", "job-other", metrics={}, artifacts={}, duration_s=1.0)
    d.event("training.stopped", "job-other", reason="user")
    assert d.run.phase is Phase.PENDING and d.run == running_state.run


def test_other_jobs_terminal_events_refresh_the_jobs_list(d: Driver) -> None:
    effects = d.event("training.completed", "job-other", metrics={}, artifacts={}, duration_s=1.0)
    assert effects == (m.ListJobs(),)
    assert d.run.phase is Phase.IDLE


def test_confirmation_that_races_ahead_of_the_202_is_kept(d: Driver) -> None:
    pending(d)
    d.event("training.started", "job-other", origin="worker", pid=3, symbol="X", timeframe="1h", epoch=0, fold=0)
    d.event("training.started", "job-1", origin="worker", pid=7, symbol="BTCUSDT", timeframe="1h", epoch=0, fold=0)
    assert d.run.phase is Phase.PENDING  # the job id is not known yet
    d.send(m.StartAnswered, key="key-1", attempt=1, job_id="job-1")
    assert d.run.phase is Phase.RUNNING and d.run.job_id == "job-1" and d.run.early == ()


def test_two_timeouts_repeat_the_request_with_the_same_key_then_the_dialog(d: Driver) -> None:
    accepted(d)
    assert d.advance(29.9) == ()
    effects = d.advance(0.1)
    assert effects == (m.PostStart(CONFIG, "key-1", 2),)
    assert d.run.attempt == 2 and d.run.deadline == d.now + 30
    assert d.run.message == "No confirmation after 30 s – asking again (retry 1/2)…"
    d.send(m.StartAnswered, key="key-1", attempt=2, job_id="job-1")  # same key → same job
    assert d.run.job_id == "job-1" and d.run.deadline == d.now + 30
    assert d.run.message == rn.AWAITING + " (retry 1/2)"  # the screen says which attempt is waiting
    d.event("job.status", "job-1", status="starting", previous="queued")
    assert d.run.message == rn.AWAITING + " (job starting, retry 1/2)"
    effects = d.advance(30)
    assert effects == (m.PostStart(CONFIG, "key-1", 3),)
    d.send(m.StartAnswered, key="key-1", attempt=3, job_id="job-1")
    assert d.run.message == rn.AWAITING + " (retry 2/2)"
    assert d.advance(29) == ()
    assert d.run.phase is Phase.PENDING
    d.advance(1)
    assert d.run.phase is Phase.FAILED
    assert d.run.failure == rn.Failure(kind="unacknowledged", message=rn.UNACKNOWLEDGED)
    assert d.run.message == "Unable to start training: backend did not acknowledge. Check backend logs for details."
    assert allowed_actions_names(d.state) == {"view_logs", "retry", "cancel_start", "dismiss", "import"}
    posts = of_type(d.effects, m.PostStart)
    assert [p.attempt for p in posts] == [1, 2, 3] and {p.key for p in posts} == {"key-1"}
    assert d.advance(100) == ()  # no fourth attempt


def test_no_answer_at_all_also_retries_on_the_timer(d: Driver) -> None:
    pending(d)
    refused = m.Problem(None, "cannot reach the server (connection refused or closed)")
    d.send(m.StartAnswered, key="key-1", attempt=1, problem=refused)
    assert d.run.phase is Phase.PENDING
    assert d.run.message == ("No answer to the start request: cannot reach the server (connection refused or closed)"
                             " – will ask again")  # one pair of brackets, not two
    assert d.advance(30) == (m.PostStart(CONFIG, "key-1", 2),)
    d.send(m.StartAnswered, key="key-1", attempt=2, problem=m.Problem(503, "Service Unavailable"))
    assert d.run.phase is Phase.PENDING
    assert d.run.message == "No answer to the start request (retry 1/2): 503 Service Unavailable – will ask again"
    d.send(m.StartAnswered, key="key-1", attempt=2, job_id="job-1")
    assert d.run.job_id == "job-1"


def test_a_confirmation_after_the_dialog_still_starts_running(d: Driver) -> None:
    accepted(d)
    d.advance(30), d.advance(30), d.advance(30)
    assert d.run.phase is Phase.FAILED
    d.event("job.status", "job-1", status="running", previous="starting")
    assert d.run.phase is Phase.RUNNING and d.run.failure is None


def test_retry_from_the_dialog_stops_the_old_job_and_starts_fresh(d: Driver) -> None:
    accepted(d)
    d.advance(30), d.advance(30), d.advance(30)
    effects = d.send(m.RetryClicked, key="key-2")
    assert effects == (m.StopJob("job-1"), m.PostStart(CONFIG, "key-2", 1), m.RememberParams(CONFIG))
    assert d.run.phase is Phase.PENDING and d.run.key == "key-2" and d.run.job_id is None and d.run.attempt == 1
    # the old job's late events do not confirm the new request
    d.event("job.status", "job-1", status="running", previous="starting")
    d.send(m.StartAnswered, key="key-2", attempt=1, job_id="job-2")
    assert d.run.phase is Phase.PENDING and d.run.job_id == "job-2"


def test_dialog_cancel_stops_the_unconfirmed_job(d: Driver) -> None:
    accepted(d)
    d.advance(30), d.advance(30), d.advance(30)
    effects = d.send(m.CancelClicked)
    assert effects == (m.StopJob("job-1"),)
    assert d.run.phase is Phase.IDLE and d.run.failure is None
    assert Action.START in c.allowed_actions(d.state)


# ---------------------------------------------------------------- cancel


def test_cancel_after_the_202_stops_the_job(d: Driver) -> None:
    accepted(d)
    effects = d.send(m.CancelClicked)
    assert effects == (m.StopJob("job-1"),)
    assert d.run.phase is Phase.IDLE and d.run.message == "Start request cancelled"
    assert d.advance(100) == ()  # the ack timer is gone


def test_cancel_before_the_202_stops_the_job_when_the_202_arrives(d: Driver) -> None:
    pending(d)
    assert d.send(m.CancelClicked) == ()
    assert d.run.phase is Phase.IDLE and d.state.cancel_keys == {"key-1"}
    effects = d.send(m.StartAnswered, key="key-1", attempt=1, job_id="job-1")
    assert effects == (m.StopJob("job-1"),)
    assert d.run.phase is Phase.IDLE and d.state.cancel_keys == frozenset()


def test_cancel_before_a_202_that_never_comes(d: Driver) -> None:
    pending(d)
    d.send(m.CancelClicked)
    assert d.send(m.StartAnswered, key="key-1", attempt=1, problem=m.Problem(None, "timed out")) == ()
    assert d.state.cancel_keys == {"key-1"}  # a retry's 202 could still come: keep watching for it
    assert d.advance(100) == ()


def test_a_new_start_after_cancel_is_independent(d: Driver) -> None:
    pending(d, "key-1")
    d.send(m.CancelClicked)
    pending(d, "key-2")
    assert d.send(m.StartAnswered, key="key-1", attempt=1, job_id="job-1") == (m.StopJob("job-1"),)
    assert d.run.phase is Phase.PENDING and d.run.job_id is None
    d.send(m.StartAnswered, key="key-2", attempt=1, job_id="job-2")
    assert d.run.job_id == "job-2"


def test_illegal_clicks_change_nothing(d: Driver) -> None:
    before = d.state
    for msg in (m.CancelClicked, m.StopClicked, m.DismissClicked):
        assert d.send(msg) == ()
        assert d.state is before
    assert d.send(m.RetryClicked, key="k") == () and d.state is before
    running(d)
    before = d.state
    assert d.send(m.StartClicked, config=CONFIG, key="k2") == () and d.state is before
    assert d.send(m.CancelClicked) == () and d.state is before


def test_unknown_message_names_itself() -> None:
    with pytest.raises(TypeError, match="no transition for str"):
        c.update(c.State(), "start")  # type: ignore[arg-type]


# ---------------------------------------------------------------- WebSocket down → polling


def test_ws_down_while_pending_polls_the_job(d: Driver) -> None:
    accepted(d)
    assert d.advance(1) == ()  # WS up: events will tell
    d.ws("reconnecting")
    assert of_type(d.advance(0.1), m.PollJob) == [m.PollJob("job-1")]
    assert of_type(d.advance(1), m.PollJob) == []  # one at a time
    d.send(m.JobPolled, job_id="job-1", job={"job_id": "job-1", "status": "starting"})
    assert d.run.phase is Phase.PENDING
    assert of_type(d.advance(2), m.PollJob) == [m.PollJob("job-1")]
    progress = {"fold": 1, "folds": 2, "epoch": 0, "epochs": 3, "fraction": 0.0, "eta_s": None}
    d.send(m.JobPolled, job_id="job-1", job={"job_id": "job-1", "status": "running", "progress": progress})
    assert d.run.phase is Phase.RUNNING
    assert d.run.progress == rn.Progress(1, 2, 0, 3, 0.0, None)


def test_ws_down_while_running_polls_events_since_the_last_seq(d: Driver) -> None:
    running(d)
    last = d.run.last_seq
    d.ws("disconnected")
    effects = d.advance(0.5)
    assert of_type(effects, m.PollEvents) == [m.PollEvents("job-1", last)]
    epoch = {"type": "training.epoch", "seq": last + 1, "job_id": "job-1", "fold": 1, "folds": 1, "epoch": 1, "epochs": 2,
             "train_loss": 1.5, "val_loss": 1.6, "fraction": 0.5, "eta_s": 3.0}
    d.send(m.EventsPolled, job_id="job-1", events=(epoch,))
    assert d.run.losses == (rn.LossPoint(1, 1, 1.5, 1.6),) and d.run.last_seq == last + 1
    # the WebSocket comes back and replays the same event: applied once
    d.ws("connected")
    d.send(m.ServerEvent, event=epoch)
    assert len(d.run.losses) == 1
    assert of_type(d.advance(5), m.PollEvents) == []


def test_poll_that_finds_the_job_completed(d: Driver) -> None:
    accepted(d)
    d.ws("reconnecting")
    d.advance(1)
    effects = d.send(m.JobPolled, job_id="job-1", job={"job_id": "job-1", "status": "completed"})
    assert d.run.phase is Phase.IDLE and d.run.message.startswith("Training completed")
    assert effects == (m.LoadResults("job-1"), m.ListJobs())


def test_poll_that_finds_the_job_gone(d: Driver) -> None:
    accepted(d)
    d.ws("reconnecting")
    d.advance(1)
    d.send(m.JobPolled, job_id="job-1", problem=m.Problem(404, "Not Found", "no job job-1"))
    assert d.run.phase is Phase.FAILED and d.run.failure.kind == "lost" and d.run.failure.retryable


def test_poll_errors_keep_waiting(d: Driver) -> None:
    accepted(d)
    d.ws("reconnecting")
    d.advance(1)
    d.send(m.JobPolled, job_id="job-1", problem=m.Problem(None, "connection refused"))
    assert d.run.phase is Phase.PENDING and not d.run.poll_in_flight
    assert of_type(d.advance(2), m.PollJob) == [m.PollJob("job-1")]


def test_hello_after_reconnect_can_confirm(d: Driver) -> None:
    accepted(d)
    hello = {"type": "hello", "app": "candlecast", "seq": 40, "jobs": [{"job_id": "job-1", "status": "running"}]}
    effects = d.send(m.ServerEvent, event=hello)
    assert d.run.phase is Phase.RUNNING and m.ListJobs() in effects


# ---------------------------------------------------------------- running, results, failure, stop


def test_epochs_build_progress_and_the_loss_curve(d: Driver) -> None:
    running(d)
    for epoch, (tl, vl) in enumerate([(2.0, 2.1), (1.5, 1.7)], start=1):
        d.event("training.epoch", "job-1", fold=1, folds=2, epoch=epoch, epochs=2, train_loss=tl, val_loss=vl,
                lr=1e-3, samples_per_s=900.0, elapsed_s=epoch, eta_s=4.0 - epoch, fraction=epoch / 4)
    assert d.run.losses == (rn.LossPoint(1, 1, 2.0, 2.1), rn.LossPoint(1, 2, 1.5, 1.7))
    assert d.run.progress == rn.Progress(1, 2, 2, 2, 0.5, 2.0)
    assert d.run.latest["samples_per_s"] == 900.0
    d.event("training.fold_completed", "job-1", fold=1, metrics={"model": {"crps": 0.003}})
    assert d.run.folds_done == 1 and d.run.fold_metrics == {"model": {"crps": 0.003}}


def test_completed_shows_results(d: Driver) -> None:
    running(d)
    effects = d.event("training.completed", "job-1", metrics={"pooled": {}}, artifacts={}, duration_s=12.34)
    assert d.run.phase is Phase.IDLE and d.run.message == "Training completed"
    assert d.run.ended == "completed"
    assert m.LoadResults("job-1") in effects and m.ListJobs() in effects
    assert d.state.results == r.Results(job_id="job-1", loading=True)
    series = {"time": (1.0, 2.0), "p_up": (0.5, 0.6)}
    job = {"job_id": "job-1", "status": "completed", "started_at": "2024-05-01T12:00:00.100000Z",
           "finished_at": "2024-05-01T12:00:29.000000Z", "metrics": {"duration_s": 28.7}}
    d.send(m.ResultsLoaded, job_id="job-1", job=job, series=series)
    assert d.state.results.job["status"] == "completed" and not d.state.results.loading
    assert d.state.results.series == series
    # One job, one duration: the job's duration_s as the server has it (the Jobs tab's figure), not a clock of the
    # GUI's own nor started_at → finished_at (which adds the worker's start and its imports).
    assert r.job_duration_s(job) == pytest.approx(28.7)
    assert r.job_duration_s({"duration_s": 28.7}) == pytest.approx(28.7)  # a GET /jobs entry says the same
    assert r.job_duration_s({"status": "stopped", "metrics": None}) is None
    assert d.run.message == "Training completed in 28.7 s" and d.run.duration_s == pytest.approx(28.7)
    assert Action.START in c.allowed_actions(d.state)


def test_completion_asks_for_the_jobs_list_once(d: Driver) -> None:
    running(d)
    effects = d.event("training.completed", "job-1", metrics={"pooled": {}}, artifacts={}, duration_s=1.0)
    assert sorted(type(e).__name__ for e in effects) == ["ListJobs", "LoadResults"]


def test_failed_at_any_time_shows_the_error(d: Driver) -> None:
    accepted(d)  # even before the confirmation
    d.event("training.failed", "job-1", stage="data", error_type="CandleError", error="gap at row 5",
            traceback_tail="Traceback…", exit_code=1)
    failure = d.run.failure
    assert d.run.phase is Phase.FAILED
    assert failure == rn.Failure(kind="training", message="Training failed: gap at row 5",
                                stage="data", error_type="CandleError", traceback_tail="Traceback…", exit_code=1)
    assert d.run.message == "Training failed – the error window says why"  # the sentence is shown once
    assert allowed_actions_names(d.state) == {"view_logs", "dismiss", "import"}
    assert d.send(m.DismissClicked) == ()
    assert d.run.phase is Phase.IDLE and d.run.failure is None


def test_failure_details_that_follow_a_bare_status_replace_it(d: Driver) -> None:
    running(d)
    d.event("job.status", "job-1", status="failed", previous="running")
    assert d.run.failure.message == "Training failed: the job failed"
    d.event("training.failed", "job-1", stage="train", error_type="RuntimeError", error="nan loss",
            traceback_tail="", exit_code=1)
    assert d.run.failure.error_type == "RuntimeError"
    d.event("job.status", "job-1", status="failed", previous="running")  # no downgrade
    assert d.run.failure.error_type == "RuntimeError"


def test_stop_is_graceful_and_disabled_while_stopping(d: Driver) -> None:
    running(d)
    assert d.send(m.StopClicked) == (m.StopJob("job-1"),)
    assert d.run.phase is Phase.STOPPING and Action.STOP not in c.allowed_actions(d.state)
    assert d.send(m.StopClicked) == ()  # a second click sends nothing
    d.send(m.StopAnswered, job_id="job-1", status="stopping")
    assert d.run.phase is Phase.STOPPING and d.run.message.startswith("Stopping")
    d.event("training.epoch", "job-1", fold=1, folds=1, epoch=1, epochs=5, train_loss=1.0, val_loss=1.0, fraction=0.2)
    assert len(d.run.losses) == 1  # the epoch in progress still reports
    d.event("training.stopped", "job-1", reason="stop requested")
    assert d.run.phase is Phase.IDLE and d.run.message == "Training stopped (stop requested)"
    assert d.run.ended == "stopped" and d.run.progress.epoch == 1  # the idle screen says where it stopped


def test_how_a_run_ended_is_kept_until_the_next_one_starts(d: Driver) -> None:
    running(d)
    assert d.run.ended is None
    d.event("training.cancelled", "job-1", reason="cancelled before start")
    assert d.run.phase is Phase.IDLE and d.run.ended == "cancelled"
    pending(d, "key-2")
    assert d.run.ended is None and d.run.progress is None
    d.send(m.StartAnswered, key="key-2", attempt=1, job_id="job-2")
    d.event("job.status", "job-2", status="running", previous="starting")
    d.event("training.failed", "job-2", stage="train", error_type="X", error="boom", traceback_tail="", exit_code=1)
    assert d.run.ended == "failed"
    d.send(m.DismissClicked)
    assert d.run.phase is Phase.IDLE and d.run.ended == "failed"
    pending(d, "key-3")
    d.advance(30), d.advance(30), d.advance(30)
    assert d.run.phase is Phase.FAILED and d.run.ended is None  # never confirmed: nothing ran, nothing ended


def test_stop_without_a_terminal_event_checks_the_job(d: Driver) -> None:
    running(d)
    d.send(m.StopClicked)
    assert d.advance(14) == ()
    assert d.advance(1) == (m.PollJob("job-1"),)
    d.send(m.JobPolled, job_id="job-1", job={"job_id": "job-1", "status": "stopped"})
    assert d.run.phase is Phase.IDLE and d.run.message == "Training stopped" and d.run.ended == "stopped"
    running(d)  # the job's own stop_reason, when it has one, says why
    d.send(m.StopClicked)
    d.advance(15)
    d.send(m.JobPolled, job_id="job-1", job={"job_id": "job-1", "status": "stopped", "stop_reason": "pruned by x"})
    assert d.run.message == "Training stopped (pruned by x)"


def test_stop_of_a_job_that_just_finished(d: Driver) -> None:
    running(d)
    d.send(m.StopClicked)
    effects = d.send(m.StopAnswered, job_id="job-1", problem=m.Problem(409, "Conflict", "job already completed"))
    assert effects == (m.PollJob("job-1"),)
    effects = d.send(m.JobPolled, job_id="job-1", job={"job_id": "job-1", "status": "completed"})
    assert d.run.phase is Phase.IDLE and m.LoadResults("job-1") in effects


def test_stop_that_fails_returns_to_running(d: Driver) -> None:
    running(d)
    d.send(m.StopClicked)
    d.send(m.StopAnswered, job_id="job-1", problem=m.Problem(None, "connection refused"))
    assert d.run.phase is Phase.RUNNING and "connection refused" in d.run.message
    assert Action.STOP in c.allowed_actions(d.state)


def test_stop_of_a_queued_job_is_a_cancel(d: Driver) -> None:
    running(d)
    d.send(m.StopClicked)
    d.send(m.StopAnswered, job_id="job-1", status="cancelled")
    assert d.run.phase is Phase.IDLE


# ---------------------------------------------------------------- rejections


def test_422_marks_the_fields_and_returns_to_idle(d: Driver) -> None:
    pending(d)
    problem = m.Problem(422, "Unprocessable Content", "invalid request", errors=(("cv_folds", "must be <= 20"),))
    d.send(m.StartAnswered, key="key-1", attempt=1, problem=problem)
    assert d.run.phase is Phase.IDLE and d.state.field_errors == {"cv_folds": "must be <= 20"}
    assert "cv_folds: must be <= 20" in d.run.message
    d.send(m.StartClicked, config=CONFIG, key="key-2")
    assert d.state.field_errors == {}


def test_other_4xx_is_an_error_dialog_with_retry(d: Driver) -> None:
    pending(d)
    d.send(m.StartAnswered, key="key-1", attempt=1, problem=m.Problem(409, "Conflict", "data folder busy"))
    assert d.run.phase is Phase.FAILED and d.run.failure.kind == "rejected"
    assert "data folder busy" in d.run.failure.message
    assert d.send(m.RetryClicked, key="key-2") == (m.PostStart(CONFIG, "key-2", 1), m.RememberParams(CONFIG))


def test_answers_for_old_requests_are_ignored(d: Driver) -> None:
    running(d)
    before = d.state
    assert d.send(m.StartAnswered, key="key-1", attempt=2, job_id="job-1") == ()
    assert d.state is before


def test_a_server_that_ignores_the_key_gets_the_extra_job_stopped(d: Driver) -> None:
    accepted(d)
    d.advance(30)
    assert d.send(m.StartAnswered, key="key-1", attempt=2, job_id="job-9") == (m.StopJob("job-9"),)
    assert d.run.job_id == "job-1"


# ---------------------------------------------------------------- health, logs, lists, import


def test_health_is_polled_every_10_s_and_on_ws_changes(d: Driver) -> None:
    assert d.state.conn.health_in_flight  # the fixture's WS connect asked at once
    assert d.advance(5) == ()  # one at a time
    d.send(m.HealthAnswered, wall_time=1_700_000_000.0, health={"status": "ok", "version": "0.1.0"})
    assert d.state.conn.rest_ok and d.state.conn.last_ping == 1_700_000_000.0
    assert d.advance(4.9) == ()
    assert d.advance(0.1) == (m.CheckHealth(),)
    d.send(m.HealthAnswered, wall_time=1_700_000_010.0, problem=m.Problem(None, "connection refused"))
    assert d.state.conn.rest_ok is False and d.state.conn.last_ping == 1_700_000_000.0
    assert d.ws("reconnecting") == (m.CheckHealth(),)  # the WS dropped: check REST at once
    assert d.state.conn.ws == "reconnecting"
    assert d.ws("reconnecting") == ()


def test_view_logs_refreshes_every_5_s_while_open(d: Driver) -> None:
    d.send(m.HealthAnswered, wall_time=0.0, health={})  # keep health out of the way
    d.state = replace(d.state, conn=replace(d.state.conn, next_health=1e9))
    assert d.send(m.LogsOpened) == (m.LoadLogTail(None),)
    assert d.advance(5) == ()  # the first read has not answered yet
    d.send(m.LogTailLoaded, job_id=None, lines=("a", "b"), path="/x/backend.log")
    assert d.state.logs.lines == ("a", "b") and d.state.logs.path == "/x/backend.log"
    assert d.advance(0) == (m.LoadLogTail(None),)
    d.send(m.LogTailLoaded, job_id=None, problem=m.Problem(None, "connection refused"))
    assert d.state.logs.lines == ("a", "b") and d.state.logs.problem is not None
    d.send(m.LogsClosed)
    assert d.advance(60) == ()
    # A job's worker log: its file path is looked up (the job's folder) until it is known.
    assert d.send(m.LogsOpened, job_id="job-1") == (m.LoadLogTail("job-1", with_path=True),)
    assert d.state.logs.lines == ()  # another log: start empty
    d.send(m.LogTailLoaded, job_id="job-1", lines=("w",), problem=None)
    assert d.advance(5) == (m.LoadLogTail("job-1", with_path=True),)
    d.send(m.LogTailLoaded, job_id="job-1", lines=("w",), path="/jobs/job-1/worker.log")
    assert d.state.logs.path == "/jobs/job-1/worker.log"
    assert d.advance(5) == (m.LoadLogTail("job-1"),)


def test_jobs_list_and_open_a_past_job(d: Driver) -> None:
    d.send(m.JobsListed, jobs=({"job_id": "a", "status": "completed"},))
    assert d.state.catalog.jobs[0]["job_id"] == "a"
    assert d.send(m.JobsRefreshClicked) == (m.ListJobs(),)
    assert d.send(m.JobOpened, job_id="a") == (m.LoadResults("a"),)
    d.send(m.ResultsLoaded, job_id="b", job={"job_id": "b"})  # a late answer for another job
    assert d.state.results.job is None and d.state.results.loading
    d.send(m.ResultsLoaded, job_id="a", problem=m.Problem(404, "Not Found"))
    assert d.state.results.problem.status == 404 and not d.state.results.loading


def test_import_flow(d: Driver) -> None:
    assert d.send(m.ImportRequested, path="/data/x.csv") == (m.ImportDataset("/data/x.csv", None, None),)
    assert Action.IMPORT not in c.allowed_actions(d.state)
    assert d.send(m.ImportRequested, path="/data/y.csv") == ()
    effects = d.send(m.ImportAnswered, path="/data/x.csv", dataset={"symbol": "BTCUSDT", "rows": 10})
    assert effects == (m.ListDatasets(),) and d.state.importing.show
    d.send(m.ImportReportClosed)
    assert not d.state.importing.show
    d.send(m.ImportRequested, path="/data/bad.csv")
    problem = m.Problem(422, "Unprocessable Content", "no close column")
    assert d.send(m.ImportAnswered, path="/data/bad.csv", problem=problem) == ()
    assert d.state.importing.problem.detail == "no close column"


def test_datasets_listed(d: Driver) -> None:
    d.send(m.DatasetsListed, datasets=({"symbol": "BTCUSDT", "timeframe": "1h"},))
    assert d.state.catalog.datasets[0]["symbol"] == "BTCUSDT"
    d.send(m.DatasetsListed, problem=m.Problem(None, "down"))
    assert d.state.catalog.datasets and d.state.catalog.datasets_problem is not None


def test_tick_with_nothing_due_returns_the_same_state(d: Driver) -> None:
    d.advance(0)
    d.send(m.HealthAnswered, wall_time=0.0, health={})
    before = d.state
    assert d.advance(1) == () and d.state is before


def test_problem_line() -> None:
    assert m.Problem(409, "Conflict", "job already finished").line() == "409 Conflict: job already finished"
    assert m.Problem(None, "connection refused").line() == "connection refused"
    assert m.Problem(500, "Internal Server Error", "Internal Server Error").line() == "500 Internal Server Error"


def test_unknown_symbol_points_to_the_import_and_marks_the_field(d: Driver) -> None:
    pending(d)
    problem = m.Problem(404, "Not Found", "no dataset 'BTCUSDT-1h': import one with `candlecast import FILE …`")
    assert d.send(m.StartAnswered, key="key-1", attempt=1, problem=problem) == ()
    assert d.run.phase is Phase.IDLE and d.run.failure is None  # no error window, so no Retry that can only fail
    assert Action.RETRY not in c.allowed_actions(d.state) and Action.START in c.allowed_actions(d.state)
    assert d.state.field_errors == {"symbol": "no candles for BTCUSDT 1h: import a file with File → Import data…"}
    assert "File → Import data…" in d.run.message and "candlecast import" not in d.run.message
    pending(d, "key-2")
    d.send(m.StartAnswered, key="key-2", attempt=1, problem=problem)
    assert d.state.field_errors == {"symbol": "no candles for BTCUSDT 1h: import a file with File → Import data…"}
    assert d.send(m.FieldEdited, name="seed") == () and "symbol" in d.state.field_errors
    d.send(m.FieldEdited, name="symbol")  # the user types another symbol: the server's word on the old one goes
    assert d.state.field_errors == {}
    picked = {**CONFIG, "dataset": "ETHUSDT-1h"}
    d.send(m.StartClicked, config=picked, key="key-3")
    d.send(m.StartAnswered, key="key-3", attempt=1, problem=problem)
    assert list(d.state.field_errors) == ["dataset"]


def test_start_is_disabled_while_the_server_does_not_answer(d: Driver) -> None:
    d.send(m.HealthAnswered, wall_time=0.0, problem=m.Problem(None, "cannot reach the server"))
    assert Action.START not in c.allowed_actions(d.state)
    assert start_blocked(d.state) == ("The server does not answer (cannot reach the server). Start is enabled "
                                        "again as soon as it does.")
    before = d.state
    assert d.send(m.StartClicked, config=CONFIG, key="key-1") == ()  # ignored, not queued for later
    assert d.state is before
    for _ in range(5):
        assert not of_type(d.advance(10), m.PostStart)
    d.send(m.HealthAnswered, wall_time=1.0, health={"version": "x"})
    assert start_blocked(d.state) is None and Action.START in c.allowed_actions(d.state)
    assert d.run.phase is Phase.IDLE and not of_type(d.effects, m.PostStart)


def test_retry_waits_for_the_server_too(d: Driver) -> None:
    pending(d)
    d.send(m.StartAnswered, key="key-1", attempt=1, problem=m.Problem(409, "Conflict", "busy"))
    d.send(m.HealthAnswered, wall_time=0.0, problem=m.Problem(None, "cannot reach the server"))
    assert Action.RETRY not in c.allowed_actions(d.state) and d.send(m.RetryClicked, key="key-2") == ()
