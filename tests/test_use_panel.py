"""The GUI's state for using trained jobs, fed messages directly (no window): the newest completed job after a
restart, the Next bar card's requests and answers, the Compare window's rules; the Jobs tab's column sorting, layout
and cut text, and the key figures every list shows."""

from __future__ import annotations

from desktop_app import controller
from desktop_app import messages as m
from desktop_app.job_columns import BY_KEY, COLUMNS, LAYOUT, cut_at_word, ended_because, line_text, sort_jobs
from trainer.key_figures import KEY_FIGURES, key_figures

JOBS = (
    {"job_id": "c", "status": "running", "metrics": None},
    {"job_id": "b", "status": "completed", "metrics": {"crps_skill_garch": 0.01, "direction": "beats_none"}},
    {"job_id": "a", "status": "completed", "metrics": {"crps_skill_garch": 0.03, "direction": "beats_all"}},
)


def step(state, msg):
    return controller.update(state, msg)


def test_after_a_restart_the_results_tab_shows_the_newest_completed_job() -> None:
    state, _ = controller.initial()
    state, effects = step(state, m.JobsListed(now=1.0, jobs=JOBS))
    assert state.results.job_id == "b" and state.results.loading and state.results.auto
    assert effects == (m.LoadResults("b"),)
    again, effects = step(state, m.JobsListed(now=2.0, jobs=JOBS))  # a later refresh keeps what is shown
    assert again.results is state.results and effects == ()


def test_completed_results_ask_for_the_next_bar_and_answers_for_other_jobs_are_dropped() -> None:
    state, _ = controller.initial()
    state, _ = step(state, m.JobOpened(now=1.0, job_id="a"))
    state, effects = step(state, m.ResultsLoaded(now=2.0, job_id="a", job={"job_id": "a", "status": "completed"}))
    assert effects == (m.LoadNextBar("a"),) and state.use.next_bar.loading
    unchanged, effects = step(state, m.NextBarRefreshClicked(now=2.5, job_id="a"))  # already in flight
    assert unchanged is state and effects == ()
    stale, _ = step(state, m.NextBarLoaded(now=3.0, job_id="b", forecast={"p_up": 0.4}))
    assert stale is state
    state, _ = step(state, m.NextBarLoaded(now=3.0, job_id="a", forecast={"p_up": 0.6}))
    assert state.use.next_bar.forecast == {"p_up": 0.6} and not state.use.next_bar.loading
    state, effects = step(state, m.NextBarRefreshClicked(now=4.0, job_id="a"))
    assert effects == (m.LoadNextBar("a"),) and state.use.next_bar.forecast == {"p_up": 0.6}
    problem = m.Problem(409, "Conflict", "no model")
    state, _ = step(state, m.NextBarLoaded(now=5.0, job_id="a", problem=problem))
    assert state.use.next_bar.problem == problem and state.use.next_bar.forecast == {"p_up": 0.6}
    state, _ = step(state, m.JobOpened(now=6.0, job_id="f"))
    state, effects = step(state, m.ResultsLoaded(now=7.0, job_id="f", job={"job_id": "f", "status": "failed"}))
    assert effects == () and state.use.next_bar.job_id is None  # a failed job has no next bar


def test_compare_takes_two_to_four_jobs() -> None:
    state, _ = controller.initial()
    for ids in (("a",), ("a", "a"), ("a", "b", "c", "d", "e")):
        same, effects = step(state, m.CompareClicked(now=1.0, job_ids=ids))
        assert same is state and effects == ()
    state, effects = step(state, m.CompareClicked(now=1.0, job_ids=("a", "b")))
    assert state.use.compare.open and effects == (m.LoadComparison(("a", "b")),)
    stale, _ = step(state, m.ComparisonLoaded(now=2.0, job_ids=("a", "c"), comparison={}))
    assert stale is state
    state, _ = step(state, m.ComparisonLoaded(now=2.0, job_ids=("a", "b"), comparison={"jobs": ["a", "b"]}))
    assert state.use.compare.comparison == {"jobs": ["a", "b"]} and not state.use.compare.loading
    state, _ = step(state, m.CompareClosed(now=3.0))
    assert not state.use.compare.open
    late, _ = step(state, m.ComparisonLoaded(now=4.0, job_ids=("a", "b"), comparison={}))
    assert late is state


