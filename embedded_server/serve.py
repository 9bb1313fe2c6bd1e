"""Running the server: ``start_server`` (the GUI embeds the server through it) and ``candlecast serve``.

``start_server`` first takes the data folder's lock (``folder_lock``: one server per data folder, so a second
one is a clear ``DataFolderInUse`` naming the first one's URL, and never touches its jobs), binds the port itself
(so a busy port is a clear ``PortInUse``, never Werkzeug's ``sys.exit``), marks jobs a previous run left unfinished
as ``interrupted`` (only under the lock), serves REST and WebSocket with Werkzeug's threaded server in a
background thread (``http_server``: read timeout, connection cap, problem+json before Flask), removes what an
earlier crash left behind (``JobManager.remove_leftovers``), and returns a ``ServerHandle`` whose ``shutdown()`` stops the workers gracefully (their jobs
end ``stopped``) before it stops serving and releases the lock. ``candlecast serve`` runs that in the
foreground until Ctrl-C or SIGTERM; ``serve --get PATH`` answers one request in-process, with no socket.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask
from werkzeug.serving import BaseWSGIServer

from embedded_server.app import close_app, create_app
from embedded_server.folder_lock import FolderBusy, FolderLock
from embedded_server.http_server import RequestHandler, Server
from embedded_server.logging_setup import configure_logging
from embedded_server.security import is_loopback
from embedded_server.services import EXTENSION, services
from embedded_server.settings import AppSettings, load_settings, token_problem
from embedded_server.storage import StorageFull, is_write_failure
from trainer import paths
from trainer.cli_common import UserError

log = logging.getLogger(__name__)


class ServerError(Exception):
    """The server cannot start as asked (one line for the user: bad or busy port, busy data folder, non-loopback
    without a token)."""


class PortInUse(ServerError):
    """The port is taken by another program."""


class DataFolderInUse(ServerError):
    """Another server (``candlecast serve`` or the app's embedded one) runs on this data ``folder``: its ``url``
    (None while it is still starting) and ``pid`` (None if unknown)."""

    def __init__(self, folder: Path, url: str | None, pid: int | None) -> None:
        who = f"the Candlecast server at {url}" if url else "another Candlecast server that is still starting"
        if pid is not None:
            who += f" (pid {pid})"
        hint = f"use it (candlecast --connect {url}) or stop it first" if url else "try again in a moment"
        super().__init__(f"data folder {folder} is in use by {who}; {hint}")
        self.folder = folder
        self.url = url
        self.pid = pid


@dataclass
class ServerHandle:
    """A running server: where it listens (``host``, ``port``, ``url``), its Flask ``app``, and ``shutdown()``."""

    host: str
    port: int
    app: Flask
    _server: BaseWSGIServer
    _thread: threading.Thread
    _lock: FolderLock
    _closed: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        """``http://host:port`` (a wildcard bind shows as 127.0.0.1; IPv6 in brackets)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop workers (stop line → terminate → kill; jobs end ``stopped``), close WebSocket clients, stop serving,
        close the store and release the data folder. Idempotent. ``timeout`` bounds the wait for workers
        (default: 2 grace periods + 5 s).
        """
        if self._closed.is_set():
            return
        self._closed.set()
        log.info("server on %s shutting down", self.url)
        svc = self.app.extensions[EXTENSION]
        svc.sweeps.close()  # first: no sweep submits a trial while the jobs are stopped
        svc.manager.shutdown(timeout)  # still serving meanwhile: clients watch the jobs end ``stopped``
        svc.sweeps.join()
        svc.bus.close()  # WebSocket clients get a 1001 close
        self._server.shutdown()
        self._thread.join(10)
        self._server.server_close()
        svc.sweeps.store.close()
        svc.store.close()
        self._lock.release()  # last: the next server on this folder may only start once this one is done with it


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if sys.platform != "win32":  # on Windows SO_REUSEADDR would let two servers share the port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)):
            raise PortInUse(
                f"port {port} on {host} is already in use (another candlecast serve?); "
                "pick another with --port, or --port 0 for any free port"
            ) from None
        raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def start_server(
    host: str = "127.0.0.1", port: int = 0, token: str | None = None, settings: AppSettings | None = None
) -> ServerHandle:
    """Serve the API on ``host:port`` (0 = any free port) in a background thread and return its handle.

    ``settings`` default to the user's ``config.json``; ``token`` (or the settings' token) is then required on
    every request. The server holds the lock on ``paths.data_dir()`` until ``shutdown()``. Raises ``ServerError``:
    ``DataFolderInUse`` when another server runs on the data folder, ``PortInUse`` for a busy port, and for a
    ``port`` outside 0..65535 or a non-loopback ``host`` without a token.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ServerError(f"port {port!r} is not a TCP port: use 0..65535 (0 picks a free one)")
    if settings is None:
        settings = load_settings().settings
    token = token or settings.token
    if token is not None and (why := token_problem(token)):
        raise ServerError(f"the token {why}")
    if not is_loopback(host) and not token:
        raise ServerError(
            f"refusing to listen on {host} without a token: set CANDLECAST_TOKEN, pass --token-file FILE or --token,"
            " or set token in config.json"
        )
    folder = paths.data_dir()
    try:
        lock = FolderLock(folder).acquire()
    except FolderBusy as busy:
        raise DataFolderInUse(folder, busy.holder.url, busy.holder.pid) from None
    except OSError as exc:
        raise ServerError(f"cannot lock the data folder {folder}: {exc.strerror or exc}") from None
    try:
        return _serve_locked(host, token, settings, _bind(host, port), lock)
    except BaseException:
        lock.release()
        raise


