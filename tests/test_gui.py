"""The real app under Xvfb: its window, its embedded server, a real click on Start, a real training job.

Needs Xvfb, xdotool and ImageMagick (``.ci/run`` installs them); skips with that reason where they are missing.
Screenshots and the frame-time figures go to ``test-artifacts/gui/``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from desktop_app.panels.results import job_duration_s
from desktop_app.views.dialogs import WRAP_INDENT
from desktop_app.views.status_bar import HEIGHT as STATUS_BAR_HEIGHT
from trainer.scoreboard import BASELINE_NAMES, SUMMARY_ROWS
from gui_harness import DEFAULT_VIEWPORT, ARTIFACTS, GuiApp, distinct_colours, missing_tools, write_layout, xvfb

pytestmark = pytest.mark.gui

#: Small enough for a test, big enough that epochs stream for a while: 2 folds × 3 epochs.
TINY = {"epochs": 3, "cv_folds": 2, "lookback": 8, "batch_size": 512}
#: The menu bar's "File" and its first item, "Import data…" (viewport pixels; Dear PyGui reports no rectangle for
#: menus).
MENU_FILE = {"x": 10, "y": 3, "width": 36, "height": 20}
MENU_IMPORT = {"x": 10, "y": 34, "width": 120, "height": 20}
#: The Training and Results tabs (viewport pixels).
TRAINING_TAB = {"x": 382, "y": 40, "width": 66, "height": 18}
RESULTS_TAB = {"x": 460, "y": 40, "width": 62, "height": 18}
#: Pixels of the train colour in the loss plot's rectangle when no point is drawn: the legend's swatch (measured on
#: a screenshot of test_a_one_epoch_job_in_the_default_window).
TRAIN_LEGEND_PIXELS = 144
#: A real window has text, widgets and plots: far more colours than a blank or half-drawn one.
MIN_COLOURS = 50


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    missing = missing_tools()
    if missing:
        pytest.skip(f"the GUI test needs {', '.join(missing)} (apt-get install xvfb xdotool imagemagick)")
    with xvfb() as name:
        yield name


@pytest.fixture
def launch(display: str, candlecast_home: Path) -> Iterator:
    apps: list[GuiApp] = []

    def start(name: str, *args: str, env: dict[str, str] | None = None) -> GuiApp:
        app = GuiApp(display, candlecast_home, name, args, env)
        apps.append(app)
        return app

    yield start
    for app in apps:
        app.close()


def ready(probe: dict) -> bool:
    return bool(probe["rest_ok"]) and probe["ws"] == "connected" and probe["start_button"]["enabled"]


def after(app: GuiApp, seconds: float = 1.0) -> dict:
    """The first probe written ``seconds`` after now: what the window shows once a click or key had its frames."""
    now = time.time()
    return app.wait(f"frames {seconds:g} s on", lambda p: p["time"] > now + seconds, timeout=30)


def assert_not_blank(path: Path) -> None:
    colours = distinct_colours(path)
    assert colours > MIN_COLOURS, f"{path} looks blank ({colours} colours)"


@pytest.mark.slow
def test_click_start_runs_a_job_to_completion(launch, candlecast_home: Path) -> None:
    write_layout(candlecast_home, params=TINY)  # the "last used" parameters the form starts with
    app = launch("run")
    probe = app.wait("the window, REST and WebSocket", ready)
    assert_not_blank(app.screenshot("1-ready"))

    app.click(probe["start_button"])
    running = app.wait("running", lambda p: p["phase"] == "running" or "pending -> running" in app.output())
    job_id = running["job_id"]
    assert "phase idle -> pending job=None" in app.output()
    app.wait("the first epochs on the loss plot", lambda p: p["losses"] >= 2 or p["phase"] == "idle")
    assert_not_blank(app.screenshot("2-running"))

    done = app.wait("completed with results", lambda p: p["results_loaded"] and p["phase"] == "idle", timeout=300)
    assert done["message"].startswith("Training completed"), done
    assert done["job_id"] == done["results_job_id"] == job_id
    assert f"phase pending -> running job={job_id}" in app.output()
    assert f"phase running -> idle job={job_id}: Training completed" in app.output()
    assert_not_blank(app.screenshot("3-results"))

    # One job shows one duration (issue 9 item 16): the job's duration_s from the server, in the status line, the
    # Elapsed field and the Results header alike.
    took = job_duration_s(requests.get(f"{done['server_url']}/jobs/{job_id}", timeout=30).json())
    assert done["message"] == f"Training completed in {took:.1f} s"
    assert f" · {took:.1f} s" in done["items"]["rv_title"]["value"]
    assert done["items"]["tv_fig_elapsed_s"]["value"] == f"{int(round(took)) // 60}:{int(round(took)) % 60:02d}"
    # The loss plot fits its epochs with room on both sides (it used to clip the first and last points).
    (x_low, x_high), _ = done["loss_axes"]
    assert x_low < 1 and x_high > done["losses"], done["loss_axes"]
    assert done["loss_lines"] == 2 * TINY["cv_folds"]  # train and validation per fold: no line joins two folds

    # The wheel over the metrics scrolls the Results tab and brings the "p_up over time" plot under the pointer:
    # the page must scroll on, and the plot keep the data's time range (it used to catch the wheel and zoom out).
    app.scroll_down(700, 600, clicks=15)
    scrolled = time.time()
    probe = app.wait("frames after the scroll", lambda p: p["time"] > scrolled + 1.0, timeout=30)
    (start, end), (low, high) = probe["time_data"], probe["time_axis"]
    assert low <= start and high >= end and high - low <= 1.1 * (end - start), probe
    assert_not_blank(app.screenshot("4-results-scrolled"))

    # What the server says: exactly one job, started by that click, with the form's parameters.
    jobs = requests.get(done["server_url"] + "/jobs", timeout=30).json()["jobs"]
    assert [(j["job_id"], j["status"]) for j in jobs] == [(job_id, "completed")]
    job = requests.get(f"{done['server_url']}/jobs/{job_id}", timeout=30).json()
    assert {k: job["config"][k] for k in TINY} == TINY
    assert job["metrics"]["pooled"]["model"]["crps"] > 0

    # The headline verdicts head the Results tab, as the job's metrics say them; the baseline cells where the
    # model is worse are marked, exactly those (a tiny job is worse than some baseline on something).
    pooled = job["metrics"]["pooled"]
    headline = pooled["verdicts"]["headline"]
    tab = app.wait("the verdicts on the Results tab", lambda p: all(p["results_tab"]["verdicts"]))["results_tab"]
    assert tab["verdicts"] == [headline["direction"]["text"] + ".", headline["distribution"]["text"] + "."], tab
    assert tab["verdicts"][0].startswith("Direction (p_up): ") and tab["verdicts"][1].startswith("Distribution: ")
    expected = [[row.key, name] for row in SUMMARY_ROWS for name in BASELINE_NAMES
                if row.worse(pooled["model"].get(row.key), pooled["baselines"][name].get(row.key))]
    assert expected and sorted(tab["worse_cells"]) == sorted(expected), (tab["worse_cells"], expected)

    stats = done["frame_stats"]
    assert stats["streaming"]["count"] > 0 and stats["events"] > 0, stats
    (ARTIFACTS / "frame_times.json").write_text(json.dumps(stats, indent=2))
    print(f"\nGUI frame times while events streamed: {stats['streaming']}")  # figure for docs/benchmarks.md

    app.click(TRAINING_TAB)
    after(app)
    assert_not_blank(app.screenshot("5-loss-per-fold"))
    app.click(RESULTS_TAB)
    after(app)

    assert app.close() == 0
    saved = json.loads((candlecast_home / "config" / "layout.json").read_text())
    assert {k: saved["params"][k] for k in TINY} == TINY and saved["viewport"]["width"] == DEFAULT_VIEWPORT.width
    assert saved["panels"]["tab"] == "results"  # the tab on screen when the window closed


def train_pixels(path: Path, region: dict[str, float]) -> int:
    """Pixels of the train loss colour inside ``region`` of a screenshot."""
    from PIL import Image

    from desktop_app.views.theme import TRAIN

    with Image.open(path) as image:
        x, y = int(region["x"]), int(region["y"])
        cropped = image.convert("RGB").crop((x, y, x + int(region["width"]), y + int(region["height"])))
        return sum(count for count, colour in cropped.getcolors(maxcolors=1 << 20) if colour == TRAIN[:3])


@pytest.mark.slow
def test_a_one_epoch_job_in_the_default_window(launch, candlecast_home: Path) -> None:
    """The default window fits a 1366×768 screen; a job of one epoch per fold still draws its loss points; after the
    last fold the bar says what runs (not ETA 0:00); "completed in" is the job's own duration_s. The control panel's
    Advanced section is open: Start and Stop stay in view above it."""
    write_layout(candlecast_home, params={**TINY, "epochs": 1}, show_advanced=True)
    app = launch("one-epoch")
    probe = app.wait("the window, REST and WebSocket", ready)
    assert probe["viewport"]["width"] <= 1280 and probe["viewport"]["height"] <= 720, probe["viewport"]
    start = probe["start_button"]
    assert 0 < start["y"] and start["y"] + start["height"] <= probe["viewport"]["height"] - STATUS_BAR_HEIGHT, start
    assert_not_blank(app.screenshot("1-default-window"))

    app.click(probe["start_button"])
    seen: set[str] = set()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        probe = app.state()
        seen.add(probe.get("progress_text") or "")
        if probe["results_loaded"] and probe["phase"] == "idle":
            break
        time.sleep(0.1)
    assert probe["message"].startswith("Training completed"), probe
    finishing = f"All {TINY['cv_folds']} folds done · pooled scores and verdicts, fitting the final model"
    assert any(text.startswith(finishing) for text in seen), seen

    job = requests.get(f"{probe['server_url']}/jobs/{probe['job_id']}", timeout=30).json()
    assert probe["message"] == f"Training completed in {job['metrics']['duration_s']:.1f} s"

    app.click(TRAINING_TAB)
    shown = after(app)
    assert shown["losses"] == TINY["cv_folds"] and shown["loss_lines"] == 2 * TINY["cv_folds"]
    # One point per fold: only markers can show it (a line series of one point draws nothing).
    pixels = train_pixels(app.screenshot("2-one-point-per-fold"), shown["items"]["tv_plot"])
    assert pixels >= TRAIN_LEGEND_PIXELS + 40, pixels  # two markers of radius 3 are about 55 pixels
    assert app.close() == 0


def test_data_problems_and_a_killed_worker_read_as_sentences(launch, candlecast_home: Path, tmp_path: Path) -> None:
    """Issue 9 items 11, 17 and 18: a worker killed by a signal, a refused and a short import, and a job with too
    few candles, each told once, in words, in the app's own terms; then five new candles append to the stored ones."""
    import pandas as pd

    from trainer.data.store import load_dataset

    candles = load_dataset("BTCUSDT", "1h").candles.iloc[:305]
    stamps = (candles["open_time"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    table = candles.assign(timestamp=stamps)[["timestamp", "open", "high", "low", "close", "volume"]]
    short, five = tmp_path / "SHORTUSDT-1h.csv", tmp_path / "SHORTUSDT-1h-next5.csv"
    table.iloc[:300].to_csv(short, index=False)
    table.iloc[300:].to_csv(five, index=False)
    no_symbol = tmp_path / "candles.csv"
    no_symbol.write_text(short.read_text())
    not_candles = tmp_path / "notes.csv"
    not_candles.write_text("when,what\nmonday,nothing\n")
    write_layout(candlecast_home, params={"epochs": 200, "cv_folds": 2, "lookback": 8})
    app = launch("problems")
    probe = app.wait("the window, REST and WebSocket", ready)
    url = probe["server_url"]

    # kill -9 of a training worker: the reason with a hint, the worker's last lines wrapped inside the window.
    app.click(probe["start_button"])
    probe = app.wait("the first epoch", lambda p: p["losses"] >= 1)
    os.kill(requests.get(f"{url}/jobs/{probe['job_id']}", timeout=30).json()["pid"], signal.SIGKILL)
    probe = app.wait("the error window", lambda p: p["phase"] == "failed" and p["items"]["err_window"]["shown"])
    items = probe["items"]
    assert "killed by signal 9 (SIGKILL) without a final event: often the system ran out of memory (check `dmesg`)" \
        in items["err_message"]["value"]
    assert items["err_where"]["value"] == "stage worker · WorkerKilled · worker exit code -9"
    tail = items["err_details"]["value"].splitlines()
    assert items["err_details"]["shown"] and any(line.startswith(WRAP_INDENT) for line in tail), tail
    assert max(len(line) for line in tail) < 90, tail  # the 576-pixel box shows about 75 characters
    assert_not_blank(app.screenshot("1-killed"))
    app.click(items["err_close"])
    probe = app.wait("the error window closed", lambda p: p["phase"] == "idle")
    (x_low, x_high), _ = probe["loss_axes"]
    assert x_high > 1, probe["loss_axes"]  # the killed job's epochs are on the plot

    # Import data…: a refused file says why in the importer's words; a short one shows its report as a table
    # with a note that 300 candles are too few for the default 5-fold walk-forward CV.
    app.click(MENU_FILE)
    after(app, 0.5)  # the menu opens on the next frames
    app.click(MENU_IMPORT)
    probe = app.wait("the import dialog", lambda p: p["items"]["imp_path"]["visible"])
    app.type_into(probe["items"]["imp_path"], str(not_candles))
    app.click(probe["items"]["imp_go"])
    refused = app.wait("the refusal", lambda p: p["items"]["imp_summary"]["value"].startswith("Import failed"))
    summary = refused["items"]["imp_summary"]["value"]
    assert summary.startswith(f"Import failed: {not_candles}: ") and "422" not in summary and "Unprocessable" not in summary
    app.type_into(probe["items"]["imp_path"], str(no_symbol))  # the dialog's own Symbol field, not the API's
    app.click(probe["items"]["imp_go"])
    asked = app.wait("the symbol refusal", lambda p: p["items"]["imp_summary"]["value"].endswith("field above"))
    assert asked["items"]["imp_summary"]["value"] == (f"Import failed: {no_symbol}: no symbol in the file or its name; "
                                                      "give the symbol (e.g. BTCUSDT) in the Symbol field above")
    app.type_into(probe["items"]["imp_path"], str(short))
    app.click(probe["items"]["imp_go"])
    imported = app.wait("the report", lambda p: p["items"]["imp_summary"]["value"].startswith("Imported"))
    assert imported["items"]["imp_summary"]["value"].startswith("Imported SHORTUSDT-1h: 300 candles")
    shown = after(app)  # the dialog moved to fit: it ends above the status bar, its report scrolls inside
    window = shown["items"]["imp_window"]
    assert window["height"] > 400 and window["y"] + window["height"] <= shown["viewport"]["height"] - STATUS_BAR_HEIGHT, \
        window
    assert_not_blank(app.screenshot("2-import-report"))
    stored = requests.get(f"{url}/datasets", timeout=30).json()["datasets"]
    assert [d["rows"] for d in stored if d["id"] == "SHORTUSDT-1h"] == [300]
    app.click(imported["items"]["imp_close"])

    # Too few candles for 5 folds: one plain sentence with the numbers and the fix, in the error window only; no
    # traceback, no Retry; the loss plot shows no old job's axes.
    app.type_into(probe["items"]["cp_symbol"], "SHORTUSDT")
    app.type_into(probe["items"]["cp_cv_folds"], "5")
    probe = app.wait("Start enabled", lambda p: p["start_button"]["enabled"] and p["items"]["cp_cv_folds"]["value"] == "5")
    app.click(probe["start_button"])
    probe = app.wait("the error window", lambda p: p["phase"] == "failed" and p["items"]["err_window"]["shown"])
    items = probe["items"]
    assert items["err_message"]["value"].startswith(
        "Too few samples for 5-fold walk-forward CV: the data give 268 samples, it needs at least 376; use at most 3 CV "
        "folds, use a shorter lookback or horizon, or import more candles."), items["err_message"]
    assert not items["err_details"]["shown"] and not items["err_retry"]["shown"]
    assert items["err_where"]["value"].startswith("stage data · DataError")
    assert items["cp_message"]["value"] == "Training failed – the error window says why"
    assert "Too few" not in items["tv_message"]["value"]
    assert probe["loss_axes"] == [[0.5, 10.5], [0.0, 1.0]]
    assert_not_blank(app.screenshot("3-too-few-samples"))
    app.click(items["err_close"])
    app.wait("the error window closed", lambda p: p["phase"] == "idle")

    # Five new candles join the stored 300 (the training-window minimum is the merged dataset's, not the file's).
    app.click(MENU_FILE)
    after(app, 0.5)
    app.click(MENU_IMPORT)
    probe = app.wait("the import dialog", lambda p: p["items"]["imp_path"]["visible"])
    app.type_into(probe["items"]["imp_path"], str(five))
    app.click(probe["items"]["imp_go"])
    before = probe["items"]["imp_summary"]["value"]  # the first import's report, until this one's arrives
    appended = app.wait("the report", lambda p: p["items"]["imp_summary"]["value"] != before)
    assert appended["items"]["imp_summary"]["value"].startswith("Imported SHORTUSDT-1h: 305 candles"), \
        appended["items"]["imp_summary"]["value"]
    assert_not_blank(app.screenshot("4-appended"))
    assert app.close() == 0


def test_corrupt_layout_still_opens_the_window(launch, candlecast_home: Path) -> None:
    write_layout(candlecast_home, raw=b"\x00" * 300)  # what a crash during a plain write leaves
    (candlecast_home / "config" / "dpg.ini").write_bytes(b"[Window][x]\n\x00\x00garbage")
    app = launch("corrupt-layout")
    probe = app.wait("the window with its warning", lambda p: ready(p) and p["frame_stats"]["frames"] > 30)
    assert probe["warning_shown"], "the non-blocking warning is on screen"
    assert_not_blank(app.screenshot("warning"))
    config = candlecast_home / "config"
    backups = sorted(p.name for p in config.glob("*.bak.*"))
    assert [b.split(".bak.")[0] for b in backups] == ["dpg.ini", "layout.json"]
    assert (config / "layout.json.default").is_file()
    assert app.close() == 0
    json.loads((config / "layout.json").read_text())  # a valid layout again


def test_busy_port_falls_back_to_a_free_one(launch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        app = launch("busy-port", env={"CANDLECAST_PORT": str(port)})
        probe = app.wait("the window on another port", ready)
        assert probe["server_url"].startswith("http://127.0.0.1:") and not probe["server_url"].endswith(f":{port}")
        assert f"(port {port} was busy)" in app.output()  # the same note the status bar shows
        assert app.close() == 0


def test_status_dots_follow_the_server(launch, candlecast_home: Path) -> None:
    from embedded_server.serve import start_server
    from embedded_server.settings import AppSettings

    held = AppSettings(max_concurrent_jobs=0)
    server = start_server("127.0.0.1", 0, settings=held)
    port = server.port
    app = launch("dots", "--connect", server.url)
    try:
        app.wait("both dots green", ready)
        # The idle app sleeps between frames; a server event must still be drawn at once (a functional check
        # with generous slack, not a speed claim: benchmarks/gui_idle_cpu.py measures the idle cost).
        time.sleep(2)
        accepted = requests.post(server.url + "/start_training", json=TINY, timeout=30)
        assert accepted.status_code == 202  # max_concurrent_jobs 0: the job stays queued, no worker starts
        drawn = app.wait("the event drawn", lambda p: p["frame_stats"]["idle_event_to_frame"]["count"] > 0)
        assert drawn["frame_stats"]["idle_event_to_frame"]["max_ms"] <= 100, drawn["frame_stats"]

        fields = app.state()["items"]

        # Fields are checked as you type (issue 9 item 15): "abc" stays in Batch size, with its error, Start off.
        app.type_into(fields["cp_batch_size"], "abc")
        typed = app.wait("the batch size error", lambda p: p["items"]["cp_error_batch_size"]["shown"])
        assert typed["items"]["cp_batch_size"]["value"] == "abc" and not typed["start_button"]["enabled"]
        assert typed["items"]["cp_error_batch_size"]["value"] == "'abc' is not a whole number"
        assert_not_blank(app.screenshot("batch-size-abc"))
        app.type_into(fields["cp_batch_size"], "256")
        app.wait("Start enabled again", ready)

        # An unknown symbol (item 13): the Symbol field is marked and the line points to File → Import data….
        app.type_into(fields["cp_symbol"], "NOSUCHUSDT")
        app.click(app.wait("Start", ready)["start_button"])
        marked = app.wait("the Symbol field marked", lambda p: p["items"]["cp_error_symbol"]["shown"])
        assert marked["field_errors"] == {"symbol": "no candles for NOSUCHUSDT 1h: import a file with File → Import data…"}
        assert marked["phase"] == "idle" and marked["failure"] is None  # no error window with a Retry that can only fail
        assert "File → Import data…" in marked["items"]["cp_message"]["value"]
        assert_not_blank(app.screenshot("unknown-symbol"))
        app.type_into(fields["cp_symbol"], "BTCUSDT")
        edited = app.wait("Start enabled again", ready)
        assert edited["field_errors"] == {} and not edited["items"]["cp_error_symbol"]["shown"]

        server.shutdown(timeout=30)
        gone = app.wait("both dots red", lambda p: p["ws"] == "disconnected" and p["rest_ok"] is False, timeout=60)
        assert gone["server_url"] is None  # --connect: no embedded server
        # Start is off while the server does not answer, with the reason; a click then is not kept for later.
        assert not gone["start_button"]["enabled"] and gone["items"]["cp_blocked"]["shown"]
        assert gone["items"]["cp_blocked"]["value"].startswith("The server does not answer")
        app.click(gone["start_button"])
        assert after(app)["phase"] == "idle"
        assert_not_blank(app.screenshot("server-gone"))
        server = start_server("127.0.0.1", port, settings=held)
        back = app.wait("both dots green again", ready, timeout=60)
        assert not back["items"]["cp_blocked"]["shown"]
        assert after(app)["phase"] == "idle"
        jobs = requests.get(server.url + "/jobs", timeout=30).json()["jobs"]
        assert [j["job_id"] for j in jobs] == [accepted.json()["job_id"]]  # the one posted above, nothing else
    finally:
        app.close()
        server.shutdown(timeout=30)