def test_sorting_puts_missing_values_last_either_way() -> None:
    assert [j["job_id"] for j in sort_jobs(JOBS, "crps_skill_garch", True)] == ["a", "b", "c"]
    assert [j["job_id"] for j in sort_jobs(JOBS, "crps_skill_garch", False)] == ["b", "a", "c"]
    assert [j["job_id"] for j in sort_jobs(JOBS, "direction", False)] == ["a", "b", "c"]  # beats all first
    assert [j["job_id"] for j in sort_jobs(JOBS, "job_id", False)] == ["a", "b", "c"]
    assert all(isinstance(c.text(JOBS[0]), str) for c in COLUMNS)


def test_the_table_layout_shows_every_field_once_and_ends_with_the_cut_one() -> None:
    placed = [key for column in LAYOUT for line in column for key in line]
    assert sorted(placed) == sorted(c.key for c in COLUMNS)  # every field, none twice
    assert all(1 <= len(column) <= 2 for column in LAYOUT)  # one or two lines per row
    assert LAYOUT[-1] == (("ended_because",),)
    assert all(len(c.header) <= 12 and c.title for c in COLUMNS)  # short names; the full one is the tooltip
    assert BY_KEY["crps_skill_garch"].title == KEY_FIGURES["crps_skill_garch"]
    job = {"symbol": "BTCUSDT", "timeframe": "1h", "horizon": 4}
    assert line_text(job, ("symbol", "timeframe", "horizon")) == "BTCUSDT · 1h · 4"


def test_a_long_text_is_cut_at_a_word_to_what_fits() -> None:
    reason = "the worker was killed by signal 9 (SIGKILL) without a final event"
    assert cut_at_word(reason, lambda t: len(t) <= 80) == reason  # it fits: whole
    assert cut_at_word(reason, lambda t: len(t) <= 30) == "the worker was killed by …"
    assert cut_at_word(reason, lambda t: len(t) <= 31) == "the worker was killed by …"  # never mid-word
    assert cut_at_word(reason, lambda t: len(t) <= 5) == "the …"
    assert cut_at_word(reason, lambda t: len(t) <= 4) == "…"  # not even one word
    calls: list[str] = []
    cut_at_word(" ".join(["word"] * 1000), lambda t: calls.append(t) or len(t) <= 100)
    assert len(calls) <= 12  # bisection, not one try per word


def test_why_a_job_ended_is_its_failure_or_its_stop_reason() -> None:
    assert ended_because({"error": "boom", "stop_reason": None}) == "boom"  # a JobSummary
    assert ended_because({"error": {"error": "boom", "stage": "train"}}) == "boom"  # a Job
    assert ended_because({"error": None, "stop_reason": "pruned by the sweep"}) == "pruned by the sweep"
    assert ended_because({"status": "completed"}) is None
    stopped = {**JOBS[0], "status": "stopped", "stop_reason": "stopped on request"}
    assert BY_KEY["ended_because"].text(stopped) == "stopped on request"


def test_key_figures_of_a_metrics_json() -> None:
    block = {"crps": 0.9, "brier": 0.24, "log_loss": 0.69, "ece": 0.01, "accuracy": 0.52}
    metrics = {"pooled": {
        "n": 100, "model": block,
        "baselines": {"garch": {"crps": 1.0}, "logit_ar1": {"log_loss": 0.70, "brier": 0.25},
                      "gbm": {"log_loss": 0.72, "brier": 0.23}, "majority": {"log_loss": None}},
        "verdicts": {"headline": {"direction": {"outcome": "beats_some"}, "distribution": {"outcome": "beats_all"}}},
    }}
    figures = key_figures(metrics)
    assert set(figures) == set(KEY_FIGURES)
    assert figures["best_conditional"] == "logit_ar1"
    assert abs(figures["crps_skill_garch"] - 0.1) < 1e-12
    assert abs(figures["log_loss_skill_conditional"] - (1 - 0.69 / 0.70)) < 1e-12
    assert figures["direction"] == "beats_some" and figures["n"] == 100
    assert key_figures(None) is None
