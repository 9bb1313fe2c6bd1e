"""The Sweeps tab's reducers (``desktop_app.panels.sweeps``): the form's texts become a space checked by the
server's schema before anything is sent; answers, loads, server events and ticks drive the live view."""

from __future__ import annotations

from typing import Any

from desktop_app import controller as c
from desktop_app import messages as m
from desktop_app.panels import sweeps as sw

NOW = 100.0
SWEEP_EFFECTS = (m.ListSweeps, m.LoadSweep, m.PostSweep, m.StopSweep, m.LoadSweepImportance)


def step(state: c.State, msg: m.Message) -> tuple[c.State, tuple[m.Effect, ...]]:
    """``controller.update``, keeping only the Sweeps tab's effects (a Tick also asks for health)."""
    state, effects = c.update(state, msg)
    return state, tuple(e for e in effects if isinstance(e, SWEEP_EFFECTS))


def with_sweeps(**fields: Any) -> c.State:
    return c.State(sweeps=sw.Sweeps(**fields))


def test_the_form_texts_become_choices_and_ranges() -> None:
    space = sw.space_from_draft({"lookback": "8, 16,32", "learning_rate": "1e-4 .. 1e-2 log", "seed": " ",
                                 "use_cv": "true, false", "distribution": "gaussian"})
    assert space == {
        "lookback": {"choices": [8, 16, 32]},
        "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
        "use_cv": {"choices": [True, False]},
        "distribution": {"choices": ["gaussian"]},
    }
    request = sw.request_from_draft({"lookback": "8 .. 32"}, {"lookback": 64, "epochs": 3, "final_holdout": "off",
                                                              "dataset": None}, 4, 2, " ")
    assert not isinstance(request, str)
    assert (request.base, request.trials, request.parallel, request.ray_address) == ({"epochs": 3}, 4, 2, None)


def test_a_bad_form_is_one_line_and_sends_nothing() -> None:
    state, effects = step(with_sweeps(draft={"lookback": "64 .. 8"}), m.SweepStartClicked(NOW, {}, 4, 1, "", "k"))
    assert effects == () and state.sweeps.problem == "space.lookback: empty range: low (64) must be below high (8)"
    nothing = sw.request_from_draft({}, {}, 4, 1, "")
    assert nothing == "give choices (a, b, c) or a range (low .. high) for at least one option"
    assert sw.request_from_draft({"lookback": "a .. b"}, {}, 1, 1, "").startswith("lookback: a range is")
    state, effects = step(state, m.SweepDraftEdited(NOW, "lookback", "8, 16"))
    assert state.sweeps.problem is None and effects == () and state.sweeps.draft == {"lookback": "8, 16"}


def test_start_answer_poll_and_stop() -> None:
    start = m.SweepStartClicked(NOW, {"epochs": 2}, 3, 1, "", "k")
    state, effects = step(with_sweeps(draft={"lookback": "8, 16"}), start)
    (post,) = effects
    assert post == m.PostSweep(post.body, "k") and post.body["space"] == {"lookback": {"choices": [8, 16]}}
    assert state.sweeps.busy
    assert step(state, m.SweepStartClicked(NOW, {}, 3, 1, "", "k2"))[1] == ()  # one start at a time
    state, effects = step(state, m.SweepStartAnswered(NOW, "k", "sw-1"))
    assert state.sweeps.selected == "sw-1" and not state.sweeps.busy
    assert effects == (m.ListSweeps(), m.LoadSweep("sw-1")) and state.sweeps.loading
    running = {"sweep_id": "sw-1", "status": "running", "trials": []}
    state, _ = step(state, m.SweepLoaded(NOW, "sw-1", running))
    assert step(state, m.Tick(NOW + 1))[1] == ()  # not yet: POLL_S after the last load
    state, effects = step(state, m.Tick(NOW + sw.POLL_S))
    assert effects == (m.LoadSweep("sw-1"),) and state.sweeps.loading
    assert step(state, m.Tick(NOW + 2 * sw.POLL_S))[1] == ()  # one load in flight at a time
    state, _ = step(state, m.SweepLoaded(NOW, "sw-other", {"status": "completed"}))  # not the shown sweep: ignored
    assert state.sweeps.sweep == running
    state, effects = step(state, m.SweepStopClicked(NOW))
    assert effects == (m.StopSweep("sw-1"),) and state.sweeps.busy
    state, effects = step(state, m.SweepStopAnswered(NOW, "sw-1", "stopping"))
    assert effects == (m.ListSweeps(), m.LoadSweep("sw-1"))
    state, effects = step(state, m.SweepLoaded(NOW, "sw-1", {**running, "status": "stopped"}))
    assert effects == (m.ListSweeps(),) and step(state, m.Tick(NOW + 100))[1] == ()  # ended: no more polling
    state, effects = step(state, m.SweepStopClicked(NOW))
    assert effects == () and not state.sweeps.busy  # nothing runs: Stop does nothing


