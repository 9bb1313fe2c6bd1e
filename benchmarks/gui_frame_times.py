"""Frame times of the real app under Xvfb while a training job streams events (the GUI section of
docs/benchmarks.md).

Starts Xvfb, the app with its embedded server (temp CANDLECAST_HOME), clicks Start with xdotool on a small job
(``--epochs`` × ``--folds``), and reads the frame statistics the app measures itself (``CANDLECAST_GUI_PROBE``):
the wall time of each frame loop iteration (draining messages, controller, views, Dear PyGui's render), for all
frames and for the frames while events stream (phase running). The window has the app's default size
(``layout_store.Viewport``, what a new user gets). Prints p50/p99/max, p99 as a ratio of the 33 ms budget
(30 frames/s), and the ratio to a bare Dear PyGui window of the same size (one line of text) rendered on the same
display just before: on a software-rendered display most of a frame is the renderer itself, so that
ratio is what the app adds. Needs Xvfb, xdotool and ImageMagick.

    .venv/bin/python benchmarks/gui_frame_times.py [--epochs 6] [--folds 2] [--runs 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from gui_harness import DEFAULT_VIEWPORT, GuiApp, missing_tools, write_layout, xvfb  # noqa: E402

BUDGET_MS = 33.0
#: The app's window and the bare one: the app's default size (``layout_store.Viewport``), what a new user gets.
WIDTH, HEIGHT = DEFAULT_VIEWPORT.width, DEFAULT_VIEWPORT.height
BARE_WINDOW = f"""
import time, dearpygui.dearpygui as dpg
dpg.create_context()
dpg.create_viewport(title="bare", width={WIDTH}, height={HEIGHT}, x_pos=0, y_pos=0)
with dpg.window(tag="w"):
    dpg.add_text("bare window")
dpg.set_primary_window("w", True)
dpg.setup_dearpygui(); dpg.show_viewport()
times = []
for _ in range(400):
    start = time.perf_counter(); dpg.render_dearpygui_frame(); times.append(time.perf_counter() - start)
dpg.destroy_context()
times = sorted(times[30:])
print(times[len(times) // 2] * 1000, times[int(0.99 * len(times)) - 1] * 1000)
"""


def bare_window(display: str) -> tuple[float, float]:
    """p50 and p99 (ms) of a bare Dear PyGui window of the app's default size (``WIDTH`` × ``HEIGHT``) on
    ``display``."""
    done = subprocess.run([sys.executable, "-c", BARE_WINDOW], env=dict(os.environ, DISPLAY=display),
                          capture_output=True, text=True, timeout=300, check=True)
    p50, p99 = map(float, done.stdout.split())
    return p50, p99


def one_run(display: str, epochs: int, folds: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="candlecast-bench-gui-") as tmp:
        home = Path(tmp)
        write_layout(home, params={"epochs": epochs, "cv_folds": folds, "lookback": 8, "batch_size": 512})  # default size
        app = GuiApp(display, home, "benchmark")
        try:
            probe = app.wait("ready", lambda p: p["rest_ok"] and p["ws"] == "connected" and p["start_button"]["enabled"])
            app.click(probe["start_button"])
            done = app.wait("completed", lambda p: p["results_loaded"] and p["phase"] == "idle", timeout=900)
        finally:
            app.close()
        return done["frame_stats"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    missing = missing_tools()
    if missing:
        print(f"needs {', '.join(missing)}", file=sys.stderr)
        return 1
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPUs, load average {load:.1f} before the run; window {WIDTH}×{HEIGHT}; "
          f"job: {args.epochs} epochs × {args.folds} folds")
    with xvfb() as display:
        for run in range(1, args.runs + 1):
            bare_p50, bare_p99 = bare_window(display)
            print(f"run {run} bare window      p50 {bare_p50:7.1f} ms  p99 {bare_p99:7.1f} ms")
            stats = one_run(display, args.epochs, args.folds)
            for name in ("streaming", "all"):
                block = stats[name]
                ratio = block["p99_ms"] / BUDGET_MS if block["p99_ms"] else float("nan")
                print(f"run {run} {name:9s} frames {block['count']:5d}  p50 {block['p50_ms']:7.1f} ms  "
                      f"p99 {block['p99_ms']:7.1f} ms  max {block['max_ms']:7.1f} ms  p99/budget {ratio:.2f}  "
                      f"p50/bare {block['p50_ms'] / bare_p50:.2f}")
            print(f"run {run} events {stats['events']}, load average now {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
