"""File → Import data…: one ``POST /datasets/import`` at a time, then its report (or error) until closed."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from desktop_app import messages as m
from desktop_app.panels import Effects, Reducer

if TYPE_CHECKING:
    from desktop_app.controller import State


@dataclass(frozen=True)
class Import:
    """Import data…: busy while the request runs; ``show`` while its report (or error) is on screen."""

    busy: bool = False
    path: str | None = None
    dataset: dict[str, Any] | None = None
    problem: m.Problem | None = None
    show: bool = False


def _on_import(state: State, msg: m.ImportRequested) -> tuple[State, Effects]:
    if state.importing.busy:
        return state, ()
    importing = Import(busy=True, path=msg.path)
    return replace(state, importing=importing), (m.ImportDataset(msg.path, msg.symbol, msg.timeframe),)


def _on_answered(state: State, msg: m.ImportAnswered) -> tuple[State, Effects]:
    importing = Import(busy=False, path=msg.path, dataset=msg.dataset, problem=msg.problem, show=True)
    return replace(state, importing=importing), ((m.ListDatasets(),) if msg.problem is None else ())


def _on_closed(state: State, msg: m.ImportReportClosed) -> tuple[State, Effects]:
    return replace(state, importing=replace(state.importing, show=False)), ()


REDUCERS: dict[type, Reducer] = {
    m.ImportRequested: _on_import,
    m.ImportAnswered: _on_answered,
    m.ImportReportClosed: _on_closed,
}
