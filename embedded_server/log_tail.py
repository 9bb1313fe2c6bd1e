"""The last lines of a log file, read from its end: cost grows with the lines asked for, not the file's size.

Rotation-aware (``backend.log`` then ``backend.log.1``, ``.2`` …, as ``RotatingFileHandler`` names them), so a
tail taken just after a rotation still has the lines asked for. Bytes that are not UTF-8 become U+FFFD.
"""

from __future__ import annotations

import os
from pathlib import Path

BLOCK = 64 * 1024


def tail_lines(path: Path, n: int) -> list[str]:
    """The last ``n`` lines of ``path`` (oldest first, without line endings); ``[]`` if it does not exist.

    Reads ``BLOCK`` bytes at a time backwards from the end until it holds ``n`` complete lines or the start.
    """
    if n <= 0:
        return []
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed below; FileNotFoundError must be caught here)
    except FileNotFoundError:
        return []
    with handle:
        end = handle.seek(0, os.SEEK_END)
        position, data = end, b""
        # n + 1 newlines guarantee n whole lines even when the file ends with a newline.
        while position > 0 and data.count(b"\n") <= n:
            step = min(BLOCK, position)
            position -= step
            handle.seek(position)
            data = handle.read(step) + data
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the file's final newline ends the last line, it does not start a new one
    if position > 0:
        lines = lines[1:]  # the first piece may be the middle of a longer line
    return [line.rstrip(b"\r").decode("utf-8", errors="replace") for line in lines[-n:]]


def tail_rotated(path: Path, n: int, backups: int = 10) -> list[str]:
    """The last ``n`` lines across ``path`` and its rotated files ``path.1`` … ``path.<backups>``."""
    lines = tail_lines(path, n)
    for index in range(1, backups + 1):
        if len(lines) >= n:
            break
        older = path.with_name(f"{path.name}.{index}")
        if not older.exists():
            break
        lines = tail_lines(older, n - len(lines)) + lines
    return lines
