"""Driving the real app under Xvfb: a private X display, the app as a subprocess, its probe file, real mouse
clicks (xdotool) and screenshots (ImageMagick ``import``). Used by ``tests/test_gui.py`` and
``benchmarks/gui_frame_times.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from desktop_app.layout_store import Viewport
from trainer.processes import end_process

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO_ROOT / "test-artifacts" / "gui"
TOOLS = ("Xvfb", "xdotool", "import")
SCREEN = (1600, 1000)
#: The app's default window size: the tests see what a new user sees (it fits a 1366×768 screen).
DEFAULT_VIEWPORT = Viewport()
#: Seconds for anything the app or a worker does on a busy 2-core machine (torch import included).
SLOW = 180


def missing_tools() -> list[str]:
    """The programs this harness needs that are not installed."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def _free_display() -> int:
    for number in range(90, 400):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            return number
    raise RuntimeError("no free X display number between :90 and :399")


@contextmanager
def xvfb() -> Iterator[str]:
    """An Xvfb server on a free display number; yields ``":N"``; terminate → wait → kill at the end."""
    number = _free_display()
    proc = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not Path(f"/tmp/.X11-unix/X{number}").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Xvfb :{number} did not start (exit {proc.poll()})")
            time.sleep(0.05)
        yield f":{number}"
    finally:
        end_process(proc, 10)


def write_layout(
    home: Path, params: dict[str, Any] | None = None, raw: bytes | None = None, show_advanced: bool = False,
) -> Path:
    """Put a ``layout.json`` in ``home``'s config folder: a valid one at (0, 0) of the app's default size with
    ``params`` (and the control panel's Advanced section open if ``show_advanced``), or ``raw``."""
    path = home / "config" / "layout.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    if raw is not None:
        path.write_bytes(raw)
    else:
        layout = {
            "schema_version": 1,
            "viewport": {"x": 0, "y": 0, "width": DEFAULT_VIEWPORT.width, "height": DEFAULT_VIEWPORT.height},
            "panels": {"control_width": 360, "show_advanced": show_advanced, "tab": "training", "status_bar": True},
            "params": params or {},
        }
        path.write_text(json.dumps(layout), encoding="utf-8")
    return path


#: Characters typed between two checks of the probe (``GuiApp.type_into``).
TYPE_CHUNK = 12

