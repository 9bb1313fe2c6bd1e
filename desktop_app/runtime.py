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
from dataclasses import fields
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
        answer, perform = _endpoint(effect)
        return self._answer(effect, answer, **perform(self, effect))

    def _answer(self, effect: m.Effect, answer: type, **outcome: Any) -> m.Message:
        """``answer`` for ``effect``: the fields it shares with the effect copied (``job_id``, ``key``…), stamped
        with the clocks it names (``now``, ``wall_time``), and ``outcome`` (the body, or ``problem``)."""
        names = {f.name for f in fields(answer)}
        stamps = {"now": self._clock(), "wall_time": self._wall()}
        shared = {name: getattr(effect, name) for name in names if hasattr(effect, name)}
        return answer(**{k: v for k, v in stamps.items() if k in names}, **shared, **outcome)

    def _worker_log_path(self, job_id: str) -> str | None:
        """The job's ``worker.log``: in its folder, ``artifacts.dir`` of ``GET /jobs/{id}`` (None if not given)."""
        folder = (self.client.job(job_id).get("artifacts") or {}).get("dir")
        return str(PurePath(folder) / "worker.log") if isinstance(folder, str) and folder else None

    def _results(self, job_id: str) -> dict[str, Any]:
        job = self.client.job(job_id)
        series: dict[str, tuple[float, ...]] = {}
        if job.get("status") == JobStatus.COMPLETED:
            try:
                series = reduce_predictions(self.client.predictions(job_id)["predictions"])
            except ApiError as exc:
                if exc.problem.status != 404:  # 404: this job wrote no predictions; the metrics still show
                    raise
        return {"job": job, "series": series}

    def _next_bar(self, job_id: str) -> dict[str, Any]:
        """The latest candle's forecast of ``job_id`` with the answer's ``training_end``, ``horizon`` and
        ``fallbacks``."""
        answer = self.client.predict(job_id, {"last": 1})
        return {**answer["forecasts"][-1], "training_end": answer["training_end"], "horizon": answer["horizon"],
                "timeframe": answer["timeframe"], "fallbacks": answer["fallbacks"]}

    def _log_tail(self, effect: m.LoadLogTail) -> dict[str, Any]:
        if effect.job_id is None:
            body, path = self.client.log_tail(effect.n), self.log_path
        else:
            body, path = self.client.job_log(effect.job_id, effect.n), None
            if effect.with_path:
                path = self._worker_log_path(effect.job_id)
        return {"lines": tuple(body["lines"]), "path": path}

    def _failed(self, effect: m.Effect, problem: m.Problem) -> m.Message | None:
        try:
            answer, _ = _endpoint(effect)
        except TypeError:
            log.error("no failure message for %s: %s", effect, problem.line())
            return None
        return self._answer(effect, answer, problem=problem)


Perform = Callable[[Runtime, Any], dict[str, Any]]

#: Each network effect: the message that answers it and how to perform it (the answer's fields from the body).
#: A failure answers with the same message and ``problem``; a new endpoint is one entry here.
ENDPOINTS: dict[type, tuple[type, Perform]] = {
    m.PostStart: (m.StartAnswered, lambda rt, e: {"job_id": str(rt.client.start_training(e.config, e.key)["job_id"])}),
    m.StopJob: (m.StopAnswered, lambda rt, e: {"status": str(rt.client.stop_job(e.job_id).get("status"))}),
    m.PollJob: (m.JobPolled, lambda rt, e: {"job": rt.client.job(e.job_id)}),
    m.PollEvents: (m.EventsPolled, lambda rt, e: {"events": tuple(rt.client.events(e.job_id, e.since)["events"])}),
    m.CheckHealth: (m.HealthAnswered, lambda rt, e: {"health": rt.client.health()}),
    m.ListJobs: (m.JobsListed,
                 lambda rt, e: {"jobs": tuple(rt.client.job_list(include="metrics", limit=1000)["jobs"])}),
    m.ListDatasets: (m.DatasetsListed, lambda rt, e: {"datasets": tuple(rt.client.datasets()["datasets"])}),
    m.LoadResults: (m.ResultsLoaded, lambda rt, e: rt._results(e.job_id)),
    m.LoadLogTail: (m.LogTailLoaded, lambda rt, e: rt._log_tail(e)),
    m.LoadNextBar: (m.NextBarLoaded, lambda rt, e: {"forecast": rt._next_bar(e.job_id)}),
    m.LoadComparison: (m.ComparisonLoaded, lambda rt, e: {"comparison": rt.client.compare(e.job_ids)}),
    m.ImportDataset: (m.ImportAnswered,
                      lambda rt, e: {"dataset": rt.client.import_dataset(e.path, e.symbol, e.timeframe)}),
    m.ListSweeps: (m.SweepsListed, lambda rt, e: {"sweeps": tuple(rt.client.sweeps()["sweeps"])}),
    m.LoadSweep: (m.SweepLoaded, lambda rt, e: {"sweep": rt.client.sweep(e.sweep_id)}),
    m.PostSweep: (m.SweepStartAnswered,
                  lambda rt, e: {"sweep_id": str(rt.client.start_sweep(e.body, e.key)["sweep_id"])}),
    m.StopSweep: (m.SweepStopAnswered, lambda rt, e: {"status": str(rt.client.stop_sweep(e.sweep_id)["status"])}),
    m.LoadSweepImportance: (m.SweepImportanceLoaded,
                            lambda rt, e: {"importance": rt.client.sweep_importance(e.sweep_id)}),
}


def _endpoint(effect: m.Effect) -> tuple[type, Perform]:
    """``effect``'s entry in ``ENDPOINTS``; ``TypeError`` for an effect the runtime cannot perform."""
    try:
        return ENDPOINTS[type(effect)]
    except KeyError:
        raise TypeError(f"runtime cannot perform {type(effect).__name__}") from None
