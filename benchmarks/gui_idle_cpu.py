"""CPU time of the idle app (issue "Fast and light", goal 1): the real app under Xvfb with its embedded server,
no job, no input, measured as the app process's CPU seconds (``/proc/<pid>/stat`` utime + stime) over a window of
``--seconds``; side by side with the same app drawing every frame (``CANDLECAST_GUI_ALWAYS_DRAW=1``, the old
behaviour), alternating A B A B on the same display. Prints % of one core for each and their ratio, against the
5 % goal. Needs Xvfb, xdotool and ImageMagick (the GUI test harness).

    .venv/bin/python benchmarks/gui_idle_cpu.py [--seconds 30] [--runs 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from gui_harness import GuiApp, missing_tools, xvfb  # noqa: E402

GOAL_PERCENT = 5.0
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def idle_percent(display: str, seconds: float, always_draw: bool) -> float:
    """% of one core the idle app used over ``seconds`` (after it is ready and 5 s have passed)."""
    with tempfile.TemporaryDirectory(prefix="candlecast-bench-idle-") as tmp:
        env = {"CANDLECAST_GUI_ALWAYS_DRAW": "1"} if always_draw else {}
        app = GuiApp(display, Path(tmp), "idle-" + ("always" if always_draw else "paced"), env=env)
        try:
            app.wait("ready", lambda p: p["rest_ok"] and p["ws"] == "connected" and p["start_button"]["enabled"])
            time.sleep(5)  # start-up work (first health check, layout, fonts) is over
            before, started = cpu_seconds(app.proc.pid), time.monotonic()
            time.sleep(seconds)
            used, elapsed = cpu_seconds(app.proc.pid) - before, time.monotonic() - started
        finally:
            app.close()
        return 100 * used / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    missing = missing_tools()
    if missing:
        print(f"needs {', '.join(missing)}", file=sys.stderr)
        return 1
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {args.seconds:.0f} s idle per run")
    paced, always = [], []
    with xvfb() as display:
        for run in range(args.runs):
            paced.append(idle_percent(display, args.seconds, always_draw=False))
            always.append(idle_percent(display, args.seconds, always_draw=True))
            print(f"run {run + 1}: idle app {paced[-1]:.1f} % of a core; drawing every frame {always[-1]:.1f} %")
    ratio = statistics.median(p / a for p, a in zip(paced, always))
    print(f"median: idle app {statistics.median(paced):.1f} % of a core (goal <= {GOAL_PERCENT:.0f} %: "
          f"{statistics.median(paced) / GOAL_PERCENT:.2f} of it); drawing every frame {statistics.median(always):.1f} %; "
          f"idle / every-frame = {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
