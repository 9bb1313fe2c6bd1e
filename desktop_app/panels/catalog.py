"""The lists the server keeps: past jobs (the Jobs tab) and stored datasets (the ▾ next to Symbol).

The Jobs list is asked for at launch, on Refresh, on the WebSocket's ``hello`` and whenever any job reaches a
terminal event (over the WebSocket or in a poll), so a finished job shows up without a click.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from desktop_app import messages as m
from desktop_app.panels import Effects, Reducer, results, use
from trainer.events import TERMINAL_EVENTS

if TYPE_CHECKING:
    from desktop_app.controller import State


@dataclass(frozen=True)
class Catalog:
    """Lists from the server: past jobs and stored datasets."""

    jobs: tuple[dict[str, Any], ...] = ()
    jobs_problem: m.Problem | None = None
    datasets: tuple[dict[str, Any], ...] = ()
    datasets_problem: m.Problem | None = None


def _refresh_after(events: Iterable[dict[str, Any]]) -> Effects:
    """``ListJobs`` when ``events`` hold a ``hello`` or a terminal event: the list then has changed."""
    kinds = {event.get("type") for event in events}
    return (m.ListJobs(),) if "hello" in kinds or kinds & TERMINAL_EVENTS else ()


def _on_event(state: State, msg: m.ServerEvent) -> tuple[State, Effects]:
    return state, _refresh_after((msg.event,))


def _on_events_polled(state: State, msg: m.EventsPolled) -> tuple[State, Effects]:
    return state, _refresh_after(msg.events)


def _on_refresh(state: State, msg: m.JobsRefreshClicked) -> tuple[State, Effects]:
    return state, (m.ListJobs(),)


def _on_jobs_listed(state: State, msg: m.JobsListed) -> tuple[State, Effects]:
    if msg.problem is not None:
        return replace(state, catalog=replace(state.catalog, jobs_problem=msg.problem)), ()
    state = replace(state, catalog=replace(state.catalog, jobs=msg.jobs, jobs_problem=None))
    latest = use.latest_completed(msg.jobs)
    if state.results.job_id is None and state.run.job_id is None and latest is not None:  # after a restart
        return results.open_results(state, latest, auto=True)
    return state, ()


def _on_datasets_listed(state: State, msg: m.DatasetsListed) -> tuple[State, Effects]:
    if msg.problem is not None:
        return replace(state, catalog=replace(state.catalog, datasets_problem=msg.problem)), ()
    return replace(state, catalog=replace(state.catalog, datasets=msg.datasets, datasets_problem=None)), ()


REDUCERS: dict[type, Reducer] = {
    m.ServerEvent: _on_event,
    m.EventsPolled: _on_events_polled,
    m.JobsRefreshClicked: _on_refresh,
    m.JobsListed: _on_jobs_listed,
    m.DatasetsListed: _on_datasets_listed,
}
