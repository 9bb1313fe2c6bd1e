"""A sweep's request and search space (API.md, ``POST /sweeps``), checked against the ``TrainingConfig`` schema.

Light on purpose (pydantic only, like ``trainer.config``): the server, the CLI and the GUI validate a space before
anything runs, and none of them imports Optuna for it. A dimension is a list of ``choices`` or a ``low``..``high``
range (int or float, ``log`` scale allowed) over any ``TrainingConfig`` field but ``final_holdout`` (the sweep
sets it) — ``symbol``, ``timeframe`` and ``dataset`` included, so "every model on BTC and ETH at 1 h and 4 h" is one
sweep. Each choice and both ends of each range are validated by ``TrainingConfig`` itself on top of ``base``, so a
value the schema refuses, an unknown field or an empty range fails with one line naming the field.

``suggest(trial)`` turns a space into one trial's parameters through Optuna's ``Trial.suggest_*`` (the trial is
passed in, Optuna is not imported here).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trainer.config import TrainingConfig, error_message

Objective = Literal["log_loss", "crps"]
Sampler = Literal["tpe", "random", "grid"]
#: The pruners a sweep may ask for, by name (Optuna's ``MedianPruner``, ``ThresholdPruner``, ``NopPruner``; the
#: server builds them, ``embedded_server.sweeps.PRUNERS``).
Pruner = Literal["median", "threshold", "none"]
PRUNER_NAMES: tuple[str, ...] = get_args(Pruner)
#: Fields a sweep may not search: the sweep itself decides where a trial is evaluated.
RESERVED = frozenset({"final_holdout"})
#: Most trials one sweep may ask for.
MAX_TRIALS = 10_000
#: Most grid points a grid sweep may span.
MAX_GRID = 100_000


class Choices(BaseModel):
    """A categorical dimension: one of ``choices`` (JSON scalars), tried as given."""

    model_config = ConfigDict(extra="forbid", strict=True)

    choices: list[str | int | float | bool] = Field(min_length=1, max_length=1000)


class Range(BaseModel):
    """A numeric dimension: ``low`` ≤ value ≤ ``high`` (``log``: sampled on a log scale; ``step``: a grid step)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    low: int | float
    high: int | float
    log: bool = False
    step: int | float | None = Field(None, gt=0)


Dimension = Choices | Range


#: A space entry's two shapes, as the user writes them.
DIMENSION_SHAPES = "{choices: [...]} or {low, high, log?, step?}"
_JSON_KINDS = {list: "a list", tuple: "a list", str: "a string", bool: "true/false", int: "a number",
               float: "a number", type(None): "null"}


def _kind(value: Any) -> str:
    """``value``'s JSON kind in words, with the value itself when short (``a list [1, 2]``)."""
    text = repr(value)
    return _JSON_KINDS.get(type(value), type(value).__name__) + (f" {text}" if len(text) <= 40 else "")


def _dimension(where: str, value: Any) -> Dimension:
    """``value`` as a ``Choices`` (it has ``choices``) or a ``Range``; ``ValueError`` naming ``where`` and what is
    expected otherwise (pydantic's own union errors name both classes, ``Choices`` and ``Range``)."""
    if isinstance(value, (Choices, Range)):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected {DIMENSION_SHAPES}, got {_kind(value)}")
    model = Choices if "choices" in value else Range
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first["loc"]
        if len(loc) >= 2 and loc[0] == "choices" and isinstance(loc[1], int):
            choice = value["choices"][loc[1]]
            raise ValueError(f"{where}.choices[{loc[1]}]: a choice is a string, a number or true/false, "
                             f"got {_kind(choice)}") from None
        field = "".join(f".{part}" for part in loc if isinstance(part, str))
        raise ValueError(f"{where}{field}: {error_message(first)} (expected {DIMENSION_SHAPES})") from None


def _schema_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    says_input = first["type"] == "finite_number" or "input" not in first  # error_message names a non-finite one
    return error_message(first) + ("" if says_input else f" (got {first['input']!r})")


