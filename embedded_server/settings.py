"""The app settings file ``config.json`` in ``paths.config_dir()``: its schema, loading and recovery.

A missing file is created with the defaults. A corrupt one (not JSON, not this schema, not a file) is never fatal:
it is moved to ``config.json.bak.<UTC timestamp>``, the defaults are written to ``config.json.default`` and used,
and the returned ``warning`` says so (the GUI shows it, ``candlecast serve`` prints it); see ``trainer.recovery``. ``CANDLECAST_PORT`` in the
environment overrides the file's port.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from trainer import paths
from trainer.recovery import load_json_model
from trainer.config import TrainingConfig

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
FILE_NAME = "config.json"
PORT_ENV = "CANDLECAST_PORT"


class AppSettings(BaseModel):
    """The server's settings (``config.json``); every field has a default, unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[2] = Field(SCHEMA_VERSION, description="Version of this file's layout.")
    host: str = Field("127.0.0.1", min_length=1, description="Address to bind; non-loopback needs a token.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port for REST and WebSocket; 0 picks a free one.")
    token: str | None = Field(None, min_length=8, description="Bearer token required on every request when set.")
    max_concurrent_jobs: int = Field(
        1, ge=0, le=16, description="Workers running at once; the rest wait in the queue (0 holds every job queued)."
    )
    start_timeout_s: float = Field(
        60, gt=0, le=3600, description="Seconds a worker has to report training.started before it is killed."
    )
    stop_grace_s: float = Field(
        10, gt=0, le=600, description="Seconds between the stop line, terminate and kill when stopping a worker."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Level of backend.log.")
    warm_worker: bool = Field(
        True, description="Keep one spare worker with torch loaded, so a job starts in a fraction of a second "
        "(costs its memory, see GET /); false for small machines."
    )
    training: dict[str, Any] = Field(
        default_factory=dict, description="TrainingConfig fields used as defaults for new jobs."
    )
    unknown: dict[str, Any] = Field(
        default_factory=dict, description="Keys of an old config.json the migration could not place; kept, unused."
    )

    @field_validator("training")
    @classmethod
    def _valid_training_defaults(cls, value: dict[str, Any]) -> dict[str, Any]:
        TrainingConfig(**value)  # raises ValidationError naming the bad field
        return value


@dataclass(frozen=True)
class LoadedSettings:
    """``settings`` to use, the ``path`` they came from, and a one-line ``warning`` if the file was replaced."""

    settings: AppSettings
    path: Path
    warning: str | None = None


def load_settings(directory: Path | None = None) -> LoadedSettings:
    """Read ``config.json`` from ``directory`` (default ``paths.config_dir()``); a missing or corrupt file follows
    ``trainer.recovery``'s rule (defaults, backup, warning). ``ValueError`` only for a bad ``CANDLECAST_PORT``."""
    path = (directory or paths.config_dir()) / FILE_NAME
    found = load_json_model(path, AppSettings)
    return LoadedSettings(apply_env(found.value), path, found.warning)


def apply_env(settings: AppSettings) -> AppSettings:
    """``settings`` with ``CANDLECAST_PORT`` applied; ``ValueError`` naming the variable if it is not a port."""
    raw = os.environ.get(PORT_ENV)
    if raw is None or raw.strip() == "":
        return settings
    try:
        port = int(raw)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise ValueError(f"{PORT_ENV}={raw!r} is not a TCP port (0..65535)") from None
    return settings.model_copy(update={"port": port})
