"""The Sweeps tab's pure state machine (``desktop_app.sweeps_panel``): the form's texts become a space checked by
the server's schema before anything is sent; answers, loads and ticks drive the live view."""

from __future__ import annotations

from desktop_app import sweeps_panel as sp


def test_the_form_texts_become_choices_and_ranges() -> None:
    space = sp.space_from_draft({"lookback": "8, 16,32", "learning_rate": "1e-4 .. 1e-2 log", "seed": " ",
                                 "use_cv": "true, false", "distribution": "gaussian"})
    assert space == {
        "lookback": {"choices": [8, 16, 32]},
        "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
        "use_cv": {"choices": [True, False]},
        "distribution": {"choices": ["gaussian"]},
    }
    request = sp.request_from_draft({"lookback": "8 .. 32"}, {"lookback": 64, "epochs": 3, "final_holdout": "off",
                                                              "dataset": None}, 4, 2, " ")
    assert not isinstance(request, str)
    assert (request.base, request.trials, request.parallel, request.ray_address) == ({"epochs": 3}, 4, 2, None)


def test_a_bad_form_is_one_line_and_sends_nothing() -> None:
    panel = sp.Panel(draft={"lookback": "64 .. 8"})
    panel, effects = sp.update(panel, sp.StartPressed({}, 4, 1, ""))
    assert effects == () and panel.problem == "space.lookback: empty range: low (64) must be below high (8)"
    nothing = sp.request_from_draft({}, {}, 4, 1, "")
    assert nothing == "give choices (a, b, c) or a range (low .. high) for at least one option"
    assert sp.request_from_draft({"lookback": "a .. b"}, {}, 1, 1, "").startswith("lookback: a range is")
    panel, effects = sp.update(panel, sp.DraftEdited("lookback", "8, 16"))
    assert panel.problem is None and effects == ()


def test_start_answer_poll_and_stop() -> None:
    panel, effects = sp.update(sp.Panel(draft={"lookback": "8, 16"}), sp.StartPressed({"epochs": 2}, 3, 1, ""))
    (post,) = effects
    assert isinstance(post, sp.PostSweep) and post.body["space"] == {"lookback": {"choices": [8, 16]}} and panel.busy
    assert sp.update(panel, sp.StartPressed({}, 3, 1, ""))[1] == ()  # one start at a time
    panel, effects = sp.update(panel, sp.Answered(sweep_id="sw-1"))
    assert panel.selected == "sw-1" and not panel.busy and effects == (sp.ListSweeps(), sp.LoadSweep("sw-1"))
    running = {"sweep_id": "sw-1", "status": "running", "trials": []}
    panel, _ = sp.update(panel, sp.Loaded("sw-1", running))
    panel, effects = sp.update(panel, sp.Tick(100.0))
    assert effects == (sp.LoadSweep("sw-1"),) and panel.loading
    assert sp.update(panel, sp.Tick(101.0))[1] == ()  # one load in flight at a time
    panel, _ = sp.update(panel, sp.Loaded("sw-other", {"status": "completed"}))  # not the shown sweep: ignored
    assert panel.sweep == running
    panel, effects = sp.update(panel, sp.StopPressed())
    assert effects == (sp.StopSweep("sw-1"),) and panel.busy
    panel, effects = sp.update(panel, sp.Answered())
    assert effects == (sp.ListSweeps(), sp.LoadSweep("sw-1"))
    panel, effects = sp.update(panel, sp.Loaded("sw-1", {**running, "status": "stopped"}))
    assert effects == (sp.ListSweeps(),) and sp.update(panel, sp.Tick(200.0))[1] == ()  # ended: no more polling


def test_the_newest_sweep_is_shown_and_the_best_so_far_curve() -> None:
    panel, effects = sp.update(sp.Panel(), sp.Listed(({"sweep_id": "sw-2"}, {"sweep_id": "sw-1"})))
    assert panel.selected == "sw-2" and effects == (sp.LoadSweep("sw-2"),)
    trials = [{"number": 0, "state": "complete", "value": 0.70}, {"number": 1, "state": "pruned", "value": None},
              {"number": 2, "state": "complete", "value": 0.71}, {"number": 3, "state": "complete", "value": 0.69}]
    assert sp.best_so_far({"trials": trials}) == ([0.0, 2.0, 3.0], [0.70, 0.70, 0.69])


def _trials(*states: str) -> list[dict]:
    return [{"number": k, "state": s, "value": 0.7 if s == "complete" else None, "params": {}}
            for k, s in enumerate(states)]


def test_the_importance_is_asked_once_per_new_complete_trial_and_shown_sorted() -> None:
    panel = sp.Panel(selected="sw-1")
    sweep = {"sweep_id": "sw-1", "status": "running", "trials": _trials("running")}
    panel, effects = sp.update(panel, sp.Loaded("sw-1", sweep))
    assert effects == ()  # no complete trial: nothing to ask the predictor for
    sweep = {**sweep, "trials": _trials("complete", "pruned", "complete", "running")}
    panel, effects = sp.update(panel, sp.Loaded("sw-1", sweep))
    assert effects == (sp.LoadImportance("sw-1"),) and panel.importance_asked == ("sw-1", 2)
    assert sp.update(panel, sp.Loaded("sw-1", sweep))[1] == ()  # the same complete trials: not asked again
    answer = {"sweep_id": "sw-1", "objective": "log_loss", "evaluator": "fanova", "complete_trials": 2,
              "importances": {"distribution": 0.25, "learning_rate": 0.75}, "note": None}
    panel, effects = sp.update(panel, sp.ImportanceLoaded("sw-1", answer))
    assert effects == () and panel.importance == answer
    assert sp.importance_rows(panel.importance) == [("learning_rate", 0.75), ("distribution", 0.25)]
    # the predictor is down: the last answer stays, with why it was not renewed, and is not asked again each load
    done = {**sweep, "status": "completed", "trials": _trials("complete", "pruned", "complete", "complete")}
    panel, effects = sp.update(panel, sp.Loaded("sw-1", done))
    assert effects == (sp.ListSweeps(), sp.LoadImportance("sw-1"))
    panel, _ = sp.update(panel, sp.ImportanceLoaded("sw-1", problem="503 the predictor process is gone"))
    assert panel.importance == answer and panel.importance_problem == "503 the predictor process is gone"
    assert sp.update(panel, sp.Loaded("sw-1", done))[1] == ()
    panel, effects = sp.update(panel, sp.Opened())  # Refresh asks again
    panel, effects = sp.update(panel, sp.Loaded("sw-1", done))
    assert effects == (sp.LoadImportance("sw-1"),)
    # another sweep: the old importance is dropped, and a late answer for the old one is ignored
    panel, _ = sp.update(panel, sp.Selected("sw-2"))
    assert panel.importance is None and panel.importance_problem is None
    panel, _ = sp.update(panel, sp.ImportanceLoaded("sw-1", answer))
    assert panel.importance is None and sp.importance_rows(None) == []
