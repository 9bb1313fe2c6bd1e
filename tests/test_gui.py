"""The real app under Xvfb: its window, its embedded server, a real click on Start, a real training job.

Needs Xvfb, xdotool and ImageMagick (``.ci/run`` installs them); skips with that reason where they are missing.
Screenshots and the frame-time figures go to ``test-artifacts/gui/``.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from gui_harness import ARTIFACTS, GuiApp, distinct_colours, missing_tools, write_layout, xvfb

pytestmark = pytest.mark.gui

#: Small enough for a test, big enough that epochs stream for a while: 2 folds × 3 epochs.
TINY = {"epochs": 3, "cv_folds": 2, "lookback": 8, "batch_size": 512}
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

    stats = done["frame_stats"]
    assert stats["streaming"]["count"] > 0 and stats["events"] > 0, stats
    (ARTIFACTS / "frame_times.json").write_text(json.dumps(stats, indent=2))
    print(f"\nGUI frame times while events streamed: {stats['streaming']}")  # figure for docs/benchmarks.md

    assert app.close() == 0
    saved = json.loads((candlecast_home / "config" / "layout.json").read_text())
    assert {k: saved["params"][k] for k in TINY} == TINY and saved["viewport"]["width"] == 1360
    assert saved["panels"]["tab"] == "results"  # the tab on screen when the window closed


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
        server.shutdown(timeout=30)
        gone = app.wait("both dots red", lambda p: p["ws"] == "disconnected" and p["rest_ok"] is False, timeout=60)
        assert gone["server_url"] is None  # --connect: no embedded server
        assert_not_blank(app.screenshot("server-gone"))
        server = start_server("127.0.0.1", port, settings=held)
        app.wait("both dots green again", ready, timeout=60)
    finally:
        app.close()
        server.shutdown(timeout=30)
