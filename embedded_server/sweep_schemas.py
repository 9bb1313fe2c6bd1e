"""Request and response models of the sweep routes (``sweep_routes``); the request is ``trainer.sweep_space``'s."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from trainer.sweep_space import SweepRequest

SweepStatus = Literal["running", "completed", "failed", "stopped"]
TrialState = Literal["running", "complete", "pruned", "failed", "waiting"]


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow")


class SweepStartRequest(SweepRequest):
    """``POST /sweeps`` body (``trainer.sweep_space.SweepRequest``): the space, the fixed options and the search."""


class SweepsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: SweepStatus | None = Field(None, description="Only sweeps with this status.")
    limit: int = Field(50, ge=1, le=1000, description="At most this many, newest first.")


class SweepAccepted(_Response):
    """``POST /sweeps`` 202."""

    status: Literal["accepted"]
    sweep_id: str
    message: str


class SweepStopAccepted(_Response):
    """``POST /sweeps/{sweep_id}/stop`` 202."""

    status: Literal["stopping"]
    sweep_id: str


class SweepSummary(_Response):
    """One sweep in a list; ``best_value`` is the inner objective of the best trial once the sweep completed."""

    sweep_id: str
    status: SweepStatus
    created_at: str
    finished_at: str | None
    trials: int
    objective: str
    executor: Literal["local", "ray"]
    best_value: float | None


class SweepList(_Response):
    sweeps: list[SweepSummary]
    count: int


class Trial(_Response):
    """One trial: Optuna's ``number``, ``state``, ``params``, ``value`` (inner objective; null unless complete),
    ``intermediate`` (fold → that fold's objective), its ``job_id`` and the Ray ``node_id`` it ran on."""

    number: int
    state: TrialState
    params: dict[str, Any]
    value: float | None
    intermediate: dict[str, float]
    job_id: str | None
    node_id: str | None


class Best(_Response):
    trial: int
    params: dict[str, Any]
    value: float


class Sweep(_Response):
    """``GET /sweeps/{sweep_id}``: ``request`` as sent (resolved), the trials so far, ``done`` of ``total``, the best
    so far, and once completed ``final``: the best trial scored once on the final test period
    (``{best_trial, best_params, best_value, final_job_id, final_value, verdicts, final_error}``)."""

    sweep_id: str
    status: SweepStatus
    request: dict[str, Any]
    created_at: str
    finished_at: str | None
    trials: list[Trial]
    done: int
    total: int
    best: Best | None
    final: dict[str, Any] | None
    error: str | None


class SweepImportance(_Response):
    """``GET /sweeps/{sweep_id}/importance``: each searched option's share of the variance of the ``objective`` over
    the ``complete_trials`` (``evaluator``: Optuna's fANOVA); ``importances`` (option → share, most important first,
    summing to 1) holds the options that varied; ``{}`` with a ``note`` saying why when there is nothing to apportion
    yet, a ``note`` when one option alone varied, and a ``note`` that the shares are rough when fewer than
    ``trainer.sweep_importance.ROUGH_BELOW`` trials completed."""

    sweep_id: str
    objective: str
    evaluator: Literal["fanova"]
    complete_trials: int
    importances: dict[str, float]
    note: str | None
