#!/usr/bin/env python3
"""Migrate an old flat Candlecast ``config.json`` (no ``schema_version``) to the current settings format.

    .venv/bin/python scripts/migrate_old_config.py [PATH] [--dry-run]

PATH defaults to the app's own settings file (``config.json`` in the config folder, or under
``$CANDLECAST_HOME/config``). The old file is first copied to ``config.json.bak.<UTC timestamp>``; the old
``layout`` goes into ``layout.json`` beside it. A file already in the current format is left alone ("nothing to
do"), so running this twice is safe. The app runs the same migration by itself when it starts
(``desktop_app.config_migration``).

Exit status: 0 migrated (or nothing to do), 1 the file cannot be migrated (one line says why; nothing changed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout with any Python of .venv

from desktop_app.config_migration import MigrationError, migrate_file  # noqa: E402
from trainer import paths  # noqa: E402

PROG = "migrate_old_config"


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, migrate, print what changed (or would change); returns the exit status."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", type=Path, help="the config.json to migrate (default: the app's own)")
    parser.add_argument("--dry-run", action="store_true", help="print the change and write nothing")
    args = parser.parse_args(argv)
    path = args.path or paths.config_dir() / "config.json"
    try:
        result = migrate_file(path, dry_run=args.dry_run)
    except MigrationError as exc:
        print(f"{PROG}: error: {exc}; nothing changed", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{PROG}: error: cannot write next to {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for warning in result.migration.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    if not result.changed:
        print(f"{path}: already in the current format (schema_version 2); nothing to do")
        return 0
    if args.dry_run:
        print(f"{path}: would migrate (dry run, nothing written):")
    else:
        print(f"{path}: migrated to schema_version 2; old file backed up as {result.backup}")
    for change in result.migration.changes:
        print(f"  {change}")
    if args.dry_run:
        print(result.diff, end="")
    elif result.layout_path:
        print(f"  window layout written to {result.layout_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
