"""A sweep trial on a Ray cluster: the worker process of the job becomes the driver of one Ray task.

The job manager starts the job's worker as for any job (``trainer.worker``); finding ``executor.json``
(``{"kind": "ray", "address", "num_cpus", "num_gpus"}``) in its folder, the worker calls ``ray_runner`` instead of
``trainer.train.run_job``. The driver (ARCHITECTURE.md, "Sweeps and scale-out"):

- connects to the cluster at ``address`` and ships the ``trainer`` package with the job (``runtime_env``
  ``py_modules``; every node needs the same Python packages, not this checkout or a shared file system);
- loads the candles here and puts them into Ray's object store, so the node that runs the task needs no dataset;
- runs ``run_job`` on the cluster as one task with ``num_cpus``/``num_gpus`` and no retry (``max_retries=0``):
  the task writes its events into a ``ray.util.queue.Queue`` (an actor on the driver's node), which the driver
  relays on its stdout as its own (``training.started`` gains ``node_id`` and ``remote_pid``; its
  ``pid`` stays this process's, the one the job manager supervises);
- brings the artifacts back as bytes and writes them into the local job folder;
- forwards a stop (stdin line, SIGTERM, EOF) as ``ray.cancel`` (then a forced cancel after ``FORCE_CANCEL_S``);
- turns a lost task (its node or worker died) into a failure of stage ``worker`` naming what Ray reported: the
  trial fails once, the sweep carries on.

Worker-side: imports Ray (an optional extra, ``candlecast[cluster]``) and, in the task, torch.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainer.atomic import atomic_write_bytes
from trainer.config import TrainingConfig
from trainer.events import EventType
from trainer.train import ARTIFACTS, Emit, JobError, JobResult, load_candles, run_job, stage

log = logging.getLogger(__name__)

#: Seconds between the driver's looks at the task and its event queue.
POLL_S = 0.2
#: Seconds a cancelled task has to stop before it is cancelled by force (its worker process killed).
FORCE_CANCEL_S = 10.0
_PACKAGE = Path(__file__).resolve().parent


class RemoteError(Exception):
    """An error raised inside the Ray task, carried back by name and message (``error_type``)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def ray_runner(executor_file: Path) -> Callable[[TrainingConfig, Path, Emit, threading.Event], JobResult]:
    """A ``run_job``-like callable that runs the job on the Ray cluster named by ``executor_file``."""
    spec = json.loads(Path(executor_file).read_text(encoding="utf-8"))

    def runner(config: TrainingConfig, job_dir: Path, emit: Emit, stop: threading.Event) -> JobResult:
        return run_on_ray(config, Path(job_dir), emit, stop, spec)

    return runner


def run_on_ray(config: TrainingConfig, job_dir: Path, emit: Emit, stop: threading.Event, spec: dict) -> JobResult:
    """Run ``config``'s job as a Ray task (see the module doc); returns its ``JobResult`` with local artifact paths.

    Raises ``JobError`` (stage ``config`` when the cluster cannot be reached, ``data``, or the task's own stage;
    ``worker`` when the task was lost) and ``trainer.model.TrainingStopped`` after a stop."""
    import ray
    from ray.util.queue import Queue
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from trainer.model import TrainingStopped

    started = time.perf_counter()
    with stage("config"):
        ray.init(
            address=spec["address"], namespace="candlecast", log_to_driver=False, logging_level=logging.WARNING,
            runtime_env={"py_modules": [str(_PACKAGE)], "excludes": ["__pycache__"]},
        )
    try:
        with stage("data"):
            frame, partial = load_candles(config, None)
            candles = ray.put(frame)
        here = ray.get_runtime_context().get_node_id()
        events = Queue(actor_options={
            "num_cpus": 0, "scheduling_strategy": NodeAffinitySchedulingStrategy(here, soft=True),
        })
        task = ray.remote(_remote_job).options(
            num_cpus=float(spec.get("num_cpus", 1)), num_gpus=float(spec.get("num_gpus", 0)), max_retries=0,
            name=f"candlecast-{job_dir.name}",
        )
        ref = task.remote(config.model_dump(mode="json"), job_dir.name, candles, partial, events)
        try:
            out = _await(ref, events, emit, stop)
        except ray.exceptions.TaskCancelledError:
            raise TrainingStopped from None
        except ray.exceptions.RayError as exc:  # the task's node or worker, or the event queue's, is gone
            if stop.is_set():
                raise TrainingStopped from None
            first = (str(exc).strip().splitlines() or [repr(exc)])[0]
            raise JobError("worker", RuntimeError(f"the Ray task was lost ({type(exc).__name__}): {first}")) from exc
        if out.get("stopped"):
            raise TrainingStopped
        if "error" in out:
            error = out["error"]
            raise JobError(error["stage"], RemoteError(error["error_type"], error["error"]))
        with stage("artifacts"):
            job_dir.mkdir(parents=True, exist_ok=True)
            for name, content in out["files"].items():
                atomic_write_bytes(job_dir / name, content)
        artifacts = {"dir": str(job_dir), **{key: str(job_dir / name) for key, name in ARTIFACTS.items()}}
        return JobResult(out["metrics"], artifacts, time.perf_counter() - started, out["verdicts"])
    finally:
        ray.shutdown()


