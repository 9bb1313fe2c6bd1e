"""Performs the controller's effects off the render thread and reports each outcome as a message.

Network effects run on a small thread pool (``ApiClient`` calls); file writes (``RememberParams``) run on one
thread of their own, in order. Every effect ends in exactly one message (or none for a file write), also when
the server answers with something unexpected, so the controller's in-flight flags always clear.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import PurePath
from typing import Any

from desktop_app import messages as m
from desktop_app.api_client import ApiClient, ApiError
from desktop_app.series import reduce_predictions
from trainer.events import JobStatus

log = logging.getLogger(__name__)


class Runtime:
    """Runs effects: ``perform(effects)`` returns at once; outcomes go to ``post(message)`` from worker threads.

    ``remember(config)`` saves the last used parameters (a file write). ``clock`` is the same monotonic clock
    the frame loop stamps its messages with; ``wall`` gives Unix seconds for "last ping". ``log_path`` is the
    backend log's path when the server runs in this process (the log tail API does not say where it is).
    """

    def __init__(
        self,
        client: ApiClient,
        post: Callable[[m.Message], None],
        remember: Callable[[dict[str, Any]], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        log_path: str | None = None,
        workers: int = 4,
    ) -> None:
        self.client = client
        self.log_path = log_path
        self._post = post
        self._remember = remember
        self._clock = clock
        self._wall = wall
        self._net = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="candlecast-net")
        self._disk = ThreadPoolExecutor(max_workers=1, thread_name_prefix="candlecast-disk")

    def perform(self, effects: tuple[m.Effect, ...]) -> None:
        """Queue ``effects``; never blocks."""
        for effect in effects:
            if isinstance(effect, m.RememberParams):
                self._disk.submit(self._save, effect.config)
            else:
                self._net.submit(self._run, effect)

    def disk(self, job: Callable[[], object]) -> None:
        """Run a file write on the ordered disk thread (layout saves)."""
        self._disk.submit(self._guard, job)

    def shutdown(self) -> None:
        """Drop pending network calls; finish pending file writes."""
        self._net.shutdown(wait=False, cancel_futures=True)
        self._disk.shutdown(wait=True)

    def _run(self, effect: m.Effect) -> None:
        message = self.outcome(effect)
        if message is not None:
            self._post(message)

    def _save(self, config: dict[str, Any]) -> None:
        self._guard(lambda: self._remember(config))

    @staticmethod
    def _guard(job: Callable[[], object]) -> None:
        try:
            job()
        except Exception:  # a failed save is logged; it must not kill the disk thread
            log.exception("saving failed")

    def outcome(self, effect: m.Effect) -> m.Message | None:
        """Perform one network effect synchronously and return its message (used by the threads and tests)."""
        try:
            return self._call(effect)
        except ApiError as exc:
            problem = exc.problem
        except Exception as exc:  # a malformed answer still has to reach the controller
            log.exception("unexpected answer for %s", effect)
            problem = m.Problem(None, "Unexpected answer", f"{type(exc).__name__}: {exc}")
        return self._failed(effect, problem)

    def _call(self, effect: m.Effect) -> m.Message | None:
        c = self.client
        if isinstance(effect, m.PostStart):
            body = c.start_training(effect.config, effect.key)
            return m.StartAnswered(self._clock(), effect.key, effect.attempt, job_id=str(body["job_id"]))
        if isinstance(effect, m.StopJob):
            body = c.stop_job(effect.job_id)
            return m.StopAnswered(self._clock(), effect.job_id, status=str(body.get("status")))
        if isinstance(effect, m.PollJob):
            return m.JobPolled(self._clock(), effect.job_id, job=c.job(effect.job_id))
        if isinstance(effect, m.PollEvents):
            events = tuple(c.events(effect.job_id, effect.since)["events"])
            return m.EventsPolled(self._clock(), effect.job_id, events=events)
        if isinstance(effect, m.CheckHealth):
            return m.HealthAnswered(self._clock(), self._wall(), health=c.health())
        if isinstance(effect, m.ListJobs):
            return m.JobsListed(self._clock(), jobs=tuple(c.jobs()["jobs"]))
        if isinstance(effect, m.ListDatasets):
            return m.DatasetsListed(self._clock(), datasets=tuple(c.datasets()["datasets"]))
        if isinstance(effect, m.LoadResults):
            return self._results(effect.job_id)
        if isinstance(effect, m.LoadLogTail):
            if effect.job_id is None:
                body, path = c.log_tail(effect.n), self.log_path
            else:
                body, path = c.job_log(effect.job_id, effect.n), None
                if effect.with_path:
                    path = self._worker_log_path(effect.job_id)
            return m.LogTailLoaded(self._clock(), effect.job_id, lines=tuple(body["lines"]), path=path)
        if isinstance(effect, m.ImportDataset):
            body = c.import_dataset(effect.path, effect.symbol, effect.timeframe)
            return m.ImportAnswered(self._clock(), effect.path, dataset=body)
        raise TypeError(f"runtime cannot perform {type(effect).__name__}")

    def _worker_log_path(self, job_id: str) -> str | None:
        """The job's ``worker.log``: in its folder, ``artifacts.dir`` of ``GET /jobs/{id}`` (None if not given)."""
        folder = (self.client.job(job_id).get("artifacts") or {}).get("dir")
        return str(PurePath(folder) / "worker.log") if isinstance(folder, str) and folder else None

    def _results(self, job_id: str) -> m.ResultsLoaded:
        job = self.client.job(job_id)
        series: dict[str, tuple[float, ...]] = {}
        if job.get("status") == JobStatus.COMPLETED:
            try:
                series = reduce_predictions(self.client.predictions(job_id)["predictions"])
            except ApiError as exc:
                if exc.problem.status != 404:  # 404: this job wrote no predictions; the metrics still show
                    raise
        return m.ResultsLoaded(self._clock(), job_id, job=job, series=series)

    def _failed(self, effect: m.Effect, problem: m.Problem) -> m.Message | None:
        now = self._clock()
        if isinstance(effect, m.PostStart):
            return m.StartAnswered(now, effect.key, effect.attempt, problem=problem)
        if isinstance(effect, m.StopJob):
            return m.StopAnswered(now, effect.job_id, problem=problem)
        if isinstance(effect, m.PollJob):
            return m.JobPolled(now, effect.job_id, problem=problem)
        if isinstance(effect, m.PollEvents):
            return m.EventsPolled(now, effect.job_id, problem=problem)
        if isinstance(effect, m.CheckHealth):
            return m.HealthAnswered(now, self._wall(), problem=problem)
        if isinstance(effect, m.ListJobs):
            return m.JobsListed(now, problem=problem)
        if isinstance(effect, m.ListDatasets):
            return m.DatasetsListed(now, problem=problem)
        if isinstance(effect, m.LoadResults):
            return m.ResultsLoaded(now, effect.job_id, problem=problem)
        if isinstance(effect, m.LoadLogTail):
            return m.LogTailLoaded(now, effect.job_id, problem=problem)
        if isinstance(effect, m.ImportDataset):
            return m.ImportAnswered(now, effect.path, problem=problem)
        log.error("no failure message for %s: %s", effect, problem.line())
        return None
