"""The training worker process: ``python -m trainer.worker --job-dir DIR`` (frozen: ``candlecast worker``), or
``--spare``: a warm worker that loads everything first, then waits on stdin for its job (``run_spare``).

The contract (ARCHITECTURE.md, API.md):

- reads ``DIR/config.json`` (a ``TrainingConfig``); the job id is the folder's name;
- writes events as JSON lines on **stdout only** — at start the real stdout is kept for events and both file
  descriptor 1 and ``sys.stdout`` are pointed at stderr, so a stray print (ours or a library's) cannot corrupt
  the event stream; logs go to stderr;
- reads ``{"cmd": "stop"}`` lines on stdin and stops gracefully between batches; EOF on stdin (the parent died)
  and SIGTERM stop it the same way;
- always ends with exactly one terminal event and exits 0 (``training.completed``), 1 (``training.failed``)
  or 3 (``training.stopped``); its artifacts go into DIR;
- runs at a slightly lower scheduling priority (``NICENESS``) than the app that started it;
- with an ``executor.json`` in DIR (a sweep's Ray trial) it drives the job as a Ray task instead
  (``trainer.ray_driver``), relaying that task's events under the same contract.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from trainer.cli_common import add_worker_arguments
from trainer.config import TrainingConfig
from trainer.events import EventType, make_event

EXIT_COMPLETED, EXIT_FAILED, EXIT_STOPPED = 0, 1, 3
#: Traceback lines kept in a ``training.failed`` event (the full one is in the log).
TRACEBACK_LINES = 20
#: How much the worker lowers its own scheduling priority (``os.nice`` increment, Unix).
NICENESS = 5
#: What a job imports only after its ``training.started``, inside the functions that use them (a cold worker's
#: start skips them; benchmarks/worker_imports.py measures both): the baselines', calibrators' and verdicts'
#: statistics libraries and the report's matplotlib.
LATER_IMPORTS = (
    "scipy.signal", "arch.univariate", "arch.bootstrap", "statsmodels.regression.linear_model", "sklearn.ensemble",
    "sklearn.linear_model", "sklearn.isotonic", "sklearn.metrics", "trainer.report",
)
#: What a spare worker imports before it waits for a job (``run_spare``): all of it, so a job handed over pays none.
SPARE_PRELOAD = ("trainer.train", "torch._dynamo", *LATER_IMPORTS)
#: A job folder holding this file runs its job elsewhere (``trainer.ray_driver``); written by the sweeps.
EXECUTOR_FILE = "executor.json"

log = logging.getLogger("trainer.worker")


class EventWriter:
    """Writes events as JSON lines to the saved stdout, one whole line at a time (thread-safe)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def emit(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, allow_nan=False)
        with self._lock:
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except BrokenPipeError:  # the reader is gone; the artifacts still get written
                pass


def take_stdout() -> IO[str]:
    """Keep the real stdout for events and send everything else written to fd 1 / ``sys.stdout`` to stderr."""
    sys.stdout.flush()
    events = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return events


class StopWatcher:
    """Sets ``event`` (with a ``reason``) on a ``{"cmd": "stop"}`` stdin line, on stdin EOF or on SIGTERM."""

    def __init__(self, stdin: IO[str]) -> None:
        self.event = threading.Event()
        self.reason = ""
        self._stdin = stdin

    def stop(self, reason: str) -> None:
        if not self.event.is_set():
            self.reason = reason
            self.event.set()
            log.info("stopping: %s", reason)

    def start(self) -> None:
        threading.Thread(target=self._read, name="stdin-control", daemon=True).start()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: self.stop("terminated (SIGTERM)"))

    def _read(self) -> None:
        for line in self._stdin:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                log.warning("ignored a control line that is not JSON: %.80r", line)
                continue
            if isinstance(message, dict) and message.get("cmd") == "stop":
                self.stop(str(message.get("reason") or "stop requested"))
            else:
                log.warning("ignored an unknown control message: %.80r", line)
        self.stop("stdin closed (the parent process is gone)")


def _failed(job_id: str, stage: str, error: BaseException, expected: bool = False) -> dict[str, Any]:
    """The ``training.failed`` event; an ``expected`` error (a data problem the message fully explains) carries no
    traceback: the user reads one sentence, the traceback stays in the log."""
    lines = [] if expected else "".join(traceback.format_exception(error)).splitlines()
    return make_event(
        EventType.TRAINING_FAILED, job_id, stage=stage, error_type=getattr(error, "error_type", type(error).__name__),
        error=" ".join(str(error).split()) or repr(error),  # one line; the traceback keeps the layout
        traceback_tail="\n".join(lines[-TRACEBACK_LINES:]), exit_code=EXIT_FAILED,  # what it exits with next
    )


def lower_priority() -> int | None:
    """Raise this process's niceness by ``NICENESS`` where the OS has ``os.nice``; returns the new niceness
    (None where unsupported or refused).

    Why: the default CPU job would otherwise compete on equal terms with the GUI's render thread for the few
    cores of a laptop (2 on the reference machine) and make the window stutter while a job trains; a little
    lower priority keeps the window responsive and costs training almost nothing when the machine is idle.
    """
    if not hasattr(os, "nice"):  # Windows
        return None
    try:
        return os.nice(NICENESS)
    except OSError:  # a sandbox may refuse it; training at the normal priority is still correct
        return None


