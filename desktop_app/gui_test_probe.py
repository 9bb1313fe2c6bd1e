"""The GUI tests' hook: with ``CANDLECAST_GUI_PROBE=FILE`` the app writes what its window shows to FILE.

Nothing here runs unless that variable is set (``Probe.from_env``). Then the frame loop hands every frame to
``Probe.frame`` and its end to ``Probe.close``; every ``PROBE_INTERVAL_S`` the probe takes a snapshot on the render
thread (state, the Start button's and the ``PROBED`` items' rectangles in viewport pixels, the plots' axes,
frame-time statistics) and the disk thread writes it atomically, so a reader never sees half a file.
``tests/gui_harness.py``, ``tests/test_gui.py``, ``benchmarks/gui_*.py`` and ``packaging/smoke_test.py`` read it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

PROBE_ENV = "CANDLECAST_GUI_PROBE"
PROBE_INTERVAL_S = 0.5
#: Items whose rectangle (viewport pixels), visibility and text the probe reports, so the GUI test can click and
#: type into them: inputs, buttons, the dialogs' texts.
PROBED = ("cp_symbol", "cp_batch_size", "cp_error_symbol", "cp_error_batch_size", "cp_blocked", "cp_message",
          "tv_message", "imp_path", "imp_go", "imp_summary", "err_window", "err_message",
          "err_where", "err_details", "err_retry", "err_close", "rv_title", "tv_fig_elapsed_s", "cp_cv_folds",
          "imp_symbol", "imp_close", "tab_jobs", "jv_compare", "cmp_window", "cmp_title", "rv_next_text",
          "rv_next_refresh", "content_pane", "tab_sweeps", "sw_space_cv_folds", "sw_space_learning_rate", "sw_trials",
          "sw_ray", "sw_start", "sw_stop", "sw_open_best", "tv_plot", "imp_window", "jv_head_crps_skill_garch")


class Probe:
    """Writes the window's state to ``path`` at most every ``PROBE_INTERVAL_S`` and once when the loop ends.

    ``dpg``: the Dear PyGui module; ``shell``: the app's ``Shell``; ``server``: the embedded server or None;
    ``disk``: runs a callable on the app's disk thread (``Runtime.disk``).
    """

    def __init__(self, path: str, dpg: Any, shell: Any, server: Any, disk: Callable[[Callable[[], None]], None]) -> None:
        self.path, self.dpg, self.shell, self.server, self.disk = path, dpg, shell, server, disk
        self.next_at = 0.0
        self.first_frame_at: float | None = None  # wall clock (time.time) at the end of the first frame

    @classmethod
    def from_env(cls, dpg: Any, shell: Any, server: Any, disk: Callable[[Callable[[], None]], None]) -> Probe | None:
        """The probe ``CANDLECAST_GUI_PROBE`` asks for, or None when it is not set."""
        path = os.environ.get(PROBE_ENV)
        return cls(path, dpg, shell, server, disk) if path else None

    def frame(self, started: float) -> None:
        """After the frame that began at ``started`` (``time.perf_counter`` seconds): write when one is due.
        Every snapshot carries ``first_frame_at`` (benchmarks/packaging_cold_start.py times the first frame)."""
        if self.first_frame_at is None:
            self.first_frame_at = time.time()
        if started >= self.next_at:
            self.next_at = started + PROBE_INTERVAL_S
            self._write({**snapshot(self.dpg, self.shell, self.server), "first_frame_at": self.first_frame_at})

    def close(self) -> None:
        """The loop has ended: the last snapshot, with ``closing`` true."""
        self._write({**snapshot(self.dpg, self.shell, self.server, closing=True), "first_frame_at": self.first_frame_at})

    def _write(self, taken: dict[str, Any]) -> None:
        self.disk(lambda: write(self.path, taken))


def _item(dpg: Any, tag: str) -> dict[str, Any]:
    state = dpg.get_item_state(tag)  # some items (windows, menus) have no rectangle or no visibility
    (x, y), (w, h) = state.get("rect_min", (0, 0)), state.get("rect_size", (0, 0))
    if dpg.get_item_type(tag) == "mvAppItemType::mvWindowAppItem":  # a window: where it is and its size
        (x, y), w, h = dpg.get_item_pos(tag), dpg.get_item_width(tag), dpg.get_item_height(tag)
    value = dpg.get_value(tag)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        value = None  # text and whole numbers (the inputs the tests type into); not check boxes or lists
    return {"tag": tag, "x": x, "y": y, "width": w, "height": h, "shown": dpg.is_item_shown(tag),
            "visible": bool(state.get("visible", False)), "enabled": dpg.is_item_enabled(tag),
            "active": bool(state.get("active", False)), "value": value}


def snapshot(dpg: Any, shell: Any, server: Any, closing: bool = False) -> dict[str, Any]:
    """What the GUI test reads: state, the Start button's rectangle (viewport pixels), the ``PROBED`` items, the
    loss plot's axes, the Results and Jobs tabs' contents, frame statistics (raw; ``write`` summarises
    them). Call on the render thread."""
    from desktop_app.views.compare_view import probe as compare_probe
    from desktop_app.views.jobs_view import JobsView
    from desktop_app.views.results_view import probe as results_probe
    from desktop_app.views.sweeps_view import probe as sweeps_probe

    state = shell.state
    x, y = dpg.get_item_rect_min("cp_start")
    w, h = dpg.get_item_rect_size("cp_start")
    return {
        "pid": os.getpid(),
        "time": time.time(),
        "closing": closing,
        "phase": state.run.phase.value,
        "job_id": state.run.job_id,
        "message": state.run.message,
        "ws": state.conn.ws,
        "rest_ok": state.conn.rest_ok,
        "server_url": server.url if server is not None else None,
        "results_job_id": state.results.job_id,
        "results_loaded": state.results.job is not None,
        "start_button": {"x": x, "y": y, "width": w, "height": h, "enabled": dpg.is_item_enabled("cp_start")},
        "viewport": {"width": dpg.get_viewport_client_width(), "height": dpg.get_viewport_client_height()},
        "warning_shown": dpg.does_item_exist("warn_window") and dpg.is_item_shown("warn_window"),
        "losses": len(state.run.losses),
        "progress_text": dpg.get_item_configuration("tv_progress").get("overlay"),
        "time_axis": list(dpg.get_axis_limits("rv_time_x")),
        "loss_axes": [list(dpg.get_axis_limits("tv_x")), list(dpg.get_axis_limits("tv_y"))],
        "loss_lines": sum(1 for item in dpg.get_item_children("tv_y", 1) or ()
                          if dpg.get_item_type(item).endswith("mvLineSeries") and dpg.is_item_shown(item)),
        "field_errors": dict(state.field_errors),
        "failure": state.run.failure.message if state.run.failure else None,
        "items": {tag: _item(dpg, tag) for tag in PROBED},
        "time_data": _span(state.results.series.get("time", ())),
        "frame_stats": shell.stats.snapshot(),
        "results_tab": results_probe(),
        "sweeps_tab": sweeps_probe(),
        "jobs_listed": len(state.catalog.jobs),
        "jobs_tab": next(view.probe() for view in shell.views if isinstance(view, JobsView)),
        "ticks": {dpg.get_item_user_data(a): _item(dpg, a) for a in dpg.get_aliases()
                  if str(a).startswith("jv_tick_") and dpg.is_item_shown(dpg.get_item_parent(a))},
        "compare": {"open": state.use.compare.open, "loaded": state.use.compare.comparison is not None,
                    "problem": state.use.compare.problem.line() if state.use.compare.problem else None,
                    **compare_probe()},
        "next_bar": state.use.next_bar.forecast,
        "next_bar_problem": state.use.next_bar.problem.line() if state.use.next_bar.problem else None,
    }


def _span(values: Any) -> list[float] | None:
    return [min(values), max(values)] if values else None


def write(path: str, taken: dict[str, Any]) -> None:
    """Write a ``snapshot`` to ``path`` atomically as JSON, its frame statistics summarised. Call on the disk thread."""
    from desktop_app.shell import FrameStats
    from trainer.atomic import atomic_write_json

    data = dict(taken)
    data["frame_stats"] = FrameStats.summary(*taken["frame_stats"])
    atomic_write_json(path, data)
