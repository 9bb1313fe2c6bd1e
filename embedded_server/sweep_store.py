"""Sweeps persisted in the job store's SQLite file (table ``sweeps``); their trials live in the Optuna study.

A sweep's row holds what the API shows besides the trials: its status (``running``, ``completed``, ``failed``,
``stopped``), the request, the final scoring's result and the ``Idempotency-Key``. Its own connection to the same
WAL database (one writer at a time, ``busy_timeout`` covers the job store's short transactions).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedded_server.job_store import utc_now

SWEEP_STATUSES = ("running", "completed", "failed", "stopped")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps (
    sweep_id        TEXT PRIMARY KEY,
    status          TEXT NOT NULL,
    request         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    finished_at     TEXT,
    result          TEXT,
    error           TEXT,
    idempotency_key TEXT UNIQUE
);
"""


@dataclass
class SweepRecord:
    """One row of ``sweeps``: ``request`` is the ``SweepRequest`` as JSON data, ``result`` the final scoring
    (``{best_trial, best_params, best_value, final_job_id, final_value, verdicts, final_error}``) once completed."""

    sweep_id: str
    status: str
    request: dict[str, Any]
    created_at: str
    finished_at: str | None
    result: dict[str, Any] | None
    error: str | None
    idempotency_key: str | None


class SweepStore:
    """The ``sweeps`` table. Thread-safe; ``KeyError`` for an unknown sweep id."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def create(self, sweep_id: str, request: dict[str, Any], idempotency_key: str | None) -> SweepRecord:
        """Insert a ``running`` sweep; ``sqlite3.IntegrityError`` if the id or the key exists."""
        with self._lock:
            self._db.execute(
                "INSERT INTO sweeps (sweep_id, status, request, created_at, idempotency_key) VALUES (?, ?, ?, ?, ?)",
                (sweep_id, "running", json.dumps(request), utc_now(), idempotency_key),
            )
        return self.get(sweep_id)

    def get(self, sweep_id: str) -> SweepRecord:
        with self._lock:
            row = self._db.execute("SELECT * FROM sweeps WHERE sweep_id = ?", (sweep_id,)).fetchone()
        if row is None:
            raise KeyError(sweep_id)
        return _record(row)

    def find_by_idempotency_key(self, key: str) -> SweepRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM sweeps WHERE idempotency_key = ?", (key,)).fetchone()
        return None if row is None else _record(row)

    def list(self, status: str | None = None, limit: int = 50) -> list[SweepRecord]:
        """Newest first, at most ``limit``, optionally only those with ``status``."""
        query, args = "SELECT * FROM sweeps", []
        if status is not None:
            query += " WHERE status = ?"
            args.append(status)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY created_at DESC, sweep_id DESC LIMIT ?", [*args, limit])
            return [_record(r) for r in rows.fetchall()]

    def finish(
        self, sweep_id: str, status: str, result: dict[str, Any] | None = None, error: str | None = None
    ) -> bool:
        """Move a ``running`` sweep to ``status``; False (nothing written) when it had already ended."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE sweeps SET status = ?, finished_at = ?, result = ?, error = ?"
                " WHERE sweep_id = ? AND status = 'running'",
                (status, utc_now(), None if result is None else json.dumps(result), error, sweep_id),
            )
            return cursor.rowcount == 1


def _record(row: sqlite3.Row) -> SweepRecord:
    return SweepRecord(
        sweep_id=row["sweep_id"],
        status=row["status"],
        request=json.loads(row["request"]),
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        result=None if row["result"] is None else json.loads(row["result"]),
        error=row["error"],
        idempotency_key=row["idempotency_key"],
    )
