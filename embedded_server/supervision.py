"""Supervision steps a disk refused (full, read-only: ``storage.is_write_failure``), kept in order and run again
every ``WRITE_RETRY_S`` until the disk takes them, so a full disk never strands a job (``JobManager``).

A step is one thing the manager records about a job (a worker event, a worker's exit, a failed start). It must
write the job's status before anything else, so a step the disk refuses has changed nothing and can simply run
again later. Once a step waits, every later step waits behind it (steps stay in order). ``run(late)``: ``late`` is
None the first time, and on a retry says why it waited (``"disk full (…)"``), for the job's error message.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from embedded_server.job_store import JobStore
from embedded_server.logging_setup import job_logger
from embedded_server.storage import describe_failure, is_write_failure

log = logging.getLogger(__name__)

#: Seconds between attempts to run the supervision steps a full disk refused.
WRITE_RETRY_S = 1.0

Step = Callable[[str | None], None]


@dataclass(frozen=True)
class _Waiting:
    """A step the disk refused: ``run(late)`` does it, ``cause`` is the first refusal."""

    job_id: str
    run: Step
    cause: BaseException


class WriteRetry:
    """The steps waiting for the disk, and the timer thread (the settler) that runs them again.

    ``lock`` is the manager's: every method is called with it held, and the settler takes it. ``on_settled()``
    runs (lock held) each time the settler has run every waiting step, also when ``schedule`` was called with none
    waiting (the manager retries starting queued jobs there and wakes its waiters).
    """

    def __init__(self, lock: threading.RLock, on_settled: Callable[[], None]) -> None:
        self._lock = lock
        self._on_settled = on_settled
        self._waiting: deque[_Waiting] = deque()
        self._settler: threading.Timer | None = None

    @property
    def pending(self) -> bool:
        """True while some step waits for the disk (nothing new may start before it is recorded)."""
        return bool(self._waiting)

    def job_ids(self) -> list[str]:
        """The jobs with a waiting step, each once, oldest first."""
        return list(dict.fromkeys(w.job_id for w in self._waiting))

    def run(self, job_id: str, step: Step) -> None:
        """Run ``step`` now, or keep it for the settler when the disk refuses its first write or earlier steps
        already wait. Any other exception of the step propagates (a bug, not the disk)."""
        if self._waiting:
            self._waiting.append(_Waiting(job_id, step, self._waiting[-1].cause))
            return
        try:
            step(None)
        except Exception as exc:
            if not is_write_failure(exc):
                raise
            job_logger(log, job_id).error(
                "cannot record the job's progress: %s; kept in memory and retried every %g s",
                describe_failure(exc),
                WRITE_RETRY_S,
            )
            self._waiting.append(_Waiting(job_id, step, exc))
            self.schedule()

    def schedule(self) -> None:
        """Start the settler in ``WRITE_RETRY_S`` unless it is already due."""
        if self._settler is None:
            self._settler = threading.Timer(WRITE_RETRY_S, self._settle)
            self._settler.daemon = True
            self._settler.start()

    def cancel(self) -> None:
        """Stop the settler (shutdown); waiting steps stay unrecorded (``job_ids`` names their jobs)."""
        if self._settler is not None:
            self._settler.cancel()

    def _settle(self) -> None:
        """Run the waiting steps in order while the disk takes them, then ``on_settled`` (settler thread)."""
        with self._lock:
            self._settler = None
            while self._waiting:
                waiting = self._waiting[0]
                try:
                    waiting.run(describe_failure(waiting.cause))
                except Exception as exc:
                    if is_write_failure(exc):
                        self.schedule()
                        return
                    job_logger(log, waiting.job_id).exception("a supervision step failed; dropped")
                else:
                    job_logger(log, waiting.job_id).warning("recorded what waited for disk space")
                self._waiting.popleft()
            self._on_settled()


def save_best_effort(store: JobStore, job_id: str, **fields: Any) -> None:
    """``store.update_job`` for values that are written again later (progress, pid): a refusing disk is logged."""
    try:
        store.update_job(job_id, **fields)
    except Exception as exc:
        if not is_write_failure(exc):
            raise
        job_logger(log, job_id).warning("not saved (%s): %s", describe_failure(exc), ", ".join(fields))
