"""Failures to write the data folder (disk full, quota, read-only, I/O error): one place that recognises them and
says so in one line.

The job manager and the event bus treat such a failure as *temporary*: what could not be written is kept in memory
and written, in order, once the disk takes writes again (see ``EventBus`` and ``JobManager``). A request that
would have to write now gets a 507 (``StorageFull``), with nothing left behind.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path

#: OSError numbers of a disk that cannot take writes now (full, over quota, read-only, failing).
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: SQLite result codes (``sqlite3.Error.sqlite_errorname``, extended codes start with these) of the same kind.
_SQLITE_WRITE_CODES = (
    "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN"
)


def is_write_failure(exc: BaseException) -> bool:
    """True for an error of the disk, not of our code: SQLite's full/I/O/read-only/busy errors, ``OSError`` ENOSPC,
    EDQUOT, EROFS, EIO. Such a write may succeed later; any other exception is a bug and is not retried."""
    if isinstance(exc, sqlite3.OperationalError):
        name = getattr(exc, "sqlite_errorname", "") or ""
        return name.startswith(_SQLITE_WRITE_CODES) or "disk is full" in str(exc)
    return isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` says the disk (or the user's quota) is full."""
    if isinstance(exc, sqlite3.OperationalError):
        return (getattr(exc, "sqlite_errorname", "") or "").startswith("SQLITE_FULL") or "disk is full" in str(exc)
    return isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS


def describe_failure(exc: BaseException) -> str:
    """``"disk full (database or disk is full)"`` or ``"cannot write (…)"``: a few words for messages and logs."""
    detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"disk full ({detail})" if is_disk_full(exc) else f"cannot write ({detail})"


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} bytes"  # pragma: no cover (the loop always returns)


def free_space(folder: Path) -> str:
    """``"12.0 KiB free of 2.0 MiB"`` for the file system holding ``folder`` (``shutil.disk_usage``)."""
    try:
        usage = shutil.disk_usage(folder)
    except OSError as exc:
        return f"free space unknown ({exc.strerror or exc})"
    return f"{_size(usage.free)} free of {_size(usage.total)}"


class StorageFull(Exception):
    """A request needed to write ``folder`` and could not (``cause``, a write failure); the API answers 507."""

    def __init__(self, folder: Path, cause: BaseException) -> None:
        self.folder = folder
        self.cause = cause
        super().__init__(f"cannot write to {folder}: {describe_failure(cause)}; {free_space(folder)}")
