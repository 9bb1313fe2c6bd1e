"""``candlecast`` with no subcommand: the desktop app (or, with no display, the headless training run).

``run(args)`` checks for a display first (Dear PyGui aborts the whole process without one). With a display it
migrates an old settings file and loads the layout (neither is ever fatal; what they warn about is shown in a
non-blocking popup), starts the embedded server on 127.0.0.1 (port from ``CANDLECAST_PORT``, else the
settings file, else 8000; a free one if that is busy) or uses ``--connect URL`` (or, when another server already
runs on the same data folder, that server's URL), opens the window titled
"Candlecast" and runs the frame loop until it is closed; then it saves the layout and stops the server (its
workers end ``stopped``). ``CANDLECAST_GUI_PROBE=FILE`` makes the app write its state, the Start button's
rectangle and frame-time statistics to FILE twice a second (the GUI tests' hook, ``desktop_app.gui_test_probe``).
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import queue
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer import paths

log = logging.getLogger(__name__)

TITLE = "Candlecast"
#: Shortest frame (60 frames/s). With vsync the swap already waits this long; without it (software GL, some
#: remote desktops) an unthrottled loop would burn a core and slow the training worker next to it.
MIN_FRAME_S = 1 / 60


# ---------------------------------------------------------------- display check and headless fallback


def display_problem(environ: dict[str, str] | None = None, platform: str | None = None) -> str | None:
    """Why no window can open here, or None. Only X11/Wayland systems can lack a display.

    ``DISPLAY`` is also checked for reachability (a local X socket, or TCP 6000+N for ``host:N``), because a
    stale value (e.g. an ssh session without X forwarding) would make Dear PyGui abort the process.
    """
    env = os.environ if environ is None else environ
    platform = platform or sys.platform
    if platform.startswith(("win", "darwin")) or platform == "cygwin":
        return None
    x_display = env.get("DISPLAY", "").strip()
    wayland = env.get("WAYLAND_DISPLAY", "").strip()
    if not x_display and not wayland:
        return "no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    if x_display and not _x_reachable(x_display):
        return f"cannot reach the X display {x_display!r}"
    return None


def _x_reachable(display: str) -> bool:
    host, _, rest = display.rpartition(":")
    number = rest.split(".", 1)[0]
    if not number.isdigit():
        return True  # a form we do not parse: let the GUI library judge
    if host in ("", "unix") or host.startswith("/"):
        candidates = [f"/tmp/.X11-unix/X{number}", f"\0/tmp/.X11-unix/X{number}"]  # file, Linux abstract socket
        for address in candidates:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(1.0)
                try:
                    sock.connect(address)
                    return True
                except OSError:
                    continue
        return host.startswith("/")  # launchd-style socket paths (macOS XQuartz) are not ours to probe
    try:
        with socket.create_connection((host, 6000 + int(number)), timeout=1.0):
            return True
    except OSError:
        return False


def run_headless() -> int:
    """The README's "main job" without a display: one ``candlecast train`` run with the training defaults the app's
    form starts from, the ``training`` block of ``config.json`` (empty by default: the schema's defaults, the
    bundled BTCUSDT 1 h candles). Raises ``UserError`` for a ``CANDLECAST_PORT`` that is not a port, as the app does.
    """
    from desktop_app.cli import UserError, build_parser
    from embedded_server.settings import load_settings
    from trainer import train_cli

    try:
        loaded = load_settings()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if loaded.warning:
        print(f"candlecast: {loaded.warning}", file=sys.stderr, flush=True)
    args = build_parser().parse_args(["train"])
    for name, value in loaded.settings.training.items():  # validated against TrainingConfig by the settings
        setattr(args, name, value)
    return int(train_cli.run(args) or 0)


def run(args: argparse.Namespace) -> int:
    """Entry of ``candlecast`` without a subcommand; returns the exit code."""
    problem = display_problem()
    if problem:
        print(f"candlecast: {problem}, so no window: `candlecast serve` runs the API and `candlecast train` one job;"
              " running the headless training now (on the bundled BTCUSDT 1h candles unless config.json's"
              " training defaults say otherwise).", file=sys.stderr, flush=True)
        migrate_settings()  # no window to show its lines in: they are logged
        return run_headless()
    listener = _start_logging()
    try:
        return App(getattr(args, "connect", None)).run()
    finally:
        listener.stop()


# ---------------------------------------------------------------- the app's own files at start


def migrate_settings() -> list[str]:
    """Migrate an old flat ``config.json`` to the current format (``desktop_app.config_migration``); returns
    the lines saying what it did and warned about (empty when there was nothing to do). Never raises."""
    from desktop_app.config_migration import migrate_at_start

    return migrate_at_start(paths.config_dir() / "config.json")


@dataclass(frozen=True)
class StartupFiles:
    """What the app's files gave before the window opens: the ``layout`` to use (a ``layout_store.Layout``),
    Dear PyGui's ``ini`` file to load (None: start without one), and the ``warnings`` for the non-blocking
    popup, in the order they arose."""

    layout: Any
    ini: Path | None
    warnings: tuple[str, ...]


def prepare_files() -> StartupFiles:
    """Before the window: the settings migration, then ``layout.json`` and Dear PyGui's ini (``layout_store``:
    a corrupt file is backed up and replaced by defaults). Never raises; each problem becomes a warning line.

    The migration comes first: it may move an old file's window position into ``layout.json``.
    """
    from desktop_app import layout_store

    warnings = migrate_settings()
    loaded = layout_store.load_layout()
    if loaded.warning:
        warnings.append(loaded.warning)
    ini, ini_warning = layout_store.prepare_ini()
    if ini_warning:
        warnings.append(ini_warning)
    return StartupFiles(loaded.layout or layout_store.Layout(), ini, tuple(warnings))


# ---------------------------------------------------------------- logging off the render thread


class _ToRoot(logging.Handler):
    """Hands a record to the root logger's handlers (backend.log once the server configured it)."""

    def emit(self, record: logging.LogRecord) -> None:
        for handler in logging.getLogger().handlers:
            if record.levelno >= handler.level:
                handler.handle(record)