def _serve_locked(
    host: str, token: str | None, settings: AppSettings, listener: socket.socket, lock: FolderLock
) -> ServerHandle:
    """The rest of ``start_server``, holding ``lock``: build the app on ``listener``, recover, start serving."""
    port = listener.getsockname()[1]
    configure_logging(paths.log_dir(), settings.log_level)
    try:
        app = create_app({"BIND_HOST": host, "BIND_PORT": port, "TOKEN": token}, settings=settings)
        try:
            server = Server(
                host,
                port,
                app,
                RequestHandler,
                fd=listener.fileno(),
                max_connections=settings.max_connections,
                request_timeout_s=settings.request_timeout_s,
            )
        except BaseException:
            close_app(app)
            raise
    finally:
        listener.close()  # the server works on its own duplicate of the descriptor
    try:
        with app.app_context():
            services().manager.recover(lock)
            services().manager.remove_leftovers(lock, [paths.config_dir()])
            services().manager.adopt_cli_jobs()  # jobs ``candlecast train`` completed while no server ran
            services().manager.warm_up()  # the spare worker, if config.json's warm_worker is on
            services().sweeps.resume()  # sweeps a previous run left running go on
    except BaseException as exc:
        server.server_close()
        close_app(app)
        if isinstance(exc, Exception) and is_write_failure(exc):  # e.g. the disk is full at start
            raise ServerError(str(StorageFull(paths.data_dir(), exc))) from None
        raise
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="http-server", daemon=True
    )
    thread.start()
    handle = ServerHandle(host, server.port, app, server, thread, lock)
    lock.publish(handle.url)
    log.info("serving on %s (pid-local API, token %s)", handle.url, "required" if token else "off")
    return handle


def _get_once(path: str, settings: AppSettings) -> int:
    """``serve --get PATH``: one GET through the test client; prints the body; 0 on a 200, else 1."""
    app = create_app(settings=settings)
    try:
        headers = {"Authorization": f"Bearer {settings.token}"} if settings.token else {}
        response = app.test_client().get(path, headers=headers)
        body = response.get_data(as_text=True)
        if response.is_json:
            body = json.dumps(response.get_json(), indent=2)
        try:
            print(body, flush=True)
        except BrokenPipeError:  # the reader (``| head``) has what it wanted; Python's documented recipe (signal
            # module, "Note on SIGPIPE"): point stdout at devnull so the flush at exit does not fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0 if response.status_code == 200 else 1
    finally:
        close_app(app)


def cli_token(token: str | None, token_file: str | None) -> str | None:
    """The token given by ``--token`` or ``--token-file FILE`` (its text, surrounding whitespace removed), checked by
    the token rule; None when neither is given. ``ValueError`` naming the option (and file) otherwise."""
    if token_file is not None:
        try:
            token = Path(token_file).expanduser().read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"--token-file {token_file}: cannot read it ({getattr(exc, 'strerror', None) or exc})")
        source = f"--token-file {token_file}"
    elif token is not None:
        source = "--token"
    else:
        return None
    if why := token_problem(token):
        raise ValueError(f"{source}: the token {why}")
    return token


def run(args: argparse.Namespace) -> int:
    """``candlecast serve [--host H] [--port P] [--token T | --token-file F] [--get PATH]``: serve until Ctrl-C or
    SIGTERM. The token: ``--token``/``--token-file``, else ``CANDLECAST_TOKEN``, else ``config.json``'s."""

    try:
        loaded = load_settings()  # CANDLECAST_PORT / CANDLECAST_TOKEN applied
        token = cli_token(args.token, getattr(args, "token_file", None))
    except ValueError as exc:  # a bad port or token, named by where it came from
        raise UserError(str(exc)) from None
    if loaded.warning:
        print(f"candlecast: warning: {loaded.warning}", file=sys.stderr)
    settings = loaded.settings if token is None else loaded.settings.model_copy(update={"token": token})
    if args.get:
        return _get_once(args.get, settings)
    _log_to_console()
    port = args.port if args.port is not None else settings.port
    try:
        handle = start_server(args.host, port, None, settings)
    except ServerError as exc:
        raise UserError(str(exc)) from None

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        print(f"\n{signal.Signals(signum).name}: stopping workers and shutting down…", file=sys.stderr, flush=True)
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C aborts at once

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"Candlecast server on {handle.url} (REST and ws://…/ws); Ctrl-C to stop", flush=True)
    while not stop.wait(0.5):  # a timed wait lets signal handlers run on every platform
        pass
    handle.shutdown()
    print("stopped", file=sys.stderr, flush=True)
    return 0


def _log_to_console() -> None:
    """Warnings and errors also go to the terminal of ``candlecast serve``."""
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("candlecast: %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(console)
