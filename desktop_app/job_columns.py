"""The Jobs tab's columns: what each shows of a ``GET /jobs?include=metrics`` entry and how it sorts. Pure (no Dear
PyGui), so the sorting is tested without a window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from desktop_app.panels.results import job_duration_s
from trainer.key_figures import KEY_FIGURES

#: Headline verdict outcomes, best first (``trainer.verdicts.headline``), for sorting.
OUTCOME_RANK = {"beats_all": 0, "beats_some": 1, "no_skill": 2, "beats_none": 3}
OUTCOME_TEXT = {"beats_all": "beats all", "beats_some": "beats some", "no_skill": "no skill", "beats_none": "beats none"}


@dataclass(frozen=True)
class Column:
    """``key`` (stable id), ``title``, ``text(job)`` for the cell and ``sort(job)`` for ordering (None last)."""

    key: str
    title: str
    text: Callable[[dict[str, Any]], str]
    sort: Callable[[dict[str, Any]], Any]


def _figure(job: dict[str, Any], key: str) -> Any:
    return (job.get("metrics") or {}).get(key)


def _signed(value: Any) -> str:
    return f"{value:+.2%}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "–"


def _plain(value: Any) -> str:
    return "–" if value is None or value == "" else str(value)


def _number_column(key: str, title: str, fmt: Callable[[Any], str]) -> Column:
    return Column(key, title, lambda j: fmt(_figure(j, key)), lambda j: _figure(j, key))


def _verdict_column(key: str, title: str) -> Column:
    return Column(key, title, lambda j: OUTCOME_TEXT.get(_figure(j, key), "–"),
                  lambda j: OUTCOME_RANK.get(_figure(j, key)))


def _field_column(key: str, title: str) -> Column:
    return Column(key, title, lambda j: _plain(j.get(key)), lambda j: j.get(key))


def ended_because(job: dict[str, Any]) -> str | None:
    """Why a job ended short of completing: its failure's one line, or the reason it was stopped or cancelled
    (``stop_reason``). ``job`` is a ``JobSummary`` (``error`` a string) or a ``Job`` (``error`` the failure record)."""
    error = job.get("error")
    if isinstance(error, dict):
        error = error.get("error")
    return error or job.get("stop_reason")


def _duration(job: dict[str, Any]) -> str:
    value = job_duration_s(job)
    return "–" if value is None else f"{value:.0f} s"


COLUMNS: tuple[Column, ...] = (
    _field_column("job_id", "Job"),
    _field_column("status", "Status"),
    _field_column("symbol", "Symbol"),
    _field_column("timeframe", "TF"),
    _field_column("horizon", "h"),
    _field_column("model", "Model"),
    _verdict_column("direction", "Direction"),
    _verdict_column("distribution", "Distribution"),
    _number_column("crps_skill_garch", KEY_FIGURES["crps_skill_garch"], _signed),
    _number_column("brier_skill_conditional", KEY_FIGURES["brier_skill_conditional"], _signed),
    _number_column("log_loss_skill_conditional", KEY_FIGURES["log_loss_skill_conditional"], _signed),
    _number_column("ece", "ECE", lambda v: f"{v:.4f}" if isinstance(v, (int, float)) else "–"),
    Column("duration_s", "Duration", _duration, job_duration_s),
    Column("created_at", "Created (UTC)", lambda j: _plain(j.get("created_at"))[:19].replace("T", " "),
           lambda j: j.get("created_at")),
    Column("ended_because", "Why it ended", lambda j: _plain(ended_because(j)), ended_because),
)
BY_KEY = {c.key: c for c in COLUMNS}


def sort_jobs(jobs: tuple[dict[str, Any], ...], key: str, descending: bool) -> list[dict[str, Any]]:
    """``jobs`` ordered by column ``key`` (missing values last in either direction; ties keep list order)."""
    column = BY_KEY[key]
    present = [j for j in jobs if column.sort(j) is not None]
    missing = [j for j in jobs if column.sort(j) is None]
    return sorted(present, key=column.sort, reverse=descending) + missing
