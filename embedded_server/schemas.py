"""The server's own request and response models (pydantic). The training request is ``trainer.config.TrainingConfig``.

Routes validate input with these, call one ``JobManager``/store method and serialise with these, and
``openapi.py`` builds ``/openapi.json`` from the very same classes, so the document cannot drift from the code.
Response models allow extra keys: clients ignore keys they don't know (API.md's stability promise).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from embedded_server.job_manager import JOB_ID_PATTERN
from embedded_server.job_states import JobStatus
from embedded_server.job_store import JobRecord, job_summary
from trainer.config import Timeframe, TrainingConfig, normalize_symbol


#: An absolute path on this server's system (``~/`` expands to the home folder); also ``/openapi.json``'s pattern.
ABSOLUTE_PATH_PATTERN = r"^([A-Za-z]:[\\/]|\\\\|~[\\/])" if os.name == "nt" else r"^(/|~/)"


def matching(pattern: str, allowed: str) -> Any:
    """The type of a string field that must match ``pattern`` (ECMA-262 syntax, also the field's ``pattern`` in
    ``/openapi.json``). A value that does not is refused with ``must be <allowed>``: one line a user can act on,
    where pydantic's own ``pattern=`` message quotes the regex."""
    regex = re.compile(pattern)

    def check(value: str) -> str:
        if not regex.search(value):
            shown = repr(value) if len(value) <= 60 else repr(value[:57] + "...")
            raise ValueError(f"must be {allowed}, not {shown}")
        return value

    return Annotated[str, Field(json_schema_extra={"pattern": pattern}), AfterValidator(check)]


JobId = matching(JOB_ID_PATTERN, "a job id (1 to 64 letters, digits, - and _, not starting with - or _)")


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # NaN/Infinity: refused as not finite


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow")


# ---- requests ---------------------------------------------------------------------------------------------------


class TrainingStartRequest(TrainingConfig):
    """``POST /start_training`` body: every field optional; defaults from the settings' ``training`` block, then
    the schema. Unknown fields are refused (422)."""


class StopTrainingRequest(_Request):
    """``POST /stop_training`` body: which job to stop (default: the running one)."""

    job_id: JobId | None = Field(None, description="Job to stop; default: the running job.")


class ImportRequest(_Request):
    """``POST /datasets/import`` body: a candle file on this machine to import into the dataset store."""

    path: str = Field(
        min_length=1,
        description="Absolute path of the candle file (CSV, JSON, feather, parquet…).",
        json_schema_extra={"pattern": ABSOLUTE_PATH_PATTERN},  # checked by ``_absolute`` with a clearer message
    )
    symbol: str | None = Field(None, min_length=1, description="Exchange symbol, if the file does not name it.")
    timeframe: Timeframe | None = Field(None, description="Expected timeframe, checked against the file's spacing.")

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if value and not re.match(ABSOLUTE_PATH_PATTERN, value):
            hint = "a drive letter or \\\\" if os.name == "nt" else "/ or ~/"
            raise ValueError(f"not an absolute path to a file: {value!r} (start it with {hint})")
        return value

    @field_validator("symbol")
    @classmethod
    def _exchange_symbol(cls, value: str | None) -> str | None:
        return None if value is None else normalize_symbol(value)  # ValueError: a 422 on body.symbol


# ---- query strings ----------------------------------------------------------------------------------------------


class JobsQuery(_Request):
    """``GET /jobs`` query."""

    status: JobStatus | None = Field(None, description="Only jobs with this status.")
    symbol: str | None = Field(None, min_length=1, description="Only jobs of this symbol (BTCUSDT).")
    timeframe: Timeframe | None = Field(None, description="Only jobs of this timeframe.")
    sweep: str | None = Field(None, min_length=1, max_length=64, description="Only the jobs of this sweep (its id).")
    limit: int = Field(50, ge=1, le=1000, description="At most this many jobs, newest first.")
    offset: int = Field(0, ge=0, le=2**31, description="Skip this many (the next page: offset + limit).")
    include: matching(r"^(metrics|config)(,(metrics|config))*$", "metrics, config or metrics,config") | None = Field(
        None,
        description="Comma-separated extras per job: metrics (its key figures), config (its resolved config).",
    )

    @field_validator("symbol")
    @classmethod
    def _exchange_symbol(cls, value: str | None) -> str | None:
        return None if value is None else normalize_symbol(value)

    def includes(self, name: str) -> bool:
        return name in (self.include or "").split(",")


