"""The Sweeps tab (issue 14): its slice is ``State.sweeps``.

The tab's form has one text per training option (``draft``): empty keeps the option fixed (the control panel's
value), ``a, b, c`` tries those choices, ``low .. high`` (``log`` after it for a log scale) searches a range.
``request_from_draft`` turns it into a ``SweepRequest`` (the server's schema), so a bad space is one line under the
form before anything is sent. The shown sweep follows the server live: its ``sweep.*`` events (also a sweep started
elsewhere, e.g. by ``candlecast sweep``, is shown when the shown one is not running) load it again, and while it
runs a ``Tick`` every ``POLL_S`` does too (a trial's start sends no sweep event), so the trials table and the
best-so-far plot are live. The parameter importance (``GET /sweeps/{id}/importance``) is asked again whenever a
load shows a new count of complete trials (a trial completed, or another sweep is shown), never polled for nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from desktop_app import messages as m
from desktop_app.panels import Effects, Reducer, on_slice
from trainer.events import EventType
from trainer.sweep_space import RESERVED, SweepRequest

#: Seconds between two loads of a running sweep.
POLL_S = 2.0
_RANGE = re.compile(r"^\s*(\S+)\s*\.\.\s*(\S+?)\s*(\blog\b)?\s*$")
#: The server events that change a sweep's list entry or its trials.
SWEEP_EVENTS = frozenset(kind.value for kind in (
    EventType.SWEEP_STARTED, EventType.SWEEP_TRIAL_COMPLETED, EventType.SWEEP_COMPLETED, EventType.SWEEP_FAILED,
    EventType.SWEEP_STOPPED))


@dataclass(frozen=True)
class Sweeps:
    """``draft``: option → its text in the form; ``sweeps``: ``GET /sweeps``; ``selected``/``sweep``: the sweep
    shown and its ``GET /sweeps/{id}``; ``problem``: the one line under the form; ``busy``: a start/stop is in
    flight; ``loading``: a load is in flight; ``last_load``: the clock (s) of the last load; ``importance``: the
    shown sweep's last ``GET /sweeps/{id}/importance`` (or None), ``importance_problem`` why the last one failed,
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


# ---- the form -----------------------------------------------------------------------------------------------------


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


# ---- what the view draws ------------------------------------------------------------------------------------------


def running(panel: Sweeps) -> bool:
    """Whether the shown sweep is running (Stop enabled, polled)."""
    return panel.sweep is not None and panel.sweep.get("status") == "running"


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


def searched(sweep: dict[str, Any] | None) -> list[str]:
    """The options a sweep searches, in its space's order: those whose dimension (``request.space``) can take more
    than one value (a range of ``low < high``, two or more distinct choices), then any other whose value differs
    between its trials (a resumed sweep's older space)."""
    sweep = sweep or {}
    space = (sweep.get("request") or {}).get("space") or {}
    names = [name for name, dim in space.items()
             if ("choices" in dim and len({repr(c) for c in dim["choices"]}) > 1)
             or ("low" in dim and dim["low"] != dim["high"])]
    values: dict[str, set[str]] = {}
    for trial in sweep.get("trials", []):
        for name, value in (trial.get("params") or {}).items():
            values.setdefault(name, set()).add(repr(value))
    return names + [name for name, seen in values.items() if len(seen) > 1 and name not in names]


def params_text(params: dict[str, Any], first: list[str], sep: str = ", ") -> str:
    """A trial's ``params`` as ``name=value`` joined by ``sep``: the ``first`` options (``searched``) ahead of the
    rest, each in its own order (values as ``short`` writes them)."""
    names = [n for n in first if n in params] + [n for n in params if n not in first]
    return sep.join(f"{n}={short(params[n])}" for n in names)


def short(value: Any) -> str:
    """A trial's value or parameter as shown: a float to 5 significant digits, anything else as ``str``."""
    return f"{value:.5g}" if isinstance(value, float) else str(value)


