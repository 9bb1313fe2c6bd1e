"""Where Candlecast keeps its files (ARCHITECTURE.md), and the one helper for files shipped inside the package.

Every user path comes from platformdirs (app name ``candlecast``) unless ``CANDLECAST_HOME`` is set, in which
case config, data and logs all live under that folder (tests set it to a temp dir). Light: standard library and
platformdirs only.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "candlecast"


def _home() -> Path | None:
    home = os.environ.get("CANDLECAST_HOME")
    return Path(home).expanduser() if home else None


def config_dir() -> Path:
    """Folder of ``config.json`` and ``layout.json`` (created on first use)."""
    home = _home()
    path = home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """Folder of ``datasets/``, ``jobs/`` and ``candlecast.db`` (created on first use)."""
    home = _home()
    path = home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_dir() -> Path:
    """Folder of ``backend.log`` (created on first use)."""
    home = _home()
    path = home / "logs" if home else Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def datasets_dir() -> Path:
    """Folder of imported datasets: ``<SYMBOL>-<timeframe>.parquet`` plus metadata JSON."""
    path = data_dir() / "datasets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def jobs_dir() -> Path:
    """Folder holding one sub-folder per job (``jobs/<job_id>/``)."""
    path = data_dir() / "jobs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def resource_path(*parts: str) -> Path:
    """Path of a file shipped inside the app, e.g. ``resource_path("trainer", "data", "bundled", "X")``.

    Works from source (relative to the repository root) and from a PyInstaller build (``sys._MEIPASS``).
    """
    root = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parent.parent))
    return root.joinpath(*parts)