def test_a_refused_start_or_list_is_one_line() -> None:
    state, _ = step(with_sweeps(draft={"lookback": "8, 16"}), m.SweepStartClicked(NOW, {}, 3, 1, "", "k"))
    state, effects = step(state, m.SweepStartAnswered(NOW, "k", problem=m.Problem(503, "Service Unavailable",
                                                                                 "the server is shutting down")))
    assert effects == () and not state.sweeps.busy
    assert state.sweeps.problem == "503 Service Unavailable: the server is shutting down"
    state, _ = step(state, m.SweepsListed(NOW, problem=m.Problem(None, "Connection refused")))
    assert state.sweeps.problem == "Connection refused"


def test_the_newest_sweep_is_shown_and_the_best_so_far_curve() -> None:
    state, effects = c.initial()
    assert m.ListSweeps() in effects  # the tab lists the sweeps at launch
    state, effects = step(state, m.SweepsListed(NOW, ({"sweep_id": "sw-2"}, {"sweep_id": "sw-1"})))
    assert state.sweeps.selected == "sw-2" and effects == (m.LoadSweep("sw-2"),)
    trials = [{"number": 0, "state": "complete", "value": 0.70, "job_id": "j0"},
              {"number": 1, "state": "pruned", "value": None, "job_id": "j1"},
              {"number": 2, "state": "complete", "value": 0.71, "job_id": "j2"},
              {"number": 3, "state": "complete", "value": 0.69, "job_id": "j3"}]
    assert sw.best_so_far({"trials": trials}) == ([0.0, 2.0, 3.0], [0.70, 0.70, 0.69])
    assert sw.best_job({"trials": trials, "best": {"trial": 3}}) == "j3"
    assert sw.best_job({"trials": trials, "best": {"trial": 3}, "final": {"final_job_id": "jf"}}) == "jf"
    assert sw.best_job({"trials": trials, "best": None}) is None


def test_the_searched_options_lead_each_trials_parameters() -> None:
    # The fixed options of the space (one choice, an empty range) come after the searched ones, which keep the
    # space's order; an option the space no longer searches but whose trials differ counts as searched.
    space = {"timeframe": {"choices": ["1d"]}, "cv_folds": {"choices": [2, 2]}, "epochs": {"low": 2, "high": 2},
             "distribution": {"choices": ["laplace", "student_t"]}, "learning_rate": {"low": 1e-4, "high": 1e-2}}
    params = [{"timeframe": "1d", "cv_folds": 2, "epochs": 2, "distribution": d, "learning_rate": lr, "seed": s}
              for d, lr, s in (("laplace", 0.00123456, 1), ("student_t", 0.002, 2))]
    sweep = {"request": {"space": space}, "trials": [{"number": i, "params": p} for i, p in enumerate(params)]}
    first = sw.searched(sweep)
    assert first == ["distribution", "learning_rate", "seed"]
    assert sw.params_text(params[0], first) == ("distribution=laplace, learning_rate=0.0012346, seed=1, "
                                                "timeframe=1d, cv_folds=2, epochs=2")
    assert sw.params_text(params[1], first, sep="\n").split("\n")[:2] == ["distribution=student_t",
                                                                         "learning_rate=0.002"]
    assert sw.searched(None) == [] and sw.params_text({}, first) == ""


def _event(kind: str, sweep_id: str, seq: int = 5) -> m.ServerEvent:
    return m.ServerEvent(NOW, {"type": kind, "seq": seq, "job_id": None, "sweep_id": sweep_id, "timestamp": 0.0})