def best_job(sweep: dict[str, Any] | None) -> str | None:
    """The job "Open best job" shows: the final job once there is one, else the best trial's job (None: no best)."""
    sweep = sweep or {}
    final = (sweep.get("final") or {}).get("final_job_id")
    best = sweep.get("best") or {}
    trial = next((t.get("job_id") for t in sweep.get("trials", []) if t["number"] == best.get("trial")), None)
    return final or trial


# ---- reducers -----------------------------------------------------------------------------------------------------


def _load(panel: Sweeps, sweep_id: str, now: float) -> tuple[Sweeps, Effects]:
    return replace(panel, loading=True, last_load=now), (m.LoadSweep(sweep_id),)


def on_refresh(panel: Sweeps, msg: m.SweepsRefreshClicked) -> tuple[Sweeps, Effects]:
    panel = replace(panel, importance_asked=None)  # (Refresh also asks for the importance again, e.g. after a 503)
    if panel.selected is None:
        return panel, (m.ListSweeps(),)
    panel, load = _load(panel, panel.selected, msg.now)
    return panel, (m.ListSweeps(), *load)


def on_draft_edited(panel: Sweeps, msg: m.SweepDraftEdited) -> tuple[Sweeps, Effects]:
    return replace(panel, draft={**panel.draft, msg.name: msg.text}, problem=None), ()


def on_start(panel: Sweeps, msg: m.SweepStartClicked) -> tuple[Sweeps, Effects]:
    if panel.busy:
        return panel, ()
    request = request_from_draft(panel.draft, msg.base, msg.trials, msg.parallel, msg.ray_address)
    if isinstance(request, str):
        return replace(panel, problem=request), ()
    body = request.model_dump(mode="json", exclude_none=True)
    return replace(panel, busy=True, problem=None), (m.PostSweep(body, msg.key),)


def on_stop(panel: Sweeps, msg: m.SweepStopClicked) -> tuple[Sweeps, Effects]:
    if panel.busy or not running(panel):
        return panel, ()
    return replace(panel, busy=True), (m.StopSweep(panel.sweep["sweep_id"]),)  # type: ignore[index]  # running


def _answered(panel: Sweeps, problem: m.Problem | None, sweep_id: str | None, now: float) -> tuple[Sweeps, Effects]:
    panel = replace(panel, busy=False, problem=problem.line() if problem else None)
    if problem is not None:
        return panel, ()
    selected = sweep_id or panel.selected
    if selected is None:
        return panel, (m.ListSweeps(),)
    panel, load = _load(replace(panel, selected=selected), selected, now)
    return panel, (m.ListSweeps(), *load)


def on_start_answered(panel: Sweeps, msg: m.SweepStartAnswered) -> tuple[Sweeps, Effects]:
    if msg.problem is None and msg.sweep_id != panel.selected:
        panel = _shown(panel, msg.sweep_id)
    return _answered(panel, msg.problem, msg.sweep_id, msg.now)


def on_stop_answered(panel: Sweeps, msg: m.SweepStopAnswered) -> tuple[Sweeps, Effects]:
    return _answered(panel, msg.problem, None, msg.now)


def _shown(panel: Sweeps, sweep_id: str | None) -> Sweeps:
    """Show ``sweep_id`` instead: the last one's trials and importance go."""
    return replace(panel, selected=sweep_id, sweep=None, importance=None, importance_problem=None,
                   importance_asked=None)


def on_picked(panel: Sweeps, msg: m.SweepPicked) -> tuple[Sweeps, Effects]:
    return _load(_shown(panel, msg.sweep_id), msg.sweep_id, msg.now)


def on_listed(panel: Sweeps, msg: m.SweepsListed) -> tuple[Sweeps, Effects]:
    if msg.problem is not None:
        return replace(panel, problem=msg.problem.line()), ()
    panel = replace(panel, sweeps=msg.sweeps)
    if panel.selected is None and msg.sweeps:  # show the newest sweep until the user picks one
        newest = msg.sweeps[0]["sweep_id"]
        return _load(replace(panel, selected=newest), newest, msg.now)
    return panel, ()


