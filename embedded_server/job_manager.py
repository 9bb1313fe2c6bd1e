"""The job manager: a queue of training jobs, each run by a real worker subprocess
(``embedded_server.worker_process``), at most ``max_concurrent_jobs`` at a time.

An exit without a terminal event (crash, ``kill -9``, out of memory) becomes ``training.failed`` at once, and a
timer kills a worker that never reports ``training.started`` within ``start_timeout_s``. Stopping is a stop line,
then terminate, then kill, each after ``stop_grace_s``. Only the event types a worker may send
(``trainer.events.WORKER_EVENTS``) are accepted from it; anything else is logged and dropped.

**Warm spare** (``warm_worker`` in ``config.json``, on by default; ``warm_up`` starts it): one worker process that
has already imported torch and the trainer waits for the next job. A job takes the spare — still one process per
job, never reused — and a new spare starts once that job's worker reports ``training.started`` (so the spare's
imports do not slow the job's start). A spare that dies is replaced, after ``SPARE_RETRY_S`` × the failures in a
row, and no more after ``SPARE_MAX_FAILURES`` quick deaths (then jobs start cold, as without a spare).

Every status change goes through ``JobStore.set_status`` (which enforces ``job_states``) and is announced as a
``job.status`` event after the event that caused it.

A disk that cannot take writes (full, read-only; ``storage.is_write_failure``) never strands a job or stops the
queue. Each supervision step (a worker event, a worker's exit, a failed start) writes the job's status *first* and
runs through ``supervision.WriteRetry``, which keeps a step the disk refused, in order, and runs it again until the
disk takes it; then queued jobs start again. A failure recorded that way says so (``"disk full (…) when the job
ended …"``). Events go through the bus, which keeps unstored events until they can be stored (``event_bus``).
Progress and pid writes are best effort. ``submit`` refuses with ``StorageFull`` (a 507) and removes the job
folder it made.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from embedded_server import cli_jobs
from embedded_server.event_bus import EventBus
from embedded_server.folder_lock import FolderLock
from embedded_server.job_states import ACTIVE, TERMINAL, IllegalTransition, JobStatus
from embedded_server.job_store import JobRecord, JobStore, utc_now
from embedded_server.logging_setup import job_logger
from embedded_server.settings import AppSettings
from embedded_server.storage import StorageFull, describe_failure, is_write_failure
from embedded_server.supervision import WriteRetry, save_best_effort
from embedded_server.worker_process import SIGKILL, WorkerProcess, describe_exit
from trainer.atomic import atomic_write_json, remove_stale_temp_files
from trainer.config import TrainingConfig
from trainer.events import WORKER_EVENTS, EventType, make_event

log = logging.getLogger(__name__)

#: What a job id looks like: letters, digits, ``-`` and ``_``, so it is always one safe folder name.
JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_JOB_ID = re.compile(JOB_ID_PATTERN)
#: The ids ``new_job_id`` makes (``candlecast train``'s own folders, ``cli-…``, never look like this).
_NEW_JOB_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")
#: Leftovers (temp files, job folders without a job) younger than this are left alone: they may be in use.
LEFTOVER_AGE_S = 600
#: A spare that dies is replaced after this many seconds times its failures in a row.
SPARE_RETRY_S = 2.0
#: Spares that die within ``SPARE_MIN_LIFE_S`` of their start, in a row, before the manager stops replacing them.
SPARE_MAX_FAILURES = 3
SPARE_MIN_LIFE_S = 60.0
#: Why a worker dies by a signal it did not ask for (the kernel's OOM killer sends SIGKILL and logs it).
KILLED_HINT = "often the system ran out of memory (check `dmesg`), or another program ended it"


class ManagerClosed(RuntimeError):
    """The manager is shutting down and accepts no new job (the API answers 503)."""


def is_valid_job_id(job_id: str) -> bool:
    """True if ``job_id`` could name a job folder (no separators, dots or other path tricks)."""
    return bool(_JOB_ID.fullmatch(job_id))


def new_job_id() -> str:
    """A fresh, sortable job id: ``YYYYMMDD-HHMMSS-<6 hex>`` (UTC)."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Submission:
    """What ``POST /start_training`` answers: the job, whether this request ``created`` it, the worker pid if it
    started at once, else its 1-based ``queue_position``."""

    job: JobRecord
    created: bool
    expected_pid: int | None
    queue_position: int | None


