"""The Compare window: 2 to 4 jobs from ``GET /compare`` side by side: the configuration keys that differ
(highlighted), key figures and pooled metrics (the best of each row highlighted, unless the jobs were tested on
different bars: then their test-bar counts are a row and a note says the rows are not comparable bar for bar),
the reliability diagrams (axes fitted to every point) and PIT histograms overlaid, and the Diebold–Mariano test
of each pair's p_up on the test bars they share (job ids in full)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dearpygui.dearpygui as dpg

from desktop_app import messages as m
from desktop_app.controller import State
from desktop_app.views import theme
from trainer.key_figures import COMPARE_ROWS, KEY_FIGURES, best_index, unequal_test_bars

COLOURS = (theme.ACCENT, theme.YELLOW, theme.GREEN, theme.RED)
PLOT_HEIGHT = 260
PIT_BINS = 10
#: The window: at most this wide, a margin from the viewport's edges (sized on each opening, so it fits any screen).
WIDTH = 1100
MARGIN = 20
#: Share of the reliability points' (and the PIT bars') span left free on each side of the plot (none sits on the edge).
PLOT_MARGIN = 0.08
#: Pixels a line of a plot's legend takes (a 16 px font and ImPlot's spacing).
LEGEND_LINE = 20
#: The Diebold–Mariano table's column titles.
DM_COLUMNS = ("A", "B", "shared bars", "score", "mean loss A", "mean loss B", "t", "p", "A is")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.5g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return "–" if value is None else str(value)


class CompareView:
    """A window shown while ``state.use.compare`` is open; closing it dispatches ``CompareClosed``."""

    def __init__(self, dispatch: Callable[..., None]) -> None:
        self._dispatch = dispatch
        self._themes = [_line_theme(colour) for colour in COLOURS]  # one per job column, made once
        self._reference = _line_theme(theme.GREY)  # the perfect forecaster's line: none of the jobs' colours
        with dpg.window(label="Compare jobs", tag="cmp_window", show=False, width=WIDTH, height=600,
                        pos=(MARGIN, MARGIN), on_close=lambda: self._dispatch(m.CompareClosed)):
            dpg.add_text("", tag="cmp_title", wrap=0)
            dpg.add_group(tag="cmp_body")

    def render(self, state: State, prev: State | None) -> None:
        compare = state.use.compare
        if prev is not None and compare is prev.use.compare:
            return
        if compare.open and (prev is None or not prev.use.compare.open):  # opening: fit the window as it is now
            width, height = dpg.get_viewport_client_width(), dpg.get_viewport_client_height()
            dpg.configure_item("cmp_window", pos=(MARGIN, MARGIN), width=min(WIDTH, width - 2 * MARGIN),
                               height=height - 2 * MARGIN)
        dpg.configure_item("cmp_window", show=compare.open)
        if not compare.open:
            return
        names = ", ".join(compare.job_ids)
        dpg.delete_item("cmp_body", children_only=True)
        if compare.loading:
            dpg.set_value("cmp_title", f"Comparing {names}…")
        elif compare.problem is not None:
            dpg.set_value("cmp_title", f"Could not compare {names}: {compare.problem.line()}")
        elif compare.comparison is not None:
            dpg.set_value("cmp_title", f"Comparing {names}")
            self._build(compare.comparison)

    def _build(self, c: dict[str, Any]) -> None:
        ids = c["jobs"]
        with dpg.group(parent="cmp_body"):
            dpg.add_text("Configuration differences", color=theme.ACCENT)
            if not c["differences"]:
                dpg.add_text("Same configuration.", color=theme.MUTED)
            else:
                with dpg.table(header_row=True, borders_innerH=True, tag="cmp_config"):
                    dpg.add_table_column(label="field")
                    for job_id in ids:
                        dpg.add_table_column(label=job_id)
                    for key, values in c["differences"].items():
                        with dpg.table_row():
                            dpg.add_text(key)
                            for value in values:
                                dpg.add_text(_cell(value), color=theme.YELLOW)
            test_bars = unequal_test_bars(c["key_figures"], ids)
            if test_bars is None:
                dpg.add_text("Metrics (pooled test bars; best of each row in green)", color=theme.ACCENT)
            else:  # a lower loss over other bars says nothing of which job forecasts better
                dpg.add_text("Metrics (pooled test bars)", color=theme.ACCENT)
                dpg.add_text("These jobs were tested on different bars (Test bars row): their rows are not comparable "
                             "bar for bar, so no best is marked. The Diebold–Mariano tests below compare each pair "
                             "on the bars both scored (shared bars).", tag="cmp_bars_note", color=theme.YELLOW,
                             wrap=0)
            with dpg.table(header_row=True, borders_innerH=True, tag="cmp_metrics"):
                dpg.add_table_column(label="metric")
                for job_id in ids:
                    dpg.add_table_column(label=job_id)
                if test_bars is not None:
                    with dpg.table_row():
                        dpg.add_text(KEY_FIGURES["n"])
                        for value in test_bars:
                            dpg.add_text(_cell(value), color=theme.YELLOW)
                for where, key, label, sense in COMPARE_ROWS:
                    values = [(c[where].get(j) or {}).get(key) for j in ids]
                    best = best_index(values, sense) if test_bars is None else None
                    with dpg.table_row():
                        dpg.add_text(label)
                        for i, value in enumerate(values):
                            dpg.add_text(_cell(value), color=theme.GREEN if i == best else theme.TEXT)
            with dpg.group(horizontal=True):
                self._reliability(c, ids)
                self._pit(c, ids)
            dpg.add_text("Diebold–Mariano tests of p_up (HAC, 5 %) on the test bars both jobs scored",
                         color=theme.ACCENT)
            # Each column as wide as its widest cell: the job ids whole, so A and B can be told apart.
            with dpg.table(header_row=True, borders_innerH=True, tag="cmp_dm", policy=dpg.mvTable_SizingFixedFit):
                for title in DM_COLUMNS:
                    dpg.add_table_column(label=title)
                row = 0
                for pair in c["pairs"]:
                    tests = pair["tests"] or {"–": {}}
                    for score, test in tests.items():
                        with dpg.table_row():
                            for column, value in enumerate((
                                    pair["a"], pair["b"], pair["n"], score, test.get("a_mean"), test.get("b_mean"),
                                    test.get("t"), test.get("p"),
                                    (test.get("verdict") or "no shared bars").replace("_", " "))):
                                dpg.add_text(_cell(value), tag=f"cmp_dm_{row}_{column}")
                        row += 1

    def _reliability(self, c: dict[str, Any], ids: list[str]) -> None:
        limits = reliability_limits(c["reliability"], ids)
        with _plot("Reliability of p_up", 520, len(ids), "cmp_rel"):
            dpg.add_plot_axis(dpg.mvXAxis, label="mean forecast p_up", tag="cmp_rel_x")
            with dpg.plot_axis(dpg.mvYAxis, label="observed up frequency", tag="cmp_rel_y"):
                if limits is not None:
                    dpg.bind_item_theme(dpg.add_line_series(list(limits), list(limits), label="perfect"),
                                        self._reference)
                for i, job_id in enumerate(ids):
                    rel = c["reliability"].get(job_id)
                    if rel:
                        series = dpg.add_line_series(list(rel["p_mean"]), list(rel["freq"]), label=job_id)
                        dpg.bind_item_theme(series, self._themes[i % len(self._themes)])
            if limits is not None:  # the same range on both axes: the perfect line is the diagonal
                dpg.set_axis_limits("cmp_rel_x", *limits)
                dpg.set_axis_limits("cmp_rel_y", *limits)

    def _pit(self, c: dict[str, Any], ids: list[str]) -> None:
        with _plot("PIT histograms", -1, len(ids), "cmp_pit"):
            dpg.add_plot_axis(dpg.mvXAxis, label="PIT of the realised return")
            with dpg.plot_axis(dpg.mvYAxis, label="share of test bars", tag="cmp_pit_y"):
                dpg.bind_item_theme(dpg.add_inf_line_series([1.0 / PIT_BINS], horizontal=True, label="uniform"),
                                    self._reference)
                for i, job_id in enumerate(ids):
                    pit = c["pit"].get(job_id)
                    if pit:  # each bin over [k/n, (k+1)/n] (steps hold a value to the next x: the end repeats the last)
                        x = [k / len(pit) for k in range(len(pit) + 1)]
                        series = dpg.add_stair_series(x, [*pit, pit[-1]], label=job_id)
                        dpg.bind_item_theme(series, self._themes[i % len(self._themes)])
            dpg.set_axis_limits("cmp_pit_y", *pit_limits(c["pit"], ids))


def reliability_limits(reliability: dict[str, Any], ids: list[str]) -> tuple[float, float] | None:
    """One axis range, within [0, 1], for both axes of the reliability plot that holds every job's points
    (``p_mean`` and ``freq``) with ``PLOT_MARGIN`` of their span free on each side (at least 0.005); None when no
    job has a reliability table."""
    values = [v for j in ids if reliability.get(j) for key in ("p_mean", "freq") for v in reliability[j][key]]
    if not values:
        return None
    low, high = min(values), max(values)
    margin = max(PLOT_MARGIN * (high - low), 0.005)
    return max(0.0, low - margin), min(1.0, high + margin)


def pit_limits(pit: dict[str, Any], ids: list[str]) -> tuple[float, float]:
    """The PIT plot's y range: every job's bin shares (``pit[job_id]``, a list of floats) and the uniform line
    (``1 / PIT_BINS``), with ``PLOT_MARGIN`` of their span (at least 0.005) free below the lowest and above the
    tallest bar, within [0, 1]."""
    values = [1.0 / PIT_BINS, *(v for j in ids for v in pit.get(j) or ())]
    low, high = min(values), max(values)
    margin = max(PLOT_MARGIN * (high - low), 0.005)
    return max(0.0, low - margin), min(1.0, high + margin)


@contextmanager
def _plot(label: str, width: int, jobs: int, tag: str) -> Iterator[int | str]:
    """A plot with its legend below the axes (never over the data: a line per series, the reference and ``jobs``,
    the plot taller by as much), that zooms only with Ctrl held: the mouse wheel scrolls the window, as elsewhere."""
    with dpg.plot(label=label, width=width, height=PLOT_HEIGHT + (jobs + 1) * LEGEND_LINE, tag=tag,
                  zoom_mod=dpg.mvKey_ModCtrl) as plot:
        dpg.add_plot_legend(location=dpg.mvPlot_Location_South, outside=True)
        yield plot


def probe() -> dict[str, Any]:
    """What the GUI test reads of the Compare window: the reliability plot's rectangle (viewport pixels) and axis
    limits, the PIT plot's y-axis limits, per legend of the two plots whether it sits outside the axes, the note on
    unequal test bars (None when not shown), and the Diebold–Mariano table's cells with their rectangles (viewport
    pixels), row by row."""
    if not dpg.does_item_exist("cmp_rel_x"):
        return {"reliability_plot": None, "reliability_axes": None, "pit_axis": None, "legends_outside": None,
                "bars_note": None, "dm_rows": []}
    rows = []
    while dpg.does_item_exist(f"cmp_dm_{len(rows)}_0"):
        cells = [f"cmp_dm_{len(rows)}_{column}" for column in range(len(DM_COLUMNS))]
        rows.append([{"value": dpg.get_value(tag), "x": dpg.get_item_rect_min(tag)[0],
                      "width": dpg.get_item_rect_size(tag)[0]} for tag in cells])
    (x, y), (width, height) = dpg.get_item_rect_min("cmp_rel"), dpg.get_item_rect_size("cmp_rel")
    return {
        "reliability_plot": {"x": x, "y": y, "width": width, "height": height},
        "reliability_axes": [list(dpg.get_axis_limits("cmp_rel_x")), list(dpg.get_axis_limits("cmp_rel_y"))],
        "pit_axis": list(dpg.get_axis_limits("cmp_pit_y")),
        "legends_outside": [dpg.get_item_configuration(legend)["outside"]
                            for plot in ("cmp_rel", "cmp_pit") for legend in dpg.get_item_children(plot, 0)
                            if dpg.get_item_type(legend).endswith("mvPlotLegend")],
        "bars_note": dpg.get_value("cmp_bars_note") if dpg.does_item_exist("cmp_bars_note") else None,
        "dm_rows": rows,
    }


def _line_theme(colour: tuple[int, ...]) -> int | str:
    with dpg.theme() as line:
        with dpg.theme_component(dpg.mvAll):
            dpg.add_theme_color(dpg.mvPlotCol_Line, colour, category=dpg.mvThemeCat_Plots)
    return line