class Candle(_Request):
    """One candle of an inline ``POST /jobs/{job_id}/predict``: open time (ISO-8601 or Unix ms) and OHLCV."""

    open_time: str | int
    open: float
    high: float
    low: float
    close: float
    volume: float


class PredictRequest(_Request):
    """``POST /jobs/{job_id}/predict`` body: which candles (at most one of ``dataset``, ``path``, ``candles``;
    default: the job's own dataset) and how many of the latest closed ones to forecast."""

    dataset: str | None = Field(None, min_length=1, description="A dataset id from /datasets.")
    path: str | None = Field(
        None, min_length=1, description="Absolute path of a candle file on this machine (read, not imported).",
        json_schema_extra={"pattern": ABSOLUTE_PATH_PATTERN},
    )
    candles: list[Candle] | None = Field(None, min_length=1, description="Inline candles, oldest first.")
    symbol: str | None = Field(None, min_length=1, description="Symbol of the given candles (checked).")
    timeframe: Timeframe | None = Field(None, description="Timeframe of the given candles (checked).")
    # JSON bodies are strict like /start_training's: "2", 2.0 or true is not an int here.
    last: int = Field(1, ge=1, le=10000, strict=True, description="Forecast the latest N closed candles.")
    fold: int | None = Field(
        None, ge=1, le=1000, strict=True,
        description="Which model: a walk-forward fold's (its number in predictions.csv); null: the deployable "
        "model refitted on all the job's data.",
    )

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        return None if value is None else ImportRequest._absolute(value)

    @field_validator("symbol")
    @classmethod
    def _exchange_symbol(cls, value: str | None) -> str | None:
        return None if value is None else normalize_symbol(value)


class CompareQuery(_Request):
    """``GET /compare`` query."""

    jobs: matching(
        r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}(,[A-Za-z0-9][A-Za-z0-9_-]{0,63}){1,3}$",
        "2 to 4 job ids separated by commas (A,B)",
    ) = Field(description="2 to 4 comma-separated ids of completed jobs.")

    def ids(self) -> list[str]:
        return self.jobs.split(",")


class RerunRequest(_Request):
    """``POST /jobs/{job_id}/rerun`` body."""

    allow_changed_data: bool = Field(
        False, strict=True, description="Rerun even if the dataset changed since the job ran."
    )


class EventsQuery(_Request):
    """``GET /jobs/{job_id}/events`` query."""

    since: int = Field(0, ge=0, le=2**63 - 1, description="Only events with a larger seq.")
    limit: int = Field(1000, ge=1, le=10000, description="At most this many events.")


class TailQuery(_Request):
    """``GET /status/log_tail`` and ``GET /jobs/{job_id}/log`` query."""

    n: int = Field(200, ge=1, le=10000, description="Number of lines from the end.")


class PredictionsQuery(_Request):
    """``GET /jobs/{job_id}/predictions`` query."""

    format: Literal["json", "csv"] = Field("json", description="json records or the raw CSV file.")


class WsQuery(_Request):
    """``/ws`` query."""

    since: int | None = Field(None, ge=0, le=2**63 - 1, description="Replay retained events after this seq first.")
    token: str | None = Field(None, description="Bearer token, when the server requires one.")


# ---- responses --------------------------------------------------------------------------------------------------


class JobCounts(_Response):
    running: int
    queued: int


class SpareWorker(_Response):
    """The warm spare worker: a process that has imported torch and the trainer and waits for the next job."""

    pid: int
    ready: bool = Field(description="Its imports are done: a job handed to it starts at once.")
    rss_mib: float | None = Field(description="Its resident memory in MiB (null where the OS does not tell).")
    age_s: float = Field(description="Seconds since it started.")


class Health(_Response):
    """``GET /``: the server is up."""

    status: Literal["ok"]
    app: Literal["candlecast"]
    version: str
    pid: int
    uptime_s: float = Field(description="Seconds since the server started.")
    time: str = Field(description="Server time, ISO-8601 UTC.")
    jobs: JobCounts
    spare_worker: SpareWorker | None = Field(
        description="The warm worker waiting for the next job (config.json warm_worker), or null: none right now."
    )


