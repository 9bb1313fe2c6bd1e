"""The app's network layer: ``ApiClient`` (REST, requests) and ``EventStream`` (the WebSocket, websocket-client).

It talks to the server exactly as ``curl`` and ``wscat`` would (API.md) and imports nothing from
``embedded_server``. Neither class touches Dear PyGui: calls run on background threads and hand their results to
the frame loop through a queue (``desktop_app.runtime``). A failed call raises ``ApiError`` carrying a
``messages.Problem`` (the server's problem+json, or the network error with ``status=None``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import requests
import websocket

from desktop_app.messages import Problem

log = logging.getLogger(__name__)

#: (connect, read) seconds for REST calls: a local server answers in milliseconds; a hung one must not pile up calls.
REST_TIMEOUT = (3.05, 15.0)
#: For the calls the server hands to its predictor process, whose first request waits for it to import torch.
PREDICTOR_TIMEOUT = (3.05, 180.0)


class ApiError(Exception):
    """A REST call failed; ``problem`` says how (HTTP status + problem+json, or the network error)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.line())
        self.problem = problem


def problem_from_response(response: requests.Response) -> Problem:
    """A ``Problem`` from an error response: problem+json (RFC 9457) if the body is one, else its status line."""
    title = response.reason or "HTTP error"
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return Problem(response.status_code, title, response.text.strip()[:200])
    errors = tuple((_loc(e.get("loc")), str(e.get("msg", ""))) for e in body.get("errors") or () if isinstance(e, dict))
    return Problem(response.status_code, str(body.get("title") or title), str(body.get("detail") or ""), errors)


def _loc(loc: object) -> str:
    """A problem error's ``loc`` (a list such as ``["body", "cv_folds"]``, or a string) as ``"body.cv_folds"``."""
    if isinstance(loc, str):
        return loc
    return ".".join(str(part) for part in loc) if isinstance(loc, (list, tuple)) else ""


