"""The event bus: assigns ``seq``, stores every event, and fans it out to WebSocket clients.

An event is serialised to JSON once, in ``publish``, and that text is what every subscriber's queue holds (with
hundreds of clients, serialising per client would dominate the fan-out). Publishing never blocks on a client:
each subscriber has a bounded queue, and a subscriber whose queue is full
(a slow or dead client) is dropped with a logged reason instead of letting memory grow or stalling the workers'
reader threads. Stores, assigns and enqueues under one lock, so every client sees events in ``seq`` order and a
subscriber registered at ``seq = S`` gets exactly the events after ``S`` live (the ones up to ``S`` it replays
from the store).

When the store cannot write (disk full: ``storage.is_write_failure``) an event is **not** sent without its ``seq``:
it waits in memory, in order, behind any earlier one that waits too, and is stored, numbered and sent as soon as
the store takes writes again (the next ``publish`` or a retry every ``RETRY_S``). So clients still see every event,
exactly once, in ``seq`` order, and a replay (``?since=``) never misses one a live client saw. While more than
``MAX_UNSTORED`` wait, new ``training.epoch`` progress events are dropped (logged); other events are always kept.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from embedded_server.job_store import JobStore
from embedded_server.storage import describe_failure, is_write_failure

log = logging.getLogger(__name__)

#: Events a client may have waiting before it is dropped as too slow.
DEFAULT_CLIENT_QUEUE = 1000
#: Events kept in memory while the store cannot write; beyond this, ``training.epoch`` events are dropped.
MAX_UNSTORED = 10_000
#: Seconds between attempts to store the waiting events.
RETRY_S = 1.0


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
        self._unstored: deque[dict[str, Any]] = deque()
        self._retry: threading.Timer | None = None
        self.closed = False

    @property
    def last_seq(self) -> int:
        """The highest ``seq`` assigned so far (persisted, so it keeps increasing across restarts)."""
        with self._lock:
            return self.store.last_seq()

    def publish(self, event: dict[str, Any]) -> dict[str, Any]:
        """Store ``event`` (made by ``trainer.events.make_event``), give it its ``seq``, fan it out; returns it with
        its ``seq``. When the store cannot write now, returns ``event`` without ``seq``: it waits (module docstring).
        Never raises for a disk that cannot take writes."""
        with self._lock:
            if len(self._unstored) >= MAX_UNSTORED and event.get("type") == "training.epoch":
                log.warning("disk still full: dropping a training.epoch event of job %s", event.get("job_id"))
                return event
            self._unstored.append(event)
            stored = self._store_waiting()
        return stored[-1] if not self._unstored else event  # nothing waits: ``event``, the last in line, was stored

    @property
    def unstored(self) -> int:
        """Events waiting for the store to take writes again."""
        with self._lock:
            return len(self._unstored)

    def flush(self) -> None:
        """Try to store and send the waiting events now (the retry timer calls this)."""
        with self._lock:
            self._retry = None
            self._store_waiting()

    def _store_waiting(self) -> list[dict[str, Any]]:
        """Store, number and send the waiting events in order until the store refuses one (lock held)."""
        stored = []
        while self._unstored:
            event = self._unstored[0]
            try:
                seq = self.store.append_event(event)
            except Exception as exc:
                if not is_write_failure(exc):
                    self._unstored.popleft()  # a bug in this event (not the disk): it would block every later one
                    raise
                if len(self._unstored) == 1:  # the first refusal of this outage
                    log.error("cannot store events: %s; keeping them in memory, retrying", describe_failure(exc))
                if self._retry is None and not self.closed:
                    self._retry = threading.Timer(RETRY_S, self.flush)
                    self._retry.daemon = True
                    self._retry.start()
                break
            self._unstored.popleft()
            stored.append({**event, "seq": seq})
            self._fan_out(stored[-1])
        if len(stored) > 1:
            log.warning("stored and sent %d events that waited for disk space", len(stored))
        return stored

    def _fan_out(self, stored: dict[str, Any]) -> None:
        text = json.dumps(stored, allow_nan=False)
        for sub in list(self._subscribers):
            try:
                sub.queue.put_nowait(text)
            except queue.Full:
                self._drop(sub, f"too slow: {sub.queue.maxsize} events waiting")

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
            if self._retry is not None:
                self._retry.cancel()
            if self._unstored:
                log.error("closing with %d events the full disk never took", len(self._unstored))
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
