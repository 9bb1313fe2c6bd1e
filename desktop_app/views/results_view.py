"""The Results tab, from ``GET /jobs/{id}`` and its predictions: the headline verdicts (is the skill real?), the
pooled metrics beside every baseline of ``trainer.scoreboard`` with the cells where the model is worse marked, skill
scores, a reliability diagram, a PIT histogram, and p_up over time against the observed up-rate."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import dearpygui.dearpygui as dpg

from desktop_app import messages as m
from desktop_app.controller import State
from desktop_app.job_columns import ended_because
from desktop_app.panels.results import job_duration_s
from desktop_app.views import theme
from trainer.scoreboard import BASELINES, SUMMARY_ROWS, MetricRow

#: (key in a metric block, label, format, the rule of which way is better, or None for a plain count/rate).
METRICS: tuple[tuple[str, str, str, MetricRow | None], ...] = (
    ("n", "Test bars", "{:,.0f}", None),
    *((row.key, row.label, row.fmt, row) for row in SUMMARY_ROWS),
    ("up_rate", "Up rate (observed)", "{:.3f}", None),
)
#: Headline verdict colours by outcome (``trainer.verdicts.headline``).
OUTCOME_COLOURS = {"beats_all": theme.GREEN, "beats_some": theme.YELLOW, "no_skill": theme.RED, "beats_none": theme.RED}
#: A baseline cell where the model is worse than that baseline on that metric.
WORSE = theme.RED
HEADLINES = ("direction", "distribution")
PLOT_WIDTH = 480
PLOT_HEIGHT = 262
TIME_PLOT_HEIGHT = 320
#: Frames the time plot is drawn with its data's limits before they are released (ImPlot keeps them after).
HOLD_FRAMES = 2
#: The mouse wheel scrolls the tab; only Ctrl + wheel zooms a plot. Without it a plot that scrolls under the
#: pointer catches the wheel and zooms out (the time plot then looked squeezed into part of its axis).
ZOOM_MOD = dpg.mvKey_ModCtrl
SKILLS = (("crps_skill", "CRPS skill"), ("brier_skill", "Brier skill"))
PIT_BINS = 10


def next_bar_text(forecast: dict[str, Any]) -> str:
    """The Next bar card's text: p_up, the 80 % price interval and the candle it starts from, one line each (the
    card's word wrap may break at a comma or point inside a price, so each line stays short)."""
    low, high = forecast["price_intervals"]["80"]
    return (f"p_up {forecast['p_up']:.3f} (raw {forecast['p_up_raw']:.3f}) that the close at "
            f"{forecast['horizon_end'][:16].replace('T', ' ')} UTC is above {forecast['close']:,.2f}\n"
            f"80 % interval of that close: {low:,.2f} – {high:,.2f}\n"
            f"From the candle opened {forecast['open_time'][:16].replace('T', ' ')} UTC, the latest closed one of "
            f"the job's dataset" + _staleness(forecast)
            + "".join(f"\nNote: {sentence}" for sentence in forecast.get("fallbacks", [])))


def _staleness(forecast: dict[str, Any]) -> str:
    """A fourth line when the forecast's candle is later than the last one the model trained on: how much later,
    and that a rerun learns from the newer candles ("" when it is that candle or the answer does not say)."""
    if not forecast.get("training_end"):
        return ""
    later = datetime.fromisoformat(forecast["open_time"]) - datetime.fromisoformat(forecast["training_end"])
    if later <= timedelta(0):
        return ""
    days = later / timedelta(days=1)
    gap = f"{days:.0f} days" if days >= 2 else f"{later / timedelta(hours=1):.0f} hours"
    return (f"\nThe model trained on candles up to {forecast['training_end'][:16].replace('T', ' ')} UTC, {gap} "
            "earlier; a new job with its settings learns from the newer ones")


