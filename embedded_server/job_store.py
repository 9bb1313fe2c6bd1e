"""Jobs and events, persisted in SQLite (WAL) at ``paths.data_dir()/candlecast.db``.

``events.seq`` is an ``AUTOINCREMENT`` key, so SQLite itself keeps it strictly increasing across restarts (and
across pruning: a seq is never reused). Status changes go through ``job_states.transition`` inside the same
transaction that writes them, so an illegal move raises ``IllegalTransition`` and changes nothing. One
connection serves every thread, guarded by a lock: the server's write rate is a few events per second.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from embedded_server.job_states import ACTIVE, JobStatus, transition
from trainer.events import EventType
from trainer.key_figures import key_figures

DB_NAME = "candlecast.db"
#: Events kept at start-up (the oldest beyond this are pruned; replay covers what is left).
RETAINED_EVENTS = 200_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id          TEXT PRIMARY KEY,
    status          TEXT NOT NULL,
    config          TEXT NOT NULL,
    pid             INTEGER,
    created_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    progress        TEXT NOT NULL,
    metrics         TEXT,
    error           TEXT,
    idempotency_key TEXT UNIQUE,
    last_seq        INTEGER NOT NULL DEFAULT 0,
    summary         TEXT,
    sweep_id        TEXT,
    trial           INTEGER,
    stop_reason     TEXT
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
CREATE TABLE IF NOT EXISTS events (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT,
    type   TEXT NOT NULL,
    body   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_job ON events (job_id, seq);
"""
#: Columns added after the first release: (name, SQL type), added to an older database when it opens.
_ADDED_COLUMNS = (("sweep_id", "TEXT"), ("trial", "INTEGER"), ("stop_reason", "TEXT"))


#: Columns of a job in a list: its ``summary`` instead of its whole ``metrics`` (left NULL).
_LIST_COLUMNS = ("job_id, status, config, pid, created_at, started_at, finished_at, progress, NULL AS metrics, "
                 "error, idempotency_key, last_seq, summary, sweep_id, trial, stop_reason")


def job_summary(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a list shows of a job's ``metrics.json``: ``{key_figures, network, duration_s}`` (the network's class
    name). Stored beside the metrics when they are written: a whole ``metrics.json`` is tens of KiB of numbers, and
    a list may hold a thousand jobs."""
    if not metrics:
        return None
    return {
        "key_figures": key_figures(metrics),
        "network": (metrics.get("network") or {}).get("class"),
        "duration_s": metrics.get("duration_s"),
    }


def utc_now() -> str:
    """The current time as an ISO-8601 UTC string (``2024-05-01T12:00:00.123456Z``), the API's ``*_at`` format."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def empty_progress(config: dict[str, Any]) -> dict[str, Any]:
    """A new job's ``progress``: nothing done yet, out of the folds and epochs its ``config`` asks for."""
    folds = config.get("cv_folds", 1) if config.get("use_cv", True) else 1
    return {"fold": 0, "folds": folds, "epoch": 0, "epochs": config.get("epochs"), "fraction": 0.0, "eta_s": None}


