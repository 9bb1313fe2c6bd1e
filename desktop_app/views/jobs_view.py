"""The Jobs tab: past and current jobs from ``GET /jobs``, each with buttons to open its results or its log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dearpygui.dearpygui as dpg

from desktop_app import messages as m
from desktop_app.controller import State
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
COLUMNS = ("Job", "Status", "Symbol", "Timeframe", "Created (UTC)", "Finished (UTC)", "")


def short_time(iso: Any) -> str:
    """``"2024-05-01T12:00:03.123Z"`` → ``"2024-05-01 12:00:03"``; missing → ``"–"``."""
    if not isinstance(iso, str) or len(iso) < 19:
        return "–"
    return iso[:10] + " " + iso[11:19]


class JobsView:
    """Built in the current container; ``open_logs(job_id)`` opens View Logs on a job's worker log."""

    def __init__(self, dispatch: Callable[..., None], show_results: Callable[[], None]) -> None:
        self._dispatch = dispatch
        self._show_results = show_results
        with dpg.group(horizontal=True):
            dpg.add_button(label="Refresh", callback=lambda: self._dispatch(m.JobsRefreshClicked))
            dpg.add_text("", tag="jv_note", color=theme.MUTED)
        with dpg.table(header_row=True, policy=dpg.mvTable_SizingStretchProp, row_background=True,
                       borders_innerH=True, borders_outerH=True, scrollY=True, height=-1, tag="jv_table"):
            for title in COLUMNS:
                dpg.add_table_column(label=title)

    def render(self, state: State, prev: State | None) -> None:
        """Rebuild the rows when the list changed."""
        catalog = state.catalog
        if prev is not None and catalog.jobs is prev.catalog.jobs and catalog.jobs_problem is prev.catalog.jobs_problem:
            return
        problem = catalog.jobs_problem
        count = len(catalog.jobs)
        note = f"could not list jobs: {problem.line()}" if problem else f"{count} job{'s' if count != 1 else ''}"
        dpg.set_value("jv_note", note)
        if prev is not None and catalog.jobs is prev.catalog.jobs:
            return
        for row in dpg.get_item_children("jv_table", 1) or []:
            dpg.delete_item(row)
        for job in catalog.jobs:
            job_id = str(job.get("job_id", ""))
            status = str(job.get("status", ""))
            with dpg.table_row(parent="jv_table"):
                dpg.add_text(job_id)
                dpg.add_text(status, color=STATUS_COLOURS.get(status, theme.TEXT))
                dpg.add_text(str(job.get("symbol", "")))
                dpg.add_text(str(job.get("timeframe", "")))
                dpg.add_text(short_time(job.get("created_at")))
                dpg.add_text(short_time(job.get("finished_at")))
                with dpg.group(horizontal=True):
                    dpg.add_button(label="Results", user_data=job_id, callback=self._open,
                                   enabled=status == S.COMPLETED)
                    dpg.add_button(label="Log", user_data=job_id,
                                   callback=lambda s, a, u: self._dispatch(m.LogsOpened, job_id=u))

    def _open(self, sender: Any, app_data: Any, job_id: str) -> None:
        self._dispatch(m.JobOpened, job_id=job_id)
        self._show_results()
