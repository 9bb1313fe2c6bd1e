"""``layout.json`` (window geometry, panels, last used parameters) and Dear PyGui's ini file, both in
``paths.config_dir()``, loaded so that no file on disk can stop the app from starting.

A missing layout is created from defaults. A corrupt one (not JSON, truncated, NUL bytes, wrong types,
out-of-range values, a directory or other non-file at the path, unreadable) is moved to
``layout.json.bak.<UTC timestamp>``, a fresh ``layout.json.default`` (and ``layout.json``) is written from the
defaults and used, and the returned warning tells the user what happened and where the backup is. The ini file
gets the same treatment (``dpg.ini.bak.<timestamp>``, an empty ``dpg.ini.default``). Every write is atomic
(``trainer.atomic``); the app calls the save functions off the render thread or after the render loop ended.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from trainer import paths
from trainer.atomic import atomic_write_bytes, atomic_write_json
from trainer.recovery import CorruptFile, load_json_model, move_aside, read_small_text, try_write
from trainer.config import TrainingConfig

log = logging.getLogger(__name__)

LAYOUT_NAME = "layout.json"
INI_NAME = "dpg.ini"
SCHEMA_VERSION = 1


class Viewport(BaseModel):
    """The main window: position of its top-left corner and client size, in screen pixels."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    # The default fits a 1366×768 laptop screen with its title bar and a taskbar (1280 + 40 ≤ 1366, 16 + ~30 + 680
    # ≤ 768 − 40); a user's own size is kept in layout.json.
    x: int = Field(40, ge=-16384, le=16384)
    y: int = Field(16, ge=-16384, le=16384)
    width: int = Field(1280, ge=640, le=16384)
    height: int = Field(680, ge=480, le=16384)


class Panels(BaseModel):
    """Panel sizes and visibility: control panel width (pixels), "Advanced" open, the tab shown."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    control_width: int = Field(360, ge=260, le=1200)
    show_advanced: bool = False
    tab: Literal["training", "results", "jobs", "sweeps"] = "training"
    status_bar: bool = True


class Layout(BaseModel):
    """The whole ``layout.json``; ``params`` are the last used training parameters (a valid request body)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    viewport: Viewport = Viewport()
    panels: Panels = Panels()
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("params")
    @classmethod
    def _valid_request(cls, value: dict[str, Any]) -> dict[str, Any]:
        TrainingConfig(**value)  # out-of-range or unknown parameters make the file corrupt, not the app
        return value


@dataclass(frozen=True)
class Loaded:
    """What ``load_layout``/``prepare_ini`` found: the value to use, and a warning when a file was replaced."""

    layout: Layout | None
    warning: str | None = None
    backup: Path | None = None


def layout_path(folder: Path | None = None) -> Path:
    """Where ``layout.json`` lives (``paths.config_dir()`` unless ``folder`` is given)."""
    return (folder or paths.config_dir()) / LAYOUT_NAME


def ini_path(folder: Path | None = None) -> Path:
    """Where Dear PyGui's ini file lives."""
    return (folder or paths.config_dir()) / INI_NAME


def load_layout(folder: Path | None = None, now: datetime | None = None) -> Loaded:
    """Read ``layout.json``; never raises (the rule of ``trainer.recovery``: backup, defaults, warning)."""
    found = load_json_model(layout_path(folder), Layout, now)
    return Loaded(found.value, found.warning, found.backup)


def save_layout(layout: Layout, folder: Path | None = None) -> Path:
    """Write ``layout.json`` atomically; raises ``OSError`` if the folder is not writable."""
    return atomic_write_json(layout_path(folder), layout.model_dump(mode="json"))


def prepare_ini(folder: Path | None = None, now: datetime | None = None) -> tuple[Path | None, str | None]:
    """Check Dear PyGui's ini file before Dear PyGui reads it; returns ``(path to load or None, warning)``.

    A missing ini means nothing to load. A corrupt one (not UTF-8 text, NUL bytes, a line that is neither a
    ``[Section][Name]`` header nor ``key=value``, a non-file, unreadable) is moved to ``dpg.ini.bak.<timestamp>``
    and an empty ``dpg.ini.default`` is written; the app then starts without it.
    """
    path = ini_path(folder)
    if not os.path.lexists(path):
        return None, None
    try:
        _check_ini(read_small_text(path))
        return path, None
    except CorruptFile as exc:
        reason = str(exc)
    backup = move_aside(path, now)
    try_write(lambda: atomic_write_bytes(path.with_name(INI_NAME + ".default"), b""))
    where = f"moved it to {backup.name}" if backup else "it could not be moved aside"
    warning = (f"{path.name} (Dear PyGui's own settings) in {path.parent} was corrupt ({reason}); {where}. "
               "Starting without it.")
    log.warning(warning)
    return None, warning


def save_ini(write_ini: Callable[[str], None], folder: Path | None = None) -> Path | None:
    """Save Dear PyGui's ini atomically: ``write_ini(tmp)`` (``dpg.save_init_file``) writes a temp file, which
    is checked and then replaces the ini. Returns the path, or None when the written file was not valid."""
    path = ini_path(folder)
    tmp = path.with_name(f".{INI_NAME}.{os.getpid()}.new")
    try:
        write_ini(str(tmp))
        text = read_small_text(tmp)
        _check_ini(text)
        return atomic_write_bytes(path, text.encode("utf-8"))
    except CorruptFile as exc:
        log.warning("not saving Dear PyGui's ini file: %s", exc)
        return None
    finally:
        tmp.unlink(missing_ok=True)


_INI_LINE = re.compile(r"^(\[[^\]]+\]\[.*\]|[^=\[][^=]*=.*)$")


def _check_ini(text: str) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not _INI_LINE.match(line):
            raise CorruptFile(f"line {number} is not an ini entry: {line[:40]!r}")
