"""``backend.log``: one line per record with UTC time, level, logger and job id, rotated by size.

A record's traceback stays on its line (newlines written as ``\\n``), so ``log_tail`` and ``grep`` always see
whole records. Records about a job pass ``extra={"job_id": ...}`` (or use ``job_logger``); others show ``-``.
"""

from __future__ import annotations

import logging
import logging.handlers
import time
from pathlib import Path
from typing import Any

LOG_NAME = "backend.log"
MAX_BYTES = 5 * 1024 * 1024  # per file; with BACKUPS rotated files the log never exceeds ~20 MB
BACKUPS = 3
FORMAT = "%(asctime)s %(levelname)s %(name)s [job=%(job_id)s] %(message)s"


class _JobIdDefault(logging.Filter):
    """Give every record a ``job_id`` (``-`` when it is not about one job)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "job_id"):
            record.job_id = "-"
        return True


class OneLineUTCFormatter(logging.Formatter):
    """ISO-8601 UTC times with milliseconds (``2024-05-01T12:00:00.123Z``); newlines escaped as ``\\n``."""

    converter = time.gmtime

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging API)
        return time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created)) + f".{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\r", "").replace("\n", "\\n")


def configure_logging(log_dir: Path, level: str = "INFO") -> Path:
    """Send this process's log records to ``log_dir/backend.log``; returns that path.

    Idempotent: a second call replaces the handler an earlier call installed (tests point each app at its own
    temp folder). Werkzeug's per-request access lines are kept out (WARNING and above only).
    """
    path = log_dir / LOG_NAME
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_candlecast", False)]:
        root.removeHandler(handler)
        handler.close()
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
    handler._candlecast = True  # type: ignore[attr-defined]
    handler.setLevel(level)
    handler.addFilter(_JobIdDefault())
    handler.setFormatter(OneLineUTCFormatter(FORMAT))
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > handler.level:
        root.setLevel(handler.level)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    return path


def job_logger(logger: logging.Logger, job_id: str) -> logging.LoggerAdapter[Any]:
    """``logger`` whose records carry ``job_id``."""
    return logging.LoggerAdapter(logger, {"job_id": job_id})
