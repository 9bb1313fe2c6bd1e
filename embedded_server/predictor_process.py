"""The server's side of the predictor process (``trainer.predictor``): one long-lived worker-side subprocess that
keeps torch and the trainer loaded and answers forecast and fingerprint requests, so the server process never
imports them (its memory stays small) and a forecast costs milliseconds once the process is up.

Requests go one at a time (a lock) as JSON lines on its stdin; a reader thread queues its stdout lines, another
copies its stderr to ``backend.log``. It starts on the first request; one that died is started again on the next;
one that does not answer within the timeout is killed (its late answer must not answer the next request).
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from embedded_server.worker_process import SIGKILL, describe_exit, worker_env
from trainer.processes import end_process

log = logging.getLogger("embedded_server.predictor")

#: Seconds the first request may take (the process imports torch first; a busy 2-core laptop is slow).
START_TIMEOUT_S = 120.0
#: Seconds any later request may take.
REQUEST_TIMEOUT_S = 60.0


class PredictorUnavailable(RuntimeError):
    """The predictor process could not be started, died, or did not answer in time (the API answers 503)."""


def predictor_command() -> list[str]:
    """The predictor's argv: the same executable with a subcommand when frozen."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "predictor"]
    return [sys.executable, "-m", "trainer.predictor"]


class PredictorProcess:
    """The predictor subprocess, started on demand in ``cwd``. Thread-safe; ``close`` ends it."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._ids = itertools.count(1)
        self._answered = 0
        self._closed = False

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def call(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one request (``trainer.predictor``'s protocol, without ``id``) and return its answer dict
        (``ok``, then ``result`` or ``status`` + ``detail``). Raises ``PredictorUnavailable``."""
        with self._lock:
            if self._closed:
                raise PredictorUnavailable("the server is shutting down")
            first = self._proc is None or self._proc.poll() is not None
            if first:
                self._start()
            proc = self._proc
            assert proc is not None and proc.stdin is not None
            ident = next(self._ids)
            try:
                proc.stdin.write(json.dumps({**message, "id": ident}).encode() + b"\n")
                proc.stdin.flush()
            except (OSError, ValueError) as exc:
                self._kill()
                raise PredictorUnavailable(f"the predictor process is gone ({exc})") from None
            timeout = START_TIMEOUT_S if first or self._answered == 0 else REQUEST_TIMEOUT_S
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                self._kill()
                raise PredictorUnavailable(f"the predictor process did not answer within {timeout:g} s") from None
            if line is None:
                code = proc.wait()
                self._proc = None
                raise PredictorUnavailable(f"the predictor process {describe_exit(code)}")
            self._answered += 1
            answer = json.loads(line)
            if answer.get("id") != ident:
                self._kill()
                raise PredictorUnavailable(f"the predictor answered request {answer.get('id')}, not {ident}")
            return answer

    def close(self, timeout: float = 5.0) -> None:
        """End the process (EOF on its stdin, then terminate, then kill) and refuse later requests."""
        with self._lock:
            self._closed = True
            proc, self._proc = self._proc, None
        if proc is not None:
            try:
                assert proc.stdin is not None
                proc.stdin.close()
            except OSError:
                pass
            end_process(proc, timeout)

    def _start(self) -> None:
        """Start a fresh process (lock held)."""
        self._lines = queue.Queue()
        self._answered = 0
        try:
            proc = subprocess.Popen(
                predictor_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                cwd=self.cwd, env=worker_env(),
            )
        except OSError as exc:
            raise PredictorUnavailable(f"cannot start the predictor process: {exc}") from None
        self._proc = proc
        log.info("predictor process started: pid %d", proc.pid)
        lines = self._lines
        threading.Thread(target=self._read_out, args=(proc, lines), name="predictor-out", daemon=True).start()
        threading.Thread(target=self._read_err, args=(proc,), name="predictor-err", daemon=True).start()

    def _kill(self) -> None:
        """Kill the current process (lock held); the next request starts another."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(SIGKILL)
            proc.wait()

    @staticmethod
    def _read_out(proc: subprocess.Popen[bytes], lines: queue.Queue[bytes | None]) -> None:
        assert proc.stdout is not None
        with proc.stdout:
            for raw in proc.stdout:
                if raw.strip():
                    lines.put(raw)
        lines.put(None)

    @staticmethod
    def _read_err(proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        with proc.stderr:
            for raw in proc.stderr:
                log.info("predictor %d: %s", proc.pid, raw.decode("utf-8", errors="replace").rstrip())
