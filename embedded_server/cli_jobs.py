"""Jobs trained by ``candlecast train`` in the data folder, made jobs of the server like any other.

``candlecast train`` (without ``--out``) runs its job in its own process, in a folder ``jobs/cli-<UTC time>-<6 hex>``
(``trainer.paths.CLI_JOB_PATTERN``), and keeps that folder only when the job completed. Such a folder holds what a
completed worker's folder holds, so the server records it as a ``completed`` job whose id is the folder's name:
``GET /jobs`` lists it, and predict, compare, rerun and the GUI's Jobs tab use it. A folder counts once it holds
every one of ``paths.RESULT_FILES`` (``report.html``, written last, included): one still being trained, or left
half-written by a killed ``candlecast train``, is not listed. Its times: ``created_at`` from the folder's name,
``finished_at`` when ``report.html`` was written, ``started_at`` that minus the job's ``duration_s``.

``adopt`` is called by the job manager at server start and before the server looks jobs up, so a job trained
while the server runs appears at the next ``GET /jobs``. A folder whose ``config.json`` or ``metrics.json`` cannot
be read is logged once and left out; nothing here writes into a job folder.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from embedded_server.job_store import JobStore
from trainer.paths import CLI_JOB_PATTERN, RESULT_FILES

log = logging.getLogger(__name__)

_CLI_JOB = re.compile(CLI_JOB_PATTERN)


def _iso(moment: datetime) -> str:
    """``moment`` in the store's ``*_at`` format (``utc_now``: microseconds and ``Z``, so they sort as text)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def completed_cli_job(job_dir: Path) -> tuple[dict[str, Any], dict[str, Any], tuple[str, str, str]] | None:
    """``(config, metrics, (created_at, started_at, finished_at))`` of a completed ``candlecast train`` folder, or
    None while it lacks a result file. Raises ``ValueError`` (or ``OSError``) when its JSON cannot be used."""
    match = _CLI_JOB.fullmatch(job_dir.name)
    if match is None or not all((job_dir / name).is_file() for name in RESULT_FILES):
        return None
    config = json.loads((job_dir / "config.json").read_text(encoding="utf-8"))
    metrics = json.loads((job_dir / "metrics.json").read_text(encoding="utf-8"))
    if not isinstance(config, dict) or not isinstance(metrics, dict) or "pooled" not in metrics:
        raise ValueError("config.json or metrics.json is not a job's")
    created = datetime.strptime(match.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
    finished = datetime.fromtimestamp((job_dir / "report.html").stat().st_mtime, UTC)
    duration = metrics.get("duration_s")
    started = finished.timestamp() - duration if isinstance(duration, (int, float)) else created.timestamp()
    started_at = datetime.fromtimestamp(max(started, created.timestamp()), UTC)
    return config, metrics, (_iso(created), _iso(started_at), _iso(finished))


def adopt(store: JobStore, jobs_dir: Path, seen: set[str]) -> list[str]:
    """Record every completed ``candlecast train`` folder in ``jobs_dir`` that the store lacks as a ``completed``
    job (module doc); ``seen``: folder names already dealt with (recorded, found stored or refused), updated.
    Returns the ids recorded now."""
    try:
        names = sorted(p.name for p in jobs_dir.iterdir() if p.name not in seen and _CLI_JOB.fullmatch(p.name))
    except OSError:
        return []
    adopted = []
    for name in names:
        try:
            store.get_job(name)
            seen.add(name)
            continue
        except KeyError:
            pass
        try:
            found = completed_cli_job(jobs_dir / name)
            if found is None:
                continue  # still training (or killed half-way): looked at again next time
            config, metrics, times = found
            folds = len(metrics.get("folds") or []) or None
            progress = {"fold": folds, "folds": folds, "epoch": None, "epochs": config.get("epochs"),
                        "fraction": 1.0, "eta_s": 0.0}
            if store.add_completed_job(name, config, metrics, times, progress):
                adopted.append(name)
                log.info("listed %s, a job trained by candlecast train, as completed", name)
        except (OSError, ValueError) as exc:
            log.warning("not listing %s, a candlecast train job: %s", jobs_dir / name, exc)
        except sqlite3.Error as exc:  # e.g. a full disk: tried again next time
            log.error("cannot list %s, a candlecast train job, yet: %s", jobs_dir / name, exc)
            continue
        seen.add(name)
    return adopted