class JobManager:
    """Queues jobs, runs their workers, turns worker output into events and status changes. Thread-safe.

    ``store`` persists jobs and events, ``bus`` assigns ``seq`` and broadcasts, ``settings`` gives
    ``max_concurrent_jobs``, ``start_timeout_s``, ``stop_grace_s`` and the training defaults, ``jobs_dir`` holds
    one folder per job. Starts no thread or process until a job is submitted.
    """

    def __init__(self, store: JobStore, bus: EventBus, settings: AppSettings, jobs_dir: Path) -> None:
        self.store = store
        self.bus = bus
        self.settings = settings
        self.jobs_dir = jobs_dir
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._queue: deque[str] = deque()
        self._running: dict[str, WorkerProcess] = {}
        self._retry = WriteRetry(self._lock, self._settled)
        self._closing = False
        self._spare: WorkerProcess | None = None
        self._spare_failures = 0
        self._cli_seen: set[str] = set()  # ``candlecast train`` folders already dealt with (``cli_jobs.adopt``)

    # ---- queries ----------------------------------------------------------------------------------------------

    def job_dir(self, job_id: str) -> Path:
        """The folder of ``job_id``; ``KeyError`` unless it is a valid id of a stored job."""
        if not is_valid_job_id(job_id):
            raise KeyError(job_id)
        self.store.get_job(job_id)
        return self.jobs_dir / job_id

    def adopt_cli_jobs(self) -> list[str]:
        """List the jobs ``candlecast train`` completed in this data folder since the last look as ``completed``
        jobs (``cli_jobs``); returns their ids. The server calls it at start and before it looks jobs up."""
        with self._lock:
            return cli_jobs.adopt(self.store, self.jobs_dir, self._cli_seen)

    def queue_position(self, job_id: str) -> int | None:
        """1-based place of ``job_id`` in the queue (1 = next to start), or ``None`` if it is not queued."""
        with self._lock:
            return self._queue.index(job_id) + 1 if job_id in self._queue else None

    def counts(self) -> dict[str, int]:
        """``{"running": jobs starting or running, "queued": jobs waiting}``."""
        with self._lock:
            return {"running": len(self.running_job_ids()), "queued": len(self._queue)}

    def running_job_ids(self) -> list[str]:
        """Jobs that are ``starting`` or ``running``, oldest first (not those whose worker, its job finished, is
        only exiting)."""
        with self._lock:
            return [job_id for job_id in self._running if self.store.get_job(job_id).status in ACTIVE]

    # ---- submit -----------------------------------------------------------------------------------------------

    def submit(
        self,
        config: TrainingConfig,
        idempotency_key: str | None = None,
        sweep: tuple[str, int | None] | None = None,
        files: dict[str, Any] | None = None,
    ) -> Submission:
        """Create a job for ``config`` and start it now if a slot is free, else queue it.

        A repeated ``idempotency_key`` returns the job the first request created (``created=False``). ``sweep``:
        ``(sweep_id, trial)`` tag of a sweep's job; ``files``: more JSON files for the job folder, written before
        the worker starts (``executor.json`` of a Ray trial). Publishes ``job.status`` events and the server's
        ``training.started``. Raises ``ManagerClosed`` during shutdown.
        """
        with self._lock:
            if idempotency_key is not None:
                existing = self.store.find_by_idempotency_key(idempotency_key)
                if existing is not None:
                    return Submission(existing, False, existing.pid, self.queue_position(existing.job_id))
            if self._closing:
                raise ManagerClosed("the server is shutting down")
            job_id = self._create_job(config, idempotency_key, sweep, files or {})
            self._announce_status(job_id, JobStatus.QUEUED, None)
            self._queue.append(job_id)
            started = self._start_next() if self._queue[0] == job_id else None
            spawn_error = started[1] if started is not None and isinstance(started[1], OSError) else None
            expected_pid = started[1] if started is not None and spawn_error is None else None
            self.bus.publish(
                make_event(
                    EventType.TRAINING_STARTED,
                    job_id,
                    origin="server",
                    symbol=config.symbol,
                    timeframe=config.timeframe,
                    epoch=0,
                    fold=0,
                    expected_pid=expected_pid,
                )
            )
            if spawn_error is not None:
                self._spawn_failed(job_id, spawn_error)
            return Submission(self.store.get_job(job_id), True, expected_pid, self.queue_position(job_id))

    def _create_job(
        self, config: TrainingConfig, idempotency_key: str | None, sweep: tuple[str, int | None] | None,
        files: dict[str, Any],
    ) -> str:
        """Make the job's folder with its ``config.json`` and its ``queued`` row (lock held); returns its id.

        Raises ``StorageFull`` when the disk refuses a write; the folder is then removed, so nothing is left behind.
        """
        job_id, job_dir = self._new_job_dir()
        config_json = config.model_dump(mode="json")
        try:
            atomic_write_json(job_dir / "config.json", config_json)
            for name, content in files.items():
                atomic_write_json(job_dir / name, content)
            self.store.create_job(job_id, config_json, idempotency_key, sweep)
        except BaseException as exc:
            shutil.rmtree(job_dir, ignore_errors=True)
            if isinstance(exc, Exception) and is_write_failure(exc):
                raise StorageFull(self.jobs_dir.parent, exc) from None
            raise
        return job_id

    def _new_job_dir(self) -> tuple[str, Path]:
        """A fresh job id and its (created, empty) folder; a clash of ids (same second, same random part) retries.
        ``StorageFull`` when the disk refuses the folder."""
        while True:
            job_id = new_job_id()
            try:
                (self.jobs_dir / job_id).mkdir(parents=True)
                return job_id, self.jobs_dir / job_id
            except FileExistsError:
                continue
            except OSError as exc:
                if is_write_failure(exc):
                    raise StorageFull(self.jobs_dir.parent, exc) from None
                raise

    def _has_free_slot(self) -> bool:
        return not self._closing and len(self._running) < self.settings.max_concurrent_jobs

    def _dispatch(self) -> None:
        """Start queued jobs while slots are free (lock held)."""
        while (started := self._start_next()) is not None:
            job_id, result = started
            if isinstance(result, OSError):
                self._spawn_failed(job_id, result)

    def _start_next(self) -> tuple[str, int | OSError] | None:
        """Start the job at the head of the queue if a slot is free and no supervision step waits for the disk
        (lock held). Returns ``(job_id, worker pid)``, or ``(job_id, OSError)`` when the process could not be
        created (the job is then ``starting``; the caller fails it), or None when nothing started: no job, no
        slot, or the disk refused the ``starting`` status (the job then stays first in the queue; the settler
        tries again).
        """
        if not self._queue or not self._has_free_slot() or self._retry.pending:
            return None
        job_id = self._queue[0]
        try:
            self._set_status(job_id, JobStatus.STARTING)
        except Exception as exc:
            if not is_write_failure(exc):
                raise
            job_logger(log, job_id).error("cannot start the job yet: %s; retrying", describe_failure(exc))
            self._retry.schedule()
            return None
        self._queue.popleft()
        try:
            return job_id, self._spawn(job_id)
        except OSError as exc:
            return job_id, exc

    def _spawn_failed(self, job_id: str, exc: OSError) -> None:
        self._retry.run(
            job_id,
            lambda late: self._fail(
                job_id, "start", type(exc).__name__, f"cannot start the worker: {exc}", "", None, late
            ),
        )

    def _spawn(self, job_id: str) -> int:
        """Start the worker of ``job_id``, already ``starting`` (lock held): hand it to the spare if one is alive,
        else start a process. Returns the worker's pid; raises ``OSError`` when no process can be created (the
        caller fails the job)."""
        job_dir = self.jobs_dir / job_id
        worker, how = self._take_spare(job_id, job_dir), "took the spare"
        if worker is None:
            worker, how = WorkerProcess.spawn(job_id, job_dir, self._on_worker_event, self._on_exit), "started"
        self._running[job_id] = worker
        save_best_effort(self.store, job_id, pid=worker.pid)  # best effort: ``running`` writes the pid again
        job_logger(log, job_id).info("worker %s: pid %d, %s", how, worker.pid, " ".join(worker.proc.args))
        worker.start_timer(self.settings.start_timeout_s, self._start_timed_out)
        return worker.pid

    # ---- the warm spare ---------------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Start the spare worker if ``warm_worker`` is on and none is alive (the server calls this once it serves)."""
        with self._lock:
            self._start_spare()

    def spare_info(self) -> dict[str, Any] | None:
        """``{"pid", "ready", "rss_mib", "age_s"}`` of the waiting spare, or None (none, or ``warm_worker`` off)."""
        with self._lock:
            spare = self._spare
        if spare is None:
            return None
        return {
            "pid": spare.pid, "ready": spare.ready, "rss_mib": spare.rss_mib(),
            "age_s": round(time.monotonic() - spare.born, 1),
        }

    def _start_spare(self) -> None:
        """Start a spare unless one exists, it is off, the manager closes or spares keep dying (lock held)."""
        if (self._spare is not None or not self.settings.warm_worker or self._closing
                or self._spare_failures >= SPARE_MAX_FAILURES):
            return
        try:
            self._spare = WorkerProcess.spawn_spare(self.jobs_dir, self._on_worker_event, self._on_exit)
        except OSError as exc:
            log.error("cannot start a spare worker (%s); jobs start cold", exc)
            return
        log.info("spare worker started: pid %d", self._spare.pid)

    def _take_spare(self, job_id: str, job_dir: Path) -> WorkerProcess | None:
        """The spare, handed ``job_id`` (lock held); None when there is none or it is gone (then it is dropped)."""
        spare, self._spare = self._spare, None
        if spare is None:
            return None
        try:
            spare.assign(job_id, job_dir)
        except OSError as exc:
            job_logger(log, job_id).warning("%s; starting a worker instead", exc)
            spare.signal_group(SIGKILL)
            return None
        return spare

    def _spare_exited(self, spare: WorkerProcess, code: int) -> None:
        """A spare died before it had a job (lock held): replace it, a little later each time it happens again."""
        if self._spare is spare:
            self._spare = None
        if self._closing:
            return
        quick = time.monotonic() - spare.born < SPARE_MIN_LIFE_S
        self._spare_failures = self._spare_failures + 1 if quick else 1
        tail = " | ".join(list(spare.stderr_tail)[-3:])
        if self._spare_failures >= SPARE_MAX_FAILURES:
            log.error("spare worker (pid %d) %s; %d in a row died early, jobs start cold from now on: %s",
                      spare.pid, describe_exit(code), self._spare_failures, tail)
            return
        log.warning("spare worker (pid %d) %s; replacing it: %s", spare.pid, describe_exit(code), tail)
        timer = threading.Timer(SPARE_RETRY_S * self._spare_failures, self.warm_up)
        timer.daemon = True
        timer.start()

    # ---- worker output ----------------------------------------------------------------------------------------

    def _on_worker_event(self, worker: WorkerProcess, event: dict[str, Any]) -> None:
        """One event line of a worker (its stdout reader's thread)."""
        job_id = worker.job_id
        jlog = job_logger(log, job_id or f"spare-{worker.pid}")
        if job_id is None:
            jlog.warning("a spare worker wrote an event before it had a job; dropped: %.200s", event)
            return
        if event.get("type") not in WORKER_EVENTS:
            jlog.warning("a worker may not send %r events; dropped", event.get("type"))
            return
        if event.get("job_id") != job_id:
            jlog.warning("worker event names job %r; counted for %s", event.get("job_id"), job_id)
            event["job_id"] = job_id
        with self._lock:
            self._retry.run(job_id, lambda late: self._handle_worker_event(worker, event, late))

    def _handle_worker_event(self, worker: WorkerProcess, event: dict[str, Any], late: str | None) -> None:
        """One worker event (lock held): the status write first (the disk may refuse it), then the events."""
        job_id = worker.job_id
        jlog = job_logger(log, job_id)
        kind = EventType(event["type"])
        status = self.store.get_job(job_id).status
        if status in TERMINAL:
            jlog.warning("ignoring %s: the job is already %s", kind.value, status.value)
            return
        if kind is EventType.TRAINING_STARTED and event.get("origin") == "worker":
            worker.started = True
            worker.cancel_timer()
            previous, _ = self.store.set_status(
                job_id, JobStatus.RUNNING, started_at=utc_now(), pid=event.get("pid", worker.pid)
            )
            self.bus.publish(event)
            self._announce_status(job_id, JobStatus.RUNNING, previous)
            self._start_spare()  # now that this job has started, the next one's spare may import
        elif kind is EventType.TRAINING_EPOCH:
            progress = {k: event.get(k) for k in ("fold", "folds", "epoch", "epochs", "fraction", "eta_s")}
            save_best_effort(self.store, job_id, progress=progress)
            self.bus.publish(event)
        elif kind is EventType.TRAINING_FOLD_COMPLETED:
            self.bus.publish(event)
        elif kind in (EventType.TRAINING_COMPLETED, EventType.TRAINING_FAILED, EventType.TRAINING_STOPPED):
            self._finish(job_id, kind, event, late)
        else:
            jlog.warning("ignoring %s from the worker: only the server sends it", kind.value)

    def _finish(self, job_id: str, kind: EventType, event: dict[str, Any], late: str | None = None) -> None:
        """Record a terminal event (lock held): status first (it may be refused), then the event, then job.status.

        ``late`` (why the step had to wait for the disk) is put in front of a failure's ``error``."""
        if late is not None and kind is EventType.TRAINING_FAILED:
            note = f"{late} when the job ended (recorded once the disk took writes)"
            event = {**event, "error": f"{note}: {event['error']}"}
        fields: dict[str, Any] = {"finished_at": utc_now()}
        if kind is EventType.TRAINING_COMPLETED:
            target = JobStatus.COMPLETED
            fields["metrics"] = event.get("metrics")
            progress = dict(self.store.get_job(job_id).progress, fraction=1.0, eta_s=0.0)
            fields["progress"] = progress
        elif kind is EventType.TRAINING_FAILED:
            target = JobStatus.FAILED
            fields["error"] = {k: event.get(k) for k in ("stage", "error_type", "error", "traceback_tail", "exit_code")}
        else:
            target = JobStatus.STOPPED
            fields["error"] = None
            fields["stop_reason"] = event.get("reason")
        try:
            previous, _ = self.store.set_status(job_id, target, **fields)
        except IllegalTransition as exc:
            job_logger(log, job_id).error("dropping %s: %s", kind.value, exc)
            return
        self.bus.publish(event)
        self._announce_status(job_id, target, previous)

    def _on_exit(self, worker: WorkerProcess, code: int) -> None:
        """A worker process has exited with ``code`` (its waiter thread): end its job, free its slot."""
        job_id = worker.job_id
        with self._lock:
            if job_id is None:
                self._spare_exited(worker, code)
                return
            job_logger(log, job_id).info("worker exited with code %s", code)
            self._running.pop(job_id, None)
            try:
                self._retry.run(job_id, lambda late: self._settle_exit(worker, code, late))
            finally:  # whatever happened, the slot is free: the queue moves on
                self._start_spare()  # a worker that died before it started never asked for the next spare
                self._dispatch()
                self._changed.notify_all()

    def _settle_exit(self, worker: WorkerProcess, code: int, late: str | None) -> None:
        """The worker has exited with ``code`` (lock held): end its job if its own terminal event did not."""
        job = self.store.get_job(worker.job_id)
        if job.status not in TERMINAL:
            self._finish_without_terminal_event(worker, code, late)
        elif job.status is JobStatus.FAILED and job.error and job.error.get("exit_code") is None:
            self.store.update_job(job.job_id, error={**job.error, "exit_code": code})

    def _finish_without_terminal_event(self, worker: WorkerProcess, code: int, late: str | None) -> None:
        job_id = worker.job_id
        tail = "\n".join(worker.stderr_tail)
        if worker.stop_reason is not None:
            event = make_event(
                EventType.TRAINING_STOPPED, job_id, reason=f"{worker.stop_reason} ({describe_exit(code)})"
            )
            self._finish(job_id, EventType.TRAINING_STOPPED, event)
        elif worker.timeout_reason is not None:
            self._fail(job_id, "start", "StartTimeout", worker.timeout_reason, tail, code, late)
        else:
            stage = "worker" if worker.started else "start"
            kind = "WorkerKilled" if code < 0 else "WorkerExited"
            hint = f": {KILLED_HINT}" if code < 0 else ""
            error = f"the worker {describe_exit(code)} without a final event{hint}"
            self._fail(job_id, stage, kind, error, tail, code, late)

    def _settled(self) -> None:
        """What waited for the disk is recorded (lock held, the settler's thread): start queued jobs again."""
        try:
            self._dispatch()
        finally:
            self._changed.notify_all()

    def _fail(
        self,
        job_id: str,
        stage: str,
        error_type: str,
        error: str,
        tail: str,
        code: int | None,
        late: str | None = None,
    ) -> None:
        event = make_event(
            EventType.TRAINING_FAILED,
            job_id,
            stage=stage,
            error_type=error_type,
            error=error,
            traceback_tail=tail,
            exit_code=code,
        )
        job_logger(log, job_id).error("job failed (%s): %s", stage, error)
        self._finish(job_id, EventType.TRAINING_FAILED, event, late)

    def _start_timed_out(self, worker: WorkerProcess) -> None:
        with self._lock:
            if worker.started or worker.exited.is_set() or worker.stop_reason is not None:
                return
            worker.timeout_reason = (
                f"the worker did not report training.started within {self.settings.start_timeout_s:g} s; killed"
            )
            job_logger(log, worker.job_id).error(worker.timeout_reason)
            worker.signal_group(SIGKILL)

    # ---- stop -------------------------------------------------------------------------------------------------

    def stop(self, job_id: str, reason: str = "stopped on request") -> Literal["stopping", "cancelled"]:
        """Stop a running job (``"stopping"``: its worker is asked, then terminated, then killed) or cancel a
        queued one (``"cancelled"``, at once). Stopping a job that is already stopping is accepted again.

        Raises ``KeyError`` for an unknown job and ``IllegalTransition`` for a finished one.
        """
        with self._lock:
            job = self.store.get_job(job_id)
            if job.status is JobStatus.QUEUED:
                previous, _ = self.store.set_status(
                    job_id, JobStatus.CANCELLED, finished_at=utc_now(), stop_reason=reason
                )
                if job_id in self._queue:
                    self._queue.remove(job_id)
                self.bus.publish(make_event(EventType.TRAINING_CANCELLED, job_id, reason=reason))
                self._announce_status(job_id, JobStatus.CANCELLED, previous)
                return "cancelled"
            worker = self._running.get(job_id)
            if job.status not in ACTIVE or worker is None:
                raise IllegalTransition(job_id, job.status, JobStatus.STOPPED)
            if worker.stop_reason is None:
                worker.stop_reason = reason
                job_logger(log, job_id).info("stopping the worker: %s", reason)
                worker.stop(self.settings.stop_grace_s, reason)
            return "stopping"

    # ---- start-up and shutdown --------------------------------------------------------------------------------

    def recover(self, lock: FolderLock) -> list[str]:
        """At server start: jobs a previous run left ``starting``/``running`` become ``interrupted``, queued ones
        ``cancelled`` (their requester is gone). Returns the ids changed.

        Only a server holding its data folder's ``lock`` may do this (``RuntimeError`` otherwise): without it the
        "unfinished" jobs may be another live server's running ones.
        """
        if not lock.held or lock.folder.resolve() != self.jobs_dir.parent.resolve():
            raise RuntimeError(f"recover() needs the held lock of {self.jobs_dir.parent}, not of {lock.folder}")
        changed = []
        with self._lock:
            for job in self.store.unfinished_jobs():
                if job.status is JobStatus.QUEUED:
                    reason = "the server restarted before the job started"
                    previous, _ = self.store.set_status(
                        job.job_id, JobStatus.CANCELLED, finished_at=utc_now(), stop_reason=reason
                    )
                    self.bus.publish(make_event(EventType.TRAINING_CANCELLED, job.job_id, reason=reason))
                    self._announce_status(job.job_id, JobStatus.CANCELLED, previous)
                else:
                    self._set_status(job.job_id, JobStatus.INTERRUPTED, finished_at=utc_now())
                changed.append(job.job_id)
        if changed:
            log.warning("found %d unfinished job(s) from a previous run: %s", len(changed), ", ".join(changed))
        return changed

    def remove_leftovers(self, lock: FolderLock, folders: list[Path]) -> list[Path]:
        """At server start, after ``recover``: remove what a crash left behind, older than ``LEFTOVER_AGE_S``.

        Job folders named like ``new_job_id``'s with no job in the store, holding only what ``submit`` writes
        before the job's row (``config.json`` or its temp file: a kill between the two), and the temp files of
        atomic writes in ``folders``, the data folder, its ``datasets`` and every job folder. Anything else is
        left alone. Logs each removal; returns the paths removed. Needs the data folder's held ``lock``.
        """
        if not lock.held or lock.folder.resolve() != self.jobs_dir.parent.resolve():
            raise RuntimeError(f"remove_leftovers() needs the held lock of {self.jobs_dir.parent}")
        removed: list[Path] = []
        job_dirs = sorted(p for p in self.jobs_dir.iterdir() if p.is_dir()) if self.jobs_dir.is_dir() else []
        cutoff = datetime.now(UTC).timestamp() - LEFTOVER_AGE_S
        for job_dir in job_dirs:
            if self._is_orphan(job_dir, cutoff):
                shutil.rmtree(job_dir, ignore_errors=True)
                removed.append(job_dir)
        for folder in [*folders, self.jobs_dir.parent, self.jobs_dir.parent / "datasets", *job_dirs]:
            removed += remove_stale_temp_files(folder, LEFTOVER_AGE_S)
        for path in removed:
            log.warning("removed a leftover of an earlier crash: %s", path)
        return removed

    def _is_orphan(self, job_dir: Path, cutoff: float) -> bool:
        """A folder ``submit`` made whose job row was never written (see ``remove_leftovers``)."""
        if not _NEW_JOB_ID.fullmatch(job_dir.name):
            return False
        try:
            self.store.get_job(job_dir.name)
            return False
        except KeyError:
            pass
        try:
            names = [p.name for p in job_dir.iterdir()]
            newest = max([job_dir.stat().st_mtime, *((job_dir / n).stat().st_mtime for n in names)])
        except OSError:
            return False
        ours = all(n == "config.json" or (n.startswith(".config.json.") and n.endswith(".tmp")) for n in names)
        return ours and newest < cutoff

    def shutdown(self, timeout: float | None = None) -> None:
        """Refuse new jobs, cancel queued ones, stop running ones (they end ``stopped``) and wait for every worker
        to exit: at most ``timeout`` seconds (default: two grace periods and a margin), then kill what is left."""
        reason = "the server is shutting down"
        with self._lock:
            self._closing = True
            spare, self._spare = self._spare, None
            if spare is not None:
                spare.close_stdin()  # EOF: a spare with no job exits at once
            for job_id in [*self._queue, *self._running]:
                try:
                    self.stop(job_id, reason)
                except IllegalTransition:
                    pass  # the job has finished; its worker is only exiting (waited for below)
                except Exception as exc:  # a full disk: the next start finds the job unfinished and ends it
                    if not is_write_failure(exc):
                        raise
                    log.error("cannot cancel job %s: %s", job_id, describe_failure(exc))
            limit = timeout if timeout is not None else 2 * self.settings.stop_grace_s + 5
            if not self._changed.wait_for(lambda: not self._running, limit):
                for worker in self._running.values():
                    log.error("worker of job %s still alive after %g s; killing it", worker.job_id, limit)
                    worker.signal_group(SIGKILL)
                self._changed.wait_for(lambda: not self._running, 5)
            if spare is not None and not spare.exited.wait(5):
                spare.signal_group(SIGKILL)
            self._retry.cancel()
            if self._retry.pending:
                log.error(
                    "the disk never took the end of job(s) %s; the next start marks them interrupted",
                    ", ".join(self._retry.job_ids()),
                )

    # ---- helpers ----------------------------------------------------------------------------------------------

    def _set_status(self, job_id: str, target: JobStatus, **fields: Any) -> None:
        previous, _ = self.store.set_status(job_id, target, **fields)
        self._announce_status(job_id, target, previous)

    def _announce_status(self, job_id: str, status: JobStatus, previous: JobStatus | None) -> None:
        self.bus.publish(
            make_event(EventType.JOB_STATUS, job_id, status=status.value, previous=previous.value if previous else None)
        )
