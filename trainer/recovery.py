"""Loading the app's own small files (``config.json``, ``layout.json``, Dear PyGui's ini) so that a damaged one is
never fatal (ARCHITECTURE.md, "Writes that must survive a crash").

The rule, in one place: a missing file is created from the defaults; a corrupt one (unreadable, a directory or
other non-file in its place, too large, NUL bytes, not UTF-8, not JSON, not the schema) is moved to
``<name>.bak.<UTC timestamp>``, the defaults are written to ``<name>.default`` and to the file itself, and the
caller gets a one-line warning naming the file, the reason and the backup. Light: standard library and pydantic.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

from trainer.atomic import atomic_write_json

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
MAX_BYTES = 1 << 20  # our files are a few KiB; anything near this is not ours


class CorruptFile(ValueError):
    """The file cannot be used; the message says why in a few words."""


@dataclass(frozen=True)
class Recovered(Generic[M]):
    """What ``load_json_model`` found: the ``value`` to use, a ``warning`` and the ``backup`` if it replaced a file."""

    value: M
    warning: str | None = None
    backup: Path | None = None


def read_small_text(path: Path, max_bytes: int = MAX_BYTES) -> str:
    """The UTF-8 text of the regular file ``path`` (at most ``max_bytes``); raises ``CorruptFile`` otherwise."""
    try:
        info = os.stat(path)  # follows links: a dangling or looping link is "unreadable"
    except OSError as exc:
        raise CorruptFile(f"unreadable: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise CorruptFile("a directory is in its place")
    if not stat.S_ISREG(info.st_mode):
        raise CorruptFile("not a regular file")  # a FIFO would block the read forever
    if info.st_size > max_bytes:
        raise CorruptFile(f"{info.st_size} bytes, more than such a file can be")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CorruptFile(f"unreadable: {exc.strerror or exc}") from None
    if b"\x00" in raw:
        raise CorruptFile("contains NUL bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptFile(f"not UTF-8 text (byte {exc.start})") from None


def describe_error(exc: Exception) -> str:
    """A few words on why a file was refused: the first pydantic error with its location, or the JSON error."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        return f"{where}: {first['msg']}"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc)


def backup_path(path: Path, now: datetime | None = None) -> Path:
    """``<name>.bak.<UTC timestamp>`` beside ``path``, with ``-2``, ``-3``… when that name is taken."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    backup = path.with_name(f"{path.name}.bak.{stamp}")
    serial = 1
    while os.path.lexists(backup):  # two bad starts in one second keep both backups
        serial += 1
        backup = path.with_name(f"{path.name}.bak.{stamp}-{serial}")
    return backup


def move_aside(path: Path, now: datetime | None = None) -> Path | None:
    """Move the bad file (or directory) at ``path`` to its ``backup_path``; None (logged) if that fails."""
    backup = backup_path(path, now)
    try:
        os.replace(path, backup)
    except OSError as exc:
        log.error("could not move %s aside: %s", path, exc)
        return None
    return backup


def try_write(write: Callable[[], object]) -> None:
    """Run ``write``; a read-only folder costs the saved file, never the app (logged)."""
    try:
        write()
    except OSError as exc:
        log.error("could not write: %s", exc)


def load_json_model(path: Path, model: type[M], now: datetime | None = None) -> Recovered[M]:
    """Load ``path`` as a JSON object of ``model``, applying the module's rule; never raises for the file."""
    if not os.path.lexists(path):
        try_write(lambda: atomic_write_json(path, model().model_dump(mode="json")))
        return Recovered(model())
    try:
        text = read_small_text(path)
        if not text.strip():
            raise CorruptFile("empty")
        data = json.loads(text)
        if not isinstance(data, dict):
            raise CorruptFile(f"expected a JSON object, found {type(data).__name__}")
        return Recovered(model.model_validate(data))
    except ValueError as exc:  # CorruptFile, JSONDecodeError and ValidationError are ValueErrors
        reason = describe_error(exc)
    default = model()
    backup = move_aside(path, now)
    try_write(lambda: atomic_write_json(path.with_name(path.name + ".default"), default.model_dump(mode="json")))
    try_write(lambda: atomic_write_json(path, default.model_dump(mode="json")))
    where = f"moved it to {backup.name}" if backup else "it could not be moved aside"
    warning = f"{path.name} in {path.parent} was corrupt ({reason}); {where}. Using the defaults."
    log.warning(warning)
    return Recovered(default, warning, backup)
