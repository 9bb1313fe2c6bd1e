"""Where Candlecast keeps its files (ARCHITECTURE.md), and the one helper for files shipped inside the package.

Every user path comes from platformdirs (app name ``candlecast``) unless ``CANDLECAST_HOME`` is set, in which
case config, data and logs all live under that folder (tests set it to a temp dir). Light: standard library and
platformdirs only. A folder that cannot be created (read-only disk, no permission) raises ``FolderError``, whose
message is the one line the CLI prints.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "candlecast"
#: A job folder's record of what it ran on (``trainer.provenance``); the server reads it for reruns.
PROVENANCE_FILE = "provenance.json"
#: What a completed job folder holds besides its records (``trainer.train.ARTIFACTS`` without the log), in the
#: order the job writes them: a folder with all of them holds a finished job's results.
RESULT_FILES = ("config.json", "model.pt", "metrics.json", "predictions.csv", "report.html")
#: The folders ``candlecast train`` makes under ``jobs_dir()`` (``cli-<UTC time>-<6 hex>``), also their job ids
#: on a server of the same data folder (``embedded_server.cli_jobs``); group 1 is the UTC time.
CLI_JOB_PATTERN = r"^cli-(\d{8}-\d{6})-[0-9a-f]{6}$"


class FolderError(OSError):
    """One of the app's folders cannot be created; the message names it, the reason and what to do."""


def _ensure(path: Path, what: str) -> Path:
    """Create ``path`` (and its parents) if missing; ``FolderError`` naming ``what`` it is for if that fails."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        hint = "set CANDLECAST_HOME to a writable folder" if _home() else "check the folder's permissions"
        raise FolderError(f"cannot create the {what} folder {path}: {exc.strerror or exc} ({hint})") from None
    return path


def _home() -> Path | None:
    home = os.environ.get("CANDLECAST_HOME")
    return Path(home).expanduser() if home else None


def config_dir() -> Path:
    """Folder of ``config.json`` and ``layout.json`` (created on first use)."""
    home = _home()
    path = home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))
    return _ensure(path, "config")


def data_dir() -> Path:
    """Folder of ``datasets/``, ``jobs/`` and ``candlecast.db`` (created on first use)."""
    home = _home()
    path = home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    return _ensure(path, "data")


def log_dir() -> Path:
    """Folder of ``backend.log`` (created on first use)."""
    home = _home()
    path = home / "logs" if home else Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))
    return _ensure(path, "log")


def datasets_dir() -> Path:
    """Folder of imported datasets: ``<SYMBOL>-<timeframe>.parquet`` plus metadata JSON."""
    return _ensure(data_dir() / "datasets", "datasets")


def jobs_dir() -> Path:
    """Folder holding one sub-folder per job (``jobs/<job_id>/``)."""
    return _ensure(data_dir() / "jobs", "jobs")


def resource_path(*parts: str) -> Path:
    """Path of a file shipped inside the app, e.g. ``resource_path("trainer", "data", "bundled", "X")``.

    Works from source (relative to the repository root) and from a PyInstaller build (``sys._MEIPASS``).
    """
    root = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parent.parent))
    return root.joinpath(*parts)