def _start_logging() -> logging.handlers.QueueListener:
    """The app's log records go through a queue, so the file and console writes happen on a listener thread."""
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    logger = logging.getLogger("desktop_app")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.handlers[:] = [logging.handlers.QueueHandler(records)]
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("candlecast-gui: %(levelname)s %(message)s"))
    listener = logging.handlers.QueueListener(records, console, _ToRoot(), respect_handler_level=True)
    listener.start()
    return listener


# ---------------------------------------------------------------- the app


class App:
    """One window on one server (embedded, or ``connect_url``)."""

    def __init__(self, connect_url: str | None) -> None:
        self.connect_url = connect_url
        self.server: Any = None
        self.warnings: list[str] = []
        self.layout: Any = None  # layout_store.Layout, replaced (never mutated) by the disk thread

    def _start_server(self) -> tuple[str, str, dict[str, Any]]:
        """Returns (URL, status bar note, the settings' training defaults)."""
        from trainer.cli_common import UserError

        if self.connect_url:
            url = self.connect_url.rstrip("/")
            if not url.startswith(("http://", "https://")):
                raise UserError(f"--connect {self.connect_url}: expected a URL like http://127.0.0.1:8000")
            return url, "(--connect)", {}
        from embedded_server.serve import DataFolderInUse, PortInUse, ServerError, start_server
        from embedded_server.settings import load_settings

        try:
            loaded = load_settings()
        except ValueError as exc:  # CANDLECAST_PORT is not a port
            raise UserError(str(exc)) from None
        if loaded.warning:
            self.warnings.append(loaded.warning)
        settings = loaded.settings
        note = ""
        try:
            try:
                self.server = start_server("127.0.0.1", settings.port, settings=settings)
            except PortInUse:
                self.server = start_server("127.0.0.1", 0, settings=settings)
                note = f"(port {settings.port} was busy)"
        except DataFolderInUse as exc:  # `candlecast serve` (or another window) runs on this data folder: use it
            if exc.url is None:
                raise UserError(str(exc)) from None
            log.info("a server already runs on %s: connecting to %s", exc.folder, exc.url)
            return exc.url, "(the server already running on this data folder)", dict(settings.training)
        except ServerError as exc:
            raise UserError(str(exc)) from None
        log.info("embedded server on %s%s", self.server.url, f" {note}" if note else "")
        return self.server.url, note, dict(settings.training)

    def run(self) -> int:
        """Open the window and run until it is closed; returns the exit code."""
        from desktop_app import form

        files = prepare_files()
        self.warnings.extend(files.warnings)
        self.layout, ini = files.layout, files.ini
        url, note, training_defaults = self._start_server()
        initial = form.defaults({**training_defaults, **self.layout.params})
        try:
            return self._window(url, note, initial, ini)
        finally:
            if self.server is not None:
                self.server.shutdown()

    def _remember(self, config: dict[str, Any]) -> None:
        """On the disk thread: the last used parameters go into layout.json."""
        from desktop_app import layout_store

        self.layout = self.layout.model_copy(update={"params": dict(config)})
        layout_store.save_layout(self.layout)

    def _window(self, url: str, note: str, initial: dict[str, Any], ini: Path | None) -> int:
        import dearpygui.dearpygui as dpg

        from desktop_app import layout_store
        from desktop_app.api_client import ApiClient, EventStream
        from desktop_app.runtime import Runtime
        from desktop_app.shell import Shell

        client = ApiClient(url)
        embedded_log = str(paths.log_dir() / "backend.log") if self.server is not None else None
        shell = Shell(lambda effects: runtime.perform(effects))  # ``runtime`` is bound before the first frame
        runtime = Runtime(client, shell.post, self._remember, log_path=embedded_log)
        stream = EventStream(
            client.ws_url,
            on_message=lambda event: shell.post(_server_event(event)),
            on_status=lambda status, detail, retry: shell.post(_ws_changed(status, detail, retry)),
        )

        dpg.create_context()
        try:
            # Dear PyGui never writes its ini on its own here (that would be a file write on the render thread);
            # save_ini writes it atomically after the loop.
            dpg.configure_app(auto_save_init_file=False)
            if ini is not None:
                dpg.configure_app(init_file=str(ini), load_init_file=True, auto_save_init_file=False)
            view = self.layout.viewport
            dpg.create_viewport(title=TITLE, width=view.width, height=view.height, x_pos=view.x, y_pos=view.y,
                                min_width=900, min_height=600)
            _build(dpg, shell, url, note, initial, self.layout, self.warnings)
            dpg.setup_dearpygui()
            dpg.show_viewport()
            dpg.set_primary_window("main", True)
            stream.start()
            self._loop(dpg, shell, runtime)
            self._save_on_exit(dpg, runtime)
            layout_store.save_ini(dpg.save_init_file)  # the render loop has ended: no frame waits on this write
        finally:
            stream.close()
            runtime.shutdown()
            dpg.destroy_context()
        return 0

    def _loop(self, dpg: Any, shell: Any, runtime: Any) -> None:
        from desktop_app.frame_pacing import FramePacer
        from desktop_app.gui_test_probe import Probe

        pacer = FramePacer()
        shell.on_post = pacer.wake
        probe = Probe.from_env(dpg, shell, self.server, runtime.disk)  # None unless the GUI tests ask for it
        # SIGTERM and Ctrl-C close the app like the window's X: layout saved, workers stopped.
        close = lambda *_: dpg.stop_dearpygui()  # noqa: E731 (a signal handler)
        previous = {sig: signal.signal(sig, close) for sig in (signal.SIGTERM, signal.SIGINT)}
        splash = sys.modules.get("pyi_splash")  # the onefile build's splash (packaging/candlecast_entry.py)
        try:
            while dpg.is_dearpygui_running():
                slept = pacer.wait(shell.streaming)  # idle: until input, a message or the next tick
                started = time.perf_counter()
                changed, first_event = shell.step()
                dpg.render_dearpygui_frame()
                ended = time.perf_counter()
                if splash is not None:  # the window has drawn itself: the splash has done its job
                    splash.close()
                    splash = None
                pacer.after_frame(changed)
                shell.stats.record(ended - started, shell.streaming)
                if slept and first_event is not None:
                    shell.stats.record_idle_event(ended - first_event)
                if probe:
                    probe.frame(started)
                spare = MIN_FRAME_S - (time.perf_counter() - started)
                if spare > 0:
                    time.sleep(spare)
            if probe:
                probe.close()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _save_on_exit(self, dpg: Any, runtime: Any) -> None:
        from desktop_app import layout_store

        x, y = dpg.get_viewport_pos()
        viewport = layout_store.Viewport(
            x=_clamp(int(x), -16384, 16384),
            y=_clamp(int(y), -16384, 16384),
            width=_clamp(dpg.get_viewport_client_width(), 640, 16384),
            height=_clamp(dpg.get_viewport_client_height(), 480, 16384),
        )
        shown = dpg.get_value("tabs")  # the selected tab's alias ("tab_results"), or its id
        shown = dpg.get_item_alias(shown) if isinstance(shown, int) else str(shown)
        tab = shown.removeprefix("tab_")
        panels = layout_store.Panels(
            control_width=self.layout.panels.control_width,
            show_advanced=bool(dpg.get_value("cp_advanced")),
            tab=tab if tab in ("training", "results", "jobs", "sweeps") else "training",
            status_bar=self.layout.panels.status_bar,
        )

        def save() -> None:
            self.layout = self.layout.model_copy(update={"viewport": viewport, "panels": panels})
            layout_store.save_layout(self.layout)

        runtime.disk(save)


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _server_event(event: dict[str, Any]) -> Any:
    from desktop_app import messages as m

    return m.ServerEvent(time.monotonic(), event)


