"""The Training tab: the run's phase and message, a progress bar (fold k/K, epoch e/E, ETA), the live
train/validation loss plot with fold boundaries, and the latest epoch's figures."""

from __future__ import annotations

import math

import dearpygui.dearpygui as dpg

from desktop_app.controller import State
from desktop_app.panels.run import Phase, Run
from desktop_app.series import epoch_ticks, loss_segments
from desktop_app.views import theme
from trainer.events import JobStatus as S

#: Space left around the loss curves when the axes fit them (share of the data range: x, y), so no line touches
#: the plot's edge.
FIT_PADDING = (0.08, 0.2)
#: The run's own line (the left panel shows it too) is repeated in the header only while the run goes on.
ACTIVE = (Phase.PENDING, Phase.RUNNING, Phase.STOPPING)
FIGURES = (
    ("train_loss", "Train loss", "{:.4f}"),
    ("val_loss", "Val loss", "{:.4f}"),
    ("lr", "Learning rate", "{:.2e}"),
    ("samples_per_s", "Samples/s", "{:,.0f}"),
    ("elapsed_s", "Elapsed", None),
)


def eta_text(seconds: float | None) -> str:
    """``95`` → ``"1:35"``, ``3700`` → ``"1:01:40"``; unknown → ``"–"``."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "–"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


#: What the worker does after the last fold's training.fold_completed until training.completed (``trainer.train``:
#: the pooled scores and verdicts, the final model refitted on all the data, then model.pt, metrics.json and
#: report.html). No event marks these steps; on the default job they take about half a minute.
FINISHING = "pooled scores and verdicts, fitting the final model on all data, writing the report"

#: The overlay's first words once a run has ended (``Run.ended``).
ENDED = {S.COMPLETED: "Completed", S.STOPPED: "Stopped", S.CANCELLED: "Cancelled", S.FAILED: "Failed"}


def progress_text(run: Run) -> str:
    """The progress bar's overlay: ``"Fold 2/5 · Epoch 3/20 · 27 % · ETA 1:35"`` while the run goes on, ``"All 5
    folds done · pooled scores and verdicts, …"`` (``FINISHING``) once the last fold is scored and the job is not yet
    complete (the ETA covers only the folds' training); ``"Stopped at fold 2/5 · epoch 3/20 (27 % done)"`` once it
    has ended (no ETA: nothing is coming)."""
    p = run.progress
    ended = ENDED.get(run.ended) if run.ended and run.phase in (Phase.IDLE, Phase.FAILED) else None
    if ended and run.ended == S.COMPLETED:
        return f"{ended} · {p.folds} fold{'s' if p.folds != 1 else ''}" if p and p.folds else ended
    if ended:
        if p is None:
            return f"{ended} before the first epoch"
        return f"{ended} at fold {p.fold}/{p.folds} · epoch {p.epoch}/{p.epochs} ({p.fraction:.0%} done)"
    if p is None:
        return "waiting for the first epoch" if run.phase in (Phase.PENDING, Phase.RUNNING) else ""
    if run.phase is Phase.RUNNING and p.folds and run.folds_done >= p.folds:
        return f"All {p.folds} fold{'s' if p.folds != 1 else ''} done · {FINISHING}…"
    return f"Fold {p.fold}/{p.folds} · Epoch {p.epoch}/{p.epochs} · {p.fraction:.0%} · ETA {eta_text(p.eta_s)}"


def progress_fraction(run: Run) -> float:
    """How full the bar is: the job's fraction done (a completed job is full, also when it stopped early)."""
    if run.ended == S.COMPLETED and run.phase is Phase.IDLE:
        return 1.0
    return run.progress.fraction if run.progress else 0.0


def fold_line(metrics: dict, folds_done: int) -> str:
    """The latest finished fold's test metrics in one line (empty before the first fold ends)."""
    model = metrics.get("model") if isinstance(metrics.get("model"), dict) else {}
    if not model:
        return ""
    parts = [f"Fold {metrics.get('fold', folds_done)} on its test block:"]
    if isinstance(model.get("crps"), (int, float)):
        parts.append(f"CRPS {model['crps']:.6f}")
    skill = (metrics.get("skill") or {}).get("garch") or {}
    if isinstance(skill.get("crps_skill"), (int, float)):
        parts.append(f"(CRPS skill vs GARCH {skill['crps_skill']:+.4f})")
    if isinstance(model.get("brier"), (int, float)):
        parts.append(f"· Brier {model['brier']:.5f}")
    if isinstance(model.get("accuracy"), (int, float)):
        parts.append(f"· accuracy {model['accuracy']:.2%}")
    return " ".join(parts)


class TrainingView:
    """Built in the current container. The loss plot has one train and one validation line per fold (created as
    folds arrive, sharing one legend entry each), whole-epoch ticks, and axes that fit the data with some
    padding, or reset to an empty range when a new run has no epoch yet."""

    def __init__(self) -> None:
        self._segments: list[tuple[int | str, int | str]] = []  # (train, validation) series per fold
        with dpg.group(horizontal=True):
            dpg.add_text("Idle", tag="tv_phase", color=theme.MUTED)
            dpg.add_text("", tag="tv_message", color=theme.MUTED, wrap=0)
        if theme.large_font():
            dpg.bind_item_font("tv_phase", theme.large_font())
        dpg.add_progress_bar(tag="tv_progress", width=-1, height=24, overlay="")
        with dpg.plot(label="Loss per epoch (mean NLL per sample, nats)", height=-120, width=-1, tag="tv_plot",
                      no_mouse_pos=True):
            # Outside, below the axes: inside it would cover the curves' ends.
            dpg.add_plot_legend(location=dpg.mvPlot_Location_South, horizontal=True, outside=True)
            dpg.add_plot_axis(dpg.mvXAxis, label="epoch (all folds in order)", tag="tv_x", auto_fit=True)
            with dpg.plot_axis(dpg.mvYAxis, label="loss", tag="tv_y", auto_fit=True):
                dpg.add_inf_line_series([], label="fold start", tag="tv_folds")
        # Markers on every epoch: a fold of one epoch is a single point, which a line alone does not draw.
        self._themes = (theme.line_theme(theme.TRAIN, marker=True), theme.line_theme(theme.VALID, marker=True))
        with dpg.theme() as padded:
            with dpg.theme_component(dpg.mvAll):
                dpg.add_theme_style(dpg.mvPlotStyleVar_FitPadding, *FIT_PADDING, category=dpg.mvThemeCat_Plots)
        dpg.bind_item_theme("tv_plot", padded)
        self._empty_axes()
        with dpg.table(header_row=True, policy=dpg.mvTable_SizingStretchSame, borders_innerV=True,
                       borders_outerH=True, tag="tv_figures"):
            for _, title, _ in FIGURES:
                dpg.add_table_column(label=title)
            dpg.add_table_column(label="Folds done")
            with dpg.table_row():
                for key, _, _ in FIGURES:
                    dpg.add_text("–", tag=f"tv_fig_{key}")
                dpg.add_text("–", tag="tv_fig_folds")
        dpg.add_text("", tag="tv_fold_line", color=theme.MUTED)

    def render(self, state: State, prev: State | None) -> None:
        """Update when the run changed; the plot's data only when a new epoch arrived."""
        run = state.run
        if prev is not None and run is prev.run:
            return
        old = prev.run if prev is not None else None
        dpg.set_value("tv_phase", run.phase.value.capitalize())
        dpg.configure_item("tv_phase", color=theme.PHASE_COLOURS.get(run.phase.value, theme.TEXT))
        job = f"job {run.job_id}" if run.job_id else ""
        dpg.set_value("tv_message", f"{run.message}  ({job})" if run.phase in ACTIVE and job else
                      run.message if run.phase in ACTIVE else job)
        dpg.set_value("tv_progress", progress_fraction(run))
        dpg.configure_item("tv_progress", overlay=progress_text(run))
        if old is None or run.losses is not old.losses:
            self._plot(run)
        if old is None or run.latest is not old.latest or run.folds_done != old.folds_done \
                or run.duration_s != old.duration_s:
            for key, _, fmt in FIGURES:
                value = run.latest.get(key)
                if key == "elapsed_s" and run.duration_s is not None:
                    value = run.duration_s  # the job's one duration, as the status line and Results say
                if isinstance(value, (int, float)):
                    text = eta_text(value) if fmt is None else fmt.format(value)
                else:
                    text = "–"
                dpg.set_value(f"tv_fig_{key}", text)
            folds = run.progress.folds if run.progress else 0
            dpg.set_value("tv_fig_folds", f"{run.folds_done}/{folds}" if folds else "–")
            dpg.set_value("tv_fold_line", fold_line(run.fold_metrics, run.folds_done))

    def _plot(self, run: Run) -> None:
        segments = loss_segments(run.losses)
        while len(self._segments) < len(segments):
            # One legend entry per kind: the later folds' labels start with "##", which ImPlot keeps out of it.
            hidden = "##" if self._segments else ""
            pair = tuple(dpg.add_line_series([], [], label=f"{hidden}{label}", parent="tv_y")
                         for label in ("train", "validation"))
            for series, colours in zip(pair, self._themes):
                dpg.bind_item_theme(series, colours)
            self._segments.append(pair)
        for index, (train, val) in enumerate(self._segments):
            _, xs, train_loss, val_loss = segments[index] if index < len(segments) else (0, [], [], [])
            for series, values in ((train, train_loss), (val, val_loss)):
                dpg.set_value(series, [xs, values])
                dpg.configure_item(series, show=bool(xs))  # a hidden series has no legend entry either
        dpg.set_value("tv_folds", [[s[1][0] - 0.5 for s in segments[1:]]])  # between two folds' epochs
        dpg.configure_item("tv_folds", show=len(segments) > 1)
        if not segments:
            self._empty_axes()
            return
        dpg.set_axis_limits_auto("tv_x")
        dpg.set_axis_limits_auto("tv_y")
        dpg.set_axis_ticks("tv_x", epoch_ticks(len(run.losses)))

    @staticmethod
    def _empty_axes() -> None:
        """No epoch yet (a new run, or a start that failed): an empty range, not the previous job's axes."""
        dpg.set_axis_limits("tv_x", 0.5, 10.5)
        dpg.set_axis_limits("tv_y", 0.0, 1.0)
        dpg.set_axis_ticks("tv_x", epoch_ticks(10))