class StartAccepted(_Response):
    """``POST /start_training`` 202."""

    status: Literal["accepted"]
    job_id: str
    expected_pid: int | None = Field(description="The worker's pid if it started at once, else null (queued).")
    message: str
    queue_position: int | None = Field(description="1 = next to start; null when it started at once.")


class Progress(_Response):
    """How far a job is. ``fold``/``epoch`` count from 1 (0 = not started); ``fraction`` 0..1; ``eta_s`` seconds."""

    fold: int | None = None
    folds: int | None = None
    epoch: int | None = None
    epochs: int | None = None
    fraction: float | None = None
    eta_s: float | None = None


class Artifacts(_Response):
    """Absolute paths of a job's files (null until written)."""

    dir: str
    model: str | None
    metrics: str | None
    predictions: str | None
    report: str | None


class JobSummary(_Response):
    """One job in a list."""

    job_id: str
    status: JobStatus
    symbol: str
    timeframe: str
    pid: int | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    progress: Progress
    horizon: int | None = Field(None, description="forecast_horizon of its config (bars).")
    model: str | None = Field(None, description="Its network and distribution, e.g. 'mlp student_t' (config model and distribution).")
    duration_s: float | None = Field(None, description="Training time once completed.")
    error: str | None = Field(None, description="Why it failed (one line), once failed.")
    stop_reason: str | None = Field(None, description="Why it was stopped or cancelled (one line), once it was.")
    metrics: dict[str, Any] | None = Field(None, description="include=metrics: key figures (trainer.key_figures).")
    config: dict[str, Any] | None = Field(None, description="include=config: the resolved config.")
    sweep_id: str | None = Field(description="The sweep this job is a trial of (null: none).")
    trial: int | None = Field(description="Its trial number in that sweep (null: not a trial, or the final scoring).")

    @classmethod
    def from_record(cls, job: JobRecord, metrics: bool = False, config: bool = False) -> JobSummary:
        summary = job.summary or job_summary(job.metrics) or {}
        network = job.config.get("model") or summary.get("network")  # the config's kind; older jobs: the class
        model = " ".join(filter(None, [network, job.config.get("distribution")]))
        return cls(
            job_id=job.job_id,
            status=job.status,
            symbol=job.config.get("symbol", ""),
            timeframe=job.config.get("timeframe", ""),
            pid=job.pid,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            progress=job.progress,
            horizon=job.config.get("forecast_horizon"),
            model=model or None,
            duration_s=summary.get("duration_s"),
            error=(job.error or {}).get("error"),
            stop_reason=job.stop_reason,
            metrics=summary.get("key_figures") if metrics else None,
            config=job.config if config else None,
            sweep_id=job.sweep_id,
            trial=job.trial,
        )


class Job(_Response):
    """``GET /jobs/{job_id}``."""

    job_id: str
    status: JobStatus
    config: dict[str, Any] = Field(description="The resolved TrainingConfig the worker runs.")
    pid: int | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    progress: Progress
    metrics: dict[str, Any] | None = Field(description="metrics.json once completed (docs/API.md, Job).")
    error: dict[str, Any] | None = Field(description="stage, error_type, error, traceback_tail, exit_code if failed.")
    stop_reason: str | None = Field(
        description="Why it was stopped or cancelled (one line: the training.stopped / training.cancelled reason)."
    )
    artifacts: Artifacts
    last_seq: int = Field(description="seq of this job's newest event (0: none).")
    sweep_id: str | None = Field(description="The sweep this job is a trial of (null: none).")
    trial: int | None = Field(description="Its trial number in that sweep (null: not a trial, or the final scoring).")

    @classmethod
    def from_record(cls, job: JobRecord, folder: Path) -> Job:
        """The API's view of a stored job whose files are in ``folder`` (artifacts: the files present now)."""

        def present(name: str) -> str | None:
            return str(folder / name) if (folder / name).exists() else None

        return cls(
            job_id=job.job_id,
            status=job.status,
            config=job.config,
            pid=job.pid,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            progress=job.progress,
            metrics=job.metrics,
            error=job.error,
            stop_reason=job.stop_reason,
            artifacts=Artifacts(
                dir=str(folder),
                model=present("model.pt"),
                metrics=present("metrics.json"),
                predictions=present("predictions.csv"),
                report=present("report.html"),
            ),
            last_seq=job.last_seq,
            sweep_id=job.sweep_id,
            trial=job.trial,
        )


