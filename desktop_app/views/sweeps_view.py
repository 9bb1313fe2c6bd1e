"""The Sweeps tab: the search space from the same form (a range or choices per training option, next to the
option's current value in the control panel), Start/Stop, the sweeps of this server, the shown sweep's live trials
table, its best-so-far plot, its parameter importance (one bar per searched option) and its final result, and
"Open best job" (its results in the Results tab).

Top to bottom: the new sweep's form (its options in three label/text pairs per row, so the whole space shows in
the default 1280x680 window; it folds when a running sweep comes to be shown, a click opens it again), then the shown
sweep: picker and buttons, summary, plot beside the importance, trials table. The tab scrolls as a whole where the
window is shorter.

It draws ``State.sweeps`` (``desktop_app.panels.sweeps``) and turns clicks into its messages, like every view.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import dearpygui.dearpygui as dpg

from desktop_app import form
from desktop_app import messages as m
from desktop_app.controller import State
from desktop_app.panels import sweeps as sw
from desktop_app.views import theme
from trainer.sweep_space import RESERVED

STATE_COLOURS = {"complete": theme.GREEN, "running": theme.ACCENT, "pruned": theme.MUTED, "failed": theme.RED,
                 "waiting": theme.YELLOW}
#: The trials table's columns: ``(title, fixed, size)``: a fixed width in pixels, or a share of what is left.
TRIAL_COLUMNS = (("Trial", True, 40), ("State", True, 72), ("Value", True, 64), ("Parameters", False, 2.0),
                 ("Node", False, 1.0), ("Job", False, 1.5))
HINT = "Per option: empty = the form's value; a, b, c = choices; low .. high (log) = a range."
#: Label/text pairs side by side in the search space.
SPACE_COLUMNS = 3
#: The best-so-far plot, beside the parameter importance (pixels).
PLOT_WIDTH, PLOT_HEIGHT = 420, 200


class SweepsView:
    """Built in the current container. ``dispatch`` is the shell's; ``base()`` gives the control panel's current,
    valid options (or {}); ``open_job(job_id)`` shows a job's results."""

    def __init__(self, dispatch: Callable[..., None], base: Callable[[], dict[str, Any]],
                 open_job: Callable[[str], None]) -> None:
        self._dispatch = dispatch
        self._base = base
        self._open_job = open_job
        with dpg.child_window(width=-1, height=-1, border=False):
            with dpg.collapsing_header(label="New sweep", default_open=True, tag="sw_new"):
                dpg.add_text(HINT, color=theme.MUTED, wrap=0)
                with dpg.group(horizontal=True):  # each name before its field, as in a sentence
                    dpg.add_text("Trials")
                    dpg.add_input_int(default_value=8, min_value=1, min_clamped=True, width=130, tag="sw_trials")
                    dpg.add_text("At once")
                    dpg.add_input_int(default_value=1, min_value=1, min_clamped=True, width=130, tag="sw_parallel")
                    dpg.add_text("Ray address")
                    dpg.add_input_text(hint="empty: on this machine", width=200, tag="sw_ray")
                    dpg.add_button(label="Start sweep", tag="sw_start", callback=self._start)
                dpg.add_text("", tag="sw_problem", color=theme.RED, wrap=0, show=False)
                self._space(dispatch)
            with dpg.group(horizontal=True):
                dpg.add_combo([], label="Sweep", width=360, tag="sw_pick",
                              callback=lambda s, value: dispatch(m.SweepPicked, sweep_id=value.split(" ")[0]))
                dpg.add_button(label="Open best job", tag="sw_open_best", callback=self._open_best)
                dpg.add_button(label="Stop", tag="sw_stop", callback=lambda: dispatch(m.SweepStopClicked))
                dpg.add_button(label="Refresh", callback=lambda: dispatch(m.SweepsRefreshClicked))
            dpg.add_text("", tag="sw_summary", wrap=0)
            with dpg.group(horizontal=True):
                with dpg.plot(label="Best so far (inner walk-forward)", height=PLOT_HEIGHT, width=PLOT_WIDTH):
                    dpg.add_plot_axis(dpg.mvXAxis, label="trial", tag="sw_plot_x")
                    with dpg.plot_axis(dpg.mvYAxis, label="objective", tag="sw_plot_y"):
                        dpg.add_line_series([], [], label="best so far", tag="sw_best_line")
                        dpg.add_scatter_series([], [], label="trials", tag="sw_trial_dots")
                with dpg.group():
                    dpg.add_text("Parameter importance (fANOVA: each option's share of the objective's variance "
                                 "over the complete trials)", color=theme.MUTED, wrap=0)
                    with dpg.table(header_row=False, policy=dpg.mvTable_SizingStretchProp,
                                   tag="sw_importance_table"):
                        dpg.add_table_column(width_fixed=True, init_width_or_weight=160)
                        dpg.add_table_column()
                    dpg.add_text("", tag="sw_importance_note", color=theme.MUTED, wrap=0)
            with dpg.table(header_row=True, policy=dpg.mvTable_SizingStretchProp, row_background=True,
                           borders_innerH=True, tag="sw_trials_table"):  # grows with its rows; the tab scrolls
                for title, fixed, size in TRIAL_COLUMNS:
                    dpg.add_table_column(label=title, width_fixed=fixed, init_width_or_weight=size)
        self._shown: sw.Sweeps | None = None

    @staticmethod
    def _space(dispatch: Callable[..., None]) -> None:
        """The search space: a text per training option, the options down ``SPACE_COLUMNS`` label/text pairs."""
        specs = [spec for spec in form.FIELDS if spec.name not in RESERVED]
        per_column = -(-len(specs) // SPACE_COLUMNS)
        with dpg.table(header_row=False, policy=dpg.mvTable_SizingStretchProp, borders_innerV=True,
                       tag="sw_space"):
            for _ in range(SPACE_COLUMNS):
                dpg.add_table_column(width_fixed=True)
                dpg.add_table_column(width_stretch=True, init_width_or_weight=1.0)
            for row in range(per_column):
                with dpg.table_row():
                    for spec in specs[row::per_column]:
                        dpg.add_text(spec.label)
                        dpg.add_input_text(
                            width=-1, user_data=spec.name, tag=f"sw_space_{spec.name}",
                            callback=lambda s, text, name: dispatch(m.SweepDraftEdited, name=name, text=text))
        dpg.bind_item_theme("sw_space", _space_theme())

    def _start(self) -> None:
        self._dispatch(m.SweepStartClicked, base=self._base(), trials=dpg.get_value("sw_trials"),
                       parallel=dpg.get_value("sw_parallel"), ray_address=dpg.get_value("sw_ray"),
                       key=str(uuid.uuid4()))

    def _open_best(self) -> None:
        job_id = sw.best_job(self._shown.sweep if self._shown else None)
        if job_id:
            self._open_job(job_id)

    def render(self, state: State, prev: State | None) -> None:
        """Redraw what changed in ``state.sweeps``."""
        panel = state.sweeps
        shown, self._shown = self._shown, panel
        if shown is panel:
            return
        dpg.set_value("sw_problem", panel.problem or "")
        dpg.configure_item("sw_problem", show=bool(panel.problem))
        if sw.running(panel) and not (shown is not None and sw.running(shown) and shown.selected == panel.selected):
            dpg.set_value("sw_new", False)  # a running sweep has come to be shown: fold the form to show it
        dpg.configure_item("sw_start", enabled=not panel.busy)
        dpg.configure_item("sw_stop", enabled=sw.running(panel) and not panel.busy)
        if shown is None or panel.sweeps is not shown.sweeps:
            dpg.configure_item("sw_pick", items=[f"{s['sweep_id']} ({s['status']})" for s in panel.sweeps])
        if panel.selected:
            status = panel.sweep["status"] if panel.sweep else "…"
            dpg.set_value("sw_pick", f"{panel.selected} ({status})")
        if (shown is None or panel.importance is not shown.importance
                or panel.importance_problem != shown.importance_problem):
            self._draw_importance(panel)
        if shown is not None and panel.sweep is shown.sweep:
            return
        sweep = panel.sweep or {}
        dpg.set_value("sw_summary", _summary(sweep))
        dpg.configure_item("sw_plot_y", label=sweep["request"]["objective"] if sweep else "objective")
        dpg.configure_item("sw_open_best", enabled=sw.best_job(sweep) is not None)
        xs, ys = sw.best_so_far(sweep)
        dpg.set_value("sw_best_line", [xs, ys])
        done = [t for t in sweep.get("trials", []) if t.get("value") is not None]
        dpg.set_value("sw_trial_dots", [[float(t["number"]) for t in done], [float(t["value"]) for t in done]])
        if xs:
            dpg.fit_axis_data("sw_plot_x")
            dpg.fit_axis_data("sw_plot_y")
        for row in dpg.get_item_children("sw_trials_table", 1) or []:
            dpg.delete_item(row)
        first = sw.searched(sweep)  # the options that tell the trials apart lead each row, none cut off
        for trial in sweep.get("trials", []):
            with dpg.table_row(parent="sw_trials_table"):
                dpg.add_text(str(trial["number"]))
                dpg.add_text(trial["state"], color=STATE_COLOURS.get(trial["state"], theme.TEXT))
                dpg.add_text(sw.short(trial["value"]) if trial["value"] is not None else "–")
                params = dpg.add_text(sw.params_text(trial["params"], first))
                with dpg.tooltip(params):  # the cell is cut at the column's edge: every option, one a line
                    dpg.add_text(sw.params_text(trial["params"], first, sep="\n"))
                dpg.add_text((trial.get("node_id") or "local")[:12])
                dpg.add_button(label=trial.get("job_id") or "–", enabled=bool(trial.get("job_id")),
                               user_data=trial.get("job_id"), callback=lambda s, a, job_id: self._open_job(job_id))

    @staticmethod
    def _draw_importance(panel: sw.Sweeps) -> None:
        for row in dpg.get_item_children("sw_importance_table", 1) or []:
            dpg.delete_item(row)
        for name, share in sw.importance_rows(panel.importance):
            with dpg.table_row(parent="sw_importance_table"):
                dpg.add_text(name)
                dpg.add_progress_bar(default_value=share, overlay=f"{share:.0%}", width=-1)
        lines = [(panel.importance or {}).get("note") or "", panel.importance_problem or ""]
        if panel.importance is None and not panel.importance_problem:
            lines[0] = "shown once a trial has completed"
        dpg.set_value("sw_importance_note", "\n".join(line for line in lines if line))


def _space_theme() -> int | str:
    """Snug rows, so the whole space shows above the sweep's plot and trials."""
    with dpg.theme() as snug:
        with dpg.theme_component(dpg.mvAll):
            dpg.add_theme_style(dpg.mvStyleVar_CellPadding, 5, 2)
            dpg.add_theme_style(dpg.mvStyleVar_FramePadding, 6, 3)
    return snug


def _summary(sweep: dict[str, Any]) -> str:
    """The sweep's state in a few lines: progress, best so far, and once completed both scores and the verdicts."""
    if not sweep:
        return "No sweep shown."
    objective = sweep["request"]["objective"]
    lines = [f"{sweep['status']}: {sweep['done']} of {sweep['total']} trials"]
    if sweep.get("best"):
        best = sweep["best"]
        lines.append(f"best so far: trial {best['trial']}, {objective} {best['value']:.5f} on the inner walk-forward")
    final = sweep.get("final")
    if final and final.get("final_value") is not None:
        lines.append(f"final untouched test period (scored once): {objective} {final['final_value']:.5f}")
        headline = (final.get("verdicts") or {}).get("headline") or {}
        lines += [headline[part]["text"] for part in ("direction", "distribution") if headline.get(part)]
    elif final and final.get("final_error"):
        lines.append(f"final test period not scored: {final['final_error']}")
    if sweep.get("error"):
        lines.append(f"error: {sweep['error']}")
    return "\n".join(lines)


def probe() -> dict[str, Any]:
    """What the GUI test reads of this tab, as drawn: the sweep picked, the summary, the trials table's rows
    (``{number, state, value, params, node, job, params_tip}``, ``params_tip``: the parameters' tooltip), the
    best-so-far line's points, the importance bars (``[option, share]``), whether the new sweep's form is open, and
    the search space's options, all of them and those the last frame drew in view."""
    rows = []
    for row in dpg.get_item_children("sw_trials_table", 1) or []:
        children = dpg.get_item_children(row, 1) or []
        tips = [child for child in children if dpg.get_item_type(child).endswith("mvTooltip")]
        cells = [child for child in children if child not in tips]
        texts = [dpg.get_value(cell) for cell in cells[:-1]]
        job = dpg.get_item_user_data(cells[-1]) if cells else None
        tip = dpg.get_value(dpg.get_item_children(tips[0], 1)[0]) if tips else None
        rows.append(dict(zip(("number", "state", "value", "params", "node"), texts), job=job, params_tip=tip))
    bars = []
    for row in dpg.get_item_children("sw_importance_table", 1) or []:
        name, bar = dpg.get_item_children(row, 1)[:2]
        bars.append([dpg.get_value(name), dpg.get_value(bar)])
    xs = dpg.get_value("sw_best_line")[0]
    space = [spec.name for spec in form.FIELDS if spec.name not in RESERVED]
    return {"form_open": dpg.get_value("sw_new"), "space": space,
            "space_drawn": [name for name in space if dpg.get_item_state(f"sw_space_{name}").get("visible")],
            "picked": dpg.get_value("sw_pick"), "summary": dpg.get_value("sw_summary"),
            "problem": dpg.get_value("sw_problem"), "trials": rows, "best_points": len(xs), "importance": bars,
            "importance_note": dpg.get_value("sw_importance_note")}
