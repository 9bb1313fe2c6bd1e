"""Cold start of the built executable (issue "Fast and light", goal 3): seconds from launch to the first HTTP
answer of ``serve --port 0`` and, with ``--gui``, to the first window on screen and the GUI's first frame.

    .venv/bin/python benchmarks/packaging_cold_start.py dist/candlecast/candlecast dist/onefile/candlecast \
        [--runs 3] [--gui] [--source]

Each run launches the program with a fresh ``CANDLECAST_HOME`` and ``TMPDIR`` (so onefile unpacks itself every
time, as it does for a user) and stops it with SIGTERM. "Cold" means a new process each time; the file cache is
whatever the machine has (not dropped).

- serve: ``EXE serve --port 0``; polls its output for the address, then ``GET /`` every 10 ms until a 200.
- ``--gui``: ``EXE`` (the window) on a private Xvfb display: the first visible window of any kind (the onefile
  build's splash, or the app's own; ``xdotool search --onlyvisible`` every 20 ms) and the end of the GUI's first
  frame (``first_frame_at`` of the app's probe file, ``CANDLECAST_GUI_PROBE``). A screenshot of the first window
  goes to ``test-artifacts/packaging/first-window-<n>.png`` (the splash says it is unpacking).

``--source`` adds ``python -m desktop_app.cli`` from the checkout for comparison. Prints every run, the medians
side by side against the goals (``GOALS``), and the ratio of each median to the first program's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from trainer.processes import end_process

ROOT = Path(__file__).resolve().parent.parent
ADDRESS = re.compile(rb"(http://127\.0\.0\.1:\d+)")
SHOTS = ROOT / "test-artifacts" / "packaging"
#: Seconds: serve's first answer (onedir), the first window (onefile: its splash) and the GUI's first frame.
GOALS = {"serve": 1.0, "window": 2.0, "frame": 2.0}


def first_answer(argv: list[str], timeout: float = 120) -> float:
    """Seconds from ``Popen(argv)`` to the first 200 from ``GET /`` (the address read from its output)."""
    with tempfile.TemporaryDirectory(prefix="candlecast-start-") as work:
        env = {k: v for k, v in os.environ.items() if k != "CANDLECAST_PORT"}
        env |= {"CANDLECAST_HOME": str(Path(work) / "home"), "TMPDIR": work}
        if argv[0] == sys.executable:  # from source: find the packages whatever the current directory
            env["PYTHONPATH"] = str(ROOT)
        output = Path(work) / "out"
        with open(output, "wb") as sink:
            started = time.perf_counter()
            proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=work)
        try:
            url = None
            while time.perf_counter() - started < timeout:
                if proc.poll() is not None:
                    raise RuntimeError(f"{argv[0]} exited with {proc.returncode}: {output.read_text()[-500:]}")
                if url is None:
                    found = ADDRESS.search(output.read_bytes())
                    url = found.group(1).decode() if found else None
                if url is not None:
                    try:
                        if requests.get(url + "/", timeout=5).status_code == 200:
                            return time.perf_counter() - started
                    except requests.ConnectionError:
                        pass
                time.sleep(0.01)
            raise RuntimeError(f"{argv[0]}: no answer within {timeout} s")
        finally:
            end_process(proc)


def visible_windows(display: str) -> set[str]:
    """Ids of the mapped windows on ``display`` (any WM_CLASS: a Tk splash has no title of ours), the root's too."""
    done = subprocess.run(["xdotool", "search", "--onlyvisible", "--class", ""], capture_output=True, text=True,
                          env=dict(os.environ, DISPLAY=display), timeout=30)
    return set(done.stdout.split())


