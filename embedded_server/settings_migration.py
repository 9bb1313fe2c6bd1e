"""Migration of an old, flat ``config.json`` (no ``schema_version``) to the current settings format (version 2).

Earlier versions of the app kept one flat file: the training controls as ``tf``, ``horizon``, ``calib``,
``pup_source`` and ``cv``, the server address as ``backend_url`` (``"http://localhost:8000"``) and the window
position under ``layout``. The migration

- renames the controls to their ``TrainingConfig`` names under ``training`` (``tf`` → ``timeframe``, ``horizon`` →
  ``forecast_horizon``, ``calib`` → ``calibration_method``, ``pup_source`` → ``p_up_source``, ``cv`` →
  ``use_cv``), adds ``symbol``, ``batch_size`` and ``cv_folds`` with their defaults, and carries over any other
  ``TrainingConfig`` field or current top-level setting found at the top level;
- splits ``backend_url`` into ``host`` and ``port``;
- hands the old ``layout`` (the GUI's window position) to a ``LayoutMigration`` that the app passes in
  (``desktop_app.config_migration``, which writes ``layout.json``); without one it stays under ``unknown``;
- keeps every key (or value) it cannot use under ``unknown``, with a warning naming it;
- backs the old file up as ``config.json.bak.<UTC timestamp>`` first, then writes the new one atomically.

A file that has a ``schema_version`` is left alone (so a second run changes nothing). A file that is not a JSON
object is refused with one line (``MigrationError``) and nothing is changed. ``scripts/migrate_old_config.py`` is
the command-line front end; ``desktop_app.cli`` runs ``migrate_at_start`` before ``candlecast serve`` reads the
settings, and the app (``desktop_app.app``) runs it itself, to show its lines in its window. It lives beside
``embedded_server.settings``, whose file it migrates; the GUI's part (the layout) is the hook's.
"""

from __future__ import annotations

import difflib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from pydantic import ValidationError

from embedded_server.settings import SCHEMA_VERSION, AppSettings
from trainer.atomic import atomic_write_bytes, atomic_write_json
from trainer.config import TrainingConfig
from trainer.recovery import backup_path

log = logging.getLogger(__name__)

#: old flat key -> ``TrainingConfig`` field.
RENAMED = {
    "tf": "timeframe",
    "horizon": "forecast_horizon",
    "calib": "calibration_method",
    "pup_source": "p_up_source",
    "cv": "use_cv",
}
#: fields the old format never had; written with their defaults so the file shows what a job will use.
ADDED = ("symbol", "batch_size", "cv_folds")
#: top-level settings that may already sit in an old file under their current name.
SETTINGS_KEYS = tuple(name for name in AppSettings.model_fields if name not in ("schema_version", "training", "unknown"))
class MigrationError(Exception):
    """The file cannot be migrated (unreadable, not JSON, not an object, unknown version); one line, file untouched."""


@dataclass
class Migration:
    """The outcome of ``plan_migration``: the ``new`` settings dict (None: nothing to do), the ``layout`` updates
    (``{"viewport": {...}, "panels": {...}}``, None when the old file had no usable layout), one line per
    ``change`` made, and one line per ``warning`` (unknown keys, unusable values)."""

    new: dict[str, Any] | None
    layout: dict[str, dict[str, int]] | None = None
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Result:
    """What ``migrate_file`` did: the ``migration``, the ``backup`` it made and the ``layout_path`` it wrote
    (both None on a dry run or when there was nothing to do), and the ``diff`` of the settings file."""

    migration: Migration
    backup: Path | None
    layout_path: Path | None
    diff: str

    @property
    def changed(self) -> bool:
        """True when the file is (or, on a dry run, would be) rewritten."""
        return self.migration.new is not None


def _field_error(exc: ValidationError) -> str:
    return exc.errors()[0]["msg"]


def _split_backend_url(url: Any, migration: Migration, unknown: dict[str, Any]) -> dict[str, Any]:
    """``"http://localhost:8000"`` -> ``{"host": "localhost", "port": 8000}``; an unusable URL goes to ``unknown``."""
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
        port = parts.port if parts else None  # ValueError for a non-numeric or out-of-range port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        unknown["backend_url"] = url
        migration.warnings.append(f"backend_url {url!r} is not an http://host:port address; kept under \"unknown\"")
        return {}
    address = {"host": parts.hostname}
    if port is None:
        migration.warnings.append(f"backend_url {url!r} names no port; using the default port {AppSettings().port}")
    else:
        address["port"] = port
    migration.changes.append(f"backend_url {url!r} -> host {parts.hostname!r}" + (f", port {port}" if port is not None else ""))
    return address


class LayoutMigration(Protocol):
    """How the old file's ``layout`` value is carried over (the GUI's part of the migration)."""

    def plan(self, old: Any, migration: Migration, unknown: dict[str, Any]) -> dict[str, dict[str, int]] | None:
        """The layout updates found in ``old`` (None: nothing usable); notes changes/warnings on ``migration``
        and puts what does not fit under ``unknown["layout"]``. Pure."""

    def write(self, folder: Path, updates: dict[str, dict[str, int]]) -> Path:
        """Apply ``updates`` to the layout file in ``folder``; returns its path."""


