"""The objects every route shares, kept in ``app.extensions["candlecast"]`` and reached through ``services()``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from embedded_server.event_bus import EventBus
from embedded_server.job_manager import JobManager
from embedded_server.job_store import JobStore
from embedded_server.predictor_process import PredictorProcess
from embedded_server.settings import AppSettings
from embedded_server.sweeps import SweepManager

EXTENSION = "candlecast"


@dataclass
class Services:
    """One app's settings, job store, event bus, job manager, where its log goes, when it started
    (``time.monotonic()`` seconds) and its sweep manager. ``settings_warning`` is set when a corrupt settings file
    was replaced."""

    settings: AppSettings
    store: JobStore
    bus: EventBus
    manager: JobManager
    log_path: Path
    started_monotonic: float
    sweeps: SweepManager
    settings_warning: str | None = None
    predictor: PredictorProcess | None = None  # forecasts and fingerprints (worker-side process, started on demand)

    def close(self, timeout: float | None = None) -> None:
        """Stop every worker (jobs end ``stopped``/``cancelled``), disconnect WebSocket clients, close the store."""
        self.sweeps.close()  # first: no sweep submits a trial while the jobs are stopped
        self.manager.shutdown(timeout)
        self.sweeps.join()
        if self.predictor is not None:
            self.predictor.close()
        self.bus.close()
        self.sweeps.store.close()
        self.store.close()


def services() -> Services:
    """The current app's ``Services`` (inside a request or app context)."""
    return current_app.extensions[EXTENSION]