class GuiApp:
    """``python -m desktop_app.cli [args]`` on ``display`` with CANDLECAST_HOME=``home``, a probe file, and
    ``CANDLECAST_PORT=0`` unless ``env`` says otherwise."""

    def __init__(self, display: str, home: Path, name: str, args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.display = display
        self.home = home
        self.name = name
        self.probe = home / "gui-probe.json"
        self.log = ARTIFACTS / f"{name}.log"
        env = {**os.environ, "DISPLAY": display, "CANDLECAST_HOME": str(home), "CANDLECAST_PORT": "0",
               "CANDLECAST_GUI_PROBE": str(self.probe), "PYTHONUNBUFFERED": "1", **(env or {})}
        env.pop("WAYLAND_DISPLAY", None)
        with open(self.log, "wb") as sink:
            self.proc = subprocess.Popen([sys.executable, "-m", "desktop_app.cli", *args], cwd=REPO_ROOT, env=env,
                                         stdout=sink, stderr=subprocess.STDOUT)
        self._window: str | None = None

    def output(self) -> str:
        """Everything the app printed so far."""
        return self.log.read_text(errors="replace")

    def state(self) -> dict[str, Any] | None:
        """The app's latest probe (written atomically twice a second), or None before the first."""
        try:
            return json.loads(self.probe.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def wait(self, what: str, condition: Callable[[dict[str, Any]], bool], timeout: float = SLOW) -> dict[str, Any]:
        """Poll the probe until ``condition(probe)``; fails with the app's output if it exits or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"app exited ({self.proc.returncode}) waiting for {what}:\n{self.output()[-3000:]}")
            probe = self.state()
            if probe is not None and condition(probe):
                return probe
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; last probe {self.state()}\n{self.output()[-3000:]}")

    def _xdotool(self, *args: str) -> str:
        done = subprocess.run(["xdotool", *args], env=dict(os.environ, DISPLAY=self.display), capture_output=True,
                              text=True, timeout=30)
        if done.returncode != 0:
            raise AssertionError(f"xdotool {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def window(self) -> str:
        """The X window id of the viewport titled "Candlecast"."""
        deadline = time.monotonic() + 30
        while self._window is None:  # the first frames may come before the window manager has its title
            try:
                self._window = self._xdotool("search", "--name", "^Candlecast$").splitlines()[0]
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        return self._window

    def click(self, rect: dict[str, float]) -> None:
        """A real left click (XTest) in the middle of ``rect`` (viewport pixels: x, y, width, height)."""
        x = int(rect["x"] + rect["width"] / 2)
        y = int(rect["y"] + rect["height"] / 2)
        self._xdotool("mousemove", "--window", self.window(), str(x), str(y))
        time.sleep(0.2)  # let a frame see the hover before the press, as with a real mouse
        self._xdotool("click", "1")

    def type_into(self, item: dict[str, Any], text: str, attempts: int = 3) -> None:
        """Click the input ``item`` (a probe's ``items`` entry), erase what it holds (Ctrl+A, BackSpace, as a hand
        would), type ``text`` key by key, and wait until the app's probe shows it.

        On a loaded 2-core machine Xvfb can drop synthetic keys and clicks, so the click must make the field active
        (as the probe reports) and the text goes in chunks, each checked in the probe; a click or a chunk that does
        not arrive starts the field over, at the field's latest rectangle (``attempts`` tries in all)."""
        if "tag" not in item:
            self.click(item)
            self._xdotool("type", "--delay", "40", text)
            return
        tag = item["tag"]

        def shows(value: str) -> Callable[[dict[str, Any]], bool]:
            return lambda p: p["items"][tag]["value"] == value

        for attempt in range(1, attempts + 1):
            try:
                self.click(item if attempt == 1 else self.state()["items"][tag])
                self.wait(f"{tag} active", lambda p: p["items"][tag]["active"], timeout=5)
                self._xdotool("key", "--delay", "60", "ctrl+a", "BackSpace")
                self.wait(f"{tag} emptied", shows(""), timeout=5)
                for end in range(TYPE_CHUNK, len(text) + TYPE_CHUNK, TYPE_CHUNK):
                    self._xdotool("type", "--delay", "40", "--", text[end - TYPE_CHUNK : end])
                    self.wait(f"{text[:end]!r} in {tag}", shows(text[:end]), timeout=5)
                return
            except AssertionError:
                if attempt == attempts or self.proc.poll() is not None:
                    raise

    def scroll_down(self, x: int, y: int, clicks: int, up: bool = False) -> None:
        """Turn the mouse wheel ``clicks`` notches down (``up``: up) with the pointer at (x, y) (viewport pixels)."""
        self._xdotool("mousemove", "--window", self.window(), str(x), str(y))
        for _ in range(clicks):
            self._xdotool("click", "4" if up else "5")
            time.sleep(0.05)  # one notch per frame or so, as a hand turns it

    def screenshot(self, label: str) -> Path:
        """Save the window as ``test-artifacts/gui/<name>-<label>.png``."""
        path = ARTIFACTS / f"{self.name}-{label}.png"
        subprocess.run(["import", "-display", self.display, "-window", self.window(), str(path)], check=True,
                       timeout=60, capture_output=True)
        return path

    def close(self, timeout: float = SLOW) -> int:
        """SIGTERM (the app closes as if its window was closed), wait, kill if it hangs; returns the exit code."""
        code, killed = end_process(self.proc, timeout)
        if killed:
            raise AssertionError(f"app ignored SIGTERM for {timeout} s:\n{self.output()[-3000:]}")
        return code


def distinct_colours(path: Path, region: dict[str, float] | None = None) -> int:
    """How many distinct RGB colours a screenshot has (a blank or black window has one or two); only inside
    ``region`` (a probe's rectangle: x, y, width, height in viewport pixels) when given."""
    from PIL import Image

    with Image.open(path) as image:
        if region is not None:
            x, y = int(region["x"]), int(region["y"])
            image = image.crop((x, y, x + int(region["width"]), y + int(region["height"])))
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    return len(colours) if colours is not None else 1 << 20
