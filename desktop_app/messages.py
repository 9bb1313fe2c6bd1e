"""What flows into and out of the controller: messages (inputs) and effects (outputs), as frozen dataclasses.

Every message carries ``now``: the shell's monotonic clock in seconds (``time.monotonic()``), so the controller
never reads a clock itself and tests drive it with a fake one. Effects are plain descriptions of work; the shell
(``desktop_app.runtime``) performs them on background threads and reports each outcome back as a message, so a
network failure is handled in ``controller.update`` like any other input (the Elm architecture's ``Cmd``/``Msg``).

The bases carry what every one of a kind shares (``Message.now``, ``Answer.problem``, ``JobEffect.job_id``); a
subclass without fields of its own needs no ``@dataclass`` (it inherits the base's, frozen, and compares unequal to
any other class).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: How the API asks for a request field (``embedded_server.datasets._refusal``): a dialog names its own field.
_REQUEST_FIELD = re.compile(r" in the request's (?P<field>\w+) field$")


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

    def in_form(self, labels: dict[str, str]) -> str:
        """``plain()`` for a dialog: a request field the server asks to fill (``"... in the request's symbol
        field"``, ``embedded_server.datasets``) named as the dialog's field labelled ``labels[field]``."""
        text = self.plain()
        match = _REQUEST_FIELD.search(text)
        if match is None or match["field"] not in labels:
            return text
        return f"{text[: match.start()]} in the {labels[match['field']]} field above"

    def plain(self) -> str:
        """The problem in the user's words: the server's ``detail`` (else its title) without the HTTP status
        (``"x.csv: no time column"``, not ``"422 Unprocessable Entity: x.csv: no time column"``); a network
        error as ``line()``."""
        return self.line() if self.status is None else (self.detail or self.title)


@dataclass(frozen=True)
class Message:
    """An input of the controller; ``now`` is the shell's monotonic clock (seconds) when it was made."""

    now: float


@dataclass(frozen=True, kw_only=True)
class Answer(Message):
    """The outcome of one effect: its body's fields, or ``problem`` (keyword only) when the request failed."""

    problem: Problem | None = None


@dataclass(frozen=True)
class Effect:
    """Work the controller asks for; the runtime performs it and answers with a message (``runtime.ENDPOINTS``)."""


@dataclass(frozen=True)
class JobEffect(Effect):
    """An effect on one job, ``job_id``."""

    job_id: str


# ---------------------------------------------------------------- messages: the user


class Tick(Message):
    """The frame loop's heartbeat; timers (acknowledgement, polling, health, log refresh) fire on it."""


@dataclass(frozen=True)
class StartClicked(Message):
    """Start pressed with a validated request body (``TrainingConfig`` fields) and a fresh idempotency key."""

    config: dict[str, Any]
    key: str


class CancelClicked(Message):
    """"Cancel start request" (while pending) or [Cancel] in the not-acknowledged dialog."""


@dataclass(frozen=True)
class RetryClicked(Message):
    """[Retry] in an error dialog: a new start request with the same parameters and a new key."""

    key: str


class StopClicked(Message):
    """Stop (graceful) pressed while training runs."""


class DismissClicked(Message):
    """The error dialog was closed."""


@dataclass(frozen=True)
class LogsOpened(Message):
    """The View Logs dialog opened; ``job_id`` None shows the backend log, else that job's worker log."""

    job_id: str | None = None


class LogsClosed(Message):
    """The View Logs dialog closed: its 5 s refresh stops."""


@dataclass(frozen=True)
class JobOpened(Message):
    """A past job was picked in the Jobs list: show its results."""

    job_id: str


class JobsRefreshClicked(Message):
    """Refresh the Jobs list."""


@dataclass(frozen=True)
class ImportRequested(Message):
    """Import data… chose a file: ``POST /datasets/import``."""

    path: str
    symbol: str | None = None
    timeframe: str | None = None


@dataclass(frozen=True)
class FieldEdited(Message):
    """The user changed the input of request field ``name``: the server's message about it no longer applies."""

    name: str


class ImportReportClosed(Message):
    """The import report was read and closed."""


# ---------------------------------------------------------------- messages: the network


@dataclass(frozen=True)
class StartAnswered(Answer):
    """The outcome of one ``POST /start_training`` attempt (``job_id`` on 202, else ``problem``)."""

    key: str
    attempt: int
    job_id: str | None = None


@dataclass(frozen=True)
class StopAnswered(Answer):
    """The outcome of ``POST /jobs/{id}/stop``: ``status`` is ``"stopping"``/``"cancelled"`` on 202."""

    job_id: str
    status: str | None = None


@dataclass(frozen=True)
class JobPolled(Answer):
    """``GET /jobs/{id}`` answered (the polling fallback, and the check after a stop)."""

    job_id: str
    job: dict[str, Any] | None = None


@dataclass(frozen=True)
class EventsPolled(Answer):
    """``GET /jobs/{id}/events?since=SEQ`` answered (the polling fallback while the WebSocket is down)."""

    job_id: str
    events: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class ServerEvent(Message):
    """One message from the WebSocket: an API.md event (with ``seq``), ``hello``, ``ping`` or ``pong``."""

    event: dict[str, Any]
    posted: float | None = None  # ``time.perf_counter()`` when queued: how long until it was drawn (frame stats)


@dataclass(frozen=True)
class WsChanged(Message):
    """The WebSocket connection changed: ``"connected"``, ``"reconnecting"`` or ``"disconnected"``.

    ``retry_in_s`` is the back-off before the next attempt (None when connected).
    """

    status: str
    detail: str = ""
    retry_in_s: float | None = None


@dataclass(frozen=True)
class HealthAnswered(Answer):
    """``GET /`` answered (``health`` body) or not (``problem``); ``wall_time`` is Unix seconds for "last ping"."""

    wall_time: float
    health: dict[str, Any] | None = None


@dataclass(frozen=True)
class NextBarRefreshClicked(Message):
    """Refresh on the Results tab's Next bar card: forecast the latest candle again."""

    job_id: str


@dataclass(frozen=True)
class CompareClicked(Message):
    """Compare in the Jobs tab with 2 to 4 jobs ticked."""

    job_ids: tuple[str, ...]


class CompareClosed(Message):
    """The Compare window was closed."""


@dataclass(frozen=True)
class NextBarLoaded(Answer):
    """``POST /jobs/{id}/predict`` answered: the latest candle's forecast (``ForecastBar`` plus the answer's
    ``training_end``, ``horizon``), or the problem."""

    job_id: str
    forecast: dict[str, Any] | None = None


@dataclass(frozen=True)
class ComparisonLoaded(Answer):
    """``GET /compare`` answered."""

    job_ids: tuple[str, ...]
    comparison: dict[str, Any] | None = None


@dataclass(frozen=True)
class JobsListed(Answer):
    """``GET /jobs`` answered."""

    jobs: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class ResultsLoaded(Answer):
    """A job's results: ``GET /jobs/{id}`` plus its predictions, already reduced to plot series.

    ``series`` holds equal-length float tuples keyed ``time``, ``p_up``, ``outcome`` (1.0 up, 0.0 not),
    ``p_up_mean`` and ``up_rate`` (rolling means), or is empty when the job has no predictions.
    """

    job_id: str
    job: dict[str, Any] | None = None
    series: dict[str, tuple[float, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class LogTailLoaded(Answer):
    """``GET /status/log_tail`` (or a job's ``/log``) answered."""

    job_id: str | None
    lines: tuple[str, ...] = ()
    path: str | None = None


@dataclass(frozen=True)
class DatasetsListed(Answer):
    """``GET /datasets`` answered."""

    datasets: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class ImportAnswered(Answer):
    """``POST /datasets/import`` answered: the imported dataset with its report, or a problem."""

    path: str
    dataset: dict[str, Any] | None = None


# ---------------------------------------------------------------- effects


@dataclass(frozen=True)
class PostStart(Effect):
    """``POST /start_training`` with ``config`` and ``Idempotency-Key: key`` → ``StartAnswered``."""

    config: dict[str, Any]
    key: str
    attempt: int


class StopJob(JobEffect):
    """``POST /jobs/{job_id}/stop`` → ``StopAnswered``."""


class PollJob(JobEffect):
    """``GET /jobs/{job_id}`` → ``JobPolled``."""


@dataclass(frozen=True)
class PollEvents(JobEffect):
    """``GET /jobs/{job_id}/events?since=SEQ`` → ``EventsPolled``."""

    since: int


class CheckHealth(Effect):
    """``GET /`` → ``HealthAnswered``."""


class ListJobs(Effect):
    """``GET /jobs`` → ``JobsListed``."""


class LoadNextBar(JobEffect):
    """``POST /jobs/{job_id}/predict`` (latest candle) → ``NextBarLoaded``."""


@dataclass(frozen=True)
class LoadComparison(Effect):
    """``GET /compare?jobs=…`` → ``ComparisonLoaded``."""

    job_ids: tuple[str, ...]


class LoadResults(JobEffect):
    """``GET /jobs/{job_id}`` + ``/predictions?format=json`` → ``ResultsLoaded``."""


@dataclass(frozen=True)
class LoadLogTail(Effect):
    """The last ``n`` log lines (backend log, or ``job_id``'s worker log) → ``LogTailLoaded``.

    ``with_path``: also find the worker log's file (``GET /jobs/{id}``'s ``artifacts.dir`` + ``worker.log``),
    asked for until the dialog knows it.
    """

    job_id: str | None
    n: int = 200
    with_path: bool = False


class ListDatasets(Effect):
    """``GET /datasets`` → ``DatasetsListed``."""


@dataclass(frozen=True)
class ImportDataset(Effect):
    """``POST /datasets/import`` → ``ImportAnswered``."""

    path: str
    symbol: str | None = None
    timeframe: str | None = None


@dataclass(frozen=True)
class RememberParams(Effect):
    """Save the parameters of the last start in ``layout.json`` (a file write, so off the render thread)."""

    config: dict[str, Any]


# ---------------------------------------------------------------- the Sweeps tab (``panels.sweeps``)


class SweepsRefreshClicked(Message):
    """Refresh on the Sweeps tab: list the sweeps again, load the shown one and ask its importance again."""


@dataclass(frozen=True)
class SweepDraftEdited(Message):
    """The search text of training option ``name`` changed (empty: fixed; ``a, b``: choices; ``low .. high``)."""

    name: str
    text: str


@dataclass(frozen=True)
class SweepStartClicked(Message):
    """Start sweep pressed: ``base`` is the control panel's valid options, ``ray_address`` "" for this machine,
    ``key`` a fresh idempotency key."""

    base: dict[str, Any]
    trials: int
    parallel: int
    ray_address: str
    key: str


class SweepStopClicked(Message):
    """Stop pressed on the Sweeps tab (the shown sweep)."""


@dataclass(frozen=True)
class SweepPicked(Message):
    """Another sweep was picked in the tab's list."""

    sweep_id: str


@dataclass(frozen=True)
class SweepsListed(Answer):
    """``GET /sweeps`` answered (newest first)."""

    sweeps: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class SweepLoaded(Answer):
    """``GET /sweeps/{id}`` answered."""

    sweep_id: str
    sweep: dict[str, Any] | None = None


@dataclass(frozen=True)
class SweepStartAnswered(Answer):
    """``POST /sweeps`` answered: the new ``sweep_id`` on 202, else ``problem``."""

    key: str
    sweep_id: str | None = None


@dataclass(frozen=True)
class SweepStopAnswered(Answer):
    """``POST /sweeps/{id}/stop`` answered: ``status`` is ``"stopping"`` on 202."""

    sweep_id: str
    status: str | None = None


@dataclass(frozen=True)
class SweepImportanceLoaded(Answer):
    """``GET /sweeps/{id}/importance`` answered (``SweepImportance``)."""

    sweep_id: str
    importance: dict[str, Any] | None = None


class ListSweeps(Effect):
    """``GET /sweeps`` → ``SweepsListed``."""


@dataclass(frozen=True)
class LoadSweep(Effect):
    """``GET /sweeps/{sweep_id}`` → ``SweepLoaded``."""

    sweep_id: str


@dataclass(frozen=True)
class PostSweep(Effect):
    """``POST /sweeps`` with ``body`` (a ``SweepRequest``) and ``Idempotency-Key: key`` → ``SweepStartAnswered``."""

    body: dict[str, Any]
    key: str


@dataclass(frozen=True)
class StopSweep(Effect):
    """``POST /sweeps/{sweep_id}/stop`` → ``SweepStopAnswered``."""

    sweep_id: str


@dataclass(frozen=True)
class LoadSweepImportance(Effect):
    """``GET /sweeps/{sweep_id}/importance`` → ``SweepImportanceLoaded``."""

    sweep_id: str
