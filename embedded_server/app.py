"""``create_app``: the Flask app of the local API. Builds its settings, job store, event bus and job manager,
registers the routes, the WebSocket hub, the problem+json handlers and the Host/Origin/token guard.

Starts no thread and no process (``serve.start_server`` binds the port; the manager spawns workers only when a
job is submitted). ``close_app`` stops what the app started.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from flask import Flask

from embedded_server import problems, security
from embedded_server.event_bus import DEFAULT_CLIENT_QUEUE, EventBus
from embedded_server.job_manager import JobManager
from embedded_server.job_store import DB_NAME, JobStore
from embedded_server.logging_setup import LOG_NAME
from embedded_server.predictor_process import PredictorProcess
from embedded_server.services import EXTENSION, Services, services
from embedded_server.settings import AppSettings, load_settings
from embedded_server.sweep_store import SweepStore
from embedded_server.sweeps import SweepManager
from trainer import paths

#: Largest request body accepted (413 above it).
MAX_BODY_BYTES = 1024 * 1024


def create_app(config: Mapping[str, Any] | None = None, settings: AppSettings | None = None) -> Flask:
    """The Flask app. ``settings`` default to the user's ``config.json`` (``settings.load_settings``); ``config``
    (a test mapping) overrides the Flask config last: ``BIND_HOST``, ``BIND_PORT``, ``TOKEN``,
    ``WS_PING_INTERVAL_S``, ``WS_CLIENT_QUEUE``, ``MAX_CONTENT_LENGTH``.
    """
    warning = None
    if settings is None:
        loaded = load_settings()
        settings, warning = loaded.settings, loaded.warning
    app = Flask(__name__)
    app.config.from_mapping(
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        BIND_HOST=settings.host,
        BIND_PORT=settings.port,
        TOKEN=settings.token,
        WS_PING_INTERVAL_S=15.0,
        WS_CLIENT_QUEUE=DEFAULT_CLIENT_QUEUE,
    )
    app.config.from_mapping(config or {})

    log_path = paths.log_dir() / LOG_NAME  # written once ``serve`` has set up logging; the app leaves it alone
    store = JobStore(paths.data_dir() / DB_NAME)
    store.prune_events()
    bus = EventBus(store, app.config["WS_CLIENT_QUEUE"])
    manager = JobManager(store, bus, settings, paths.jobs_dir())
    predictor = PredictorProcess(paths.jobs_dir())
    sweeps = SweepManager(SweepStore(store.path), store, bus, manager, settings, paths.data_dir())
    app.extensions[EXTENSION] = Services(
        settings, store, bus, manager, log_path, time.monotonic(), sweeps, warning, predictor=predictor
    )

    from embedded_server import routes, sweep_routes, use_routes, ws

    security.init_app(app)
    problems.register_error_handlers(app)
    app.register_blueprint(routes.bp)
    app.register_blueprint(use_routes.bp)
    app.register_blueprint(sweep_routes.bp)
    ws.sock.init_app(app)
    return app


def close_app(app: Flask, timeout: float | None = None) -> None:
    """Stop the app's workers gracefully (see ``JobManager.shutdown``), drop WebSocket clients, close the store."""
    with app.app_context():
        services().close(timeout)
