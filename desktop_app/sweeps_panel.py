"""The Sweeps tab's state machine: pure, no GUI and no I/O (like ``desktop_app.controller``, for one panel).

``update(panel, message) -> (panel, effects)``. The tab's form has one text per training option (``draft``): empty
keeps the option fixed (the form's value), ``a, b, c`` tries those choices, ``low .. high`` (``log`` after it for a
log scale) searches a range. ``request_from_draft`` turns it into a ``SweepRequest`` (the server's schema), so a
bad space is one line under the form before anything is sent. Effects are values the tab's runtime performs over
HTTP (``ListSweeps``, ``LoadSweep``, ``PostSweep``, ``StopSweep``, ``LoadImportance``); their outcomes come back as
messages. While the shown sweep runs, a ``Tick`` every ``POLL_S`` loads it again: the trials table and the best-so-far
plot are live. The parameter importance (``GET /sweeps/{id}/importance``) is asked again whenever a load shows a new
count of complete trials (a trial completed, or another sweep is shown), so it is never polled for nothing.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from trainer.sweep_space import RESERVED, SweepRequest

#: Seconds between two loads of a running sweep.
POLL_S = 2.0
_RANGE = re.compile(r"^\s*(\S+)\s*\.\.\s*(\S+?)\s*(\blog\b)?\s*$")


# ---- effects ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListSweeps:
    pass


@dataclass(frozen=True)
class LoadSweep:
    sweep_id: str


@dataclass(frozen=True)
class PostSweep:
    body: dict[str, Any]
    idempotency_key: str


@dataclass(frozen=True)
class StopSweep:
    sweep_id: str


@dataclass(frozen=True)
class LoadImportance:
    sweep_id: str


Effect = ListSweeps | LoadSweep | PostSweep | StopSweep | LoadImportance


# ---- messages -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    """The tab was shown (or Refresh pressed)."""


@dataclass(frozen=True)
class DraftEdited:
    name: str
    text: str


@dataclass(frozen=True)
class StartPressed:
    """Start with ``base`` (the form's training options), ``trials``, ``parallel`` and ``ray_address`` ("": local)."""

    base: dict[str, Any]
    trials: int
    parallel: int
    ray_address: str


@dataclass(frozen=True)
class StopPressed:
    pass


@dataclass(frozen=True)
class Selected:
    sweep_id: str


@dataclass(frozen=True)
class Listed:
    sweeps: tuple[dict[str, Any], ...] = ()
    problem: str | None = None


@dataclass(frozen=True)
class Loaded:
    sweep_id: str
    sweep: dict[str, Any] | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Answered:
    """The answer to ``PostSweep`` (the new ``sweep_id``) or ``StopSweep`` (None), or its ``problem``."""

    sweep_id: str | None = None
    problem: str | None = None


@dataclass(frozen=True)
class ImportanceLoaded:
    """The answer to ``LoadImportance`` (``GET /sweeps/{id}/importance``) or its ``problem``."""

    sweep_id: str
    importance: dict[str, Any] | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Tick:
    now: float


Message = (Opened | DraftEdited | StartPressed | StopPressed | Selected | Listed | Loaded | Answered
           | ImportanceLoaded | Tick)


# ---- state --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Panel:
    """``draft``: option → its text in the form; ``sweeps``: ``GET /sweeps``; ``selected``/``sweep``: the sweep
    shown and its ``GET /sweeps/{id}``; ``problem``: the one line under the form; ``busy``: a start/stop is in
    flight; ``loading``: a load is in flight; ``last_load``: the ``Tick`` time of the last load; ``importance``:
    the shown sweep's last ``GET /sweeps/{id}/importance`` (or None), ``importance_problem`` why the last one failed,
    ``importance_asked``: ``(sweep_id, complete trials)`` when it was last asked for."""

    draft: dict[str, str] = field(default_factory=dict)
    sweeps: tuple[dict[str, Any], ...] = ()
    selected: str | None = None
    sweep: dict[str, Any] | None = None
    problem: str | None = None
    busy: bool = False
    loading: bool = False
    last_load: float = 0.0
    importance: dict[str, Any] | None = None
    importance_problem: str | None = None
    importance_asked: tuple[str, int] | None = None


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _scalar(text: str) -> Any:
    text = text.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return _number(text)
    except ValueError:
        return text


def space_from_draft(draft: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The ``space`` of a ``SweepRequest`` from the form's texts (see the module doc); empty texts are left out.
    Raises ``ValueError`` naming the option for a range whose ends are not numbers."""
    space: dict[str, dict[str, Any]] = {}
    for name, text in draft.items():
        if not text.strip():
            continue
        found = _RANGE.match(text)
        if found:
            try:
                low, high = _number(found.group(1)), _number(found.group(2))
            except ValueError:
                raise ValueError(f"{name}: a range is 'low .. high' with numbers (got {text!r})") from None
            space[name] = {"low": low, "high": high, "log": bool(found.group(3))}
        else:
            space[name] = {"choices": [_scalar(part) for part in text.split(",") if part.strip()]}
    return space


def request_from_draft(
    draft: dict[str, str], base: dict[str, Any], trials: int, parallel: int, ray_address: str
) -> SweepRequest | str:
    """The ``SweepRequest`` of the form, or the one line that says what is wrong (nothing is sent then).
    ``base`` drops the searched options and ``final_holdout`` (the sweep sets it)."""
    try:
        space = space_from_draft(draft)
    except ValueError as exc:
        return str(exc)
    if not space:
        return "give choices (a, b, c) or a range (low .. high) for at least one option"
    fixed = {k: v for k, v in base.items() if k not in space and k not in RESERVED and v is not None}
    try:
        return SweepRequest(space=space, base=fixed, trials=trials, parallel=parallel,
                            ray_address=ray_address.strip() or None)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where + ': ' if where else ''}{first['msg'].removeprefix('Value error, ')}"


def running(panel: Panel) -> bool:
    return panel.sweep is not None and panel.sweep.get("status") == "running"


def update(panel: Panel, message: Message) -> tuple[Panel, tuple[Effect, ...]]:
    """One step of the tab's state machine."""
    if isinstance(message, Opened):  # (Refresh also asks for the importance again, e.g. after a 503)
        effects: tuple[Effect, ...] = (ListSweeps(),)
        return replace(panel, importance_asked=None), effects + ((LoadSweep(panel.selected),) if panel.selected else ())
    if isinstance(message, DraftEdited):
        return replace(panel, draft={**panel.draft, message.name: message.text}, problem=None), ()
    if isinstance(message, StartPressed):
        if panel.busy:
            return panel, ()
        request = request_from_draft(panel.draft, message.base, message.trials, message.parallel, message.ray_address)
        if isinstance(request, str):
            return replace(panel, problem=request), ()
        body = request.model_dump(mode="json", exclude_none=True)
        return replace(panel, busy=True, problem=None), (PostSweep(body, str(uuid.uuid4())),)
    if isinstance(message, StopPressed):
        if panel.busy or not running(panel):
            return panel, ()
        return replace(panel, busy=True), (StopSweep(panel.sweep["sweep_id"]),)
    if isinstance(message, Answered):
        panel = replace(panel, busy=False, problem=message.problem)
        if message.problem is not None:
            return panel, ()
        selected = message.sweep_id or panel.selected
        return replace(panel, selected=selected), (ListSweeps(),) + ((LoadSweep(selected),) if selected else ())
    if isinstance(message, Selected):
        panel = replace(panel, selected=message.sweep_id, sweep=None, importance=None, importance_problem=None,
                        importance_asked=None)
        return panel, (LoadSweep(message.sweep_id),)
    if isinstance(message, Listed):
        if message.problem is not None:
            return replace(panel, problem=message.problem), ()
        panel = replace(panel, sweeps=message.sweeps)
        if panel.selected is None and message.sweeps:  # show the newest sweep until the user picks one
            newest = message.sweeps[0]["sweep_id"]
            return replace(panel, selected=newest), (LoadSweep(newest),)
        return panel, ()
    if isinstance(message, Loaded):
        panel = replace(panel, loading=False)
        if message.sweep_id != panel.selected:
            return panel, ()  # an answer for a sweep no longer shown
        if message.problem is not None:
            return replace(panel, problem=message.problem), ()
        ended = running(panel) and message.sweep is not None and message.sweep.get("status") != "running"
        panel = replace(panel, sweep=message.sweep)
        effects = (ListSweeps(),) if ended else ()
        asked = (message.sweep_id, complete_trials(message.sweep))
        if asked[1] > 0 and asked != panel.importance_asked:
            panel = replace(panel, importance_asked=asked)
            effects += (LoadImportance(message.sweep_id),)
        return panel, effects
    if isinstance(message, ImportanceLoaded):
        if message.sweep_id != panel.selected:
            return panel, ()
        if message.problem is not None:  # the last importance stays shown, with why it was not renewed
            return replace(panel, importance_problem=message.problem), ()
        return replace(panel, importance=message.importance, importance_problem=None), ()
    if isinstance(message, Tick):
        if running(panel) and not panel.loading and message.now - panel.last_load >= POLL_S:
            poll = LoadSweep(panel.sweep["sweep_id"])  # type: ignore[index]  # running(panel): a sweep is shown
            return replace(panel, loading=True, last_load=message.now), (poll,)
        return panel, ()
    raise TypeError(f"not a Sweeps tab message: {message!r}")


def complete_trials(sweep: dict[str, Any] | None) -> int:
    """How many of a sweep's trials are complete (have a value)."""
    return sum(t.get("state") == "complete" for t in (sweep or {}).get("trials", []))


def importance_rows(importance: dict[str, Any] | None) -> list[tuple[str, float]]:
    """``(option, share)`` of an importance answer, most important first (JSON objects keep no order)."""
    shares = (importance or {}).get("importances") or {}
    return sorted(((name, float(share)) for name, share in shares.items()), key=lambda row: (-row[1], row[0]))


def best_so_far(sweep: dict[str, Any] | None) -> tuple[list[float], list[float]]:
    """The best-so-far curve of a sweep: trial numbers of its complete trials and the best value up to each."""
    xs: list[float] = []
    ys: list[float] = []
    best = None
    for trial in sorted((sweep or {}).get("trials", []), key=lambda t: t["number"]):
        if trial.get("state") == "complete" and trial.get("value") is not None:
            best = trial["value"] if best is None else min(best, trial["value"])
            xs.append(float(trial["number"]))
            ys.append(float(best))
    return xs, ys
