"""Sweeps: an Optuna search over training options whose trials are ordinary jobs of the job manager.

Each sweep has one runner thread and ``parallel`` trial threads. A trial thread asks the study for parameters
(``trainer.sweep_space.suggest``), submits a job tagged ``(sweep_id, trial)`` with ``final_holdout: inner`` (its
objective is measured on a walk-forward inside the data before the final test period, ``trainer.splits``), follows
the job's stored events, reports each fold's value to Optuna and stops the job when the pruner says so (the job
ends ``stopped`` with a reason starting ``pruned``), then tells the study the pooled objective. A trial whose job
the sweep's stop ends is told ``PRUNED`` too, Optuna's state for a trial ended early on purpose (``FAIL`` is for
errors). After the last
trial, the best trial's options are trained once more with ``final_holdout: final`` and scored once on the final,
untouched period: the sweep reports both numbers and that job's verdicts.

The study lives in ``data/sweeps/<sweep_id>/study.journal`` (Optuna's journal file storage: appends under a file
lock, so the server's threads can write at once where SQLite storage reports "database is locked"). A server
restart leaves a running sweep ``running``: its unfinished trials (their jobs became ``interrupted``) are told
``FAIL`` and the sweep resumes up to its trial count (``resume``).

With ``ray_address`` a trial's job folder gets an ``executor.json`` and its worker process drives the trial as a
Ray task (``trainer.ray_driver``); everything here is the same. Optuna is imported only once a sweep runs or is
read; Ray never in this process.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import secrets
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from embedded_server.event_bus import EventBus
from embedded_server.job_manager import JobManager, ManagerClosed
from embedded_server.job_states import TERMINAL, JobStatus
from embedded_server.job_store import JobStore
from embedded_server.settings import AppSettings
from embedded_server.sweep_store import SweepRecord, SweepStore
from trainer.events import EventType, make_event
from trainer.sweep_space import SweepRequest, grid_points, suggest

log = logging.getLogger(__name__)

SWEEP_ID_PATTERN = r"^sw-\d{8}-\d{6}-[0-9a-f]{6}$"
#: Seconds between two looks at a trial's job (its events and status in the store).
POLL_S = 0.25
#: Longest wait for a completed job's terminal event after its status (written first: ``job_manager._finish``).
EVENT_WAIT_S = 10.0
#: The pruner's patience: trials that always run to the end before it compares, and folds it never prunes at.
PRUNER_STARTUP_TRIALS = 2
#: The extra a sweep with a Ray address needs, in one line for the user.
RAY_HINT = "Ray is not installed here: pip install 'candlecast[cluster]' (the packaged app runs local sweeps only)"


#: Each pruner name of ``trainer.sweep_space.Pruner`` → its Optuna pruner, from ``optuna.pruners`` and the request.
PRUNERS: dict[str, Callable[[Any, SweepRequest], Any]] = {
    "median": lambda pruners, r: pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=0),
    "threshold": lambda pruners, r: pruners.ThresholdPruner(upper=r.prune_above),
    "none": lambda pruners, r: pruners.NopPruner(),
}


def pruned_because(request: SweepRequest, fold: int, value: float) -> str:
    """Why ``request``'s pruner stopped a trial whose ``fold`` scored ``value``: the end of its job's stop reason."""
    head = f"fold {fold}'s {request.objective} {value:.5g}"
    if request.pruner == "threshold":
        return f"{head} is above prune_above {request.prune_above:.5g}"
    return f"{head} is worse than the median of earlier trials"


class SweepConflict(RuntimeError):
    """A sweep that has ended cannot be stopped (409)."""


def new_sweep_id() -> str:
    return f"sw-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def ray_problem(request: SweepRequest) -> str | None:
    """Why this process cannot run ``request``'s Ray trials (frozen app, Ray missing), or None."""
    if request.ray_address is None:
        return None
    if getattr(sys, "frozen", False) or importlib.util.find_spec("ray") is None:
        return RAY_HINT
    return None