def plan_migration(data: Any, layout: LayoutMigration | None = None) -> Migration:
    """Work out the migration of the parsed ``config.json`` content ``data``; pure (no I/O).

    ``layout`` plans the old ``layout`` value; without it that value is kept under ``unknown`` with a warning.

    Returns ``Migration(new=None)`` when ``data`` already has a ``schema_version`` of the current version.
    Raises ``MigrationError`` when ``data`` is not a JSON object or has a ``schema_version`` this app does not know.
    """
    if not isinstance(data, dict):
        raise MigrationError(f"expected a JSON object, found {type(data).__name__}")
    if "schema_version" in data:
        if data["schema_version"] == SCHEMA_VERSION:
            return Migration(new=None)
        raise MigrationError(f"schema_version {data['schema_version']!r} is not one this app knows ({SCHEMA_VERSION})")

    migration = Migration(new={})
    top: dict[str, Any] = {}
    training: dict[str, Any] = {}
    unknown: dict[str, Any] = {}
    for key, value in data.items():
        if key == "backend_url":
            top.update(_split_backend_url(value, migration, unknown))
        elif key == "layout" and layout is not None:
            migration.layout = layout.plan(value, migration, unknown)
        elif key in SETTINGS_KEYS:
            top[key] = value
        elif key in RENAMED or key in TrainingConfig.model_fields:
            name = RENAMED.get(key, key)
            if name in training or (key in RENAMED and name in data):
                unknown[key] = value
                migration.warnings.append(f"{key} and {name} both given; kept {name}, {key} under \"unknown\"")
                continue
            try:  # one field at a time, so one bad value costs that value only
                training[name] = TrainingConfig(**{name: value}).model_dump(mode="json")[name]
            except ValidationError as exc:
                unknown[key] = value
                migration.warnings.append(f"{key} = {value!r} is not a valid {name} ({_field_error(exc)}); kept under \"unknown\"")
                continue
            if key in RENAMED:
                migration.changes.append(f"{key} -> training.{name} = {json.dumps(training[name])}")
        else:
            unknown[key] = value
            migration.warnings.append(f"unknown key {key!r} kept under \"unknown\"")
    defaults = TrainingConfig()
    for name in ADDED:
        if name not in training:
            training[name] = getattr(defaults, name)
            migration.changes.append(f"added training.{name} = {json.dumps(training[name])} (default)")
    training = {name: training[name] for name in TrainingConfig.model_fields if name in training}  # schema order
    try:
        settings = AppSettings(**top, training=training, unknown=unknown)
    except ValidationError as exc:  # a carried-over top-level value out of range: keep it aside, use the default
        for error in exc.errors():
            key = str(error["loc"][0])
            if key in top:
                unknown[key] = top.pop(key)
                migration.warnings.append(f"{key} = {unknown[key]!r} is not usable ({error['msg']}); kept under \"unknown\"")
        settings = AppSettings(**top, training=training, unknown=unknown)
    migration.new = settings.model_dump(mode="json")
    migration.changes.append(f"schema_version {SCHEMA_VERSION} written")
    return migration


def read_config(path: Path) -> tuple[bytes, Any]:
    """The bytes of ``path`` and their parsed JSON; ``MigrationError`` (one line naming the file and the problem)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise MigrationError(f"{path}: no such file") from None
    except OSError as exc:
        raise MigrationError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        return raw, json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise MigrationError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise MigrationError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None


def migrate_file(
    path: Path, dry_run: bool = False, now: datetime | None = None, layout: LayoutMigration | None = None
) -> Result:
    """Migrate the settings file at ``path`` in place (see the module docstring); ``dry_run`` writes nothing.

    Order of writes: the backup (a byte-for-byte copy, written atomically), then the layout (``layout.write``),
    then the new
    ``config.json`` (atomically), so an interruption leaves either the old file or the new one.
    Raises ``MigrationError`` before touching anything when the file cannot be migrated.
    """
    path = Path(path)
    raw, data = read_config(path)
    try:
        migration = plan_migration(data, layout)
    except MigrationError as exc:
        raise MigrationError(f"{path}: {exc}") from None
    if migration.new is None:
        return Result(migration, None, None, "")
    new_text = json.dumps(migration.new, indent=2, allow_nan=False) + "\n"
    old_text = json.dumps(data, indent=2) + "\n"
    diff = "".join(
        difflib.unified_diff(old_text.splitlines(True), new_text.splitlines(True), f"{path} (old)", f"{path} (new)")
    )
    if dry_run:
        return Result(migration, None, None, diff)
    backup = backup_path(path, now)
    atomic_write_bytes(backup, raw)
    layout_path = layout.write(path.parent, migration.layout) if layout and migration.layout else None
    atomic_write_json(path, migration.new)
    return Result(migration, backup, layout_path, diff)


def migrate_at_start(path: Path, layout: LayoutMigration | None = None) -> list[str]:
    """What the app does before reading its settings: migrate an old-format file, never raise.

    Returns one line per thing the user should know, also logged: what was migrated (with the backup's name),
    then each warning (unknown keys, unusable values), or why the migration could not be written. Empty when
    there was nothing to migrate. A file that cannot be parsed is left as it is and gives no line here:
    ``load_settings`` then treats it as corrupt (backup, defaults) and warns itself.
    """
    if not path.is_file():
        return []
    try:
        result = migrate_file(path, layout=layout)
    except MigrationError as exc:
        log.debug("settings file not migrated: %s", exc)
        return []
    except OSError as exc:
        line = f"Could not migrate the old settings file {path}: {exc.strerror or exc}"
        log.error(line)
        return [line]
    if not result.changed:
        return []
    backup = result.backup.name if result.backup else "none"
    lines = [f"Migrated the old settings file {path} to the current format (backup {backup}): "
             + "; ".join(result.migration.changes)]
    log.info(lines[0])
    for warning in result.migration.warnings:
        lines.append(f"Settings migration: {warning}")
        log.warning(lines[-1])
    return lines
