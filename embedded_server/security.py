"""Local-machine safety (API.md): Host and Origin checks, and the bearer token.

- ``Host`` must name a loopback address (``localhost``, ``127.0.0.0/8``, ``::1``) and, when it carries a port,
  the bound port. A web page on another site that re-points its DNS name at 127.0.0.1 (DNS rebinding) sends its
  own name as ``Host`` and is refused. Skipped when the server is bound to a non-loopback address, where the
  required token is the protection.
- A state-changing request or a WebSocket handshake whose ``Origin`` is present must come from a loopback origin
  (cross-site request forgery, cross-site WebSocket hijacking). ``curl``/``wscat`` send no ``Origin``.
- With a token configured, every request needs ``Authorization: Bearer <token>`` (WebSocket: or ``?token=``),
  compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import urlsplit

from flask import Flask, current_app, request

from embedded_server.problems import Problem

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (``127.0.0.1``, ``::1``, with or without brackets)."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _split_host(value: str) -> tuple[str, int | None]:
    """``"127.0.0.1:8000"`` → ``("127.0.0.1", 8000)``, ``"[::1]"`` → ``("::1", None)``; ``ValueError`` if bad."""
    parts = urlsplit("//" + value)
    return parts.hostname or "", parts.port


def check_host(host_header: str, bound_port: int | None) -> str | None:
    """Why ``host_header`` is refused, or ``None`` if it is a loopback name (with the bound port, if any)."""
    try:
        name, port = _split_host(host_header)
    except ValueError:
        return f"Host header {host_header!r} is not host[:port]"
    if not is_loopback(name):
        return f"Host {host_header!r} is not a loopback address of this server (DNS rebinding protection)"
    if port is not None and bound_port not in (None, 0) and port != bound_port:
        return f"Host {host_header!r} names port {port}, but this server listens on {bound_port}"
    return None


def check_origin(origin: str) -> str | None:
    """Why ``origin`` is refused, or ``None`` for a loopback ``http(s)://`` origin."""
    try:
        parts = urlsplit(origin)
        loopback = parts.scheme in ("http", "https") and is_loopback(parts.hostname or "")
    except ValueError:
        loopback = False
    if not loopback:
        return f"Origin {origin!r} is not a loopback origin (cross-site request refused)"
    return None


def _presented_token() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return request.args.get("token")
    return None


def _guard() -> None:
    config = current_app.config
    if is_loopback(config["BIND_HOST"]):
        reason = check_host(request.host, config.get("BIND_PORT"))
        if reason:
            raise Problem(403, reason)
    origin = request.headers.get("Origin")
    websocket = request.headers.get("Upgrade", "").lower() == "websocket"
    if origin is not None and (websocket or request.method not in SAFE_METHODS):
        reason = check_origin(origin)
        if reason:
            raise Problem(403, reason)
    token = config.get("TOKEN")
    if token:
        presented = _presented_token()
        if presented is None or not hmac.compare_digest(presented.encode(), token.encode()):
            raise Problem(
                401, "missing or wrong bearer token (Authorization: Bearer …)", headers={"WWW-Authenticate": "Bearer"}
            )


def init_app(app: Flask) -> None:
    """Run the Host/Origin/token checks before every request, WebSocket handshakes included."""
    app.before_request(_guard)
