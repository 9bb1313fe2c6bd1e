"""The HTTP server under the app: Werkzeug's threaded server (one thread per connection) with three additions.

- Errors found while the request line and headers are parsed (414 URL too long, 431 header line too long or too
  many headers, 400 bad request line) happen before Flask sees the request; ``RequestHandler.send_error`` answers
  them as problem+json too, like every other error, instead of ``http.server``'s HTML page.
- A read timeout (``request_timeout_s``): a connection that sends nothing for that long while the server waits
  for a request line, headers, a body or the next keep-alive request is closed, so half-sent requests cannot hold
  threads. A WebSocket connection leaves it once it asks to upgrade (it idles legitimately; the hub pings it).
- A cap on connections served at once (``max_connections``): past it a new connection gets a 503 problem+json
  (``Retry-After: 1``) and is closed at once, before anything is read (so before the token check too).
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from embedded_server.problems import MEDIA_TYPE, problem_body

#: ``http.server``'s limits, named in the 414/431 details.
MAX_LINE = 65536
MAX_HEADERS = 100


def _details(code: int, message: str | None) -> str:
    if code == 414:
        return f"the URL is too long: the request line may be at most {MAX_LINE} bytes"
    if code == 431 and message == "Too many headers":
        return f"too many header lines: at most {MAX_HEADERS}"
    if code == 431:
        return f"a header line is too long: at most {MAX_LINE} bytes"
    return message or "bad request"


class RequestHandler(WSGIRequestHandler):
    """Werkzeug's handler with the server's read timeout and problem+json for errors raised before Flask runs."""

    def setup(self) -> None:
        self.timeout = self.server.request_timeout_s  # StreamRequestHandler applies it to the socket
        super().setup()

    def run_wsgi(self) -> None:
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self.connection.settimeout(None)  # before the handshake: the WebSocket's reader inherits the socket
        super().run_wsgi()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """``http.server``'s error reply, as problem+json (only for errors found before the app runs)."""
        body = json.dumps(problem_body(code, _details(code, message))).encode()
        self.log_error("code %d, message %s", code, message)
        self.send_response(code, message)
        self.send_header("Connection", "close")
        self.send_header("Content-Type", MEDIA_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class Server(ThreadedWSGIServer):
    """The threaded WSGI server with ``max_connections`` and ``request_timeout_s`` (seconds)."""

    def __init__(self, *args: Any, max_connections: int, request_timeout_s: float, **kwargs: Any) -> None:
        self.max_connections = max_connections
        self.request_timeout_s = request_timeout_s
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._refuse(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)  # starts the connection's thread
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse(self, request: socket.socket) -> None:
        detail = f"the server is serving its limit of {self.max_connections} connections; try again shortly"
        body = json.dumps(problem_body(503, detail)).encode()
        head = (
            "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n"
            f"Content-Type: {MEDIA_TYPE}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            request.settimeout(1)  # never let a client that does not read stall the accepting thread
            request.sendall(head.encode() + body)
        except OSError:
            pass
