"""Runs the Sweeps tab's effects (``desktop_app.sweeps_panel``) over HTTP off the render thread and steps its state
machine once per frame on the render thread (``frame``), like ``runtime.Runtime`` and ``shell.Shell`` do for the
main controller. Every effect ends in exactly one message, also on a network error or a refusal."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from desktop_app import sweeps_panel as sp
from desktop_app.api_client import ApiClient, ApiError


class SweepsRuntime:
    """Owns the tab's ``panel`` state; ``send`` (render thread) and the network threads feed it, ``frame`` applies
    what came and returns whether the panel changed. ``wake`` is called when an answer arrives (the frame pacer)."""

    def __init__(self, client: ApiClient, wake: Callable[[], None] = lambda: None) -> None:
        self.client = client
        self.panel = sp.Panel()
        self._wake = wake
        self._inbox: queue.SimpleQueue[sp.Message] = queue.SimpleQueue()
        self._net = ThreadPoolExecutor(max_workers=2, thread_name_prefix="candlecast-sweeps")

    def send(self, message: sp.Message) -> None:
        self._inbox.put(message)

    def frame(self) -> bool:
        """Apply the queued messages and a tick; perform the effects; True when the panel changed."""
        before = self.panel
        messages = []
        while True:
            try:
                messages.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        for message in [*messages, sp.Tick(time.monotonic())]:
            self.panel, effects = sp.update(self.panel, message)
            for effect in effects:
                self._net.submit(self._perform, effect)
        return self.panel is not before

    def shutdown(self) -> None:
        self._net.shutdown(wait=False, cancel_futures=True)

    def _perform(self, effect: sp.Effect) -> None:
        self._inbox.put(self.outcome(effect))
        self._wake()

    def outcome(self, effect: sp.Effect) -> sp.Message:
        """The message that reports ``effect``'s outcome (blocking: a network call)."""
        try:
            if isinstance(effect, sp.ListSweeps):
                return sp.Listed(tuple(self.client.request("GET", "/sweeps", params={"limit": 100})["sweeps"]))
            if isinstance(effect, sp.LoadSweep):
                return sp.Loaded(effect.sweep_id, self.client.request("GET", f"/sweeps/{effect.sweep_id}"))
            if isinstance(effect, sp.PostSweep):
                answer = self.client.request("POST", "/sweeps", json_body=effect.body,
                                             headers={"Idempotency-Key": effect.idempotency_key})
                return sp.Answered(sweep_id=answer["sweep_id"])
            if isinstance(effect, sp.LoadImportance):
                return sp.ImportanceLoaded(effect.sweep_id, self.client.sweep_importance(effect.sweep_id))
            self.client.request("POST", f"/sweeps/{effect.sweep_id}/stop")
            return sp.Answered()
        except ApiError as exc:
            line = exc.problem.line()
            if isinstance(effect, sp.LoadSweep):
                return sp.Loaded(effect.sweep_id, problem=line)
            if isinstance(effect, sp.LoadImportance):
                return sp.ImportanceLoaded(effect.sweep_id, problem=line)
            return sp.Listed(problem=line) if isinstance(effect, sp.ListSweeps) else sp.Answered(problem=line)