class SweepRequest(BaseModel):
    """``POST /sweeps`` body and the ``--space`` file of ``candlecast sweep``.

    ``space``: field name → ``{"choices": [...]}`` or ``{"low", "high", "log"?, "step"?}``; ``base``: fixed
    ``TrainingConfig`` fields of every trial (defaults: the server's ``training`` settings, then the schema).
    ``objective``: pooled ``log_loss`` of p_up (default) or ``crps`` over the inner walk-forward folds, minimised.
    Raises ``ValidationError`` (422) naming the field for an unknown or reserved field, an empty range, a range
    over a non-numeric field, or a value ``TrainingConfig`` refuses.
    """

    model_config = ConfigDict(extra="forbid")

    space: dict[str, Dimension] = Field(min_length=1, description="Field → choices or range.")
    base: dict[str, Any] = Field(default_factory=dict, description="Fixed TrainingConfig fields of every trial.")
    trials: int = Field(
        8, ge=1, le=MAX_TRIALS, strict=True, description="Trials to run (a resumed sweep counts those done)."
    )
    parallel: int = Field(1, ge=1, le=64, strict=True, description="Trials running at once.")
    objective: Objective = Field("log_loss", description="Minimised over the inner walk-forward folds.")
    sampler: Sampler = Field("tpe", description="Optuna sampler: TPE, random or grid.")
    pruner: Pruner = Field(
        "median", description="Stops hopeless trials after a fold: median (below the median of earlier trials at that "
        "fold, after 2 trials), threshold (a fold value above prune_above) or none."
    )
    prune_above: float | None = Field(
        None, allow_inf_nan=False, description="With pruner threshold: a trial whose fold value is above this stops."
    )
    seed: int = Field(0, ge=0, le=2**32 - 1, strict=True, description="Sampler seed.")
    ray_address: str | None = Field(
        None, min_length=1, max_length=255, description="Run trials on this Ray cluster (host:port or ray://…)."
    )
    num_cpus: float = Field(1.0, gt=0, le=1024, description="CPUs each Ray trial reserves.")
    num_gpus: float = Field(0.0, ge=0, le=64, description="GPUs each Ray trial reserves.")

    @model_validator(mode="before")
    @classmethod
    def _dimensions(cls, data: Any) -> Any:
        """Read each space entry as choices or a range by its keys (``_dimension``: one line naming the entry)."""
        if isinstance(data, dict) and isinstance(data.get("space"), dict):
            data = {**data, "space": {k: _dimension(f"space.{k}", v) for k, v in data["space"].items()}}
        return data

    @model_validator(mode="after")
    def _check_space(self) -> SweepRequest:
        fields = TrainingConfig.model_fields
        for name in sorted(set(self.base) & RESERVED):
            raise ValueError(f"base.{name}: set by the sweep itself, not by a request")
        try:
            base = TrainingConfig.model_validate(self.base)
        except ValidationError as exc:
            loc = ".".join(str(p) for p in exc.errors()[0]["loc"]) or "(base)"
            raise ValueError(f"base.{loc}: {_schema_error(exc)}") from None
        for name, dim in self.space.items():
            where = f"space.{name}"
            if name not in fields:
                raise ValueError(f"{where}: not a training option (known: {', '.join(sorted(set(fields) - RESERVED))})")
            if name in RESERVED:
                raise ValueError(f"{where}: set by the sweep itself, not searched")
            values = dim.choices if isinstance(dim, Choices) else [dim.low, dim.high]
            if isinstance(dim, Range):
                _check_range(where, name, dim, getattr(base, name))
            for value in values:
                try:
                    TrainingConfig.model_validate({**self.base, name: value})
                except ValidationError as exc:
                    raise ValueError(f"{where}: {value!r} is refused: {_schema_error(exc)}") from None
        if (self.pruner == "threshold") != (self.prune_above is not None):
            raise ValueError("prune_above: give it with pruner 'threshold' (and only then)")
        if self.sampler == "grid":
            grid_points(self.space)  # raises for a float range without a step, or a grid too large
        return self

    def trial_config(self, params: dict[str, Any], defaults: dict[str, Any], final_holdout: str) -> TrainingConfig:
        """One trial's ``TrainingConfig``: ``defaults`` (the server's), then ``base``, then ``params``.

        A ``symbol``/``timeframe`` choice drops a ``dataset`` the base or defaults fixed for another one."""
        merged = {**defaults, **self.base, **params, "final_holdout": final_holdout}
        if ({"symbol", "timeframe"} & params.keys()) and "dataset" not in params:
            merged.pop("dataset", None)
        return TrainingConfig.model_validate(merged)


def _check_range(where: str, name: str, dim: Range, default: Any) -> None:
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        raise ValueError(f"{where}: a range needs a numeric field; give choices for {name}")
    if isinstance(default, int) and not all(isinstance(v, int) for v in (dim.low, dim.high, dim.step or 1)):
        raise ValueError(f"{where}: {name} is an integer field: low, high and step must be integers")
    if not dim.low < dim.high:
        raise ValueError(f"{where}: empty range: low ({dim.low}) must be below high ({dim.high})")
    if dim.log and dim.low <= 0:
        raise ValueError(f"{where}: a log range needs low > 0 (got {dim.low})")
    if dim.log and dim.step is not None:
        raise ValueError(f"{where}: a log range takes no step")


def grid_points(space: dict[str, Dimension]) -> dict[str, list[Any]]:
    """The values of each dimension for a grid search: the choices, or every ``step`` of a range (an int range
    steps by 1 by default). Raises ``ValueError`` for a float range without a step, or more than ``MAX_GRID``
    points in all."""
    grid: dict[str, list[Any]] = {}
    total = 1
    for name, dim in space.items():
        if isinstance(dim, Choices):
            grid[name] = list(dim.choices)
        elif dim.step is None and not isinstance(dim.low, int):
            raise ValueError(f"space.{name}: a grid needs choices or a step for a float range")
        else:
            step = dim.step or 1
            count = int((dim.high - dim.low) // step) + 1
            grid[name] = [dim.low + i * step for i in range(min(count, MAX_GRID + 1))]
        total *= len(grid[name])
        if total > MAX_GRID:
            raise ValueError(f"space: the grid has more than {MAX_GRID:,} points; narrow it or use tpe/random")
    return grid


def suggest(space: dict[str, Dimension], trial: Any) -> dict[str, Any]:
    """One trial's parameters drawn by an Optuna ``trial`` (``suggest_categorical/int/float``), by field name."""
    params: dict[str, Any] = {}
    for name, dim in space.items():
        if isinstance(dim, Choices):
            params[name] = trial.suggest_categorical(name, dim.choices)
        elif isinstance(TrainingConfig.model_fields[name].default, int):
            params[name] = trial.suggest_int(name, dim.low, dim.high, step=int(dim.step or 1), log=dim.log)
        else:
            params[name] = trial.suggest_float(name, dim.low, dim.high, step=dim.step, log=dim.log)
    return params
