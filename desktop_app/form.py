"""The control panel's fields, derived from ``TrainingConfig`` so the GUI, the CLI and the API never disagree.

Pure (pydantic only): ``FIELDS`` describes each input (kind, choices, range, basic or under "Advanced"),
``validate`` turns the widgets' values into the request body or per-field messages shown next to the inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, get_args

import annotated_types
from pydantic import ValidationError

from trainer.config import TrainingConfig, error_message

#: Shown in the main panel, in this order (issue 5); every other request field goes under "Advanced".
BASIC = ("symbol", "timeframe", "forecast_horizon", "batch_size", "use_cv", "cv_folds", "calibration_method",
         "p_up_source", "seed", "epochs")

LABELS = {
    "symbol": "Symbol",
    "timeframe": "Timeframe",
    "forecast_horizon": "Horizon (bars)",
    "batch_size": "Batch size",
    "use_cv": "Walk-forward CV",
    "cv_folds": "CV folds",
    "calibration_method": "Calibration",
    "p_up_source": "p_up source",
    "seed": "Seed",
    "epochs": "Epochs",
    "learning_rate": "Learning rate",
    "lookback": "Lookback (bars)",
    "distribution": "Distribution",
    "device": "Device",
    "dataset": "Dataset id",
}


@dataclass(frozen=True)
class FieldSpec:
    """One input: ``kind`` is ``text``, ``int``, ``float``, ``bool`` or ``choice``; bounds are inclusive
    unless ``exclusive_min`` (e.g. learning rate > 0)."""

    name: str
    label: str
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    exclusive_min: bool = False
    advanced: bool = False


def _spec(name: str) -> FieldSpec:
    info = TrainingConfig.model_fields[name]
    choices = tuple(c for c in get_args(info.annotation) if isinstance(c, str))
    if info.annotation is bool:
        kind = "bool"
    elif choices:
        kind = "choice"
    else:
        kind = {int: "int", float: "float"}.get(info.annotation, "text")
    minimum = maximum = None
    exclusive = False
    for rule in info.metadata:
        if isinstance(rule, annotated_types.Ge):
            minimum = rule.ge
        elif isinstance(rule, annotated_types.Gt):
            minimum, exclusive = rule.gt, True
        elif isinstance(rule, annotated_types.Le):
            maximum = rule.le
    return FieldSpec(
        name=name,
        label=LABELS.get(name, name.replace("_", " ").capitalize()),
        kind=kind,
        default=info.default,
        help=info.description or "",
        choices=choices,
        minimum=minimum,
        maximum=maximum,
        exclusive_min=exclusive,
        advanced=name not in BASIC,
    )


FIELDS: tuple[FieldSpec, ...] = tuple(
    _spec(name) for name in (*BASIC, *(n for n in TrainingConfig.model_fields if n not in BASIC))
)
BY_NAME = {spec.name: spec for spec in FIELDS}


def defaults(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every field's starting value: the schema default, replaced by valid ``overrides`` (settings, last used).

    An override that fails validation on its own is dropped, so a stale remembered value never blocks Start.
    """
    values = {spec.name: spec.default for spec in FIELDS}
    for name, value in (overrides or {}).items():
        if name in values and not validate({**values, name: value})[1]:
            values[name] = value
    return values


def validate(values: Mapping[str, Any]) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """Check the widgets' ``values``; returns ``(request body, {})`` or ``(None, {field: message})``.

    Empty text means "not given" (the schema default; for ``dataset``: the symbol's own dataset). The body
    holds every field (``dataset`` only when given), as ``POST /start_training`` expects.
    """
    given: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, str):
            value = value.strip()
            if not value:
                continue
        given[name] = value
    try:
        config = TrainingConfig.model_validate(given, strict=False)  # widgets give text: "7" means 7 here, not in the API
    except ValidationError as exc:
        return None, problem_fields((err["loc"], _typed(err)) for err in exc.errors())
    return config.model_dump(mode="json", exclude_none=True), {}


#: What a field that cannot be read as its type says (pydantic's "unable to parse string as an integer" reads
#: like a programmer's message).
NOT_A = {"int_parsing": "a whole number", "int_from_float": "a whole number", "float_parsing": "a number"}


def _typed(error: Any) -> str:
    """One validation error's message; for text that is not a number of the field's type, that text quoted."""
    wanted = NOT_A.get(error.get("type", ""))
    if wanted and isinstance(error.get("input"), str):
        return f"{error['input']!r} is not {wanted}"
    return error_message(error)


def problem_fields(errors: Iterable[tuple[Any, str]]) -> dict[str, str]:
    """Map ``(loc, msg)`` pairs (pydantic's, or a 422 problem's ``errors``) to ``{field: message}``.

    ``loc`` may be a field name, a dotted path or a list such as ``["body", "cv_folds"]``; the last part that
    names a request field wins; errors naming no field go under ``"request"``.
    """
    fields: dict[str, str] = {}
    for loc, msg in errors:
        parts = loc.split(".") if isinstance(loc, str) else [str(p) for p in (loc or ())]
        name = next((p for p in reversed(parts) if p in BY_NAME), "request")
        fields.setdefault(name, _short(msg))
    return fields


def _short(msg: str) -> str:
    # pydantic prefixes custom errors with "Value error, "; the user needs only what follows.
    return msg.removeprefix("Value error, ")
