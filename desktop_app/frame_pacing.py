"""When the app draws a frame: on input, on a message from a background thread, or on a slow tick — never in a
busy loop while nothing changes (an idle window must not burn a laptop's core).

While nothing happens the render thread sleeps in GLFW's ``glfwWaitEventsTimeout`` before the next frame: user
input ends the wait (GLFW hands it to Dear PyGui's callbacks, so the frame that follows sees it), a background
thread (a server event, a REST reply) ends it with ``glfwPostEmptyEvent`` (both documented by GLFW; the latter is
callable from any thread), and the timeout (``IDLE_TICK_S``) lets the controller's timers run. Dear PyGui links
GLFW statically and exports these symbols; where they are missing (another platform's build) or
``ALWAYS_DRAW_ENV`` is set, the app draws every frame as before.

After input the app draws continuously for ``INPUT_BURST_S``, as it does while the user interacts: key
events reach the widgets about one per frame, so typed text would otherwise trail the keys by seconds.
While a job streams events the app draws continuously (the frame loop caps it at 60 frames/s), so the frame-time
figures of ``benchmarks/gui_frame_times.py`` keep their meaning.
"""

from __future__ import annotations

import ctypes
import logging
import os
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: Longest sleep of an idle app (seconds): its timers (health check 10 s, polling 2 s) run at most this late.
IDLE_TICK_S = 0.5
#: Frames drawn after a frame that changed something, so Dear PyGui settles (hover, popups, layout).
SETTLE_FRAMES = 2
#: After a wait ended early by input, frames come without waiting for this long (seconds), as while the user
#: interacts: Dear PyGui (ImGui) hands queued key events to the widgets about one per frame, so keys typed or
#: repeated faster than idle frames come would otherwise show up one per tick, seconds late.
INPUT_BURST_S = 2.0
#: Set to 1 to draw every frame as older versions did (a display where waiting misbehaves; the benchmark's baseline).
ALWAYS_DRAW_ENV = "CANDLECAST_GUI_ALWAYS_DRAW"


def _glfw() -> Any:
    """Dear PyGui's own library with GLFW's event functions, or None (not exported, or ``ALWAYS_DRAW_ENV``)."""
    if os.environ.get(ALWAYS_DRAW_ENV) == "1":
        return None
    try:
        import dearpygui._dearpygui as core

        lib = ctypes.CDLL(core.__file__)  # CDLL calls release the GIL: other threads run while this one waits
        lib.glfwWaitEventsTimeout.argtypes = [ctypes.c_double]
        lib.glfwPostEmptyEvent.argtypes = []
        return lib
    except (OSError, AttributeError, ImportError) as exc:
        log.warning("no GLFW event wait in this Dear PyGui build (%s): drawing every frame", exc)
        return None


class FramePacer:
    """Decides whether the render thread sleeps before the next frame, and wakes it from other threads.

    ``wake()`` is thread-safe: call it whenever a message is queued for the render thread. On the render thread,
    ``wait()`` before a frame sleeps until input, a wake-up or ``tick_s`` — unless the app streams events or the
    last frame changed something (``after_frame``), when it returns at once.
    """

    def __init__(self, tick_s: float = IDLE_TICK_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._glfw = _glfw()
        self._tick_s = tick_s
        self._clock = clock
        self._settle = 0
        self._burst_until = 0.0
        self._woken = False  # wake() was called since the current wait began: it was not (only) input

    def wake(self) -> None:
        """End the render thread's current (or next) wait at once. Any thread."""
        if self._glfw is not None:
            self._woken = True
            self._glfw.glfwPostEmptyEvent()

    def wait(self, streaming: bool) -> bool:
        """Sleep until input, a wake-up or the tick unless ``streaming`` or settling; returns whether it slept."""
        if self._glfw is None or streaming or self._settle > 0 or self._clock() < self._burst_until:
            self._settle = max(0, self._settle - 1)
            return False
        begun, self._woken = self._clock(), False
        self._glfw.glfwWaitEventsTimeout(self._tick_s)
        ended = self._clock()
        if ended - begun < self._tick_s and not self._woken:  # woken early by input: let the queued input drain
            self._burst_until = ended + INPUT_BURST_S
        return True

    def after_frame(self, changed: bool) -> None:
        """Note that the frame just drawn ``changed`` something: the next ``SETTLE_FRAMES`` frames come at once."""
        if changed:
            self._settle = SETTLE_FRAMES
