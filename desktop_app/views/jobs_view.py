"""The Jobs tab: past and current jobs from ``GET /jobs?include=metrics``, with their key figures, sortable, each
with buttons to open its results or its log, and Compare for 2 to 4 ticked jobs.

Every field is readable in the default window without sideways scrolling: the fields sit in stacked pairs
(``job_columns.LAYOUT``), the header names them short (the full name is a tooltip) and sorts by the one clicked, and
the last column, why a job ended, takes the width left and is cut at a word to two lines (the full text is a
tooltip). A wider window widens that column.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dearpygui.dearpygui as dpg

from desktop_app import job_columns
from desktop_app import messages as m
from desktop_app.controller import State
from desktop_app.job_columns import LAYOUT
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
#: The column cut to two lines: the last of ``LAYOUT``, a single field.
CUT_KEY = LAYOUT[-1][0][0]
CUT_LINES = 2
#: Sort direction marks after the sorted field's header name.
ARROWS = {False: " ▲", True: " ▼"}


@dataclass(frozen=True)
class _Row:
    """One pooled table row: its tick box, a text per line of each ``LAYOUT`` column but the last, the cut text and
    its tooltip (with the whole text), and the Results and Log buttons."""

    row: int | str
    tick: int | str
    lines: tuple[tuple[int | str, ...], ...]
    cut: int | str
    tip: int | str
    whole: int | str
    results: int | str
    log: int | str


class JobsView:
    """Built in the current container: one row per job with its key figures (``desktop_app.job_columns``), sortable
    by any field (a click on its name in the header), a tick box per job and Compare for 2 to 4 ticked jobs."""

    def __init__(self, dispatch: Callable[..., None], show_results: Callable[[], None]) -> None:
        self._dispatch = dispatch
        self._show_results = show_results
        self._jobs: tuple[dict[str, Any], ...] = ()
        self._sort: tuple[str, bool] | None = None
        self._ticked: set[str] = set()
        self._pool: list[_Row] = []  # rows are made once and only refilled
        self._texts: list[str] = []  # the whole cut-column text of each shown row
        self._cuts: list[tuple[str, float]] = []  # per pooled row: the text and width its cut column was made for
        self._cut_width = 0.0  # pixels of the cut column, measured from its header once drawn (0: not yet)
        # Rows are refilled on the render thread (a new list) and on Dear PyGui's callback thread (a sort, a new
        # width): one at a time.
        self._lock = threading.Lock()
        with dpg.group(horizontal=True):
            dpg.add_button(label="Refresh", callback=lambda: self._dispatch(m.JobsRefreshClicked))
            dpg.add_button(label="Compare", tag="jv_compare", enabled=False, callback=self._compare)
            dpg.add_text("", tag="jv_note", color=theme.MUTED)
        with dpg.group(tag="jv_table_box"), dpg.table(  # the group: a table reports no rectangle of its own
                header_row=False, policy=dpg.mvTable_SizingFixedFit, row_background=True, freeze_rows=1,
                borders_innerH=True, borders_outerH=True, scrollY=True, clipper=True, height=-1, tag="jv_table"):
            for _ in range(len(LAYOUT)):  # the tick box, then LAYOUT's columns but the last: fitted to their texts
                dpg.add_table_column()
            dpg.add_table_column(width_stretch=True, init_width_or_weight=1.0)  # the cut column: the width left
            dpg.add_table_column()  # Results and Log
            self._header()
        dpg.bind_item_theme("jv_table", _table_theme())

    def _header(self) -> None:
        """The frozen first row: each field's short name, a button that sorts by it, with its full name on hover."""
        names = _header_theme()
        with dpg.table_row(parent="jv_table", tag="jv_header"):
            dpg.add_spacer()
            for lines in LAYOUT:
                with dpg.group(tag=f"jv_head_{lines[0][0]}_cell"):
                    for keys in lines:
                        with dpg.group(horizontal=True, horizontal_spacing=0):
                            for index, key in enumerate(keys):
                                if index:
                                    dpg.add_text(job_columns.JOIN, color=theme.MUTED)
                                column = job_columns.BY_KEY[key]
                                dpg.add_button(label=column.header, tag=f"jv_head_{key}", user_data=key,
                                               width=-1 if key == CUT_KEY else 0, callback=self._sort_clicked)
                                dpg.bind_item_theme(f"jv_head_{key}", names)
                                with dpg.tooltip(f"jv_head_{key}"):
                                    dpg.add_text(f"{column.title}: click to sort by it")
            dpg.add_spacer()
        with dpg.item_handler_registry(tag="jv_cut_handlers"):
            dpg.add_item_visible_handler(callback=self._cut_header_drawn)
        dpg.bind_item_handler_registry(f"jv_head_{CUT_KEY}", "jv_cut_handlers")

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
        with self._lock:
            self._jobs = catalog.jobs
            self._ticked &= {str(j.get("job_id")) for j in self._jobs if j.get("status") == S.COMPLETED}
            self._rows()

    def _rows(self) -> None:
        """Show the jobs in the current order in the pooled rows (rows are made once and only refilled: building
        1,000 rows of widgets takes ~0.5 s, refilling them a fraction of that). Call with the lock held."""
        jobs = job_columns.sort_jobs(self._jobs, *self._sort) if self._sort else list(self._jobs)
        while len(self._pool) < len(jobs):
            self._pool.append(self._new_row(len(self._pool)))
            self._cuts.append(("", 0.0))  # a new row shows no text
        self._texts = [job_columns.BY_KEY[CUT_KEY].text(job) for job in jobs]
        for index, row in enumerate(self._pool):
            if index >= len(jobs):
                dpg.configure_item(row.row, show=False)
                continue
            job = jobs[index]
            job_id = str(job.get("job_id", ""))
            status = str(job.get("status", ""))
            completed = status == S.COMPLETED
            dpg.configure_item(row.row, show=True)
            dpg.configure_item(row.tick, enabled=completed, user_data=job_id)
            dpg.set_value(row.tick, job_id in self._ticked)
            for lines, texts in zip(LAYOUT, row.lines):
                for keys, text in zip(lines, texts):
                    dpg.set_value(text, job_columns.line_text(job, keys))
                    if keys == ("status",):
                        dpg.configure_item(text, color=STATUS_COLOURS.get(status, theme.TEXT))
            self._cut(index, self._texts[index])
            dpg.configure_item(row.results, enabled=completed, user_data=job_id)
            dpg.configure_item(row.log, user_data=job_id)
        self._compare_button()

    def _cut(self, index: int, text: str) -> None:
        """Show ``text`` in pooled row ``index``'s last column, cut at a word to ``CUT_LINES`` lines of its width
        (whole until the width is known), with the whole text on hover when it was cut; nothing to do when the row
        already shows it at this width (most rows, on a refresh)."""
        if self._cuts[index] == (text, self._cut_width):
            return
        self._cuts[index] = (text, self._cut_width)
        row = self._pool[index]
        shown = text
        if self._cut_width > 0:
            width = self._cut_width
            most = dpg.get_text_size("\n".join("Ag" for _ in range(CUT_LINES)))[1]
            shown = job_columns.cut_at_word(text, lambda t: dpg.get_text_size(t, wrap_width=width)[1] <= most)
        dpg.set_value(row.cut, shown)
        dpg.set_value(row.whole, text)
        dpg.configure_item(row.tip, show=shown != text)

    def _cut_header_drawn(self, *_: Any) -> None:
        """Each frame the cut column's header is drawn: when that column's width changed (the window was resized,
        or the other columns fit new texts), cut the rows' texts again."""
        width = dpg.get_item_rect_size(f"jv_head_{CUT_KEY}")[0]
        if width <= 0 or width == self._cut_width:
            return
        with self._lock:
            self._cut_width = width
            for index, text in enumerate(self._texts):
                self._cut(index, text)

    def _new_row(self, index: int) -> _Row:
        """One empty pooled row."""
        with dpg.table_row(parent="jv_table") as row:
            tick = dpg.add_checkbox(callback=self._ticked_changed, tag=f"jv_tick_{index}")
            lines = []
            for column in LAYOUT[:-1]:
                with dpg.group():
                    lines.append(tuple(dpg.add_text("") for _ in column))
            cut = dpg.add_text("", wrap=0)  # 0: at the column's edge
            with dpg.tooltip(cut, show=False) as tip:  # hidden until the row shows a cut text
                whole = dpg.add_text("", wrap=480)
            with dpg.group():
                results = dpg.add_button(label="Results", callback=self._open)
                log = dpg.add_button(label="Log", callback=lambda s, a, u: self._dispatch(m.LogsOpened, job_id=u))
        return _Row(row, tick, tuple(lines), cut, tip, whole, results, log)

    def _sort_clicked(self, sender: Any, app_data: Any, key: str) -> None:
        """A field's name in the header: sort by it, ascending first, reversed on the next click."""
        with self._lock:
            descending = self._sort == (key, False)
            if self._sort is not None:
                previous = job_columns.BY_KEY[self._sort[0]]
                dpg.configure_item(f"jv_head_{previous.key}", label=previous.header)
            self._sort = (key, descending)
            dpg.configure_item(f"jv_head_{key}", label=job_columns.BY_KEY[key].header + ARROWS[descending])
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

    def probe(self) -> dict[str, Any]:
        """What the GUI test reads of the table as last drawn (viewport pixels): its ``right`` edge, and for the
        header and each drawn row the ``[left, right]`` extent of every column's content, left to right (tick box,
        ``LAYOUT``'s columns, buttons); each row's ``job_id``, ``cut`` text as shown and ``whole``; the header's
        names and the ``sort``."""

        def extent(item: int | str) -> list[float]:
            (x, _), (w, _) = dpg.get_item_rect_min(item), dpg.get_item_rect_size(item)
            return [x, x + w]

        def drawn(item: int | str) -> bool:
            return dpg.is_item_shown(dpg.get_item_parent(item)) and bool(dpg.get_item_state(item).get("visible"))

        header = [extent(f"jv_head_{lines[0][0]}_cell") for lines in LAYOUT]
        rows = []
        for row, text in zip(self._pool, self._texts):
            if not drawn(row.tick):
                continue
            cells = [row.tick, *(dpg.get_item_parent(texts[0]) for texts in row.lines), row.cut,
                     dpg.get_item_parent(row.results)]
            rows.append({"job_id": dpg.get_item_user_data(row.tick), "cells": [extent(c) for c in cells],
                         "cut": dpg.get_value(row.cut), "whole": text,
                         "cut_height": dpg.get_item_rect_size(row.cut)[1]})
        return {"right": extent("jv_table_box")[1], "header": header, "rows": rows, "sort": self._sort,
                "names": [dpg.get_item_label(f"jv_head_{c.key}") for c in job_columns.COLUMNS],
                "line_height": (dpg.get_text_size("Ag") or (0, 0))[1]}  # None before a font is loaded


def _table_theme() -> int | str:
    """Tighter cells than elsewhere: the table is the widest thing in the app."""
    with dpg.theme() as table:
        with dpg.theme_component(dpg.mvAll):
            dpg.add_theme_style(dpg.mvStyleVar_CellPadding, 4, 3)
            dpg.add_theme_style(dpg.mvStyleVar_FramePadding, 4, 1)
            dpg.add_theme_style(dpg.mvStyleVar_ItemSpacing, 6, 2)
    return table


def _header_theme() -> int | str:
    """The header's names: plain muted text that highlights under the pointer, like Dear PyGui's own header."""
    with dpg.theme() as header:
        with dpg.theme_component(dpg.mvButton):
            dpg.add_theme_color(dpg.mvThemeCol_Button, (0, 0, 0, 0))
            dpg.add_theme_color(dpg.mvThemeCol_Text, theme.MUTED)
            dpg.add_theme_style(dpg.mvStyleVar_ButtonTextAlign, 0, 0.5)
            dpg.add_theme_style(dpg.mvStyleVar_FramePadding, 0, 1)
    return header
