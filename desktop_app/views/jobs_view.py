"""The Jobs tab: past and current jobs from ``GET /jobs?include=metrics``, with their key figures, sortable, each
with buttons to open its results or its log, and Compare for 2 to 4 ticked jobs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dearpygui.dearpygui as dpg

from desktop_app import job_columns
from desktop_app import messages as m
from desktop_app.controller import State
from desktop_app.panels.use import COMPARE_MAX, COMPARE_MIN
from desktop_app.views import theme
from trainer.events import JobStatus as S

STATUS_COLOURS = {
    S.COMPLETED: theme.GREEN,
    S.RUNNING: theme.ACCENT,
    S.STARTING: theme.YELLOW,
    S.QUEUED: theme.YELLOW,
    S.FAILED: theme.RED,
    S.INTERRUPTED: theme.RED,
    S.STOPPED: theme.MUTED,
    S.CANCELLED: theme.MUTED,
}


class JobsView:
    """Built in the current container: one row per job with its key figures (``desktop_app.job_columns``), sortable
    by any column (a click on its header), a tick box per job and Compare for 2 to 4 ticked jobs."""

    def __init__(self, dispatch: Callable[..., None], show_results: Callable[[], None]) -> None:
        self._dispatch = dispatch
        self._show_results = show_results
        self._jobs: tuple[dict[str, Any], ...] = ()
        self._sort: tuple[str, bool] | None = None
        self._ticked: set[str] = set()
        self._pool: list[tuple[int | str, ...]] = []  # (row, tick, texts, results, log) per table row
        with dpg.group(horizontal=True):
            dpg.add_button(label="Refresh", callback=lambda: self._dispatch(m.JobsRefreshClicked))
            dpg.add_button(label="Compare", tag="jv_compare", enabled=False, callback=self._compare)
            dpg.add_text("", tag="jv_note", color=theme.MUTED)
        with dpg.table(header_row=True, policy=dpg.mvTable_SizingFixedFit, row_background=True, sortable=True,
                       callback=self._sorted, borders_innerH=True, borders_outerH=True, scrollY=True, scrollX=True,
                       clipper=True, height=-1, tag="jv_table"):
            dpg.add_table_column(label="", no_sort=True, tag="jv_col_tick")
            for column in job_columns.COLUMNS:
                dpg.add_table_column(label=column.title, tag=f"jv_col_{column.key}", user_data=column.key)
            dpg.add_table_column(label="", no_sort=True, tag="jv_col_actions")

    def render(self, state: State, prev: State | None) -> None:
        """Rebuild the rows when the list changed."""
        catalog = state.catalog
        if prev is not None and catalog.jobs is prev.catalog.jobs and catalog.jobs_problem is prev.catalog.jobs_problem:
            return
        problem = catalog.jobs_problem
        count = len(catalog.jobs)
        note = f"could not list jobs: {problem.line()}" if problem else f"{count} job{'s' if count != 1 else ''}"
        dpg.set_value("jv_note", note + "; tick 2 to 4 completed jobs to compare them")
        if prev is not None and catalog.jobs is prev.catalog.jobs:
            return
        self._jobs = catalog.jobs
        self._ticked &= {str(j.get("job_id")) for j in self._jobs if j.get("status") == S.COMPLETED}
        self._rows()

    def _rows(self) -> None:
        """Show the jobs in the current order in the pooled rows (rows are made once and only refilled: building
        1,000 rows of widgets takes ~0.4 s, refilling them a fraction of that)."""
        jobs = job_columns.sort_jobs(self._jobs, *self._sort) if self._sort else list(self._jobs)
        while len(self._pool) < len(jobs):
            self._pool.append(self._new_row(len(self._pool)))
        for index, (row, tick, texts, results, log) in enumerate(self._pool):
            if index >= len(jobs):
                dpg.configure_item(row, show=False)
                continue
            job = jobs[index]
            job_id = str(job.get("job_id", ""))
            status = str(job.get("status", ""))
            completed = status == S.COMPLETED
            dpg.configure_item(row, show=True)
            dpg.configure_item(tick, enabled=completed, user_data=job_id)
            dpg.set_value(tick, job_id in self._ticked)
            for column, text in zip(job_columns.COLUMNS, texts, strict=True):
                dpg.set_value(text, column.text(job))
                if column.key == "status":
                    dpg.configure_item(text, color=STATUS_COLOURS.get(status, theme.TEXT))
            dpg.configure_item(results, enabled=completed, user_data=job_id)
            dpg.configure_item(log, user_data=job_id)
        self._compare_button()

    def _new_row(self, index: int) -> tuple[int | str, ...]:
        """One empty pooled row: (row, tick box, one text per column, Results button, Log button)."""
        with dpg.table_row(parent="jv_table") as row:
            tick = dpg.add_checkbox(callback=self._ticked_changed, tag=f"jv_tick_{index}")
            texts = tuple(dpg.add_text("") for _ in job_columns.COLUMNS)
            with dpg.group(horizontal=True):
                results = dpg.add_button(label="Results", callback=self._open)
                log = dpg.add_button(label="Log", callback=lambda s, a, u: self._dispatch(m.LogsOpened, job_id=u))
        return row, tick, texts, results, log

    def _sorted(self, sender: Any, specs: Any) -> None:
        """Header click: ``specs`` is ``[(column id, direction)]`` (direction < 0: descending) or None."""
        if not specs:
            self._sort = None
        else:
            column, direction = specs[0]
            key = dpg.get_item_user_data(column)
            self._sort = (key, direction < 0) if key in job_columns.BY_KEY else None
        self._rows()

    def _ticked_changed(self, sender: Any, value: bool, job_id: str) -> None:
        (self._ticked.add if value else self._ticked.discard)(job_id)
        self._compare_button()

    def _compare_button(self) -> None:
        n = len(self._ticked)
        dpg.configure_item("jv_compare", enabled=COMPARE_MIN <= n <= COMPARE_MAX,
                           label=f"Compare ({n})" if n else "Compare")

    def _compare(self) -> None:
        order = [str(j.get("job_id")) for j in self._jobs]
        self._dispatch(m.CompareClicked, job_ids=tuple(j for j in order if j in self._ticked))

    def _open(self, sender: Any, app_data: Any, job_id: str) -> None:
        self._dispatch(m.JobOpened, job_id=job_id)
        self._show_results()