def first_window_and_frame(argv: list[str], display: str, shot: Path, timeout: float = 180) -> tuple[float, float]:
    """Seconds from ``Popen(argv)`` (the GUI) to its first visible window and to the end of its first frame."""
    with tempfile.TemporaryDirectory(prefix="candlecast-start-") as work:
        probe = Path(work) / "probe.json"
        env = {k: v for k, v in os.environ.items() if k not in ("CANDLECAST_PORT", "WAYLAND_DISPLAY")}
        env |= {"CANDLECAST_HOME": str(Path(work) / "home"), "TMPDIR": work, "DISPLAY": display,
                "CANDLECAST_PORT": "0", "CANDLECAST_GUI_PROBE": str(probe)}
        if argv[0] == sys.executable:
            env["PYTHONPATH"] = str(ROOT)
        output = Path(work) / "out"
        before = visible_windows(display)  # the root window
        with open(output, "wb") as sink:
            started_wall, started = time.time(), time.perf_counter()
            proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=work)
        try:
            window = frame = None
            while frame is None and time.perf_counter() - started < timeout:
                if proc.poll() is not None:
                    raise RuntimeError(f"{argv[0]} exited with {proc.returncode}: {output.read_text()[-500:]}")
                if window is None and visible_windows(display) - before:
                    window = time.perf_counter() - started
                    shot.parent.mkdir(parents=True, exist_ok=True)
                    subprocess.run(["import", "-display", display, "-window", "root", str(shot)], timeout=60,
                                   capture_output=True)
                try:
                    first = json.loads(probe.read_text(encoding="utf-8")).get("first_frame_at")
                except (FileNotFoundError, ValueError):
                    first = None
                frame = None if first is None else first - started_wall
                time.sleep(0.02)
            if window is None or frame is None:
                raise RuntimeError(f"{argv[0]}: no window or no first frame within {timeout} s")
            return window, frame
        finally:
            end_process(proc)


def _runs(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s ({', '.join(f'{v:.2f}' for v in values)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("exes", nargs="*", type=Path, help="built executables to time")
    parser.add_argument("--runs", type=int, default=3, help="launches per program (the median is reported)")
    parser.add_argument("--gui", action="store_true", help="also time the window (needs Xvfb, xdotool, ImageMagick)")
    parser.add_argument("--source", action="store_true", help="also time `python -m desktop_app.cli` from source")
    args = parser.parse_args()
    programs = [(str(exe), [str(exe.resolve())]) for exe in args.exes]
    if args.source:
        programs.append(("source (python -m desktop_app.cli)", [sys.executable, "-m", "desktop_app.cli"]))
    if not programs:
        parser.error("name an executable or --source")
    medians: dict[str, list[float]] = {}
    for name, argv in programs:
        runs = [first_answer([*argv, "serve", "--port", "0"]) for _ in range(args.runs)]
        medians[name] = [statistics.median(runs)]
        print(f"{name}: serve, first HTTP answer: {_runs(runs)}  goal <= {GOALS['serve']:.0f} s", flush=True)
    if args.gui:
        sys.path.insert(0, str(ROOT / "tests"))
        from gui_harness import xvfb

        for number, (name, argv) in enumerate(programs):
            windows, frames = [], []
            for run in range(args.runs):
                with xvfb() as display:  # a fresh display: nothing from the previous launch is still on it
                    window, frame = first_window_and_frame(argv, display, SHOTS / f"first-window-{number}-{run}.png")
                windows.append(window)
                frames.append(frame)
            medians[name] += [statistics.median(windows), statistics.median(frames)]
            print(f"{name}: first window {_runs(windows)}; first frame {_runs(frames)}  "
                  f"goals <= {GOALS['window']:.0f} s / {GOALS['frame']:.0f} s", flush=True)
    columns = ["serve: GET /", "first window", "first frame"][: len(next(iter(medians.values())))]
    print("\nmedians (s): " + " | ".join(columns))
    first = programs[0][0]
    for name, values in medians.items():
        ratios = " | ".join(f"{v / w:.1f}x" for v, w in zip(values, medians[first]))
        print(f"  {name}: {' | '.join(f'{v:.2f}' for v in values)}   (vs {first}: {ratios})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
