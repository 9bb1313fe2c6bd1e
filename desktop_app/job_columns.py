"""The Jobs tab's columns: what each shows of a ``GET /jobs?include=metrics`` entry, how it sorts, and where it sits in
the table (``LAYOUT``). Pure (no Dear PyGui), so the sorting and the layout are tested without a window.
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
    """``key`` (stable id), ``title`` (its full name), ``text(job)`` for the cell, ``sort(job)`` for ordering (None
    last) and ``label``, the table header's short name (the title when empty; the title is its tooltip)."""

    key: str
    title: str
    text: Callable[[dict[str, Any]], str]
    sort: Callable[[dict[str, Any]], Any]
    label: str = ""

    @property
    def header(self) -> str:
        """The name in the table's header."""
        return self.label or self.title


def _figure(job: dict[str, Any], key: str) -> Any:
    return (job.get("metrics") or {}).get(key)


def _signed(value: Any) -> str:
    return f"{value:+.2%}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "–"


def _plain(value: Any) -> str:
    return "–" if value is None or value == "" else str(value)


def _number_column(key: str, label: str, fmt: Callable[[Any], str]) -> Column:
    return Column(key, KEY_FIGURES[key], lambda j: fmt(_figure(j, key)), lambda j: _figure(j, key), label)


def _verdict_column(key: str, label: str) -> Column:
    return Column(key, KEY_FIGURES[key], lambda j: OUTCOME_TEXT.get(_figure(j, key), "–"),
                  lambda j: OUTCOME_RANK.get(_figure(j, key)), label)


def _field_column(key: str, title: str, label: str = "") -> Column:
    return Column(key, title, lambda j: _plain(j.get(key)), lambda j: j.get(key), label)


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
    _field_column("job_id", "Job id", "Job"),
    _field_column("status", "Status"),
    _field_column("symbol", "Symbol"),
    _field_column("timeframe", "Timeframe", "TF"),
    _field_column("horizon", "Horizon (bars)", "h"),
    _field_column("model", "Model (network and distribution)", "Model"),
    _verdict_column("direction", "Direction"),
    _verdict_column("distribution", "Distribution"),
    _number_column("crps_skill_garch", "CRPS", _signed),
    _number_column("brier_skill_conditional", "Brier", _signed),
    _number_column("log_loss_skill_conditional", "Log loss", _signed),
    _number_column("ece", "ECE", lambda v: f"{v:.4f}" if isinstance(v, (int, float)) else "–"),
    Column("duration_s", "Duration (training time)", _duration, job_duration_s, "Duration"),
    Column("created_at", "Created (UTC)", lambda j: _plain(j.get("created_at"))[:19].replace("T", " "),
           lambda j: j.get("created_at"), "Created"),
    Column("ended_because", "Why it ended", lambda j: _plain(ended_because(j)), ended_because),
)
BY_KEY = {c.key: c for c in COLUMNS}

#: The table's columns left to right (between the tick box and the Results/Log buttons): each one or two lines, each
#: line the ``COLUMNS`` keys whose texts it shows side by side (joined by ``JOIN``). Sixteen fields side by side
#: need about 1,400 pixels in the app's font; stacked in pairs they fit the default window's ~880. The last column
#: takes the width that is left, its text cut at a word to two lines (``cut_at_word``).
LAYOUT: tuple[tuple[tuple[str, ...], ...], ...] = (
    (("job_id",), ("created_at",)),
    (("status",), ("duration_s",)),
    (("symbol", "timeframe", "horizon"), ("model",)),
    (("direction",), ("distribution",)),
    (("crps_skill_garch",), ("ece",)),
    (("brier_skill_conditional",), ("log_loss_skill_conditional",)),
    (("ended_because",),),
)
JOIN = " · "
#: What ends a text cut short.
ELLIPSIS = "…"


def line_text(job: dict[str, Any], keys: tuple[str, ...]) -> str:
    """One line of a ``LAYOUT`` cell: the texts of ``keys`` for ``job``, joined by ``JOIN``."""
    return JOIN.join(BY_KEY[key].text(job) for key in keys)


def cut_at_word(text: str, fits: Callable[[str], bool]) -> str:
    """``text`` if ``fits(text)``, else its longest run of leading whole words followed by `` …`` that fits (a bare
    ``…`` when not even one word does). ``fits`` must be monotonic (a longer text never fits where a shorter did
    not), as a width or a number of wrapped lines is; it is called O(log words) times."""
    if fits(text):
        return text
    words = text.split()
    kept, most = 0, len(words) - 1  # how many words to keep: the largest that fits, found by bisection
    while kept < most:
        middle = (kept + most + 1) // 2
        if fits(" ".join(words[:middle]) + " " + ELLIPSIS):
            kept = middle
        else:
            most = middle - 1
    return " ".join(words[:kept]) + " " + ELLIPSIS if kept else ELLIPSIS


def sort_jobs(jobs: tuple[dict[str, Any], ...], key: str, descending: bool) -> list[dict[str, Any]]:
    """``jobs`` ordered by column ``key`` (missing values last in either direction; ties keep list order)."""
    column = BY_KEY[key]
    present = [j for j in jobs if column.sort(j) is not None]
    missing = [j for j in jobs if column.sort(j) is None]
    return sorted(present, key=column.sort, reverse=descending) + missing
