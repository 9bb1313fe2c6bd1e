"""The app's dialogs: the start/training error dialog, View Logs, Import data… with its report, and the
non-blocking warnings (corrupt layout or settings). All are ordinary (non-modal) windows: none blocks the app."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import dearpygui.dearpygui as dpg

from desktop_app import form
from desktop_app import messages as m
from desktop_app.controller import Action, State, allowed_actions
from desktop_app.panels.run import Phase
from desktop_app.views import status_bar, theme
from trainer.config import TIMEFRAME_SECONDS
from trainer.data.import_cli import report_rows

IMPORT_EXTENSIONS = (".csv", ".parquet", ".feather", ".json", ".txt", ".gz", ".zip", ".*")
#: What starts a wrapped log line's continuation rows, so they read as one line.
WRAP_INDENT = "    "


def _fitting_columns(width: float, sample: str, chrome: int) -> int:
    """How many characters of ``sample``-like text fit in ``width`` pixels less ``chrome`` (padding, scrollbar)."""
    size = dpg.get_text_size(sample)
    char = size[0] / len(sample) if size and size[0] > 0 else theme.FONT_SIZE * 0.6
    return int((width - chrome) / char)


def _centre(tag: str, width: int, height: int) -> None:
    vw, vh = dpg.get_viewport_client_width(), dpg.get_viewport_client_height()
    dpg.configure_item(tag, pos=(max(0, (vw - width) // 2), max(0, (vh - height) // 3)))


class ErrorDialog:
    """Shown while the run is ``failed``: the error, [View Logs], [Retry] when allowed, [Cancel] or [Close]."""

    WIDTH, HEIGHT = 600, 330  # HEIGHT: with a traceback (the window fits its content)

    def __init__(self, dispatch: Callable[..., None]) -> None:
        self._dispatch = dispatch
        with dpg.window(label="Candlecast – error", tag="err_window", show=False, width=self.WIDTH, autosize=True,
                        no_collapse=True, on_close=lambda: dispatch(m.DismissClicked)):
            dpg.add_text("", tag="err_title", color=theme.RED)
            dpg.add_text("", tag="err_message", wrap=self.WIDTH - 30)
            dpg.add_text("", tag="err_where", color=theme.MUTED, wrap=self.WIDTH - 30)
            dpg.add_input_text(tag="err_details", multiline=True, readonly=True, width=self.WIDTH - 24,
                               height=170, show=False)
            dpg.add_spacer(height=4)
            with dpg.group(horizontal=True):
                dpg.add_button(label="View Logs", width=110, tag="err_logs",
                               callback=lambda: dispatch(m.LogsOpened, job_id=None))
                dpg.add_button(label="Retry", width=110, tag="err_retry", callback=self._retry)
                dpg.add_button(label="Cancel", width=110, tag="err_cancel", callback=lambda: dispatch(m.CancelClicked))
                dpg.add_button(label="Close", width=110, tag="err_close", callback=lambda: dispatch(m.DismissClicked))

    def _retry(self) -> None:
        self._dispatch(m.RetryClicked, key=str(uuid.uuid4()))

    def render(self, state: State, prev: State | None) -> None:
        """Show or hide with the ``failed`` phase."""
        run = state.run
        if prev is not None and run.phase is prev.run.phase and run.failure is prev.run.failure:
            return
        failure = run.failure
        if run.phase is not Phase.FAILED or failure is None:
            dpg.configure_item("err_window", show=False)
            return
        allowed = allowed_actions(state)
        unacknowledged = failure.kind == "unacknowledged"
        title = "Training failed" if failure.kind == "training" else "Unable to start training"
        dpg.set_value("err_title", title)
        text = failure.message.removeprefix(title + ": ")
        dpg.set_value("err_message", text[:1].upper() + text[1:])
        where = [f"stage {failure.stage}" if failure.stage else "", failure.error_type or "",
                 f"worker exit code {failure.exit_code}" if failure.exit_code is not None else ""]
        dpg.set_value("err_where", " · ".join(w for w in where if w))
        # The worker's last log lines, wrapped to the box (a multi-line input neither wraps nor scrolls sideways).
        tail = failure.traceback_tail.splitlines()
        columns = _fitting_columns(self.WIDTH - 24, LogsDialog.SAMPLE, LogsDialog.CHROME)
        dpg.set_value("err_details", wrap_lines(tail, columns))
        dpg.configure_item("err_details", show=bool(tail))
        dpg.configure_item("err_retry", show=Action.RETRY in allowed)
        dpg.configure_item("err_cancel", show=unacknowledged)
        dpg.configure_item("err_close", show=not unacknowledged)
        dpg.configure_item("err_window", show=True)
        _centre("err_window", self.WIDTH, self.HEIGHT)
        dpg.focus_item("err_window")


def wrap_lines(lines: Sequence[str], columns: int) -> str:
    """``lines`` joined with newlines, each longer than ``columns`` characters broken into continuation lines
    (at spaces where it can, inside a word where it must) indented by ``WRAP_INDENT``; ``columns`` >= 20."""
    columns = max(20, columns)
    out: list[str] = []
    for line in lines:
        if len(line) <= columns:
            out.append(line)
            continue
        out.extend(textwrap.wrap(line, width=columns, subsequent_indent=WRAP_INDENT, break_on_hyphens=False))
    return "\n".join(out)


class LogsDialog:
    """View Logs: the last 200 lines of the backend log (or a job's worker log), refreshed every 5 s while open,
    selectable, with a Copy button and the log file's path. Long lines are wrapped to the text area's width
    (Dear PyGui's multi-line input neither wraps nor scrolls sideways), again when the dialog is resized."""

    WIDTH, HEIGHT = 940, 560
    #: A typical log line, to measure the font's mean character width (digits and capitals are wider than
    #: lowercase, and log lines have many).
    SAMPLE = "2024-05-01 12:00:03,123 INFO embedded_server.job_manager: job 20240501-120003 started (pid 4242)"
    #: Pixels of the text area that hold no text: frame padding on both sides and the vertical scrollbar.
    CHROME = 40

    def __init__(self, dispatch: Callable[..., None]) -> None:
        self._dispatch = dispatch
        self._text = ""  # as read, for Copy
        self._lines: tuple[str, ...] = ()
        self._shown: tuple[str, ...] | None = None  # the lines in the text area, wrapped to ``_columns``
        self._columns = 0
        with dpg.window(label="View Logs", tag="logs_window", show=False, width=self.WIDTH, height=self.HEIGHT,
                        no_collapse=True, on_close=lambda: dispatch(m.LogsClosed)):
            with dpg.group(horizontal=True):
                dpg.add_text("", tag="logs_source", color=theme.ACCENT)
                dpg.add_text("refreshes every 5 s", color=theme.MUTED)
                dpg.add_button(label="Copy", width=80, callback=lambda: dpg.set_clipboard_text(self._text))
                dpg.add_button(label="Backend log", tag="logs_backend",
                               callback=lambda: dispatch(m.LogsOpened, job_id=None))
                dpg.add_button(label="Close", width=80, callback=self._close)
            dpg.add_text("", tag="logs_path", color=theme.MUTED)
            dpg.add_text("", tag="logs_problem", color=theme.RED, show=False)
            dpg.add_input_text(tag="logs_text", multiline=True, readonly=True, width=-1, height=-1, tab_input=False)
        with dpg.item_handler_registry(tag="logs_handlers"):
            dpg.add_item_resize_handler(callback=lambda *_: self._show_text())
        dpg.bind_item_handler_registry("logs_window", "logs_handlers")

    def _close(self) -> None:
        dpg.configure_item("logs_window", show=False)
        self._dispatch(m.LogsClosed)

    def _fitting_columns(self) -> int:
        """How many characters of log text fit in one row of the text area now."""
        width = dpg.get_item_rect_size("logs_text")[0]  # 0 until it was drawn: then the window's, less its padding
        width = width or (dpg.get_item_width("logs_window") or self.WIDTH) - 24
        return _fitting_columns(width, self.SAMPLE, self.CHROME)

    def _show_text(self) -> None:
        """Put the lines into the text area, wrapped to its width (only when the lines or the width changed)."""
        columns = self._fitting_columns()
        if columns == self._columns and self._lines is self._shown:
            return
        self._columns, self._shown = columns, self._lines
        text = wrap_lines(self._lines, columns) if self._lines else "(no log lines yet)"
        dpg.set_value("logs_text", text)

    def render(self, state: State, prev: State | None) -> None:
        """Show the dialog while ``logs.open``; refresh its text when new lines arrived."""
        logs = state.logs
        if prev is not None and logs is prev.logs:
            return
        was_open = prev is not None and prev.logs.open
        dpg.configure_item("logs_window", show=logs.open)
        if not logs.open:
            return
        if not was_open:
            _centre("logs_window", self.WIDTH, self.HEIGHT)
            dpg.focus_item("logs_window")
        dpg.set_value("logs_source", "Backend log" if logs.job_id is None else f"Worker log of job {logs.job_id}")
        dpg.configure_item("logs_backend", show=logs.job_id is not None)
        if logs.path:
            where = f"File: {logs.path}"
        else:  # the job's folder comes with the first read; the backend log's only when the server is embedded
            where = "File: worker.log in the job's folder" if logs.job_id else "File: backend.log in the server's log folder"
        dpg.set_value("logs_path", where)
        dpg.set_value("logs_problem", f"Could not read the log: {logs.problem.line()}" if logs.problem else "")
        dpg.configure_item("logs_problem", show=logs.problem is not None)
        self._text = "\n".join(logs.lines)
        self._lines = logs.lines
        self._show_text()


class ImportDialog:
    """Import data…: a path (typed or picked in a file dialog), optional symbol and timeframe, then the report."""

    WIDTH, HEIGHT, SHORT = 700, 560, 280  # SHORT until a report is there to read
    MARGIN = 24  # pixels kept free above and below the dialog once it shows a report
    #: The request fields the dialog has, by their labels (a refusal that asks for one names and marks it).
    LABELS = {"symbol": "Symbol", "timeframe": "Timeframe"}

    def __init__(self, dispatch: Callable[..., None]) -> None:
        self._dispatch = dispatch
        with dpg.file_dialog(directory_selector=False, show=False, callback=self._picked, tag="imp_file_dialog",
                             width=760, height=460, modal=True):
            for ext in IMPORT_EXTENSIONS:
                dpg.add_file_extension(ext)
        with dpg.window(label="Import data", tag="imp_window", show=False, width=self.WIDTH, height=self.HEIGHT,
                        no_collapse=True):
            dpg.add_text("Import a candle file (CSV, Parquet, Feather, JSON …) into the local dataset store.", wrap=660)
            with dpg.table(header_row=False, policy=dpg.mvTable_SizingStretchProp):
                dpg.add_table_column(width_fixed=True, init_width_or_weight=110)
                dpg.add_table_column(width_stretch=True, init_width_or_weight=1.0)
                with dpg.table_row():
                    dpg.add_text("File")
                    with dpg.group(horizontal=True):
                        dpg.add_input_text(tag="imp_path", width=-100, hint="/path/to/candles.csv")
                        dpg.add_button(label="Browse…", width=92, callback=lambda: dpg.show_item("imp_file_dialog"))
                with dpg.table_row():
                    dpg.add_text("Symbol", tag="imp_label_symbol")
                    dpg.add_input_text(tag="imp_symbol", width=160, hint="from the file", uppercase=True, no_spaces=True)
                with dpg.table_row():
                    dpg.add_text("Timeframe", tag="imp_label_timeframe")
                    dpg.add_combo(["from the file", *TIMEFRAME_SECONDS], default_value="from the file", tag="imp_timeframe",
                                  width=160)
            with dpg.group(horizontal=True):
                dpg.add_button(label="Import", width=110, tag="imp_go", callback=self._import)
                dpg.add_button(label="Close", width=110, tag="imp_close", callback=self._close)
                dpg.add_text("", tag="imp_status", color=theme.MUTED)
            dpg.add_separator()
            dpg.add_text("", tag="imp_summary", wrap=660)
            # The report scrolls inside the dialog, whose height is bounded by the window's (``_fit_height``).
            with dpg.child_window(tag="imp_report", width=-1, height=-1, border=False, show=False):
                dpg.add_group(tag="imp_notes")  # the report's notes, above its table: they are what needs reading
                # The rows of ``candlecast import``'s report, as a table (filled when a report arrives).
                with dpg.table(tag="imp_table", header_row=False, policy=dpg.mvTable_SizingStretchProp,
                               row_background=True, borders_innerH=True):
                    dpg.add_table_column(width_fixed=True, init_width_or_weight=80)
                    dpg.add_table_column(width_stretch=True, init_width_or_weight=1.0)

    def open(self) -> None:
        """Show the dialog (File → Import data…)."""
        dpg.configure_item("imp_window", show=True, height=self.SHORT)
        _centre("imp_window", self.WIDTH, self.SHORT)
        dpg.focus_item("imp_window")

    def _picked(self, sender: Any, app_data: dict[str, Any]) -> None:
        path = app_data.get("file_path_name") or ""
        selections = app_data.get("selections") or {}
        if selections:  # the picked file's own path (file_path_name can carry a filter's pattern)
            path = next(iter(selections.values()))
        dpg.set_value("imp_path", path)

    def _import(self) -> None:
        path = dpg.get_value("imp_path").strip()
        if not path:
            dpg.set_value("imp_status", "choose a file first")
            return
        timeframe = dpg.get_value("imp_timeframe")
        self._dispatch(m.ImportRequested, path=path, symbol=dpg.get_value("imp_symbol").strip() or None,
                       timeframe=timeframe if timeframe in TIMEFRAME_SECONDS else None)

    def _close(self) -> None:
        dpg.configure_item("imp_window", show=False)
        self._dispatch(m.ImportReportClosed)

    def render(self, state: State, prev: State | None) -> None:
        """Show progress and the import report (or the server's problem)."""
        importing = state.importing
        if prev is not None and importing is prev.importing:
            return
        dpg.configure_item("imp_go", enabled=Action.IMPORT in allowed_actions(state))
        dpg.set_value("imp_status", f"importing {importing.path}…" if importing.busy else "")
        if not importing.show:
            return
        dpg.configure_item("imp_window", show=True)
        dpg.delete_item("imp_notes", children_only=True)
        asked = form.problem_fields(importing.problem.errors) if importing.problem is not None else {}
        for name in self.LABELS:
            dpg.configure_item(f"imp_label_{name}", color=theme.RED if name in asked else theme.TEXT)
        if importing.problem is not None:
            dpg.set_value("imp_summary", f"Import failed: {importing.problem.in_form(self.LABELS)}")
            dpg.configure_item("imp_summary", color=theme.RED)
            dpg.configure_item("imp_report", show=False)
            return
        body = importing.dataset or {}
        dataset = body.get("dataset") if isinstance(body.get("dataset"), dict) else body
        report = body.get("report") if isinstance(body.get("report"), dict) else {}
        summary = (f"Imported {dataset.get('id') or dataset.get('symbol', '?')}: {dataset.get('rows', '?')} candles "
                   f"from {dataset.get('start', '?')} to {dataset.get('end', '?')}.")
        dpg.set_value("imp_summary", summary)
        dpg.configure_item("imp_summary", color=theme.GREEN)
        dpg.delete_item("imp_table", children_only=True, slot=1)  # the rows; the columns stay
        try:
            rows = report_rows(dataset, report)
        except (KeyError, TypeError):  # a server of another version: say so rather than show half a table
            rows = [("report", "not in the expected form; `candlecast import FILE` prints it")]
        for label, text in rows:
            if label == "note":
                dpg.add_text(f"Note: {text}", parent="imp_notes", color=theme.YELLOW, wrap=self.WIDTH - 40)
                continue
            with dpg.table_row(parent="imp_table"):
                dpg.add_text(label, color=theme.MUTED)
                dpg.add_text(text, wrap=self.WIDTH - 150)
        dpg.configure_item("imp_report", show=True)
        height = self._fit_height()
        dpg.configure_item("imp_window", height=height)
        _centre("imp_window", self.WIDTH, height)  # opened SHORT: grown in place it would cover the status bar

    def _fit_height(self) -> int:
        """``HEIGHT``, or less on a short window: the dialog ends above the status bar (its report scrolls)."""
        room = dpg.get_viewport_client_height() - status_bar.HEIGHT - 2 * self.MARGIN
        return max(self.SHORT, min(self.HEIGHT, room))


class Warnings:
    """Non-blocking warnings shown at start (a corrupt layout, ini or settings file; what the migration of an old
    settings file did): a window with [OK]."""

    def __init__(self, warnings: list[str]) -> None:
        if not warnings:
            return
        with dpg.window(label="Candlecast – warning", tag="warn_window", width=720, autosize=True, no_collapse=True,
                        pos=(70, 80)):
            for text in warnings:
                dpg.add_text(text, wrap=690, color=theme.YELLOW)
                dpg.add_spacer(height=4)
            dpg.add_button(label="OK", width=90, callback=lambda: dpg.configure_item("warn_window", show=False))
