"""Crash-safe file writes: temp file in the same folder, fsync, rename (ARCHITECTURE.md).

The temp file is ``.<name>.<8 random characters>.tmp`` (``tempfile.mkstemp``). A crash between its creation and
the rename leaves it behind; ``remove_stale_temp_files`` removes such leftovers at the next start.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

#: The name ``atomic_write`` gives its temp file (``mkstemp``'s random part: 8 of ``[a-z0-9_]``).
_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> Path:
    """Write ``path`` through ``write(fileobj)`` so that it is either the old file or the whole new one.

    The temp file lives in the same folder (same file system, so ``os.replace`` is atomic); it is fsynced
    before the rename and removed if ``write`` raises. Returns the final path.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def remove_stale_temp_files(folder: Path, older_than_s: float) -> list[Path]:
    """Remove the temp files ``atomic_write`` left in ``folder`` (not below it) that were last written more than
    ``older_than_s`` seconds ago (a live write takes milliseconds); returns those removed. Never raises for one
    that is gone or cannot be removed."""
    removed = []
    cutoff = time.time() - older_than_s
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not _TEMP_NAME.match(entry.name):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Atomically replace ``path`` with ``data``."""
    return atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Atomically replace ``path`` with UTF-8 ``text``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Atomically replace ``path`` with ``obj`` as indented JSON (``allow_nan=False``: NaN is a bug here)."""
    return atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")