def test_sweep_events_show_a_sweep_started_elsewhere_and_keep_the_shown_one_live() -> None:
    ended = {"sweep_id": "sw-1", "status": "completed", "trials": []}
    state = with_sweeps(selected="sw-1", sweep=ended)
    # `candlecast sweep` started one: the shown sweep has ended, so the new one is shown
    state, effects = step(state, _event("sweep.started", "sw-2"))
    assert state.sweeps.selected == "sw-2" and state.sweeps.sweep is None
    assert effects == (m.ListSweeps(), m.LoadSweep("sw-2"))
    running = {"sweep_id": "sw-2", "status": "running", "trials": []}
    state, _ = step(state, m.SweepLoaded(NOW, "sw-2", running))
    state, effects = step(state, _event("sweep.trial_completed", "sw-2"))
    assert effects == (m.ListSweeps(), m.LoadSweep("sw-2"))
    state, _ = step(state, m.SweepLoaded(NOW, "sw-2", running))
    # while it runs, another sweep's start changes the list only; its trials change nothing here
    state, effects = step(state, _event("sweep.started", "sw-3"))
    assert state.sweeps.selected == "sw-2" and effects == (m.ListSweeps(),)
    assert step(state, _event("sweep.trial_completed", "sw-3"))[1] == ()
    assert step(state, _event("sweep.completed", "sw-3"))[1] == (m.ListSweeps(),)
    assert step(state, m.ServerEvent(NOW, {"type": "hello", "seq": 1, "jobs": []}))[1] == (m.ListSweeps(),)
    assert step(state, _event("training.epoch", "sw-2"))[1] == ()


def _trials(*states: str) -> list[dict]:
    return [{"number": k, "state": s, "value": 0.7 if s == "complete" else None, "params": {}}
            for k, s in enumerate(states)]


def test_the_importance_is_asked_once_per_new_complete_trial_and_shown_sorted() -> None:
    state = with_sweeps(selected="sw-1")
    sweep = {"sweep_id": "sw-1", "status": "running", "trials": _trials("running")}
    state, effects = step(state, m.SweepLoaded(NOW, "sw-1", sweep))
    assert effects == ()  # no complete trial: nothing to ask the predictor for
    sweep = {**sweep, "trials": _trials("complete", "pruned", "complete", "running")}
    state, effects = step(state, m.SweepLoaded(NOW, "sw-1", sweep))
    assert effects == (m.LoadSweepImportance("sw-1"),) and state.sweeps.importance_asked == ("sw-1", 2)
    assert step(state, m.SweepLoaded(NOW, "sw-1", sweep))[1] == ()  # the same complete trials: not asked again
    answer = {"sweep_id": "sw-1", "objective": "log_loss", "evaluator": "fanova", "complete_trials": 2,
              "importances": {"distribution": 0.25, "learning_rate": 0.75}, "note": None}
    state, effects = step(state, m.SweepImportanceLoaded(NOW, "sw-1", answer))
    assert effects == () and state.sweeps.importance == answer
    assert sw.importance_rows(state.sweeps.importance) == [("learning_rate", 0.75), ("distribution", 0.25)]
    # the predictor is down: the last answer stays, with why it was not renewed, and is not asked again each load
    done = {**sweep, "status": "completed", "trials": _trials("complete", "pruned", "complete", "complete")}
    state, effects = step(state, m.SweepLoaded(NOW, "sw-1", done))
    assert effects == (m.ListSweeps(), m.LoadSweepImportance("sw-1"))
    gone = m.Problem(503, "Service Unavailable", "the predictor process is gone")
    state, _ = step(state, m.SweepImportanceLoaded(NOW, "sw-1", problem=gone))
    assert state.sweeps.importance == answer and state.sweeps.importance_problem == gone.line()
    assert step(state, m.SweepLoaded(NOW, "sw-1", done))[1] == ()
    state, effects = step(state, m.SweepsRefreshClicked(NOW))  # Refresh asks again
    assert effects == (m.ListSweeps(), m.LoadSweep("sw-1"))
    state, effects = step(state, m.SweepLoaded(NOW, "sw-1", done))
    assert effects == (m.LoadSweepImportance("sw-1"),)
    # another sweep: the old importance is dropped, and a late answer for the old one is ignored
    state, effects = step(state, m.SweepPicked(NOW, "sw-2"))
    assert effects == (m.LoadSweep("sw-2"),)
    assert state.sweeps.importance is None and state.sweeps.importance_problem is None
    state, _ = step(state, m.SweepImportanceLoaded(NOW, "sw-1", answer))
    assert state.sweeps.importance is None and sw.importance_rows(None) == []