def _await(ref: Any, events: Any, emit: Emit, stop: threading.Event) -> dict[str, Any]:
    """Relay the task's events until it ends (a stop cancels it, by force after ``FORCE_CANCEL_S``); its result.
    Raises what ``ray.get`` raises (``ray.exceptions.RayError``)."""
    import ray

    cancelled_at = None
    while not ray.wait([ref], timeout=POLL_S)[0]:
        _relay(events, emit)
        if stop.is_set() and cancelled_at is None:
            ray.cancel(ref)
            cancelled_at = time.monotonic()
        elif cancelled_at is not None and time.monotonic() - cancelled_at > FORCE_CANCEL_S:
            ray.cancel(ref, force=True)
    out = ray.get(ref)
    _relay(events, emit)  # the last events were queued before the task returned
    return out


def _relay(events: Any, emit: Emit) -> None:
    """Emit every event waiting in the task's queue, in order; the worker event names this process as ``pid``."""
    from ray.util.queue import Empty

    while True:
        try:
            event = events.get_nowait()
        except Empty:
            return
        if event.get("type") == EventType.TRAINING_STARTED.value:
            event = {**event, "remote_pid": event.get("pid"), "pid": os.getpid()}
        emit(event)


def _remote_job(config_json: dict, job_id: str, frame: Any, partial: int, events: Any) -> dict[str, Any]:
    """The Ray task: ``run_job`` in a temporary folder on whatever node runs it; returns ``{files, metrics,
    verdicts}`` (artifact bytes by file name), ``{error: {stage, error_type, error}}`` or ``{stopped: True}``."""
    import ray

    from trainer.model import TrainingStopped

    context = ray.get_runtime_context()
    where = {"node_id": context.get_node_id()}

    def emit(event: dict[str, Any]) -> None:
        if event.get("type") == EventType.TRAINING_STARTED.value:
            event = {**event, **where, "partial_candles": partial}
        events.put(event)

    with tempfile.TemporaryDirectory(prefix="candlecast-") as tmp:
        job_dir = Path(tmp) / job_id
        try:
            result = run_job(TrainingConfig(**config_json), job_dir, emit, candles=frame)
        except TrainingStopped:
            return {"stopped": True}
        except JobError as exc:
            return {"error": {"stage": exc.stage, "error_type": type(exc.error).__name__,
                              "error": " ".join(str(exc.error).split()) or repr(exc.error)}}
        files = {  # every file the job wrote (report plots included); the job's worker.log is the driver's
            path.name: path.read_bytes()
            for path in job_dir.iterdir()
            if path.is_file() and path.name != ARTIFACTS["log"]
        }
        return {"files": files, "metrics": result.metrics, "verdicts": result.verdicts}
