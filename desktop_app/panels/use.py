"""Using trained jobs (issue 13): the Results tab's Next bar card (the latest candle's forecast of the job shown)
and the Compare window (2 to 4 jobs side by side). Its slice is ``State.use``; the results panel asks for the
Next bar through ``next_bar_for`` when a job's results arrive."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from desktop_app import messages as m
from desktop_app.panels import Effects, Reducer, on_slice
from trainer.events import JobStatus

#: How many jobs the Compare window takes.
COMPARE_MIN, COMPARE_MAX = 2, 4


@dataclass(frozen=True)
class NextBar:
    """The Next bar card: whose forecast, the forecast (``ForecastBar`` + ``training_end``), loading, problem."""

    job_id: str | None = None
    forecast: dict[str, Any] | None = None
    loading: bool = False
    problem: m.Problem | None = None


@dataclass(frozen=True)
class Compare:
    """The Compare window: open or not, which jobs, the ``GET /compare`` answer, loading, problem."""

    open: bool = False
    job_ids: tuple[str, ...] = ()
    comparison: dict[str, Any] | None = None
    loading: bool = False
    problem: m.Problem | None = None


@dataclass(frozen=True)
class UsePanel:
    next_bar: NextBar = NextBar()
    compare: Compare = Compare()


def load_next_bar(panel: UsePanel, job_id: str) -> tuple[UsePanel, Effects]:
    """Ask for ``job_id``'s latest forecast (a completed job's results arrived, or Refresh); a request for the
    same job already in flight is not repeated."""
    bar = panel.next_bar
    if bar.loading and bar.job_id == job_id:
        return panel, ()
    keep = bar.forecast if bar.job_id == job_id else None
    return replace(panel, next_bar=NextBar(job_id, keep, loading=True)), (m.LoadNextBar(job_id),)


def next_bar_for(panel: UsePanel, job_id: str, completed: bool) -> tuple[UsePanel, Effects]:
    """The results of ``job_id`` arrived: ask for its latest forecast if it ``completed``, else clear the card."""
    if completed:
        return load_next_bar(panel, job_id)
    return (panel if panel.next_bar == NextBar() else replace(panel, next_bar=NextBar())), ()


def on_next_bar_refresh(panel: UsePanel, msg: m.NextBarRefreshClicked) -> tuple[UsePanel, Effects]:
    return load_next_bar(panel, msg.job_id)


def on_next_bar_loaded(panel: UsePanel, msg: m.NextBarLoaded) -> tuple[UsePanel, Effects]:
    if msg.job_id != panel.next_bar.job_id:
        return panel, ()  # an answer for a job no longer shown
    if msg.problem is not None:
        return replace(panel, next_bar=replace(panel.next_bar, loading=False, problem=msg.problem)), ()
    return replace(panel, next_bar=NextBar(msg.job_id, msg.forecast)), ()


def on_compare_clicked(panel: UsePanel, msg: m.CompareClicked) -> tuple[UsePanel, Effects]:
    """Open the Compare window for 2 to 4 distinct jobs (other counts change nothing: the button is disabled)."""
    ids = tuple(dict.fromkeys(msg.job_ids))
    if not COMPARE_MIN <= len(ids) <= COMPARE_MAX:
        return panel, ()
    return replace(panel, compare=Compare(open=True, job_ids=ids, loading=True)), (m.LoadComparison(ids),)


def on_compare_closed(panel: UsePanel, msg: m.CompareClosed) -> tuple[UsePanel, Effects]:
    return replace(panel, compare=Compare()), ()


def on_comparison_loaded(panel: UsePanel, msg: m.ComparisonLoaded) -> tuple[UsePanel, Effects]:
    compare = panel.compare
    if not compare.open or msg.job_ids != compare.job_ids:
        return panel, ()
    return replace(panel, compare=replace(compare, loading=False, comparison=msg.comparison,
                                          problem=msg.problem)), ()


REDUCERS: dict[type, Reducer] = {
    m.NextBarRefreshClicked: on_slice("use", on_next_bar_refresh),
    m.NextBarLoaded: on_slice("use", on_next_bar_loaded),
    m.CompareClicked: on_slice("use", on_compare_clicked),
    m.CompareClosed: on_slice("use", on_compare_closed),
    m.ComparisonLoaded: on_slice("use", on_comparison_loaded),
}


def latest_completed(jobs: tuple[dict[str, Any], ...]) -> str | None:
    """The newest completed job of a ``GET /jobs`` list (newest first), or None."""
    return next((str(j["job_id"]) for j in jobs if j.get("status") == JobStatus.COMPLETED), None)
