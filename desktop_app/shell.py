"""The frame loop's side of the app: a message queue, the controller, the views, and frame-time statistics.

Background threads (REST calls, the WebSocket, file writes) only ``post`` messages; the render thread drains the
queue once per frame (at most ``MAX_MESSAGES_PER_FRAME``, so a burst of replayed events is spread over frames),
applies them with ``controller.update``, hands the effects to the runtime, and re-renders the views when the state
changed. Nothing here blocks: no network call and no file write runs on the render thread.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from desktop_app import controller
from desktop_app import messages as m
from desktop_app.controller import State
from desktop_app.panels.run import Phase

log = logging.getLogger(__name__)

MAX_MESSAGES_PER_FRAME = 200


class View(Protocol):
    """Anything that renders the state (``prev`` is the state it rendered last, or None the first time)."""

    def render(self, state: State, prev: State | None) -> None: ...


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) of already sorted values by the nearest-rank method; NaN for none."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 1))))  # ceil(q·n), at least 1
    return sorted_values[rank - 1]


class FrameStats:
    """Frame times in seconds: all frames after the first ``warmup`` (shader and font set-up), and the frames
    while training events stream in (phase running or stopping); and, for server events that arrived while the
    app slept between frames (``idle``), the seconds from their arrival to the end of the frame that drew them."""

    def __init__(self, warmup: int = 30) -> None:
        self.warmup = warmup
        self.frames = 0
        self.all: list[float] = []
        self.streaming: list[float] = []
        self.idle_event_to_frame: list[float] = []
        self.events = 0

    def record(self, seconds: float, streaming: bool) -> None:
        """Add one frame."""
        self.frames += 1
        if self.frames <= self.warmup:
            return
        self.all.append(seconds)
        if streaming:
            self.streaming.append(seconds)

    def record_idle_event(self, seconds: float) -> None:
        """Add the arrival-to-drawn time of a server event that arrived while the app was idle."""
        self.idle_event_to_frame.append(seconds)

    def snapshot(self) -> tuple[list[float], list[float], int, int, list[float]]:
        """Copies for a summary computed off the render thread."""
        return list(self.all), list(self.streaming), self.frames, self.events, list(self.idle_event_to_frame)

    @staticmethod
    def summary(
        all_frames: list[float], streaming: list[float], frames: int, events: int, idle_events: list[float] = ()
    ) -> dict[str, Any]:
        """``{frames, events, all: {count, p50_ms, p99_ms, max_ms}, streaming: {…}, idle_event_to_frame: {…}}``."""

        def block(values: list[float]) -> dict[str, Any]:
            ordered = sorted(values)
            if not ordered:
                return {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
            return {
                "count": len(ordered),
                "p50_ms": round(percentile(ordered, 0.50) * 1000, 3),
                "p99_ms": round(percentile(ordered, 0.99) * 1000, 3),
                "max_ms": round(ordered[-1] * 1000, 3),
            }

        return {
            "frames": frames, "events": events, "all": block(all_frames), "streaming": block(streaming),
            "idle_event_to_frame": block(list(idle_events)),
        }


class Shell:
    """Owns the state; ``dispatch`` (from callbacks) and ``post`` (from threads) feed it, ``step`` runs a frame."""

    def __init__(self, perform: Callable[[tuple[m.Effect, ...]], None], clock: Callable[[], float] = time.monotonic,
                 timing: controller.Timing | None = None) -> None:
        self._perform = perform
        self._clock = clock
        self._queue: queue.SimpleQueue[m.Message] = queue.SimpleQueue()
        self.state, effects = controller.initial(timing)
        self._pending_effects = effects
        self._rendered: State | None = None
        self.views: list[View] = []
        self.on_change: list[Callable[[State, State | None], None]] = []
        self.on_post: Callable[[], None] = lambda: None  # wakes the render thread (``FramePacer.wake``)
        self.stats = FrameStats()

    def post(self, message: m.Message) -> None:
        """Thread-safe: queue a message for the next frame (and wake the render thread for it)."""
        if isinstance(message, m.ServerEvent):
            message = replace(message, posted=time.perf_counter())
        self._queue.put(message)
        self.on_post()

    def dispatch(self, make: Callable[..., m.Message], **fields: Any) -> None:
        """From a Dear PyGui callback: build the message with the current time and queue it."""
        self._queue.put(make(now=self._clock(), **fields))

    def step(self) -> tuple[bool, float | None]:
        """One frame's work: drain messages, tick the timers, run effects, render if anything changed.

        Returns ``(changed, first_event_posted)``: whether the views were updated (or messages are left for the
        next frame), and the ``time.perf_counter()`` at which the earliest server event applied now was posted.
        """
        if self._pending_effects:
            self._perform(self._pending_effects)
            self._pending_effects = ()
        state = self.state
        first_event: float | None = None
        for _ in range(MAX_MESSAGES_PER_FRAME):
            try:
                message = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(message, m.ServerEvent):
                self.stats.events += 1
                if message.posted is not None and (first_event is None or message.posted < first_event):
                    first_event = message.posted
            state = self._apply(state, message)
        state = self._apply(state, m.Tick(self._clock()))
        self.state = state
        changed = state is not self._rendered
        if changed:
            previous = self._rendered
            for view in self.views:
                view.render(state, previous)
            for hook in self.on_change:
                hook(state, previous)
            self._rendered = state
        return changed or not self._queue.empty(), first_event

    def _apply(self, state: State, message: m.Message) -> State:
        new, effects = controller.update(state, message)
        if effects:
            self._perform(effects)
        if new.run.phase is not state.run.phase:
            log.info("phase %s -> %s job=%s: %s", state.run.phase.value, new.run.phase.value, new.run.job_id,
                     new.run.message)
        return new

    @property
    def streaming(self) -> bool:
        """Whether training events are flowing (the frames the p99 target is about)."""
        return self.state.run.phase in (Phase.RUNNING, Phase.STOPPING)
