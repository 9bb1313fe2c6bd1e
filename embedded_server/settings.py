"""The app settings file ``config.json`` in ``paths.config_dir()``: its schema, loading and recovery.

A missing file is created with the defaults. A corrupt one (not JSON, not this schema, not a file) is never fatal:
it is moved to ``config.json.bak.<UTC timestamp>``, the defaults are written to ``config.json.default`` and used,
and the returned ``warning`` says so (the GUI shows it, ``candlecast serve`` prints it); see ``trainer.recovery``.
``CANDLECAST_PORT`` and ``CANDLECAST_TOKEN`` in the environment override the file's port and token.

The token rule lives here, once (``token_problem``): the file's ``token``, ``CANDLECAST_TOKEN`` and the CLI's
``--token``/``--token-file`` all follow it. A ``token`` in the file that breaks it is not "corrupt": the file is
left as it is and the server refuses to start (``SettingsError`` naming the file and the field), since running
without the token the user asked for, or resetting their other settings, would both be worse.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from trainer import paths
from trainer.recovery import CorruptFile, load_json_model, read_small_text
from trainer.config import TrainingConfig

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
FILE_NAME = "config.json"
PORT_ENV = "CANDLECAST_PORT"
TOKEN_ENV = "CANDLECAST_TOKEN"
#: A bearer token: 8..256 characters a URL query (``/ws?token=``) and an HTTP header carry unchanged.
TOKEN_MIN, TOKEN_MAX = 8, 256
_TOKEN_CHAR = re.compile(r"[A-Za-z0-9._~-]")


class SettingsError(ValueError):
    """A setting the server must not start with (a bad port or token); the message names where it came from."""


def token_problem(token: str) -> str | None:
    """Why ``token`` cannot be a bearer token (a few words), or None. The one rule for every source of a token."""
    if not TOKEN_MIN <= len(token) <= TOKEN_MAX:
        return f"must be {TOKEN_MIN} to {TOKEN_MAX} characters long, not {len(token)}"
    bad = sorted({c for c in token if not _TOKEN_CHAR.fullmatch(c)})
    if bad:
        shown = " ".join(repr(c) for c in bad[:5])
        return f"may hold only letters, digits and - . _ ~ (found {shown})"
    return None


class AppSettings(BaseModel):
    """The server's settings (``config.json``); every field has a default, unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[2] = Field(SCHEMA_VERSION, description="Version of this file's layout.")
    host: str = Field("127.0.0.1", min_length=1, description="Address to bind; non-loopback needs a token.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port for REST and WebSocket; 0 picks a free one.")
    token: str | None = Field(
        None, description="Bearer token required on every request when set: 8-256 letters, digits, - . _ ~."
    )
    max_concurrent_jobs: int = Field(
        1, ge=0, le=16, description="Workers running at once; the rest wait in the queue (0 holds every job queued)."
    )
    start_timeout_s: float = Field(
        60, gt=0, le=3600, description="Seconds a worker has to report training.started before it is killed."
    )
    stop_grace_s: float = Field(
        10, gt=0, le=600, description="Seconds between the stop line, terminate and kill when stopping a worker."
    )
    request_timeout_s: float = Field(
        30, gt=0, le=3600, description="Seconds a connection may send nothing while a request is awaited; then closed."
    )
    max_connections: int = Field(
        512, ge=1, le=10000, description="Connections served at once (WebSocket clients included); more get a 503."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Level of backend.log.")
    warm_worker: bool = Field(
        True, description="Keep one spare worker with torch loaded, so a job starts in a fraction of a second "
        "(costs its memory, see GET /); false for small machines."
    )
    training: dict[str, Any] = Field(
        default_factory=dict, description="TrainingConfig fields used as defaults for new jobs."
    )
    ray_address: str | None = Field(
        None, min_length=1, description="Default Ray cluster of sweeps (host:port); null: sweeps run here."
    )
    unknown: dict[str, Any] = Field(
        default_factory=dict, description="Keys of an old config.json the migration could not place; kept, unused."
    )

    @field_validator("token")
    @classmethod
    def _valid_token(cls, value: str | None) -> str | None:
        if value is not None and (why := token_problem(value)):
            raise ValueError(f"token {why}")
        return value

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
    ``trainer.recovery``'s rule (defaults, backup, warning). ``SettingsError`` (a ``ValueError``) for a ``token``
    in the file that breaks the token rule (the file is left untouched), a bad ``CANDLECAST_PORT`` or
    ``CANDLECAST_TOKEN``."""
    path = (directory or paths.config_dir()) / FILE_NAME
    _check_file_token(path)
    found = load_json_model(path, AppSettings)
    return LoadedSettings(apply_env(found.value), path, found.warning)


def _check_file_token(path: Path) -> None:
    """``SettingsError`` naming ``path`` and its ``token`` field when that field breaks the token rule; a file
    that cannot be read as a JSON object is left to ``load_json_model``'s recovery."""
    try:
        data = json.loads(read_small_text(path))
    except (OSError, CorruptFile, ValueError):
        return
    token = data.get("token") if isinstance(data, dict) else None
    if token is None:
        return
    why = "must be a string" if not isinstance(token, str) else token_problem(token)
    if why:
        raise SettingsError(f"{path}: field \"token\" {why}; fix or remove it (the file was left as it is)")


def apply_env(settings: AppSettings) -> AppSettings:
    """``settings`` with ``CANDLECAST_PORT`` and ``CANDLECAST_TOKEN`` applied; ``SettingsError`` naming the
    variable if it is not a port or breaks the token rule."""
    update: dict[str, Any] = {}
    raw = os.environ.get(PORT_ENV)
    if raw is not None and raw.strip() != "":
        try:
            update["port"] = int(raw)
            if not 0 <= update["port"] <= 65535:
                raise ValueError
        except ValueError:
            raise SettingsError(f"{PORT_ENV}={raw!r} is not a TCP port (0..65535)") from None
    token = os.environ.get(TOKEN_ENV)
    if token:
        if why := token_problem(token):
            raise SettingsError(f"{TOKEN_ENV}: the token {why}")
        update["token"] = token
    return settings.model_copy(update=update) if update else settings