def fmt(value: Any, pattern: str) -> str:
    """``value`` formatted with ``pattern``, or ``"–"`` for a missing/null number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "–"
    return pattern.format(value)


class ResultsView:
    """Built in the current container."""

    def __init__(self, dispatch: Callable[..., None]) -> None:
        self._dispatch = dispatch
        self._next_job: str | None = None
        #: Frames the time plot must still be drawn with the limits set from its data before they are released
        #: (set on the render thread, counted down in the visible handler's callback).
        self._hold_time_limits = 0
        dpg.add_text("No results yet: train a job, or open one in the Jobs tab.", tag="rv_title", wrap=0)
        with dpg.child_window(tag="rv_next", show=False, height=140, border=True):  # 4 lines, one may wrap; scrolls
            with dpg.group(horizontal=True):
                dpg.add_text("Next bar", color=theme.ACCENT)
                dpg.add_button(label="Refresh", tag="rv_next_refresh", callback=self._refresh_next)
                dpg.add_text("", tag="rv_next_when", color=theme.MUTED)
            dpg.add_text("", tag="rv_next_text", wrap=0)
        with dpg.group(tag="rv_body", show=False):
            for kind in HEADLINES:
                dpg.add_text("", tag=f"rv_verdict_{kind}", wrap=0)
            self._build_table()
            dpg.add_text("Red: the model is worse than that baseline on that metric. Skill = 1 − model score / "
                         "baseline score: above 0 the model beats that baseline. Verdicts: Diebold–Mariano tests "
                         "with HAC errors at 5 % (report.html and docs/metrics.md have the details). The diagram and "
                         "histogram are the model's, pooled over the test folds.", color=theme.MUTED, wrap=0)
            with dpg.group(horizontal=True):  # the two plots side by side under the table, which spans the tab
                with dpg.plot(label="Reliability of p_up", width=PLOT_WIDTH, height=PLOT_HEIGHT,
                              tag="rv_rel", no_mouse_pos=True, zoom_mod=ZOOM_MOD):
                    dpg.add_plot_legend(location=dpg.mvPlot_Location_NorthWest)
                    dpg.add_plot_axis(dpg.mvXAxis, label="mean forecast p_up", tag="rv_rel_x")
                    with dpg.plot_axis(dpg.mvYAxis, label="observed up frequency", tag="rv_rel_y"):
                        dpg.add_line_series([0.0, 1.0], [0.0, 1.0], label="perfect", tag="rv_rel_diag")
                        dpg.add_line_series([], [], label="model", tag="rv_rel_line")
                        dpg.add_scatter_series([], [], tag="rv_rel_points")
                with dpg.plot(label="PIT histogram", width=-1, height=PLOT_HEIGHT,
                              tag="rv_pit", no_mouse_pos=True, zoom_mod=ZOOM_MOD):
                    dpg.add_plot_axis(dpg.mvXAxis, label="PIT of the realised return", tag="rv_pit_x")
                    with dpg.plot_axis(dpg.mvYAxis, label="share of test bars", tag="rv_pit_y"):
                        dpg.add_bar_series([], [], weight=0.9 / PIT_BINS, tag="rv_pit_bars", label="model")
                        dpg.add_inf_line_series([1.0 / PIT_BINS], horizontal=True, label="uniform",
                                                tag="rv_pit_uniform")
            with dpg.plot(label="p_up over time against outcomes", width=-1, height=TIME_PLOT_HEIGHT,
                          tag="rv_time", no_mouse_pos=True, zoom_mod=ZOOM_MOD):
                # Below the plot, in one row: the curves fill the whole width, so no corner inside is free.
                dpg.add_plot_legend(location=dpg.mvPlot_Location_South, horizontal=True, outside=True)
                dpg.add_plot_axis(dpg.mvXAxis, label="time (UTC)", scale=dpg.mvPlotScale_Time, tag="rv_time_x")
                with dpg.plot_axis(dpg.mvYAxis, label="probability of an up move", tag="rv_time_y"):
                    # Drawn in this order: the noisy observed rate under the forecast's mean, which stays visible.
                    dpg.add_line_series([], [], label="p_up (each bar)", tag="rv_time_p")
                    dpg.add_line_series([], [], label="observed up-rate, rolling", tag="rv_time_up")
                    dpg.add_line_series([], [], label="p_up, rolling mean", tag="rv_time_pmean")
            with dpg.item_handler_registry(tag="rv_time_handlers"):
                dpg.add_item_visible_handler(callback=self._time_plot_drawn)
            dpg.bind_item_handler_registry("rv_time", "rv_time_handlers")
            dpg.add_text("Ctrl + mouse wheel zooms the time plot, dragging pans it, a double-click shows all of it "
                         "again.", color=theme.MUTED)
        dpg.bind_item_theme("rv_rel_diag", theme.line_theme(theme.GREY, 1.0))
        dpg.bind_item_theme("rv_rel_line", theme.line_theme(theme.ACCENT))
        dpg.bind_item_theme("rv_pit_bars", theme.fill_theme((110, 170, 255, 200)))
        dpg.bind_item_theme("rv_time_p", theme.line_theme((110, 170, 255, 150), 1.0))
        dpg.bind_item_theme("rv_time_up", theme.line_theme((255, 160, 70, 150), 1.0))
        dpg.bind_item_theme("rv_time_pmean", theme.line_theme(theme.MEAN, 3.0))
        for axis, low, high in (("rv_rel_x", 0, 1), ("rv_rel_y", 0, 1), ("rv_pit_x", 0, 1)):
            dpg.set_axis_limits(axis, low, high)

    @staticmethod
    def _build_table() -> None:
        with dpg.table(header_row=True, policy=dpg.mvTable_SizingStretchProp, row_background=True,
                       borders_innerV=True, borders_outerH=True, borders_outerV=True, tag="rv_table"):
            dpg.add_table_column(label="Pooled, out of fold", init_width_or_weight=1.6)
            dpg.add_table_column(label="Model")
            for entry in BASELINES:
                dpg.add_table_column(label=entry.label)
            dpg.add_table_column(label="Better", init_width_or_weight=0.8)
            for key, label, _, row in METRICS:
                with dpg.table_row():
                    dpg.add_text(label)
                    dpg.add_text("–", tag=f"rv_model_{key}", color=theme.ACCENT)
                    for entry in BASELINES:
                        dpg.add_text("–", tag=f"rv_{entry.name}_{key}")
                    dpg.add_text(row.better_text if row else "", color=theme.MUTED)
            for key, label in SKILLS:
                with dpg.table_row():
                    dpg.add_text(label)
                    dpg.add_text("")
                    for entry in BASELINES:
                        dpg.add_text("–", tag=f"rv_skill_{entry.name}_{key}")
                    dpg.add_text("higher", color=theme.MUTED)

    def render(self, state: State, prev: State | None) -> None:
        """Redraw when another job's results (or the same job's, loaded) arrived."""
        if prev is None or state.use.next_bar is not prev.use.next_bar:
            self._render_next_bar(state.use.next_bar)
        results = state.results
        if prev is not None and results is prev.results:
            return
        if results.job_id is None:
            return
        if results.loading:
            dpg.set_value("rv_title", f"Loading the results of job {results.job_id}…")
            return
        if results.problem is not None:
            dpg.set_value("rv_title", f"Could not load job {results.job_id}: {results.problem.line()}")
            dpg.configure_item("rv_body", show=False)
            return
        job = results.job or {}
        metrics = job.get("metrics") or {}
        pooled = metrics.get("pooled") or {}
        dpg.set_value("rv_title", _title(job, metrics))
        if not pooled:
            dpg.configure_item("rv_body", show=False)
            return
        dpg.configure_item("rv_body", show=True)
        self._verdicts(pooled)
        self._table(pooled)
        self._reliability(pooled.get("model") or {})
        self._pit(pooled.get("model") or {})
        self._time(results.series)

    def _render_next_bar(self, bar: Any) -> None:
        self._next_job = bar.job_id
        dpg.configure_item("rv_next", show=bar.job_id is not None)
        dpg.configure_item("rv_next_refresh", enabled=not bar.loading)
        dpg.set_value("rv_next_when", f"job {bar.job_id}" + (" · loading…" if bar.loading else ""))
        if bar.problem is not None:
            dpg.set_value("rv_next_text", f"No forecast: {bar.problem.plain()}")
        elif bar.forecast is not None:
            dpg.set_value("rv_next_text", next_bar_text(bar.forecast))
        else:
            dpg.set_value("rv_next_text", "")

    def _refresh_next(self) -> None:
        if self._next_job is not None:
            self._dispatch(m.NextBarRefreshClicked, job_id=self._next_job)

    @staticmethod
    def _verdicts(pooled: dict[str, Any]) -> None:
        headline = (pooled.get("verdicts") or {}).get("headline") or {}
        for kind in HEADLINES:
            verdict = headline.get(kind) or {}
            dpg.set_value(f"rv_verdict_{kind}", f"{verdict['text']}." if verdict.get("text") else "")
            dpg.configure_item(f"rv_verdict_{kind}", color=OUTCOME_COLOURS.get(verdict.get("outcome"), theme.TEXT))

    @staticmethod
    def _table(pooled: dict[str, Any]) -> None:
        model = pooled.get("model") or {}
        baselines = pooled.get("baselines") or {}
        skill = pooled.get("skill") or {}
        for key, _, pattern, row in METRICS:
            dpg.set_value(f"rv_model_{key}", fmt(model.get(key), pattern))
            for entry in BASELINES:
                value = (baselines.get(entry.name) or {}).get(key)
                tag = f"rv_{entry.name}_{key}"
                dpg.set_value(tag, fmt(value, pattern))
                worse = row is not None and row.worse(_number(model.get(key)), _number(value))
                dpg.configure_item(tag, color=WORSE if worse else theme.TEXT, user_data="worse" if worse else None)
        for key, _ in SKILLS:
            for entry in BASELINES:
                value = (skill.get(entry.name) or {}).get(key)
                dpg.set_value(f"rv_skill_{entry.name}_{key}", fmt(value, "{:+.4f}"))
                colour = theme.GREEN if isinstance(value, (int, float)) and value > 0 else theme.RED \
                    if isinstance(value, (int, float)) else theme.TEXT
                dpg.configure_item(f"rv_skill_{entry.name}_{key}", color=colour)

    @staticmethod
    def _reliability(model: dict[str, Any]) -> None:
        rel = model.get("reliability") or {}
        pairs = [(p, f) for p, f in zip(rel.get("p_mean") or [], rel.get("freq") or []) if p is not None and f is not None]
        xs, ys = [p for p, _ in pairs], [f for _, f in pairs]
        dpg.set_value("rv_rel_line", [xs, ys])
        dpg.set_value("rv_rel_points", [xs, ys])
        if xs:  # the bins of an up/down forecast crowd around 0.5: zoom there, keep the diagonal in view
            low = max(0.0, min(xs + ys) - 0.05)
            high = min(1.0, max(xs + ys) + 0.05)
            dpg.set_axis_limits("rv_rel_x", low, high)
            dpg.set_axis_limits("rv_rel_y", low, high)

    @staticmethod
    def _pit(model: dict[str, Any]) -> None:
        hist = [h if isinstance(h, (int, float)) else 0.0 for h in (model.get("pit_hist") or [])]
        centres = [(i + 0.5) / len(hist) for i in range(len(hist))]
        dpg.set_value("rv_pit_bars", [centres, hist])
        dpg.set_axis_limits("rv_pit_y", 0.0, max([0.15, *hist]) * 1.15)

    def _time(self, series: dict[str, tuple[float, ...]]) -> None:
        times = list(series.get("time", ()))
        dpg.set_value("rv_time_p", [times, list(series.get("p_up", ()))])
        dpg.set_value("rv_time_pmean", [times, list(series.get("p_up_mean", ()))])
        dpg.set_value("rv_time_up", [times, list(series.get("up_rate", ()))])
        window = int(series["window"][0]) if series.get("window") else 0
        dpg.configure_item("rv_time_pmean", label=f"p_up, mean of {window} bars" if window else "p_up, rolling mean")
        dpg.configure_item("rv_time_up", label=f"observed up-rate, {window} bars" if window else "observed up-rate")
        if times:
            # Limits from the data, not fit_axis_data: a fit is lost when the plot is not drawn that frame (it
            # sits below the visible part of the tab, or in a hidden one), and the first draw then shows a
            # default range. The limits hold until the plot has been drawn with them, then zoom and pan work.
            x_low, x_high = min(times), max(times)
            pad = (x_high - x_low) * 0.01 or 3600.0
            dpg.set_axis_limits("rv_time_x", x_low - pad, x_high + pad)
            values = [v for key in ("p_up", "up_rate") for v in series.get(key, ())]
            dpg.set_axis_limits("rv_time_y", max(0.0, min(values) - 0.02), min(1.0, max(values) + 0.02))
            self._hold_time_limits = HOLD_FRAMES

    def _time_plot_drawn(self, *_: Any) -> None:
        """Each frame the time plot is drawn: release its axes once they were drawn with the data's limits."""
        if self._hold_time_limits <= 0:
            return
        self._hold_time_limits -= 1
        if self._hold_time_limits == 0:
            dpg.set_axis_limits_auto("rv_time_x")
            dpg.set_axis_limits_auto("rv_time_y")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def probe() -> dict[str, Any]:
    """What the GUI test reads of this tab: the headline verdict lines on screen and the baseline cells marked
    worse, as ``[metric key, baseline name]`` pairs."""
    return {
        "verdicts": [dpg.get_value(f"rv_verdict_{kind}") for kind in HEADLINES],
        "worse_cells": [[key, entry.name] for key, *_ in METRICS for entry in BASELINES
                        if dpg.get_item_user_data(f"rv_{entry.name}_{key}") == "worse"],
    }


def _title(job: dict[str, Any], metrics: dict[str, Any]) -> str:
    config = job.get("config") or {}
    parts = [f"Job {job.get('job_id', '?')}", f"{config.get('symbol', '?')} {config.get('timeframe', '')}".strip(),
             str(job.get("status", ""))]
    folds = metrics.get("folds")
    if isinstance(folds, list):
        parts.append(f"{len(folds)} fold{'s' if len(folds) != 1 else ''}")
    if metrics.get("device"):
        parts.append(f"device {metrics['device']}")
    duration = job_duration_s(job)  # the same figure as the status line's "Training completed in …"
    if duration is not None:
        parts.append(f"{duration:.1f} s")
    if not metrics:
        why = ended_because(job)
        parts.append("no metrics (the job did not complete" + (f": {why})" if why else ")"))
    return " · ".join(p for p in parts if p)
