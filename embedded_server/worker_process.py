"""One worker subprocess of the job manager: its pipes, its log, its stop escalation and its exit.

A worker (``python -m trainer.worker --job-dir DIR``; frozen: ``<app> worker --job-dir DIR``) writes events as JSON
lines on stdout and logs on stderr, and reads ``{"cmd": "stop", "reason": …}`` lines on stdin (the reason goes into
its ``training.stopped``). Per worker, three threads: one reads stdout and hands each event to ``on_event``, one
copies stderr to the job's ``worker.log`` and ``backend.log``, one waits for the exit (it blocks in ``wait()``, no
polling) and calls ``on_exit`` once the readers have drained. Workers run in their own process group, so a Ctrl-C
in the server's terminal reaches only the server, which then stops them gracefully.

A **spare** (``--spare``) is a worker started before any job: it imports torch and the trainer, then waits on stdin
for ``{"cmd": "run", "job_dir": DIR}`` (``assign``), after which it is an ordinary worker of that job. Until then
its ``job_id`` is None, its log lines go to ``backend.log`` only, and an exit means the spare died. Its one line
on stdout before a job, ``{"type": "spare.ready"}`` (``SPARE_READY``), says its imports are done (``ready``).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from embedded_server.logging_setup import job_logger

log = logging.getLogger("embedded_server.job_manager")
worker_log = logging.getLogger("embedded_server.worker")

#: Worker stderr lines kept in memory for a ``training.failed`` event's ``traceback_tail``.
TAIL_LINES = 20
#: How long the exit handler waits for the stdout reader to deliver the last events (a grandchild may keep the
#: pipe open after the worker died); keeps "death → training.failed" well within 2 s.
READER_JOIN_S = 1.0
_PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: The line a spare writes on stdout when its imports are done (not an event: it never leaves this module).
SPARE_READY = "spare.ready"
#: The signal that cannot be ignored (Windows has none: ``signal_group`` kills the process there).
SIGKILL = getattr(signal, "SIGKILL", signal.SIGTERM)


def worker_command(job_dir: Path | None) -> list[str]:
    """The argv of one job's worker (``job_dir``) or of a spare (None): the same executable with a subcommand
    when frozen (PyInstaller)."""
    target = ["--job-dir", str(job_dir)] if job_dir is not None else ["--spare"]
    if getattr(sys, "frozen", False):
        return [sys.executable, "worker", *target]
    return [sys.executable, "-m", "trainer.worker", *target]


def worker_env() -> dict[str, str]:
    """The environment of a worker-side process (a job's worker, a spare, the predictor): this one's, with
    unbuffered UTF-8 output, and from source the project root on ``PYTHONPATH`` so ``-m trainer.…`` imports."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
    if not getattr(sys, "frozen", False):
        # From source, ``-m trainer.worker`` must find the package whatever the current directory is.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env


def describe_exit(code: int) -> str:
    """``"exited with code 1"`` or ``"was killed by signal 9 (SIGKILL)"`` for a ``Popen.returncode``."""
    if code < 0:
        try:
            return f"was killed by signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _close_quietly(stream: Any) -> None:
    try:
        stream.close()
    except (OSError, ValueError):
        pass


class WorkerProcess:
    """A running worker subprocess and what the manager knows about it. Thread-safe where noted.

    ``on_event(worker, event)`` runs on the stdout reader thread for each event (a dict with a ``type``);
    ``on_exit(worker, code)`` runs once on the waiter thread after the exit. Raises ``OSError`` from ``spawn``
    when the process cannot be created.
    """

    def __init__(
        self,
        argv: list[str],
        cwd: Path,
        on_event: Callable[[WorkerProcess, dict[str, Any]], None],
        on_exit: Callable[[WorkerProcess, int], None],
        job_id: str | None,
        log_path: Path | None,
    ) -> None:
        self.job_id = job_id
        self.stderr_tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.started = False  # the worker reported training.started
        self.ready = False  # a spare: its imports are done
        self.exited = threading.Event()
        self.stop_reason: str | None = None
        self.timeout_reason: str | None = None
        self.born = time.monotonic()
        self._on_event = on_event
        self._on_exit = on_exit
        self._timer: threading.Timer | None = None
        self._log_lock = threading.Lock()
        self._log_file: Any = open(log_path, "ab") if log_path is not None else None  # noqa: SIM115 (reader closes)
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=cwd,
                env=worker_env(),
                # Own process group: a Ctrl-C in the server's terminal reaches only the server, which then stops
                # the worker gracefully. (process_group keeps Popen's fast vfork path; a new session would not.)
                process_group=0 if os.name == "posix" else None,
                creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0),
            )
        except OSError:
            if self._log_file is not None:
                self._log_file.close()
            raise
        name = job_id or f"spare-{self.proc.pid}"
        out = threading.Thread(target=self._read_events, name=f"worker-out-{name}", daemon=True)
        err = threading.Thread(target=self._read_log, name=f"worker-err-{name}", daemon=True)
        out.start()
        err.start()
        threading.Thread(target=self._wait_exit, args=(out, err), name=f"worker-wait-{name}", daemon=True).start()

    @classmethod
    def spawn(cls, job_id: str, job_dir: Path, on_event: Callable, on_exit: Callable) -> WorkerProcess:
        """Start the worker of ``job_id`` in ``job_dir`` (its log: ``job_dir/worker.log``)."""
        return cls(worker_command(job_dir), job_dir, on_event, on_exit, job_id, job_dir / "worker.log")

    @classmethod
    def spawn_spare(cls, cwd: Path, on_event: Callable, on_exit: Callable) -> WorkerProcess:
        """Start a spare worker (module doc) in ``cwd``."""
        return cls(worker_command(None), cwd, on_event, on_exit, None, None)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def assign(self, job_id: str, job_dir: Path) -> None:
        """Hand a spare the job ``job_id`` in ``job_dir``. Raises ``OSError`` when the spare is gone (it stays a
        spare then, and its exit is reported as a spare's)."""
        log_file = open(job_dir / "worker.log", "ab")  # noqa: SIM115 (closed by the stderr reader)
        try:
            if self.proc.poll() is not None:
                raise OSError(f"the spare worker {describe_exit(self.proc.returncode)}")
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"cmd": "run", "job_dir": str(job_dir)}).encode() + b"\n")
            self.proc.stdin.flush()
        except (OSError, ValueError) as exc:
            log_file.close()
            raise OSError(f"cannot hand the job to the spare worker: {exc}") from exc
        with self._log_lock:
            self._log_file, self.job_id = log_file, job_id

    def start_timer(self, seconds: float, on_timeout: Callable[[WorkerProcess], None]) -> None:
        """Call ``on_timeout(self)`` after ``seconds`` unless ``cancel_timer`` runs first."""
        self._timer = threading.Timer(seconds, on_timeout, (self,))
        self._timer.daemon = True
        self._timer.start()

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the worker and its children (its own process group on POSIX); no error if it is gone."""
        if self.proc.poll() is not None:
            return
        try:
            if os.name == "posix":
                os.killpg(self.proc.pid, sig)
            elif sig == signal.SIGTERM:
                self.proc.terminate()
            else:
                self.proc.kill()
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, grace_s: float, reason: str) -> None:
        """Stop line (with ``reason``: the worker's ``training.stopped`` says it), then SIGTERM, then SIGKILL, each
        after ``grace_s`` unless the worker has exited. Returns at once (a thread escalates)."""
        threading.Thread(target=self._escalate, args=(grace_s, reason), name=f"worker-stop-{self.pid}",
                         daemon=True).start()

    def close_stdin(self) -> None:
        """EOF on the worker's stdin: a spare exits, a job's worker stops (its parent is gone, as far as it knows)."""
        _close_quietly(self.proc.stdin)

    def rss_mib(self) -> float | None:
        """Resident memory in MiB (Linux ``/proc``), or None where unknown or the process is gone."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
        except (OSError, ValueError, IndexError):
            pass
        return None

    def _escalate(self, grace: float, reason: str) -> None:
        jlog = job_logger(log, self.job_id or "-")
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"cmd": "stop", "reason": reason}).encode() + b"\n")
            self.proc.stdin.flush()
        except (OSError, ValueError):  # the worker already closed its end, or exited
            pass
        if self.exited.wait(grace):
            return
        jlog.warning("worker ignored the stop line for %g s; terminating", grace)
        self.signal_group(signal.SIGTERM)
        if self.exited.wait(grace):
            return
        jlog.warning("worker survived SIGTERM for %g s; killing", grace)
        self.signal_group(SIGKILL)

    def _read_events(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", errors="replace").strip()
                if not line:
                    continue
                jlog = job_logger(log, self.job_id or "-")
                try:
                    event = json.loads(line)
                    event["type"]  # noqa: B018 (a line without a type is no event)
                except (ValueError, TypeError, KeyError):
                    jlog.warning("worker stdout line is not an event, ignored: %.200s", line)
                    continue
                if event["type"] == SPARE_READY:  # never a job's event: a spare handed a job may say it late
                    self.ready = self.ready or self.job_id is None
                    continue
                try:
                    self._on_event(self, event)
                except Exception:  # one bad event must not stop the reader: the terminal one still has to count
                    jlog.exception("could not handle worker event %.200s", line)

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
        with self.proc.stderr:
            for raw in self.proc.stderr:
                with self._log_lock:
                    if self._log_file is not None:
                        try:
                            self._log_file.write(raw)
                            self._log_file.flush()
                        except OSError as exc:  # keep draining the pipe, or the worker would block on a full one
                            _close_quietly(self._log_file)
                            self._log_file = None
                            job_logger(log, self.job_id or "-").error(
                                "cannot write worker.log any more (%s); its lines go to backend.log only", exc
                            )
                    job_id = self.job_id
                line = raw.decode("utf-8", errors="replace").rstrip()
                self.stderr_tail.append(line)
                job_logger(worker_log, job_id or f"spare-{self.pid}").info("%s", line)
        with self._log_lock:
            if self._log_file is not None:
                _close_quietly(self._log_file)

    def _wait_exit(self, out: threading.Thread, err: threading.Thread) -> None:
        code = self.proc.wait()
        self.exited.set()
        self.cancel_timer()
        out.join(READER_JOIN_S)
        err.join(READER_JOIN_S / 2)
        _close_quietly(self.proc.stdin)  # the readers close their own streams when they reach EOF
        self._on_exit(self, code)
