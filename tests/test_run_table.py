"""The run's transition table (``desktop_app.panels.run``): every (phase, message) pair has one place, the buttons
agree with it, and any message in any state keeps to it: no crash, no move the table does not list. And the wiring
around it: every message reaches a panel, every effect has its runtime entry."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from desktop_app import controller as c
from desktop_app import messages as m
from desktop_app.controller import Action
from desktop_app.panels import run as rn
from desktop_app.panels.run import Phase
from desktop_app.runtime import ENDPOINTS

CONFIG = {"symbol": "BTCUSDT", "timeframe": "1h", "epochs": 1, "cv_folds": 1}
NOW = 1000.0
CLICKS = {Action.START: m.StartClicked, Action.CANCEL_START: m.CancelClicked, Action.STOP: m.StopClicked,
          Action.RETRY: m.RetryClicked, Action.DISMISS: m.DismissClicked}


def leaves(cls: type) -> set[type]:
    subclasses = cls.__subclasses__()
    return set().union(*(leaves(sub) for sub in subclasses)) if subclasses else {cls}


MESSAGE_TYPES = leaves(m.Message)


def event(kind: str, seq: int, **fields) -> dict:
    return {"type": kind, "seq": seq, "job_id": "job-1", "timestamp": 0.0, **fields}


def drive(*messages: m.Message) -> c.State:
    state, _ = c.initial()
    for msg in (m.WsChanged(NOW, "connected"), *messages):
        state, _ = c.update(state, msg)
    return state


START = m.StartClicked(NOW, CONFIG, "key-1")
ACCEPTED = (START, m.StartAnswered(NOW, "key-1", 1, "job-1"))
RUNNING = (*ACCEPTED, m.ServerEvent(NOW, event("training.started", 1, origin="worker", pid=7)))
STATES = {
    "idle": drive(),
    "idle, server down": drive(m.HealthAnswered(NOW, 0.0, problem=m.Problem(None, "refused"))),
    "idle after completion": drive(*RUNNING, m.ServerEvent(NOW, event("training.completed", 2))),
    "pending before the 202": drive(START),
    "pending after the 202": drive(*ACCEPTED),
    "running": drive(*RUNNING),
    "stopping": drive(*RUNNING, m.StopClicked(NOW)),
    "failed: not acknowledged": drive(*ACCEPTED, *(m.Tick(NOW + 30 * i) for i in (1, 2, 3))),
    "failed: rejected": drive(START, m.StartAnswered(NOW, "key-1", 1, problem=m.Problem(409, "Conflict"))),
    "failed: training": drive(*RUNNING, m.ServerEvent(NOW, event("training.failed", 2, error="boom"))),
}
JOB = {"job_id": "job-1", "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:01:00+00:00"}
SAMPLES: tuple[m.Message, ...] = (
    m.Tick(NOW + 100), m.StartClicked(NOW, CONFIG, "key-2"), m.CancelClicked(NOW), m.RetryClicked(NOW, "key-2"),
    m.StopClicked(NOW), m.DismissClicked(NOW), m.LogsOpened(NOW, "job-1"), m.LogsClosed(NOW),
    m.JobOpened(NOW, "job-1"), m.JobsRefreshClicked(NOW), m.ImportRequested(NOW, "/x.csv"), m.ImportReportClosed(NOW),
    m.FieldEdited(NOW, "symbol"),
    m.StartAnswered(NOW, "key-1", 1, "job-1"), m.StartAnswered(NOW, "key-1", 1, "job-2"),
    m.StartAnswered(NOW, "key-1", 1, problem=m.Problem(422, "Unprocessable", errors=(("epochs", "too big"),))),
    m.StartAnswered(NOW, "key-1", 1, problem=m.Problem(404, "Not Found")),
    m.StartAnswered(NOW, "key-1", 1, problem=m.Problem(503, "Unavailable")),
    m.StopAnswered(NOW, "job-1", "stopping"), m.StopAnswered(NOW, "job-1", "cancelled"),
    m.StopAnswered(NOW, "job-1", problem=m.Problem(409, "Conflict")),
    m.StopAnswered(NOW, "job-1", problem=m.Problem(500, "Internal")),
    *(m.JobPolled(NOW, "job-1", {"job_id": "job-1", "status": status}) for status in
      ("queued", "running", "completed", "failed", "stopped", "cancelled", "interrupted")),
    m.JobPolled(NOW, "job-1", problem=m.Problem(404, "Not Found")),
    m.EventsPolled(NOW, "job-1", (event("training.epoch", 50, fold=1, epoch=1), event("training.completed", 51))),
    *(m.ServerEvent(NOW, event(kind, 60 + i, origin="worker", status="running")) for i, kind in enumerate(
        ("training.started", "training.epoch", "training.fold_completed", "job.status", "training.completed",
         "training.failed", "training.stopped", "training.cancelled", "unknown.kind"))),
    m.ServerEvent(NOW, {"type": "hello", "jobs": [{"job_id": "job-1", "status": "completed"}]}),
    m.ServerEvent(NOW, {"type": "ping"}), m.WsChanged(NOW, "reconnecting"),
    m.HealthAnswered(NOW, 0.0, {"status": "ok"}), m.JobsListed(NOW, ({"job_id": "job-1"},)),
    m.ResultsLoaded(NOW, "job-1", JOB), m.LogTailLoaded(NOW, None, ("a",)), m.DatasetsListed(NOW, ()),
    m.ImportAnswered(NOW, "/x.csv", {"symbol": "BTCUSDT"}),
    m.NextBarRefreshClicked(NOW, "job-1"), m.NextBarLoaded(NOW, "job-1", {"p_up": 0.5}),
    m.CompareClicked(NOW, ("job-1", "job-2")), m.CompareClosed(NOW),
    m.ComparisonLoaded(NOW, ("job-1", "job-2"), {}),
    m.SweepsRefreshClicked(NOW), m.SweepDraftEdited(NOW, "lookback", "8, 16"),
    m.SweepStartClicked(NOW, CONFIG, 2, 1, "", "key-3"), m.SweepStopClicked(NOW), m.SweepPicked(NOW, "sw-1"),
    m.SweepsListed(NOW, ({"sweep_id": "sw-1", "status": "running"},)),
    m.SweepLoaded(NOW, "sw-1", {"sweep_id": "sw-1", "status": "running", "trials": []}),
    m.SweepStartAnswered(NOW, "key-3", "sw-1"), m.SweepStopAnswered(NOW, "sw-1", "stopping"),
    m.SweepImportanceLoaded(NOW, "sw-1", problem=m.Problem(503, "Unavailable")),
    m.ServerEvent(NOW, {"type": "sweep.started", "seq": 70, "job_id": None, "sweep_id": "sw-2"}),
)


def test_every_phase_and_run_message_has_exactly_one_place() -> None:
    for phase in Phase:
        places = (set(rn.TRANSITIONS[phase]), set(rn.IGNORED[phase]), set(rn.ILLEGAL[phase]))
        assert not places[0] & places[1] and not places[0] & places[2] and not places[1] & places[2], phase
        assert set().union(*places) == rn.MESSAGES, phase
    assert rn.MESSAGES <= MESSAGE_TYPES


def test_every_message_type_has_a_reducer_and_a_sample() -> None:
    assert set(c.ROUTES) == MESSAGE_TYPES
    assert {type(msg) for msg in SAMPLES} == MESSAGE_TYPES


def test_every_network_effect_has_one_runtime_entry_whose_answer_reaches_a_panel() -> None:
    assert set(ENDPOINTS) == leaves(m.Effect) - {m.RememberParams}  # a file write, on the runtime's disk thread
    for effect, (answer, _) in ENDPOINTS.items():
        assert issubclass(answer, m.Answer) and answer in c.ROUTES, effect


@pytest.mark.parametrize("name", STATES)
def test_any_message_in_any_state_keeps_to_the_table(name: str, caplog) -> None:
    state = STATES[name]
    for msg in SAMPLES:
        with caplog.at_level(logging.INFO, logger=rn.__name__):
            new, effects = c.update(state, msg)
        transition = rn.TRANSITIONS[state.run.phase].get(type(msg))
        if transition is None:
            assert new.run is state.run and new.field_errors is state.field_errors, (name, msg)
            assert new.cancel_keys is state.cancel_keys, (name, msg)
        else:
            assert new.run.phase in transition.to, (name, msg, new.run.phase)
        assert all(isinstance(effect, m.Effect) for effect in effects)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("name", STATES)
def test_illegal_clicks_are_logged_and_change_nothing(name: str, caplog) -> None:
    state = STATES[name]
    for msg in SAMPLES:
        if type(msg) not in rn.ILLEGAL[state.run.phase]:
            continue
        caplog.clear()
        with caplog.at_level(logging.INFO, logger=rn.__name__):
            assert c.update(state, msg) == (state, ())
        assert f"{type(msg).__name__} is not allowed while {state.run.phase.value}" in caplog.text


@pytest.mark.parametrize("name", STATES)
def test_the_buttons_agree_with_the_table(name: str) -> None:
    state = STATES[name]
    phase, allowed = state.run.phase, c.allowed_actions(state)
    for action, click in CLICKS.items():
        if action in allowed:
            assert click in rn.TRANSITIONS[phase], (name, action)
        if click in rn.ILLEGAL[phase]:
            assert action not in allowed, (name, action)


def test_the_sample_states_cover_every_phase() -> None:
    assert {state.run.phase for state in STATES.values()} == set(Phase)


def test_a_step_the_table_does_not_list_is_logged_not_raised(monkeypatch, caplog) -> None:
    def to_failed(state: c.State, msg: m.FieldEdited):
        return replace(state, run=replace(state.run, phase=Phase.FAILED)), ()

    monkeypatch.setitem(rn.TRANSITIONS[Phase.IDLE], m.FieldEdited, rn.Transition(to_failed, frozenset({Phase.IDLE})))
    with caplog.at_level(logging.ERROR, logger=rn.__name__):
        state, effects = c.update(STATES["idle"], m.FieldEdited(NOW, "symbol"))
    assert state.run.phase is Phase.FAILED and effects == ()
    assert "FieldEdited while idle led to failed, which TRANSITIONS does not list" in caplog.text