class ConfigError(ValueError):
    """The job's ``config.json`` is missing, unreadable or not a valid ``TrainingConfig`` (one-line message)."""


def read_config(job_dir: Path) -> TrainingConfig:
    """The job's ``TrainingConfig`` from ``job_dir/config.json``; raises ``ConfigError`` naming the field."""
    path = job_dir / "config.json"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from exc
    try:
        return TrainingConfig.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(whole file)"
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise ConfigError(f"config.json: {field}: {first['msg']}{more}") from exc


def _take_process() -> tuple[EventWriter, int | None]:
    """What every worker does first: keep stdout for events, log to stderr, lower its priority."""
    writer = EventWriter(take_stdout())
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    return writer, lower_priority()


def run_worker(job_dir: Path, stdin: IO[str] | None = None, taken: tuple[EventWriter, int | None] | None = None) -> int:
    """Run the job in ``job_dir`` under the worker contract; returns the exit code (0, 1 or 3). ``taken``: the
    process was already set up (a spare, ``run_spare``)."""
    writer, niceness = taken or _take_process()
    job_dir = Path(job_dir).resolve()
    job_id = job_dir.name
    watcher = StopWatcher(stdin or sys.stdin)
    watcher.start()
    log.info("worker pid %d (niceness %s) for job %s in %s", os.getpid(), niceness, job_id, job_dir)
    try:
        config = read_config(job_dir)
    except ConfigError as exc:
        log.error("%s", exc)
        writer.emit(_failed(job_id, "config", exc))
        return EXIT_FAILED

    # Imported after the config is known to be good: torch takes a second or two to load.
    from trainer.data.candles import CandleError
    from trainer.features import DataError
    from trainer.model import TrainingStopped
    from trainer.train import JobError, run_job

    try:
        runner = run_job
        if (job_dir / EXECUTOR_FILE).exists():  # a sweep's Ray trial: this process drives the remote task
            from trainer.ray_driver import ray_runner

            runner = ray_runner(job_dir / EXECUTOR_FILE)
        result = runner(config, job_dir, writer.emit, watcher.event)
    except (TrainingStopped, KeyboardInterrupt):
        watcher.stop("interrupted")  # keeps an earlier reason
        writer.emit(make_event(EventType.TRAINING_STOPPED, job_id, reason=watcher.reason or "stop requested"))
        return EXIT_STOPPED
    except JobError as exc:
        log.error("job failed in stage %s", exc.stage, exc_info=exc.error)
        writer.emit(_failed(job_id, exc.stage, exc.error, expected=isinstance(exc.error, (DataError, CandleError))))
        return EXIT_FAILED
    except Exception as exc:  # a bug outside any stage still ends with one terminal event
        log.exception("worker error")
        writer.emit(_failed(job_id, "worker", exc))
        return EXIT_FAILED
    writer.emit(
        make_event(
            EventType.TRAINING_COMPLETED, job_id, metrics=result.metrics, artifacts=result.artifacts,
            duration_s=result.duration_s, verdicts=result.verdicts,
        )
    )
    return EXIT_COMPLETED


def run_spare(stdin: IO[str] | None = None) -> int:
    """A spare worker: import what every job needs, then wait on stdin for ``{"cmd": "run", "job_dir": DIR}``
    and run that job (``run_worker``); EOF first (the server is closing) exits 0 without a job.

    The imports are the slow part of a worker's start (torch, the trainer, the baselines' statistics libraries
    and ``torch._dynamo``, which torch's optimisers load on their first step), so a job handed to a ready
    spare reports ``training.started`` as soon as its data are loaded.
    """
    stdin = stdin or sys.stdin
    taken = _take_process()
    started = time.perf_counter()
    for module in SPARE_PRELOAD:
        importlib.import_module(module)
    log.info("spare worker pid %d ready in %.1f s; waiting for a job", os.getpid(), time.perf_counter() - started)
    taken[0].emit({"type": "spare.ready", "pid": os.getpid()})  # embedded_server.worker_process.SPARE_READY
    for line in stdin:
        try:
            message = json.loads(line)
            job_dir = Path(message["job_dir"]) if message.get("cmd") == "run" else None
        except (ValueError, TypeError, KeyError, AttributeError):
            job_dir = None
        if job_dir is None:
            log.warning("spare worker: ignored a control line that is no job: %.80r", line)
            continue
        os.chdir(job_dir)  # where a worker started for this job would run
        return run_worker(job_dir, stdin, taken)
    log.info("spare worker: stdin closed before a job came; exiting")
    return 0


def run(args: argparse.Namespace) -> int:
    """``candlecast worker --job-dir DIR`` or ``candlecast worker --spare``."""
    return run_spare() if args.spare else run_worker(Path(args.job_dir))


def main(argv: list[str] | None = None) -> int:
    """``python -m trainer.worker --job-dir DIR`` or ``python -m trainer.worker --spare``."""
    parser = argparse.ArgumentParser(prog="python -m trainer.worker", description=__doc__.splitlines()[0])
    add_worker_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