def objective_value(metrics: dict[str, Any] | None, objective: str) -> float | None:
    """The pooled ``objective`` of a job's ``metrics`` (``pooled.model[objective]``), None when absent or not finite."""
    try:
        value = float(metrics["pooled"]["model"][objective])  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class SweepManager:
    """Starts, follows, stops and resumes sweeps. Thread-safe. ``data_dir/sweeps`` holds the studies."""

    def __init__(
        self, store: SweepStore, jobs: JobStore, bus: EventBus, manager: JobManager, settings: AppSettings,
        data_dir: Path,
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.bus = bus
        self.manager = manager
        self.settings = settings
        self.folder = data_dir / "sweeps"
        self._lock = threading.Lock()
        self._runners: dict[str, _Runner] = {}
        self._closing = False

    def start(self, request: SweepRequest, idempotency_key: str | None = None) -> tuple[SweepRecord, bool]:
        """Create and start a sweep; a repeated ``idempotency_key`` returns the first one (``created`` False).
        Raises ``ManagerClosed`` during shutdown."""
        with self._lock:
            if idempotency_key is not None and (found := self.store.find_by_idempotency_key(idempotency_key)):
                return found, False
            if self._closing:
                raise ManagerClosed("the server is shutting down")
            record = self.store.create(new_sweep_id(), request.model_dump(mode="json"), idempotency_key)
            self._launch(record, resumed=False)
            return record, True

    def resume(self) -> list[str]:
        """At server start: restart every sweep a previous run left ``running``; returns their ids."""
        with self._lock:
            records = self.store.list("running", limit=1000)
            for record in records:
                self._launch(record, resumed=True)
        return [r.sweep_id for r in records]

    def stop(self, sweep_id: str, reason: str = "stopped on request") -> None:
        """Stop a running sweep: its running trial jobs are stopped, it ends ``stopped``. ``KeyError`` for an
        unknown sweep, ``SweepConflict`` for one that has ended."""
        record = self.store.get(sweep_id)
        with self._lock:
            runner = self._runners.get(sweep_id)
        if record.status != "running":
            raise SweepConflict(f"sweep {sweep_id} has ended ({record.status})")
        if runner is None:  # running in the store, no runner (a server that did not resume): end it here
            self._end_stopped(sweep_id, reason)
            return
        runner.request_stop(reason)

    def close(self) -> None:
        """Server shutdown, first step: runners stop asking for trials and leave their sweeps ``running`` (resumed
        at the next start). Their trial jobs end with the job manager's own shutdown; then ``join``."""
        with self._lock:
            self._closing = True
            runners = list(self._runners.values())
        for runner in runners:
            runner.closing.set()

    def join(self, timeout: float = 10.0) -> None:
        """Wait (at most ``timeout`` seconds in all) for the runners to notice their trial jobs ended."""
        deadline = time.monotonic() + timeout
        with self._lock:
            runners = list(self._runners.values())
        for runner in runners:
            runner.thread.join(max(0.0, deadline - time.monotonic()))

    def study(self, sweep_id: str) -> Any:
        """The sweep's Optuna study (the live one while it runs, else loaded from its journal); None if none yet."""
        with self._lock:
            runner = self._runners.get(sweep_id)
        if runner is not None and runner.study is not None:
            return runner.study
        path = self.journal(sweep_id)
        return _open_study(path, sweep_id, None) if path.exists() else None

    def journal(self, sweep_id: str) -> Path:
        """The sweep's Optuna journal file (its study, named ``sweep_id``); absent until the sweep first ran."""
        return self.folder / sweep_id / "study.journal"

    def _launch(self, record: SweepRecord, resumed: bool) -> None:
        runner = _Runner(self, record, resumed)
        self._runners[record.sweep_id] = runner
        runner.thread.start()

    def _forget(self, sweep_id: str) -> None:
        with self._lock:
            self._runners.pop(sweep_id, None)

    def _end_stopped(self, sweep_id: str, reason: str) -> None:
        if self.store.finish(sweep_id, "stopped", error=None):
            self.bus.publish(make_event(EventType.SWEEP_STOPPED, None, sweep_id=sweep_id, reason=reason))


def _open_study(path: Path, sweep_id: str, request: SweepRequest | None) -> Any:
    """Create or load the study in the journal file ``path`` (``request`` picks the sampler and pruner; None: read)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(path)))
    if request is None:
        return optuna.load_study(study_name=sweep_id, storage=storage)
    if request.sampler == "grid":
        sampler: Any = optuna.samplers.GridSampler(grid_points(request.space), seed=request.seed)
    elif request.sampler == "random":
        sampler = optuna.samplers.RandomSampler(seed=request.seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=request.seed)
    pruner = PRUNERS[request.pruner](optuna.pruners, request)
    return optuna.create_study(
        study_name=sweep_id, storage=storage, sampler=sampler, pruner=pruner, direction="minimize",
        load_if_exists=True,
    )


class _Runner:
    """One sweep's threads (see the module doc)."""

    def __init__(self, sweeps: SweepManager, record: SweepRecord, resumed: bool) -> None:
        self.sweeps = sweeps
        self.sweep_id = record.sweep_id
        self.request = SweepRequest.model_validate(record.request)
        self.resumed = resumed
        self.study: Any = None
        self.closing = threading.Event()
        self.stop_reason: str | None = None
        self._lock = threading.Lock()
        self._jobs: set[str] = set()
        self.thread = threading.Thread(target=self._run, name=f"sweep-{self.sweep_id}", daemon=True)

    def request_stop(self, reason: str) -> None:
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason
            jobs = list(self._jobs)
        for job_id in jobs:
            self._stop_job(job_id, f"the sweep was stopped: {reason}")

    def _halted(self) -> bool:
        return self.closing.is_set() or self.stop_reason is not None

    def _total(self) -> int:
        if self.request.sampler == "grid":
            return min(self.request.trials, math.prod(len(v) for v in grid_points(self.request.space).values()))
        return self.request.trials

    def _run(self) -> None:
        try:
            self._search()
        except Exception as exc:  # the study cannot be read or written, or a bug: the sweep ends failed
            log.exception("sweep %s failed", self.sweep_id)
            if self.sweeps.store.finish(self.sweep_id, "failed", error=str(exc) or repr(exc)):
                self._publish(EventType.SWEEP_FAILED, None, error=f"{type(exc).__name__}: {exc}")
        finally:
            self.sweeps._forget(self.sweep_id)

    def _search(self) -> None:
        import optuna

        self.study = _open_study(self.sweeps.journal(self.sweep_id), self.sweep_id, self.request)
        unfinished = (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)
        left = self.study.get_trials(deepcopy=False, states=unfinished)  # cut short by a server restart
        for trial in left:
            self.study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        self._publish(
            EventType.SWEEP_STARTED, None, trials=self._total(), parallel=self.request.parallel,
            objective=self.request.objective, sampler=self.request.sampler,
            executor="ray" if self.request.ray_address else "local", resumed=self.resumed,
            done=len(self.study.trials),
        )
        for trial in left:
            self._announce(trial.number, "failed", None, trial.params, trial.user_attrs.get("job_id"),
                           trial.user_attrs.get("node_id"))
        threads = [
            threading.Thread(target=self._trials, name=f"sweep-{self.sweep_id}-{k}", daemon=True)
            for k in range(self.request.parallel)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self.closing.is_set() and self.stop_reason is None:
            return  # server shutdown: the sweep stays running and resumes at the next start
        if self.stop_reason is not None:
            self.sweeps._end_stopped(self.sweep_id, self.stop_reason)
            return
        complete = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if not complete:
            error = "no trial completed (see the trials' jobs for why)"
            if self.sweeps.store.finish(self.sweep_id, "failed", error=error):
                self._publish(EventType.SWEEP_FAILED, None, error=error)
            return
        self._final(self.study.best_trial)

    def _trials(self) -> None:
        """One trial thread: ask, run the trial's job, tell; until the sweep has its trials or halts."""
        while not self._halted():
            with self._lock:
                if len(self.study.trials) >= self._total():
                    return
                trial = self.study.ask()
            params = suggest(self.request.space, trial)
            try:
                state, value, job_id, node_id = self._run_trial(trial, params)
            except ManagerClosed:
                return
            except Exception:  # e.g. the disk refused the job (StorageFull): this trial fails, the sweep goes on
                log.exception("sweep %s: trial %d could not run", self.sweep_id, trial.number)
                state, value, job_id, node_id = "failed", None, trial.user_attrs.get("job_id"), None
            if state is None:  # halted mid-trial by a shutdown: the trial stays unfinished (failed on resume)
                return
            self._tell(trial, state, value, params, job_id, node_id)

    def _run_trial(self, trial: Any, params: dict[str, Any]) -> tuple[str | None, float | None, str | None, str | None]:
        """Submit and follow one trial's job: ``(state, value, job_id, node_id)``; state None when halted by a
        shutdown. A config the schema refuses (a combination of choices) is a failed trial with no job."""
        try:
            config = self.request.trial_config(params, self.sweeps.settings.training, "inner")
        except ValueError as exc:
            log.warning("sweep %s trial %d: %s", self.sweep_id, trial.number, exc)
            return "failed", None, None, None
        executor = None
        if self.request.ray_address is not None:
            executor = {"kind": "ray", "address": self.request.ray_address, "num_cpus": self.request.num_cpus,
                        "num_gpus": self.request.num_gpus}
        submission = self.sweeps.manager.submit(
            config, sweep=(self.sweep_id, trial.number), files={"executor.json": executor} if executor else None
        )
        job_id = submission.job.job_id
        trial.set_user_attr("job_id", job_id)
        with self._lock:
            self._jobs.add(job_id)
        if self.stop_reason is not None:
            self._stop_job(job_id, f"the sweep was stopped: {self.stop_reason}")
        try:
            return self._follow(trial, job_id)
        finally:
            with self._lock:
                self._jobs.discard(job_id)

    def _follow(self, trial: Any, job_id: str) -> tuple[str | None, float | None, str | None, str | None]:
        """Read the job's events until it ends; report fold values, prune. See ``_run_trial``."""
        objective = self.request.objective
        since, node_id, pruned = 0, None, False
        while True:
            job = self.sweeps.jobs.get_job(job_id)
            for event in self.sweeps.jobs.events_since(since, job_id=job_id, limit=1000):
                since = event["seq"]
                kind = event.get("type")
                if kind == EventType.TRAINING_STARTED.value and event.get("origin") == "worker":
                    node_id = event.get("node_id")
                elif kind == EventType.TRAINING_FOLD_COMPLETED.value and not pruned:
                    value = (event.get("metrics") or {}).get("model", {}).get(objective)
                    if isinstance(value, (int, float)) and math.isfinite(value):
                        trial.report(float(value), int(event["fold"]))
                        if trial.should_prune():
                            pruned = True
                            why = pruned_because(self.request, int(event["fold"]), value)
                            self._stop_job(job_id, f"pruned by the sweep: {why}")
            if job.status in TERMINAL:  # (at a shutdown the job manager stops the job: waited for here too)
                break
            time.sleep(POLL_S)
        if self.closing.is_set() and self.stop_reason is None and job.status is not JobStatus.COMPLETED:
            return None, None, job_id, node_id
        if job.status is JobStatus.COMPLETED:
            value = objective_value(job.metrics, objective)
            return ("complete" if value is not None else "failed"), value, job_id, node_id
        if (pruned or self.stop_reason is not None) and job.status in (JobStatus.STOPPED, JobStatus.CANCELLED):
            return "pruned", None, job_id, node_id  # ended early on purpose (pruner or sweep stop): not a failure
        return "failed", None, job_id, node_id

    def _tell(self, trial: Any, state: str, value: float | None, params: dict[str, Any], job_id: str | None,
              node_id: str | None) -> None:
        import optuna

        if node_id is not None:
            trial.set_user_attr("node_id", node_id)
        states = {"pruned": optuna.trial.TrialState.PRUNED, "failed": optuna.trial.TrialState.FAIL}
        with self._lock:
            if state == "complete":
                self.study.tell(trial, value)
            else:
                self.study.tell(trial, state=states[state])
        self._announce(trial.number, state, value, params, job_id, node_id)

    def _announce(self, number: int, state: str, value: float | None, params: dict[str, Any], job_id: str | None,
                  node_id: str | None) -> None:
        """``sweep.trial_completed`` for a trial the study has been told about, with the best trial so far."""
        with self._lock:
            best = self._best()
        self._publish(
            EventType.SWEEP_TRIAL_COMPLETED, job_id, trial=number, state=state, value=value, params=params,
            best_trial=best.number if best else None, best_value=best.value if best else None, node_id=node_id,
        )

    def _best(self) -> Any:
        try:
            return self.study.best_trial
        except ValueError:  # no complete trial yet
            return None

    def _final(self, best: Any) -> None:
        """Train the best options once more and score them once on the final, untouched period."""
        config = self.request.trial_config(best.params, self.sweeps.settings.training, "final")
        result: dict[str, Any] = {
            "best_trial": best.number, "best_params": best.params, "best_value": best.value,
            "final_job_id": None, "final_value": None, "verdicts": None, "final_error": None,
        }
        try:
            job_id = self.sweeps.manager.submit(config, sweep=(self.sweep_id, None)).job.job_id
        except ManagerClosed:
            return
        result["final_job_id"] = job_id
        with self._lock:
            self._jobs.add(job_id)
        while (job := self.sweeps.jobs.get_job(job_id)).status not in TERMINAL:
            time.sleep(POLL_S)
        if self.closing.is_set() and self.stop_reason is None:
            return  # shutdown during the final scoring: it runs again after the restart
        if self.stop_reason is not None:
            self.sweeps._end_stopped(self.sweep_id, self.stop_reason)
            return
        if job.status is JobStatus.COMPLETED:
            result["final_value"] = objective_value(job.metrics, self.request.objective)
            result["verdicts"] = self._completed_verdicts(job_id)
        else:
            result["final_error"] = (job.error or {}).get("error") or f"the final job ended {job.status.value}"
        if self.sweeps.store.finish(self.sweep_id, "completed", result=result):
            self._publish(EventType.SWEEP_COMPLETED, job_id, **result)

    def _completed_verdicts(self, job_id: str) -> dict[str, Any] | None:
        """The compact verdicts of the completed job's ``training.completed`` event. The manager writes a job's
        status before its terminal event, so the event may still be on its way: waited for up to
        ``EVENT_WAIT_S``."""
        deadline = time.monotonic() + EVENT_WAIT_S
        while True:
            ends = self.sweeps.jobs.events_since(0, job_id=job_id)
            done = [e for e in ends if e.get("type") == EventType.TRAINING_COMPLETED.value]
            if done or time.monotonic() > deadline:
                return done[-1].get("verdicts") if done else None
            time.sleep(POLL_S)

    def _stop_job(self, job_id: str, reason: str) -> None:
        try:
            self.sweeps.manager.stop(job_id, reason)
        except Exception as exc:  # already finished (IllegalTransition) or gone: nothing to stop
            log.info("sweep %s: job %s not stopped: %s", self.sweep_id, job_id, exc)

    def _publish(self, kind: EventType, job_id: str | None, **fields: Any) -> None:
        self.sweeps.bus.publish(make_event(kind, job_id, sweep_id=self.sweep_id, **fields))