@dataclass
class JobRecord:
    """One row of ``jobs``; JSON columns decoded. Timestamps are ISO-8601 UTC strings."""

    job_id: str
    status: JobStatus
    config: dict[str, Any]
    pid: int | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    progress: dict[str, Any]
    metrics: dict[str, Any] | None
    error: dict[str, Any] | None
    idempotency_key: str | None
    last_seq: int
    summary: dict[str, Any] | None = None  # ``job_summary`` of the metrics
    sweep_id: str | None = None
    trial: int | None = None
    stop_reason: str | None = None  # why a stopped or cancelled job ended (its terminal event's ``reason``)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> JobRecord:
        def load(text: str | None) -> Any:
            return None if text is None else json.loads(text)

        return cls(
            job_id=row["job_id"],
            status=JobStatus(row["status"]),
            config=load(row["config"]),
            pid=row["pid"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            progress=load(row["progress"]),
            metrics=load(row["metrics"]),
            error=load(row["error"]),
            idempotency_key=row["idempotency_key"],
            last_seq=row["last_seq"],
            summary=load(row["summary"]),
            sweep_id=row["sweep_id"],
            trial=row["trial"],
            stop_reason=row["stop_reason"],
        )


class JobStore:
    """The SQLite job and event store. Thread-safe; every method is one transaction.

    Raises ``KeyError`` for an unknown job id and ``IllegalTransition`` for a forbidden status change.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a power cut may lose the last commits but never corrupts the file.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._add_columns()

    def _add_columns(self) -> None:
        """Give a store from an older version the columns added since: ``sweep_id`` and ``trial`` (NULL: not a
        sweep's trial), ``stop_reason`` (filled from each stopped or cancelled job's last ``training.stopped`` /
        ``training.cancelled`` event still stored) and ``summary``, filled from each job's metrics."""
        present = {row["name"] for row in self._db.execute("PRAGMA table_info(jobs)")}
        with self._tx() as db:
            for name, kind in _ADDED_COLUMNS:
                if name not in present:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")
            if "stop_reason" not in present:
                db.execute(
                    "UPDATE jobs SET stop_reason = (SELECT json_extract(body, '$.reason') FROM events"
                    " WHERE events.job_id = jobs.job_id AND type IN (?, ?) ORDER BY seq DESC LIMIT 1)"
                    " WHERE status IN (?, ?)",
                    (EventType.TRAINING_STOPPED.value, EventType.TRAINING_CANCELLED.value,
                     JobStatus.STOPPED.value, JobStatus.CANCELLED.value),
                )
            if "summary" not in present:
                db.execute("ALTER TABLE jobs ADD COLUMN summary TEXT")
                for row in db.execute("SELECT job_id, metrics FROM jobs WHERE metrics IS NOT NULL").fetchall():
                    summary = job_summary(json.loads(row["metrics"]))
                    db.execute("UPDATE jobs SET summary = ? WHERE job_id = ?", (json.dumps(summary), row["job_id"]))

    def close(self) -> None:
        """Close the connection (later calls raise ``sqlite3.ProgrammingError``)."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._rollback()
                raise
            try:
                self._db.execute("COMMIT")
            except BaseException:
                # A full disk can fail the COMMIT itself; SQLite may or may not have rolled back. Without this the
                # connection stayed inside the failed transaction and every later BEGIN failed too.
                self._rollback()
                raise

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    # ---- jobs -------------------------------------------------------------------------------------------------

    def create_job(
        self,
        job_id: str,
        config: dict[str, Any],
        idempotency_key: str | None,
        sweep: tuple[str, int | None] | None = None,
    ) -> JobRecord:
        """Insert a ``queued`` job; ``sweep``: ``(sweep_id, trial number)`` of a sweep's job (trial None: the sweep's
        final scoring). ``sqlite3.IntegrityError`` if the id or the idempotency key exists."""
        sweep_id, trial = sweep or (None, None)
        with self._tx() as db:
            db.execute(
                "INSERT INTO jobs (job_id, status, config, created_at, progress, idempotency_key, sweep_id, trial)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    JobStatus.QUEUED.value,
                    json.dumps(config),
                    utc_now(),
                    json.dumps(empty_progress(config)),
                    idempotency_key,
                    sweep_id,
                    trial,
                ),
            )
        return self.get_job(job_id)

    def add_completed_job(
        self, job_id: str, config: dict[str, Any], metrics: dict[str, Any], times: tuple[str, str, str],
        progress: dict[str, Any],
    ) -> bool:
        """Record a job that completed outside this server (``candlecast train``'s folder, ``cli_jobs``) as
        ``completed``: no status move happens here, the job ended before the store knew it. ``times``:
        ``(created_at, started_at, finished_at)``. False (nothing written) when ``job_id`` is already stored."""
        created_at, started_at, finished_at = times
        with self._tx() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO jobs (job_id, status, config, created_at, started_at, finished_at, progress,"
                " metrics, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    JobStatus.COMPLETED.value,
                    json.dumps(config),
                    created_at,
                    started_at,
                    finished_at,
                    json.dumps(progress),
                    json.dumps(metrics, allow_nan=False),
                    json.dumps(job_summary(metrics), allow_nan=False),
                ),
            )
        return cursor.rowcount == 1

    def get_job(self, job_id: str) -> JobRecord:
        """The job ``job_id``; ``KeyError`` if there is none."""
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(job_id)
        return JobRecord.from_row(row)

    def find_by_idempotency_key(self, key: str) -> JobRecord | None:
        """The job a request with this ``Idempotency-Key`` created, if any."""
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE idempotency_key = ?", (key,)).fetchone()
        return None if row is None else JobRecord.from_row(row)

    def list_jobs(
        self, status: JobStatus | None = None, limit: int = 50, offset: int = 0, *, symbol: str | None = None,
        timeframe: str | None = None, sweep_id: str | None = None,
    ) -> list[JobRecord]:
        """Newest first, at most ``limit`` after skipping ``offset``, optionally only those with ``status``,
        ``symbol`` and ``timeframe`` (of their config) and of sweep ``sweep_id``; each with its ``summary``, not
        its ``metrics``."""
        where, args = self._filters(status, symbol, timeframe, sweep_id)
        query = f"SELECT {_LIST_COLUMNS} FROM jobs{where} ORDER BY created_at DESC, job_id DESC LIMIT ? OFFSET ?"
        with self._lock:
            rows = self._db.execute(query, [*args, limit, offset]).fetchall()
        return [JobRecord.from_row(r) for r in rows]

    def count_jobs(
        self, status: JobStatus | None = None, *, symbol: str | None = None, timeframe: str | None = None,
        sweep_id: str | None = None,
    ) -> int:
        """How many jobs ``list_jobs`` with the same filters pages through."""
        where, args = self._filters(status, symbol, timeframe, sweep_id)
        with self._lock:
            return int(self._db.execute(f"SELECT COUNT(*) FROM jobs{where}", args).fetchone()[0])

    @staticmethod
    def _filters(
        status: JobStatus | None, symbol: str | None, timeframe: str | None, sweep_id: str | None
    ) -> tuple[str, list[Any]]:
        clauses, args = [], []
        if status is not None:
            clauses.append("status = ?")
            args.append(JobStatus(status).value)
        if sweep_id is not None:
            clauses.append("sweep_id = ?")
            args.append(sweep_id)
        for key, value in (("symbol", symbol), ("timeframe", timeframe)):
            if value is not None:
                clauses.append(f"json_extract(config, '$.{key}') = ?")
                args.append(value)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args

    def count_by_status(self) -> dict[str, int]:
        """``{status: number of jobs}`` for every status present."""
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status").fetchall()
        return {r["status"]: r["n"] for r in rows}

    def set_status(self, job_id: str, target: JobStatus, **fields: Any) -> tuple[JobStatus, JobRecord]:
        """Move ``job_id`` to ``target`` (checked by ``job_states.transition``) and write ``fields`` with it.

        ``fields`` are column names (``pid``, ``started_at``, ``finished_at``, ``progress``, ``metrics``,
        ``error``, ``stop_reason``); dicts are stored as JSON. Returns ``(previous status, updated job)``.
        """
        with self._tx() as db:
            row = db.execute("SELECT status FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            if row is None:
                raise KeyError(job_id)
            previous = JobStatus(row["status"])
            new = transition(job_id, previous, target)
            self._update(db, job_id, {"status": new.value, **fields})
        return previous, self.get_job(job_id)

    def update_job(self, job_id: str, **fields: Any) -> None:
        """Write columns other than ``status`` (e.g. ``progress`` after each epoch)."""
        if "status" in fields:
            raise ValueError("status changes go through set_status")
        with self._tx() as db:
            self._update(db, job_id, fields)

    @staticmethod
    def _update(db: sqlite3.Connection, job_id: str, fields: dict[str, Any]) -> None:
        allowed = {"status", "pid", "started_at", "finished_at", "progress", "metrics", "error", "stop_reason"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"not a writable job column: {sorted(unknown)}")
        if "metrics" in fields:
            fields = {**fields, "summary": job_summary(fields["metrics"])}
        values = [json.dumps(v) if isinstance(v, dict) else v for v in fields.values()]
        assignments = ", ".join(f"{name} = ?" for name in fields)
        cursor = db.execute(f"UPDATE jobs SET {assignments} WHERE job_id = ?", (*values, job_id))
        if cursor.rowcount == 0:
            raise KeyError(job_id)

    def unfinished_jobs(self) -> list[JobRecord]:
        """Jobs in ``queued``, ``starting`` or ``running``, oldest first (for recovery at start-up)."""
        names = [JobStatus.QUEUED.value, *(s.value for s in ACTIVE)]
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM jobs WHERE status IN ({','.join('?' * len(names))}) ORDER BY created_at, job_id",
                names,
            ).fetchall()
        return [JobRecord.from_row(r) for r in rows]

    # ---- events -----------------------------------------------------------------------------------------------

    def append_event(self, event: dict[str, Any]) -> int:
        """Store ``event`` (without ``seq``) and return its new ``seq``; also the job's ``last_seq``."""
        body = {k: v for k, v in event.items() if k != "seq"}
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO events (job_id, type, body) VALUES (?, ?, ?)",
                (event.get("job_id"), event["type"], json.dumps(body, allow_nan=False)),
            )
            seq = int(cursor.lastrowid)
            if event.get("job_id"):
                db.execute("UPDATE jobs SET last_seq = ? WHERE job_id = ?", (seq, event["job_id"]))
        return seq

    def last_seq(self) -> int:
        """The highest ``seq`` ever assigned (0 for a new store), from SQLite's own AUTOINCREMENT counter."""
        with self._lock:
            row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        return int(row["seq"]) if row else 0

    def events_since(
        self, since: int = 0, *, upto: int | None = None, job_id: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Stored events with ``since < seq <= upto`` (optionally one job's), in ``seq`` order, ``seq`` included."""
        query, args = "SELECT seq, body FROM events WHERE seq > ?", [since]
        if upto is not None:
            query += " AND seq <= ?"
            args.append(upto)
        if job_id is not None:
            query += " AND job_id = ?"
            args.append(job_id)
        query += " ORDER BY seq"
        if limit is not None:
            query += " LIMIT ?"
            args.append(limit)
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [{**json.loads(r["body"]), "seq": r["seq"]} for r in rows]

    def prune_events(self, keep: int = RETAINED_EVENTS) -> int:
        """Delete all but the newest ``keep`` events; returns how many were deleted."""
        with self._tx() as db:
            cursor = db.execute("DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - ?", (keep,))
        return cursor.rowcount


def iter_pages(store: JobStore, since: int, upto: int, page: int = 500) -> Iterable[dict[str, Any]]:
    """Every stored event with ``since < seq <= upto``, read ``page`` rows at a time (replay of big backlogs)."""
    while True:
        batch = store.events_since(since, upto=upto, limit=page)
        yield from batch
        if len(batch) < page:
            return
        since = batch[-1]["seq"]
