"""The event bus: assigns ``seq``, stores every event, and fans it out to WebSocket clients.

An event is serialised to JSON once, in ``publish``, and that text is what every subscriber's queue holds (with
hundreds of clients, serialising per client would dominate the fan-out). Publishing never blocks on a client:
each subscriber has a bounded queue, and a subscriber whose queue is full
(a slow or dead client) is dropped with a logged reason instead of letting memory grow or stalling the workers'
reader threads. Stores, assigns and enqueues under one lock, so every client sees events in ``seq`` order and a
subscriber registered at ``seq = S`` gets exactly the events after ``S`` live (the ones up to ``S`` it replays
from the store).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from embedded_server.job_store import JobStore

log = logging.getLogger(__name__)

#: Events a client may have waiting before it is dropped as too slow.
DEFAULT_CLIENT_QUEUE = 1000


class Subscription:
    """One client's live feed of events as JSON text. ``registered_seq`` is the bus's ``seq`` when it subscribed: live events have a
    larger ``seq``. ``dropped`` holds the reason once the bus gave up on it; ``on_drop`` (set by the owner, must
    not block) is called then, e.g. to shut down the client's socket so a blocked send returns."""

    def __init__(self, name: str, maxsize: int, registered_seq: int) -> None:
        self.name = name
        self.registered_seq = registered_seq
        self.queue: queue.Queue[str | None] = queue.Queue(maxsize)
        self.dropped: str | None = None
        self.on_drop: Callable[[], None] | None = None

    def get(self, timeout: float) -> str | None:
        """The next live event (JSON text), or ``None`` after ``timeout`` seconds or once the bus closed or dropped it."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None


class EventBus:
    """Assigns ``seq`` (via the store's AUTOINCREMENT), stores and broadcasts events. Thread-safe."""

    def __init__(self, store: JobStore, client_queue: int = DEFAULT_CLIENT_QUEUE) -> None:
        self.store = store
        self.client_queue = client_queue
        self._lock = threading.Lock()
        self._subscribers: list[Subscription] = []
        self.closed = False

    @property
    def last_seq(self) -> int:
        """The highest ``seq`` assigned so far (persisted, so it keeps increasing across restarts)."""
        with self._lock:
            return self.store.last_seq()

    def publish(self, event: dict[str, Any]) -> dict[str, Any]:
        """Store ``event`` (made by ``trainer.events.make_event``), give it its ``seq``, fan it out; returns it."""
        with self._lock:
            stored = {**event, "seq": self.store.append_event(event)}
            text = json.dumps(stored, allow_nan=False)
            for sub in list(self._subscribers):
                try:
                    sub.queue.put_nowait(text)
                except queue.Full:
                    self._drop(sub, f"too slow: {sub.queue.maxsize} events waiting")
        return stored

    def subscribe(self, name: str) -> Subscription:
        """Register a live feed; events with ``seq > sub.registered_seq`` will arrive in its queue."""
        with self._lock:
            sub = Subscription(name, self.client_queue, self.store.last_seq())
            if self.closed:
                sub.dropped = "server shutting down"
            else:
                self._subscribers.append(sub)
            return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop feeding ``sub`` (no error if it was already dropped)."""
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)

    @property
    def subscriber_count(self) -> int:
        """Clients currently fed."""
        with self._lock:
            return len(self._subscribers)

    def close(self) -> None:
        """Drop every subscriber (reason: shutting down); later subscriptions start dropped."""
        with self._lock:
            self.closed = True
            for sub in list(self._subscribers):
                self._drop(sub, "server shutting down", level=logging.INFO)

    def _drop(self, sub: Subscription, reason: str, level: int = logging.WARNING) -> None:
        # Called with the lock held: must not block.
        self._subscribers.remove(sub)
        sub.dropped = reason
        log.log(level, "dropping WebSocket client %s: %s", sub.name, reason)
        try:
            sub.queue.put_nowait(None)  # wakes a waiting reader
        except queue.Full:
            pass  # a full queue's reader is not waiting; it sees ``dropped`` on its next get
        if sub.on_drop is not None:
            sub.on_drop()
