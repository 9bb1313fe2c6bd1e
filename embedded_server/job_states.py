"""The legal moves between job statuses live here, and only here (API.md, "Job"); the statuses themselves and the
terminal set are the wire contract in ``trainer.events``, re-exported here.

``queued → starting → running → completed | failed | stopped``; ``queued → cancelled``;
``starting | running → interrupted`` (found unfinished after the server restarted). A worker can also fail or be
stopped before it reports ``training.started``, so ``starting`` may end ``failed`` or ``stopped`` directly.
A status never moves backwards and never leaves a terminal state.
"""

from __future__ import annotations

from trainer.events import TERMINAL_STATUSES as TERMINAL
from trainer.events import JobStatus

__all__ = ["ACTIVE", "ALLOWED", "TERMINAL", "IllegalTransition", "JobStatus", "transition"]

S = JobStatus

#: The only legal moves: current status → the statuses it may move to. The statuses and the terminal set are the
#: wire contract (``trainer.events``); a terminal status has no move.
ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    S.QUEUED: frozenset({S.STARTING, S.CANCELLED}),
    S.STARTING: frozenset({S.RUNNING, S.FAILED, S.STOPPED, S.INTERRUPTED}),
    S.RUNNING: frozenset({S.COMPLETED, S.FAILED, S.STOPPED, S.INTERRUPTED}),
    **{status: frozenset() for status in JobStatus if status in TERMINAL},
}

#: Statuses of a job whose worker process exists (or is being spawned).
ACTIVE: frozenset[JobStatus] = frozenset({S.STARTING, S.RUNNING})


class IllegalTransition(Exception):
    """A status change that ``ALLOWED`` forbids; the API answers it with 409 and nothing changes."""

    def __init__(self, job_id: str, current: JobStatus | str, target: JobStatus | str) -> None:
        self.job_id = job_id
        self.current = JobStatus(current)
        self.target = JobStatus(target)
        super().__init__(f"job {job_id} is {self.current.value}; it cannot become {self.target.value}")


def transition(job_id: str, current: JobStatus | str, target: JobStatus | str) -> JobStatus:
    """Return ``target`` as a ``JobStatus`` if ``current → target`` is allowed, else raise ``IllegalTransition``.

    Pure: it checks, the caller (``JobStore.set_status``) writes. ``ValueError`` for an unknown status name.
    """
    current, target = JobStatus(current), JobStatus(target)
    if target not in ALLOWED[current]:
        raise IllegalTransition(job_id, current, target)
    return target
