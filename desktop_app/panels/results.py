"""The Results tab: the job whose results are shown (the run's job once it completed, or one picked in Jobs)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from desktop_app import messages as m
from desktop_app.panels import Effects, Reducer, use
from trainer.events import JobStatus

if TYPE_CHECKING:
    from desktop_app.controller import State


@dataclass(frozen=True)
class Results:
    """The job whose results are shown (the last completed one, or one picked in the Jobs list)."""

    job_id: str | None = None
    job: dict[str, Any] | None = None
    series: dict[str, tuple[float, ...]] = field(default_factory=dict)
    loading: bool = False
    problem: m.Problem | None = None
    auto: bool = False  # the newest completed job, shown at launch (not picked by the user)


def job_duration_s(job: dict[str, Any] | None) -> float | None:
    """A job's training time in seconds as the server reports it: ``metrics.duration_s`` of ``GET /jobs/{id}``,
    or ``duration_s`` of a ``GET /jobs`` entry (the same figure). The one duration the status line, the Elapsed
    field, the Results header, the Jobs tab and ``candlecast jobs`` show. None until the job completed."""
    job = job or {}
    value = (job.get("metrics") or {}).get("duration_s", job.get("duration_s"))
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def open_results(state: State, job_id: str, auto: bool = False) -> tuple[State, Effects]:
    """Show ``job_id``'s results: loading until ``ResultsLoaded`` for it arrives (an older answer is dropped);
    ``auto`` when the app picked it (the newest completed job at launch), not the user."""
    return replace(state, results=Results(job_id=job_id, loading=True, auto=auto)), (m.LoadResults(job_id),)


def _on_job_opened(state: State, msg: m.JobOpened) -> tuple[State, Effects]:
    return open_results(state, msg.job_id)


def _on_results(state: State, msg: m.ResultsLoaded) -> tuple[State, Effects]:
    if msg.job_id != state.results.job_id:
        return state, ()
    results = Results(job_id=msg.job_id, job=msg.job, series=msg.series, loading=False, problem=msg.problem,
                      auto=state.results.auto)
    completed = (msg.job or {}).get("status") == JobStatus.COMPLETED
    panel, effects = use.next_bar_for(state.use, msg.job_id, completed)  # the Next bar card follows the job shown
    return replace(state, results=results, use=panel), effects


REDUCERS: dict[type, Reducer] = {m.JobOpened: _on_job_opened, m.ResultsLoaded: _on_results}