class JobList(_Response):
    jobs: list[JobSummary]
    count: int = Field(description="Jobs in this page.")
    total: int = Field(0, description="Jobs matching the filters, over all pages.")
    offset: int = Field(0, description="The page's offset.")


class ForecastBar(_Response):
    """One bar's forecast: the candle's ``open_time`` and ``close``, the horizon's end (close time of bar t+h),
    the calibrated and raw p_up, the distribution's mu, sigma (nu) in log-return units, and the central
    50/80/95 % intervals (``"50" "80" "95"`` → ``[low, high]``) of the forward log return and of the price."""

    open_time: str
    timestamp: float
    close: float
    horizon_end: str
    p_up: float
    p_up_raw: float
    mu: float
    sigma: float
    nu: float | None
    return_intervals: dict[str, list[float]]
    price_intervals: dict[str, list[float]]


class PredictResult(_Response):
    """``POST /jobs/{job_id}/predict`` 200."""

    job_id: str
    symbol: str
    timeframe: str
    horizon: int
    distribution: str
    source: str = Field(description="Where the candles came from (dataset id, file, body.candles).")
    training_end: str | None = Field(description="Open time of the last candle the job trained on.")
    fallbacks: list[str] = Field(
        description="What this model forecasts with instead of its own parts, one sentence each: the base rate "
        "when its direction stack's gate was closed, an unconditional fit when the network lost its gate; empty "
        "when nothing fell back.")
    forecasts: list[ForecastBar]


class Comparison(_Response):
    """``GET /compare`` 200 (``trainer.comparison.compare_jobs``): per job id its config, key figures, pooled
    metrics, reliability diagram and PIT histogram; the config keys that differ; the pairwise DM tests."""

    jobs: list[str]
    configs: dict[str, dict[str, Any]]
    differences: dict[str, list[Any]]
    key_figures: dict[str, dict[str, Any] | None]
    metrics: dict[str, dict[str, Any]]
    reliability: dict[str, dict[str, Any] | None]
    pit: dict[str, list[float] | None]
    pairs: list[dict[str, Any]]


class RerunAccepted(StartAccepted):
    """``POST /jobs/{job_id}/rerun`` 202: the new job, and the dataset fingerprints compared."""

    rerun_of: str
    dataset_changed: bool | None = Field(description="null when the job recorded no fingerprint.")
    fingerprint: dict[str, Any] = Field(description="The dataset's fingerprint now.")


class StopAccepted(_Response):
    """``POST /jobs/{job_id}/stop`` and ``POST /stop_training`` 202."""

    status: Literal["stopping", "cancelled"]
    job_id: str


class Event(_Response):
    """One event (API.md's WebSocket table); type-specific keys ride along."""

    type: str
    seq: int
    job_id: str | None
    timestamp: float


class EventList(_Response):
    events: list[Event]
    last_seq: int = Field(description="seq of the last event returned (or `since` when none): the next `since`.")


class LogLines(_Response):
    lines: list[str]
    count: int
    requested: int


class Prediction(_Response):
    """One out-of-fold prediction (``predictions.csv`` row)."""

    timestamp: float | None = Field(description="Unix seconds of the bar whose forward return is predicted.")
    fold: int | None
    y: float | None
    mu: float | None
    sigma: float | None
    p_up: float | None
    p_up_raw: float | None


class PredictionList(_Response):
    job_id: str
    count: int
    columns: list[str]
    predictions: list[Prediction]


class Dataset(_Response):
    """One dataset a job can train on (a ``trainer.data.catalog`` entry; stored ones carry more keys)."""

    id: str = Field(description="Dataset id: SYMBOL-timeframe, or bundled:SYMBOL-timeframe.")
    symbol: str
    timeframe: str
    rows: int
    start: str | None
    end: str | None
    source: str | None
    path: str | None


class DatasetList(_Response):
    datasets: list[Dataset]


class ImportedDataset(_Response):
    """``POST /datasets/import`` 201: what ``candlecast import --json`` prints: the dataset's catalog entry after
    the import and the import report (rows read, kept, dropped and why, gaps, merge)."""

    dataset: Dataset
    report: dict[str, Any]


class ProblemError(_Response):
    loc: list[str]
    msg: str


class ProblemDetails(_Response):
    """Every error (RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemError] | None = None
