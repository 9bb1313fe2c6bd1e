"""The Compare window: 2 to 4 jobs from ``GET /compare`` side by side: the configuration keys that differ
(highlighted), key figures and pooled metrics (the best of each row highlighted), the reliability diagrams and
PIT histograms overlaid, and the Diebold–Mariano test of each pair's p_up on the test bars they share."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import dearpygui.dearpygui as dpg

from desktop_app import messages as m
from desktop_app.controller import State
from desktop_app.views import theme
from trainer.key_figures import COMPARE_ROWS, best_index

COLOURS = (theme.ACCENT, theme.YELLOW, theme.GREEN, theme.RED)
PLOT_HEIGHT = 260
PIT_BINS = 10
#: The window: at most this wide, a margin from the viewport's edges (sized on each opening, so it fits any screen).
WIDTH = 1100
MARGIN = 20


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
            dpg.add_text("Metrics (pooled test bars; best of each row in green)", color=theme.ACCENT)
            with dpg.table(header_row=True, borders_innerH=True, tag="cmp_metrics"):
                dpg.add_table_column(label="metric")
                for job_id in ids:
                    dpg.add_table_column(label=job_id)
                for where, key, label, sense in COMPARE_ROWS:
                    values = [(c[where].get(j) or {}).get(key) for j in ids]
                    best = best_index(values, sense)
                    with dpg.table_row():
                        dpg.add_text(label)
                        for i, value in enumerate(values):
                            dpg.add_text(_cell(value), color=theme.GREEN if i == best else theme.TEXT)
            with dpg.group(horizontal=True):
                self._reliability(c, ids)
                self._pit(c, ids)
            dpg.add_text("Diebold–Mariano tests of p_up (HAC, 5 %) on the test bars both jobs scored",
                         color=theme.ACCENT)
            with dpg.table(header_row=True, borders_innerH=True, tag="cmp_dm"):
                for title in ("A", "B", "shared bars", "score", "mean loss A", "mean loss B", "t", "p", "A is"):
                    dpg.add_table_column(label=title)
                for pair in c["pairs"]:
                    tests = pair["tests"] or {"–": {}}
                    for score, test in tests.items():
                        with dpg.table_row():
                            for value in (pair["a"], pair["b"], pair["n"], score, test.get("a_mean"),
                                          test.get("b_mean"), test.get("t"), test.get("p"),
                                          (test.get("verdict") or "no shared bars").replace("_", " ")):
                                dpg.add_text(_cell(value))

    def _reliability(self, c: dict[str, Any], ids: list[str]) -> None:
        with dpg.plot(label="Reliability of p_up", width=520, height=PLOT_HEIGHT, tag="cmp_rel"):
            dpg.add_plot_legend()
            dpg.add_plot_axis(dpg.mvXAxis, label="mean forecast p_up")
            with dpg.plot_axis(dpg.mvYAxis, label="observed up frequency") as axis:
                lows = [min(c["reliability"][j]["p_mean"]) for j in ids if c["reliability"].get(j)]
                highs = [max(c["reliability"][j]["p_mean"]) for j in ids if c["reliability"].get(j)]
                if lows:
                    dpg.add_line_series([min(lows), max(highs)], [min(lows), max(highs)], label="perfect")
                for i, job_id in enumerate(ids):
                    rel = c["reliability"].get(job_id)
                    if rel:
                        series = dpg.add_line_series(list(rel["p_mean"]), list(rel["freq"]), label=job_id)
                        dpg.bind_item_theme(series, self._themes[i % len(self._themes)])
                dpg.fit_axis_data(axis)

    def _pit(self, c: dict[str, Any], ids: list[str]) -> None:
        with dpg.plot(label="PIT histograms", width=-1, height=PLOT_HEIGHT, tag="cmp_pit"):
            dpg.add_plot_legend()
            dpg.add_plot_axis(dpg.mvXAxis, label="PIT of the realised return")
            with dpg.plot_axis(dpg.mvYAxis, label="share of test bars") as axis:
                dpg.add_inf_line_series([1.0 / PIT_BINS], horizontal=True, label="uniform")
                for i, job_id in enumerate(ids):
                    pit = c["pit"].get(job_id)
                    if pit:
                        x = [(k + 0.5) / len(pit) for k in range(len(pit))]
                        series = dpg.add_stair_series(x, list(pit), label=job_id)
                        dpg.bind_item_theme(series, self._themes[i % len(self._themes)])
                dpg.fit_axis_data(axis)


def _line_theme(colour: tuple[int, ...]) -> int | str:
    with dpg.theme() as line:
        with dpg.theme_component(dpg.mvAll):
            dpg.add_theme_color(dpg.mvPlotCol_Line, colour, category=dpg.mvThemeCat_Plots)
    return line