def on_loaded(panel: Sweeps, msg: m.SweepLoaded) -> tuple[Sweeps, Effects]:
    panel = replace(panel, loading=False)
    if msg.sweep_id != panel.selected:
        return panel, ()  # an answer for a sweep no longer shown
    if msg.problem is not None:
        return replace(panel, problem=msg.problem.line()), ()
    ended = running(panel) and msg.sweep is not None and msg.sweep.get("status") != "running"
    panel = replace(panel, sweep=msg.sweep)
    effects: Effects = (m.ListSweeps(),) if ended else ()
    asked = (msg.sweep_id, complete_trials(msg.sweep))
    if asked[1] > 0 and asked != panel.importance_asked:
        panel = replace(panel, importance_asked=asked)
        effects += (m.LoadSweepImportance(msg.sweep_id),)
    return panel, effects


def on_importance(panel: Sweeps, msg: m.SweepImportanceLoaded) -> tuple[Sweeps, Effects]:
    if msg.sweep_id != panel.selected:
        return panel, ()
    if msg.problem is not None:  # the last importance stays shown, with why it was not renewed
        return replace(panel, importance_problem=msg.problem.line()), ()
    return replace(panel, importance=msg.importance, importance_problem=None), ()


def on_event(panel: Sweeps, msg: m.ServerEvent) -> tuple[Sweeps, Effects]:
    """A sweep event: list the sweeps again (a new one, or a new status) and load the shown one again; a sweep
    that starts while the shown one is not running is shown. ``hello`` (a new connection): list again."""
    kind, sweep_id = msg.event.get("type"), msg.event.get("sweep_id")
    if kind == "hello":
        return panel, (m.ListSweeps(),)
    if kind not in SWEEP_EVENTS or not isinstance(sweep_id, str):
        return panel, ()
    if kind == EventType.SWEEP_STARTED.value and sweep_id != panel.selected and not running(panel):
        panel = _shown(panel, sweep_id)
    if kind == EventType.SWEEP_TRIAL_COMPLETED.value and sweep_id != panel.selected:
        return panel, ()  # another sweep's trial: its list entry has not changed
    if sweep_id != panel.selected:
        return panel, (m.ListSweeps(),)
    panel, load = _load(panel, sweep_id, msg.now)
    return panel, (m.ListSweeps(), *load)


def on_tick(panel: Sweeps, msg: m.Tick) -> tuple[Sweeps, Effects]:
    """While the shown sweep runs, load it every ``POLL_S`` (one load in flight at a time)."""
    if running(panel) and not panel.loading and msg.now - panel.last_load >= POLL_S:
        return _load(panel, panel.sweep["sweep_id"], msg.now)  # type: ignore[index]  # running: a sweep is shown
    return panel, ()



REDUCERS: dict[type, Reducer] = {
    m.SweepsRefreshClicked: on_slice("sweeps", on_refresh),
    m.SweepDraftEdited: on_slice("sweeps", on_draft_edited),
    m.SweepStartClicked: on_slice("sweeps", on_start),
    m.SweepStopClicked: on_slice("sweeps", on_stop),
    m.SweepPicked: on_slice("sweeps", on_picked),
    m.SweepsListed: on_slice("sweeps", on_listed),
    m.SweepLoaded: on_slice("sweeps", on_loaded),
    m.SweepStartAnswered: on_slice("sweeps", on_start_answered),
    m.SweepStopAnswered: on_slice("sweeps", on_stop_answered),
    m.SweepImportanceLoaded: on_slice("sweeps", on_importance),
    m.ServerEvent: on_slice("sweeps", on_event),
    m.Tick: on_slice("sweeps", on_tick),
}