def _ws_changed(status: str, detail: str, retry: float | None) -> Any:
    from desktop_app import messages as m

    return m.WsChanged(time.monotonic(), status, detail, retry)


def _build(dpg: Any, shell: Any, url: str, note: str, initial: dict[str, Any], layout: Any,
           warnings: list[str]) -> None:
    """Create every window and view, and register them with the shell."""
    from desktop_app import messages as m
    from desktop_app.views import theme
    from desktop_app.views.compare_view import CompareView
    from desktop_app.views.control_panel import ControlPanel
    from desktop_app.views.dialogs import ErrorDialog, ImportDialog, LogsDialog, Warnings
    from desktop_app.views.jobs_view import JobsView
    from desktop_app.views.results_view import ResultsView
    from desktop_app import form
    from desktop_app.views.status_bar import HEIGHT, StatusBar
    from desktop_app.views.sweeps_view import SweepsView
    from desktop_app.views.training_view import TrainingView

    themes = theme.setup()
    dispatch = shell.dispatch
    importer = ImportDialog(dispatch)

    def show_tab(name: str) -> None:
        dpg.set_value("tabs", f"tab_{name}")

    def open_job(job_id: str) -> None:
        dispatch(m.JobOpened, job_id=job_id)
        show_tab("results")

    with dpg.window(tag="main", no_scrollbar=True):
        with dpg.menu_bar():
            with dpg.menu(label="File"):
                dpg.add_menu_item(label="Import data…", callback=importer.open)
                dpg.add_separator()
                dpg.add_menu_item(label="Quit", callback=lambda: dpg.stop_dearpygui())
            with dpg.menu(label="View"):
                dpg.add_menu_item(label="View Logs", callback=lambda: dispatch(m.LogsOpened, job_id=None))
                dpg.add_menu_item(label="Training", callback=lambda: show_tab("training"))
                dpg.add_menu_item(label="Results", callback=lambda: show_tab("results"))
                dpg.add_menu_item(label="Jobs", callback=lambda: show_tab("jobs"))
                dpg.add_menu_item(label="Sweeps", callback=lambda: show_tab("sweeps"))
            with dpg.menu(label="Help"):
                dpg.add_menu_item(label=f"API: {url}/openapi.json", enabled=False)
                dpg.add_menu_item(label=f"Files: {paths.data_dir()}", enabled=False)
        body_height = -(HEIGHT + 12)  # the status bar plus item spacing: no scrollbar
        with dpg.group(horizontal=True):
            with dpg.child_window(width=layout.panels.control_width, height=body_height, tag="control_pane"):
                panel = ControlPanel(dispatch, initial, layout.panels.show_advanced, themes)
            with dpg.child_window(width=-1, height=body_height, border=False, tag="content_pane"):
                with dpg.tab_bar(tag="tabs"):
                    with dpg.tab(label="Training", tag="tab_training"):
                        training = TrainingView()
                    with dpg.tab(label="Results", tag="tab_results"):
                        with dpg.child_window(border=False, width=-1, height=-1):
                            results = ResultsView(dispatch)
                    with dpg.tab(label="Jobs", tag="tab_jobs"):
                        jobs = JobsView(dispatch, lambda: show_tab("results"))
                    with dpg.tab(label="Sweeps", tag="tab_sweeps"):
                        sweeps = SweepsView(dispatch, lambda: form.validate(panel.values())[0] or {}, open_job)
        status = StatusBar(url, note, themes)
    show_tab(layout.panels.tab)
    shell.views.extend([panel, status, training, results, jobs, sweeps, ErrorDialog(dispatch), LogsDialog(dispatch),
                        importer, CompareView(dispatch)])

    def follow_the_run(state: Any, prev: Any) -> None:
        """Show the Training tab when a run starts and the Results tab when new results are asked for."""
        if prev is None:
            return
        if state.run.phase.value == "running" and prev.run.phase.value != "running":
            show_tab("training")
        if state.results.job_id and state.results.job_id != prev.results.job_id and not state.results.auto:
            show_tab("results")

    shell.on_change.append(follow_the_run)
    Warnings(warnings)
