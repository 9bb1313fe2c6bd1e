"""The GUI's part of the settings migration (``embedded_server.settings_migration``): an old flat
``config.json`` kept the window position under ``layout`` (``x``, ``y``, ``width``/``w``, ``height``/``h``,
``control_width``, at its top level or under ``viewport``/``window``); this moves it into ``layout.json``
through ``desktop_app.layout_store``. ``migrate_file`` and ``migrate_at_start`` are the server's with this hook.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from desktop_app import layout_store
from desktop_app.layout_store import Panels, Viewport
from embedded_server import settings_migration
from embedded_server.settings_migration import Migration, MigrationError, Result

__all__ = ["LAYOUT", "MigrationError", "Result", "migrate_at_start", "migrate_file"]

#: old ``layout`` keys -> (``Layout`` section, field).
LAYOUT_KEYS = {
    "x": ("viewport", "x"),
    "y": ("viewport", "y"),
    "width": ("viewport", "width"),
    "w": ("viewport", "width"),
    "height": ("viewport", "height"),
    "h": ("viewport", "height"),
    "control_width": ("panels", "control_width"),
}


class _LayoutJson:
    """``settings_migration.LayoutMigration`` for ``layout.json``."""

    @staticmethod
    def plan(old: Any, migration: Migration, unknown: dict[str, Any]) -> dict[str, dict[str, int]] | None:
        """The ``Layout`` updates found in the old ``layout`` value; what does not fit goes to ``unknown["layout"]``."""
        if not isinstance(old, dict):
            unknown["layout"] = old
            migration.warnings.append(f"layout is a {type(old).__name__}, not an object; kept under \"unknown\"")
            return None
        flat = {k: v for k, v in old.items() if k not in ("viewport", "window")}
        for nested in ("viewport", "window"):
            if isinstance(old.get(nested), dict):
                flat.update(old[nested])
        updates: dict[str, dict[str, int]] = {"viewport": {}, "panels": {}}
        leftover = {}
        for key, value in flat.items():
            if key not in LAYOUT_KEYS:
                leftover[key] = value
                migration.warnings.append(f"layout.{key} has no place in layout.json; kept under \"unknown\"")
                continue
            section, name = LAYOUT_KEYS[key]
            try:
                (Viewport if section == "viewport" else Panels)(**{name: value})
            except ValidationError as exc:
                leftover[key] = value
                migration.warnings.append(f"layout.{key} = {value!r} is not usable ({exc.errors()[0]['msg']}); kept under \"unknown\"")
                continue
            updates[section][name] = value
        if leftover:
            unknown["layout"] = leftover
        updates = {section: values for section, values in updates.items() if values}
        if not updates:
            return None
        migration.changes.append(f"layout -> layout.json {json.dumps(updates, sort_keys=True)}")
        return updates

    @staticmethod
    def write(folder: Path, updates: dict[str, dict[str, int]]) -> Path:
        """Apply ``updates`` to ``layout.json`` in ``folder`` (created from the defaults if missing)."""
        current = layout_store.load_layout(folder).layout or layout_store.Layout()
        viewport = layout_store.Viewport(**{**current.viewport.model_dump(), **updates.get("viewport", {})})
        panels = layout_store.Panels(**{**current.panels.model_dump(), **updates.get("panels", {})})
        return layout_store.save_layout(current.model_copy(update={"viewport": viewport, "panels": panels}), folder)


LAYOUT = _LayoutJson()


def migrate_file(path: Path, dry_run: bool = False, now: datetime | None = None) -> Result:
    """``settings_migration.migrate_file`` that also moves the old window position into ``layout.json``."""
    return settings_migration.migrate_file(path, dry_run, now, layout=LAYOUT)


def migrate_at_start(path: Path) -> list[str]:
    """``settings_migration.migrate_at_start`` that also moves the old window position into ``layout.json``."""
    return settings_migration.migrate_at_start(path, layout=LAYOUT)
