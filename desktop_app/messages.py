"""What flows into and out of the controller: messages (inputs) and effects (outputs), as frozen dataclasses.

Every message carries ``now``: the shell's monotonic clock in seconds (``time.monotonic()``), so the controller
never reads a clock itself and tests drive it with a fake one. Effects are plain descriptions of work; the shell
(``desktop_app.runtime``) performs them on background threads and reports each outcome back as a message, so a
network failure is handled in ``controller.update`` like any other input (the Elm architecture's ``Cmd``/``Msg``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


# ---------------------------------------------------------------- messages: the user


@dataclass(frozen=True)
class Tick:
    """The frame loop's heartbeat; timers (acknowledgement, polling, health, log refresh) fire on it."""

    now: float


@dataclass(frozen=True)
class StartClicked:
    """Start pressed with a validated request body (``TrainingConfig`` fields) and a fresh idempotency key."""

    now: float
    config: dict[str, Any]
    key: str


@dataclass(frozen=True)
class CancelClicked:
    """"Cancel start request" (while pending) or [Cancel] in the not-acknowledged dialog."""

    now: float


@dataclass(frozen=True)
class RetryClicked:
    """[Retry] in an error dialog: a new start request with the same parameters and a new key."""

    now: float
    key: str


@dataclass(frozen=True)
class StopClicked:
    """Stop (graceful) pressed while training runs."""

    now: float


@dataclass(frozen=True)
class DismissClicked:
    """The error dialog was closed."""

    now: float


@dataclass(frozen=True)
class LogsOpened:
    """The View Logs dialog opened; ``job_id`` None shows the backend log, else that job's worker log."""

    now: float
    job_id: str | None = None


@dataclass(frozen=True)
class LogsClosed:
    """The View Logs dialog closed: its 5 s refresh stops."""

    now: float


@dataclass(frozen=True)
class JobOpened:
    """A past job was picked in the Jobs list: show its results."""

    now: float
    job_id: str


@dataclass(frozen=True)
class JobsRefreshClicked:
    """Refresh the Jobs list."""

    now: float


@dataclass(frozen=True)
class ImportRequested:
    """Import data… chose a file: ``POST /datasets/import``."""

    now: float
    path: str
    symbol: str | None = None
    timeframe: str | None = None


@dataclass(frozen=True)
class FieldEdited:
    """The user changed the input of request field ``name``: the server's message about it no longer applies."""

    now: float
    name: str


@dataclass(frozen=True)
class ImportReportClosed:
    """The import report was read and closed."""

    now: float


# ---------------------------------------------------------------- messages: the network


@dataclass(frozen=True)
class Problem:
    """A failed request: ``status`` is the HTTP status, or None when the server could not be reached at all.

    ``title``/``detail`` come from the problem+json body (RFC 9457) or describe the network error; ``errors`` is
    the 422 field list as ``((field, message), …)``.
    """

    status: int | None
    title: str
    detail: str = ""
    errors: tuple[tuple[str, str], ...] = ()

    def line(self) -> str:
        """One line for the user: ``"409 Conflict: job already finished"`` or the network error."""
        head = f"{self.status} {self.title}" if self.status else self.title
        return f"{head}: {self.detail}" if self.detail and self.detail != self.title else head

    def plain(self) -> str:
        """The problem in the user's words: the server's ``detail`` (else its title) without the HTTP status
        (``"x.csv: no time column"``, not ``"422 Unprocessable Entity: x.csv: no time column"``); a network
        error as ``line()``."""
        return self.line() if self.status is None else (self.detail or self.title)


@dataclass(frozen=True)
class StartAnswered:
    """The outcome of one ``POST /start_training`` attempt (``job_id`` on 202, else ``problem``)."""

    now: float
    key: str
    attempt: int
    job_id: str | None = None
    problem: Problem | None = None


@dataclass(frozen=True)
class StopAnswered:
    """The outcome of ``POST /jobs/{id}/stop``: ``status`` is ``"stopping"``/``"cancelled"`` on 202."""

    now: float
    job_id: str
    status: str | None = None
    problem: Problem | None = None


@dataclass(frozen=True)
class JobPolled:
    """``GET /jobs/{id}`` answered (the polling fallback, and the check after a stop)."""

    now: float
    job_id: str
    job: dict[str, Any] | None = None
    problem: Problem | None = None


@dataclass(frozen=True)
class EventsPolled:
    """``GET /jobs/{id}/events?since=SEQ`` answered (the polling fallback while the WebSocket is down)."""

    now: float
    job_id: str
    events: tuple[dict[str, Any], ...] = ()
    problem: Problem | None = None


@dataclass(frozen=True)
class ServerEvent:
    """One message from the WebSocket: an API.md event (with ``seq``), ``hello``, ``ping`` or ``pong``."""

    now: float
    event: dict[str, Any]
    posted: float | None = None  # ``time.perf_counter()`` when queued: how long until it was drawn (frame stats)


@dataclass(frozen=True)
class WsChanged:
    """The WebSocket connection changed: ``"connected"``, ``"reconnecting"`` or ``"disconnected"``.

    ``retry_in_s`` is the back-off before the next attempt (None when connected).
    """

    now: float
    status: str
    detail: str = ""
    retry_in_s: float | None = None


@dataclass(frozen=True)
class HealthAnswered:
    """``GET /`` answered (``health`` body) or not (``problem``); ``wall_time`` is Unix seconds for "last ping"."""

    now: float
    wall_time: float
    health: dict[str, Any] | None = None
    problem: Problem | None = None


@dataclass(frozen=True)
class NextBarRefreshClicked:
    """Refresh on the Results tab's Next bar card: forecast the latest candle again."""

    now: float
    job_id: str


