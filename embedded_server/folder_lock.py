"""One server per data folder: an exclusive OS lock that a server holds on its data folder for its whole life.

Why: every server on a data folder shares its job store and job folders, and a starting server marks the jobs it
finds unfinished ``interrupted``. A second server on the same folder would do that to the first one's live jobs.

The lock is ``fcntl.flock`` (``msvcrt.locking`` on Windows) on ``server.lock`` in the data folder. That file is
never replaced or deleted, so every server locks the same inode, and the OS drops the lock when the holder
exits, however it exits (crash, ``kill -9``): a stale lock cannot outlive its process. Who holds it (pid, URL)
is recorded next to it in ``server.json``, written atomically; it cannot live in the lock file itself, because
an atomic rename over ``server.lock`` would leave the lock on an unlinked inode.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from trainer.atomic import atomic_write_json

LOCK_NAME = "server.lock"
INFO_NAME = "server.json"


@dataclass(frozen=True)
class Holder:
    """What ``server.json`` says about the server holding the lock: ``pid``, ``url`` (None while it is still
    binding its port) and ``started_at`` (ISO-8601 UTC). All None when the file is missing or unreadable."""

    pid: int | None = None
    url: str | None = None
    started_at: str | None = None


class FolderBusy(Exception):
    """Another process holds the lock on ``folder``; ``holder`` says which, as far as ``server.json`` tells."""

    def __init__(self, folder: Path, holder: Holder) -> None:
        super().__init__(f"{folder} is locked by pid {holder.pid}")
        self.folder = folder
        self.holder = holder


def read_holder(folder: Path) -> Holder:
    """The ``Holder`` recorded in ``folder/server.json`` (an empty ``Holder`` if there is none or it is unreadable)."""
    try:
        info = json.loads((folder / INFO_NAME).read_text(encoding="utf-8"))
        return Holder(int(info["pid"]), info.get("url"), info.get("started_at"))
    except (OSError, ValueError, KeyError, TypeError):
        return Holder()


class FolderLock:
    """The exclusive lock on one data ``folder``: ``acquire()``, ``publish(url)``, ``release()``. Not reentrant:
    a second ``FolderLock`` on the same folder fails to acquire even in the same process (flock locks belong to
    the open file, not the process)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fd: int | None = None
        self._started_at = ""

    @property
    def held(self) -> bool:
        """True between a successful ``acquire()`` and ``release()``."""
        return self._fd is not None

    def acquire(self) -> FolderLock:
        """Take the lock without waiting and record this process in ``server.json``; returns ``self``.

        Raises ``FolderBusy`` (with the holder ``server.json`` names) when another open lock holds it, ``OSError``
        when the folder cannot be written.
        """
        if self.held:
            raise RuntimeError(f"the lock on {self.folder} is already held by this FolderLock")
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(fd)
        except BlockingIOError:
            os.close(fd)
            raise FolderBusy(self.folder, read_holder(self.folder)) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.publish(None)  # at once: a stale server.json of a dead server must not name the wrong holder
        return self

    def publish(self, url: str | None) -> None:
        """Record this process and its server's ``url`` in ``server.json`` (atomically). Only while held."""
        if not self.held:
            raise RuntimeError(f"publish without holding the lock on {self.folder}")
        atomic_write_json(self.folder / INFO_NAME, {"pid": os.getpid(), "url": url, "started_at": self._started_at})

    def release(self) -> None:
        """Remove ``server.json`` and drop the lock (``server.lock`` stays for the next server). Idempotent."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            (self.folder / INFO_NAME).unlink(missing_ok=True)
            _unlock(fd)
        finally:
            os.close(fd)


if sys.platform == "win32":
    import msvcrt

    def _lock(fd: int) -> None:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # one byte at offset 0; the file itself stays empty
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EDEADLOCK):  # another handle holds the byte
                raise BlockingIOError(exc.errno, str(exc)) from None
            raise

    def _unlock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError when another open file holds it

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