class ApiClient:
    """REST calls of API.md against ``base_url`` (e.g. ``http://127.0.0.1:8000``). Thread-safe: each thread
    gets its own ``requests.Session``. Every method returns the decoded JSON body or raises ``ApiError``."""

    def __init__(self, base_url: str, token: str | None = None, timeout: tuple[float, float] = REST_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._local = threading.local()

    @property
    def ws_url(self) -> str:
        """The WebSocket URL on the same port: ``ws://host:port/ws`` (``wss`` for https)."""
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws", "", ""))

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["Accept"] = "application/json"
            if self.token:
                session.headers["Authorization"] = f"Bearer {self.token}"
            self._local.session = session
        return session

    def request(self, method: str, path: str, *, json_body: Any = None, params: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None, timeout: tuple[float, float] | None = None) -> Any:
        """One call; returns the JSON body of a 2xx answer, else raises ``ApiError``. ``timeout``: (connect, read)
        seconds instead of the client's."""
        url = self.base_url + path
        try:
            response = self._session().request(
                method, url, json=json_body, params=params, headers=headers, timeout=timeout or self.timeout
            )
        except requests.RequestException as exc:
            raise ApiError(Problem(None, _network_error(exc))) from None
        if not response.ok:
            raise ApiError(problem_from_response(response))
        try:
            return response.json()
        except ValueError:
            raise ApiError(Problem(response.status_code, "Invalid response", "the server's answer is not JSON")) from None

    def health(self) -> dict[str, Any]:
        """``GET /``."""
        return self.request("GET", "/")

    def start_training(self, config: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """``POST /start_training`` with ``Idempotency-Key``; the 202 body (``job_id`` …)."""
        return self.request("POST", "/start_training", json_body=config, headers={"Idempotency-Key": idempotency_key})

    def stop_job(self, job_id: str) -> dict[str, Any]:
        """``POST /jobs/{id}/stop``: ``{status: "stopping"|"cancelled", job_id}``."""
        return self.request("POST", f"/jobs/{_segment(job_id)}/stop")

    def job(self, job_id: str) -> dict[str, Any]:
        """``GET /jobs/{id}``: the full ``Job``."""
        return self.request("GET", f"/jobs/{_segment(job_id)}")

    def events(self, job_id: str, since: int) -> dict[str, Any]:
        """``GET /jobs/{id}/events?since=SEQ``: ``{events, last_seq}``."""
        return self.request("GET", f"/jobs/{_segment(job_id)}/events", params={"since": since})

    def job_list(self, **params: Any) -> dict[str, Any]:
        """``GET /jobs`` with any of its query parameters (``include``, ``offset``, ``status``, ``symbol``…):
        ``{jobs, count, total, offset}``."""
        return self.request("GET", "/jobs", params={k: v for k, v in params.items() if v is not None})

    def predict(self, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /jobs/{id}/predict``: the job's forecasts for the latest closed candles (``PredictResult``)."""
        return self.request("POST", f"/jobs/{_segment(job_id)}/predict", json_body=body, timeout=PREDICTOR_TIMEOUT)

    def compare(self, job_ids: tuple[str, ...]) -> dict[str, Any]:
        """``GET /compare?jobs=A,B``: 2 to 4 completed jobs side by side (``Comparison``)."""
        return self.request("GET", "/compare", params={"jobs": ",".join(job_ids)}, timeout=PREDICTOR_TIMEOUT)

    def sweeps(self, limit: int = 100) -> dict[str, Any]:
        """``GET /sweeps``: the newest ``limit`` sweeps (``SweepList``: ``{sweeps, count}``)."""
        return self.request("GET", "/sweeps", params={"limit": limit})

    def sweep(self, sweep_id: str) -> dict[str, Any]:
        """``GET /sweeps/{id}``: the sweep with its trials so far (``Sweep``)."""
        return self.request("GET", f"/sweeps/{_segment(sweep_id)}")

    def start_sweep(self, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """``POST /sweeps`` (a ``SweepRequest``) with ``Idempotency-Key``; the 202 body (``sweep_id`` …)."""
        return self.request("POST", "/sweeps", json_body=body, headers={"Idempotency-Key": idempotency_key})

    def stop_sweep(self, sweep_id: str) -> dict[str, Any]:
        """``POST /sweeps/{id}/stop``: ``{status: "stopping", sweep_id}``."""
        return self.request("POST", f"/sweeps/{_segment(sweep_id)}/stop")

    def sweep_importance(self, sweep_id: str) -> dict[str, Any]:
        """``GET /sweeps/{id}/importance``: the sweep's parameter importance (``SweepImportance``)."""
        return self.request("GET", f"/sweeps/{_segment(sweep_id)}/importance", timeout=PREDICTOR_TIMEOUT)

    def rerun(self, job_id: str, allow_changed_data: bool = False) -> dict[str, Any]:
        """``POST /jobs/{id}/rerun``: a new job with the same config on the same data (``RerunAccepted``)."""
        return self.request("POST", f"/jobs/{_segment(job_id)}/rerun",
                            json_body={"allow_changed_data": allow_changed_data}, timeout=PREDICTOR_TIMEOUT)

    def predictions(self, job_id: str) -> dict[str, Any]:
        """``GET /jobs/{id}/predictions?format=json``: ``{job_id, count, columns, predictions: [row…]}``."""
        return self.request("GET", f"/jobs/{_segment(job_id)}/predictions", params={"format": "json"})

    def log_tail(self, n: int = 200) -> dict[str, Any]:
        """``GET /status/log_tail?n=``: the backend log's last lines."""
        return self.request("GET", "/status/log_tail", params={"n": n})

    def job_log(self, job_id: str, n: int = 200) -> dict[str, Any]:
        """``GET /jobs/{id}/log?n=``: the job's worker log."""
        return self.request("GET", f"/jobs/{_segment(job_id)}/log", params={"n": n})

    def datasets(self) -> dict[str, Any]:
        """``GET /datasets``."""
        return self.request("GET", "/datasets")

    def import_dataset(self, path: str, symbol: str | None = None, timeframe: str | None = None) -> dict[str, Any]:
        """``POST /datasets/import``: the imported dataset with its report (201)."""
        body = {"path": path, **({"symbol": symbol} if symbol else {}), **({"timeframe": timeframe} if timeframe else {})}
        return self.request("POST", "/datasets/import", json_body=body)


def _segment(value: str) -> str:
    return quote(value, safe="")


def _network_error(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.Timeout):
        return "cannot reach the server (connection refused or closed)"
    if isinstance(exc, requests.Timeout):
        return "the server did not answer in time"
    return f"request failed: {type(exc).__name__}"


def backoff_delay(failures: int, initial: float, cap: float) -> float:
    """Seconds to wait before reconnect attempt number ``failures + 1``: ``initial · 2^(failures−1)``, at most
    ``cap`` (capped exponential back-off; no jitter: there is one client per local server)."""
    if failures <= 0:
        return initial
    return min(cap, initial * 2 ** min(failures - 1, 30))


class EventStream:
    """The WebSocket ``/ws`` on a daemon thread, reconnecting forever with capped exponential back-off.

    ``on_message(dict)`` gets every JSON message (``hello``, events, ``ping``). ``on_status(status, detail,
    retry_in_s)`` gets ``"connected"``, ``"reconnecting"`` (a drop or the first failed attempts, yellow) or
    ``"disconnected"`` (``disconnected_after`` attempts in a row failed, red; it still retries). A reconnect
    asks for ``?since=SEQ`` with the highest event ``seq`` seen (or the ``hello``'s), so no event is missed.
    ``recv_timeout_s`` exceeds the server's 15 s ping, so a silently dead link is noticed.
    """

    def __init__(
        self,
        url: str,
        on_message: Callable[[dict[str, Any]], None],
        on_status: Callable[[str, str, float | None], None],
        *,
        token: str | None = None,
        since: int | None = None,
        initial_backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        disconnected_after: int = 3,
        connect_timeout_s: float = 5.0,
        recv_timeout_s: float = 45.0,
    ) -> None:
        self.url = url
        self.token = token
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self.disconnected_after = disconnected_after
        self.connect_timeout_s = connect_timeout_s
        self.recv_timeout_s = recv_timeout_s
        self._on_message = on_message
        self._on_status = on_status
        self._last_seq = since
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._ws: websocket.WebSocket | None = None
        self._thread = threading.Thread(target=self._run, name="candlecast-ws", daemon=True)

    @property
    def last_seq(self) -> int | None:
        """The highest ``seq`` received (the next reconnect's ``since``)."""
        return self._last_seq

    def start(self) -> EventStream:
        """Start the connection thread; returns self."""
        self._thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop reconnecting and close the connection; waits up to ``timeout`` s for the thread."""
        self._stop.set()
        with self._lock:
            ws = self._ws
        if ws is not None:
            ws.abort()  # wakes the thread blocked in recv
        if self._thread.is_alive():
            self._thread.join(timeout)

    def connect_url(self) -> str:
        """The URL of the next attempt, with ``since`` and ``token`` as query parameters."""
        params: dict[str, Any] = {}
        if self._last_seq is not None:
            params["since"] = self._last_seq
        if self.token:
            params["token"] = self.token
        return self.url + ("?" + urlencode(params) if params else "")

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                # No Origin header: like wscat, the app is not a browser page (the server refuses foreign origins).
                ws = websocket.create_connection(self.connect_url(), timeout=self.connect_timeout_s, suppress_origin=True)
            except (OSError, websocket.WebSocketException) as exc:
                failures += 1
                status = "disconnected" if failures >= self.disconnected_after else "reconnecting"
                delay = backoff_delay(failures, self.initial_backoff_s, self.max_backoff_s)
                self._status(status, f"connect failed: {_describe(exc)}", delay)
                self._stop.wait(delay)
                continue
            failures = 0
            with self._lock:
                self._ws = ws
            self._status("connected", "", None)
            reason = self._receive(ws)
            with self._lock:
                self._ws = None
            ws.abort()
            ws.close(timeout=0.5)
            if not self._stop.is_set():
                self._status("reconnecting", reason, self.initial_backoff_s)
                self._stop.wait(self.initial_backoff_s)

    def _receive(self, ws: websocket.WebSocket) -> str:
        """Read messages until the connection ends; returns why it ended."""
        ws.settimeout(self.recv_timeout_s)
        while not self._stop.is_set():
            try:
                text = ws.recv()
            except websocket.WebSocketTimeoutException:
                return f"no message for {self.recv_timeout_s:g} s"
            except (OSError, websocket.WebSocketException) as exc:
                return f"connection lost: {_describe(exc)}"
            if not text:
                return "closed by the server"
            try:
                message = json.loads(text)
            except ValueError:
                log.warning("ignoring a WebSocket message that is not JSON: %.80r", text)
                continue
            if not isinstance(message, dict):
                continue
            self._note_seq(message)
            self._on_message(message)
        return "closed"

    def _note_seq(self, message: dict[str, Any]) -> None:
        seq = message.get("seq")
        if not isinstance(seq, int) or message.get("type") in ("ping", "pong"):
            return  # a ping's seq is the bus's, not a promise that every event up to it reached us
        if message.get("type") == "hello" and self._last_seq is not None:
            return  # on a reconnect the replay (since=…) follows the hello
        self._last_seq = seq if self._last_seq is None else max(self._last_seq, seq)

    def _status(self, status: str, detail: str, retry_in: float | None) -> None:
        if not self._stop.is_set():
            self._on_status(status, detail, retry_in)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