@dataclass(frozen=True)
class CompareClicked:
    """Compare in the Jobs tab with 2 to 4 jobs ticked."""

    now: float
    job_ids: tuple[str, ...]


@dataclass(frozen=True)
class CompareClosed:
    """The Compare window was closed."""

    now: float


@dataclass(frozen=True)
class NextBarLoaded:
    """``POST /jobs/{id}/predict`` answered: the latest candle's forecast (``ForecastBar`` plus the answer's
    ``training_end``, ``horizon``), or the problem."""

    now: float
    job_id: str
    forecast: dict[str, Any] | None = None
    problem: Problem | None = None


@dataclass(frozen=True)
class ComparisonLoaded:
    """``GET /compare`` answered."""

    now: float
    job_ids: tuple[str, ...]
    comparison: dict[str, Any] | None = None
    problem: Problem | None = None


@dataclass(frozen=True)
class JobsListed:
    """``GET /jobs`` answered."""

    now: float
    jobs: tuple[dict[str, Any], ...] = ()
    problem: Problem | None = None


@dataclass(frozen=True)
class ResultsLoaded:
    """A job's results: ``GET /jobs/{id}`` plus its predictions, already reduced to plot series.

    ``series`` holds equal-length float tuples keyed ``time``, ``p_up``, ``outcome`` (1.0 up, 0.0 not),
    ``p_up_mean`` and ``up_rate`` (rolling means), or is empty when the job has no predictions.
    """

    now: float
    job_id: str
    job: dict[str, Any] | None = None
    series: dict[str, tuple[float, ...]] = field(default_factory=dict)
    problem: Problem | None = None


@dataclass(frozen=True)
class LogTailLoaded:
    """``GET /status/log_tail`` (or a job's ``/log``) answered."""

    now: float
    job_id: str | None
    lines: tuple[str, ...] = ()
    path: str | None = None
    problem: Problem | None = None


@dataclass(frozen=True)
class DatasetsListed:
    """``GET /datasets`` answered."""

    now: float
    datasets: tuple[dict[str, Any], ...] = ()
    problem: Problem | None = None


@dataclass(frozen=True)
class ImportAnswered:
    """``POST /datasets/import`` answered: the imported dataset with its report, or a problem."""

    now: float
    path: str
    dataset: dict[str, Any] | None = None
    problem: Problem | None = None


# ---------------------------------------------------------------- effects


@dataclass(frozen=True)
class PostStart:
    """``POST /start_training`` with ``config`` and ``Idempotency-Key: key`` → ``StartAnswered``."""

    config: dict[str, Any]
    key: str
    attempt: int


@dataclass(frozen=True)
class StopJob:
    """``POST /jobs/{job_id}/stop`` → ``StopAnswered``."""

    job_id: str


@dataclass(frozen=True)
class PollJob:
    """``GET /jobs/{job_id}`` → ``JobPolled``."""

    job_id: str


@dataclass(frozen=True)
class PollEvents:
    """``GET /jobs/{job_id}/events?since=SEQ`` → ``EventsPolled``."""

    job_id: str
    since: int


@dataclass(frozen=True)
class CheckHealth:
    """``GET /`` → ``HealthAnswered``."""


@dataclass(frozen=True)
class ListJobs:
    """``GET /jobs`` → ``JobsListed``."""


@dataclass(frozen=True)
class LoadNextBar:
    """``POST /jobs/{job_id}/predict`` (latest candle) → ``NextBarLoaded``."""

    job_id: str


@dataclass(frozen=True)
class LoadComparison:
    """``GET /compare?jobs=…`` → ``ComparisonLoaded``."""

    job_ids: tuple[str, ...]


@dataclass(frozen=True)
class LoadResults:
    """``GET /jobs/{job_id}`` + ``/predictions?format=json`` → ``ResultsLoaded``."""

    job_id: str


@dataclass(frozen=True)
class LoadLogTail:
    """The last ``n`` log lines (backend log, or ``job_id``'s worker log) → ``LogTailLoaded``.

    ``with_path``: also find the worker log's file (``GET /jobs/{id}``'s ``artifacts.dir`` + ``worker.log``),
    asked for until the dialog knows it.
    """

    job_id: str | None
    n: int = 200
    with_path: bool = False


@dataclass(frozen=True)
class ListDatasets:
    """``GET /datasets`` → ``DatasetsListed``."""


@dataclass(frozen=True)
class ImportDataset:
    """``POST /datasets/import`` → ``ImportAnswered``."""

    path: str
    symbol: str | None = None
    timeframe: str | None = None


@dataclass(frozen=True)
class RememberParams:
    """Save the parameters of the last start in ``layout.json`` (a file write, so off the render thread)."""

    config: dict[str, Any]


Message = (
    Tick | StartClicked | CancelClicked | RetryClicked | StopClicked | DismissClicked | LogsOpened | LogsClosed
    | JobOpened | JobsRefreshClicked | ImportRequested | ImportReportClosed | StartAnswered | StopAnswered
    | JobPolled | EventsPolled | ServerEvent | WsChanged | HealthAnswered | JobsListed | ResultsLoaded
    | LogTailLoaded | DatasetsListed | ImportAnswered | NextBarRefreshClicked | CompareClicked | CompareClosed
    | NextBarLoaded | ComparisonLoaded
)
Effect = (
    PostStart | StopJob | PollJob | PollEvents | CheckHealth | ListJobs | LoadResults | LoadLogTail | ListDatasets
    | ImportDataset | RememberParams | LoadNextBar | LoadComparison
)
