"""A job's key figures for lists and comparisons (``GET /jobs?include=metrics``, ``candlecast jobs``, the GUI's
Jobs tab): one flat dict read from its ``metrics.json``, the same for every caller.

Light on purpose (standard library only): the server and the GUI import it.
"""

from __future__ import annotations

from typing import Any

from trainer.scoreboard import DIRECTION_BASELINES

#: Conditional direction baselines (those that learn from the features), among which the best is the bar to beat.
CONDITIONAL_BASELINES = tuple(name for name in DIRECTION_BASELINES if name != "majority")
#: Key -> column title of every key figure, in display order.
KEY_FIGURES = {
    "direction": "Direction verdict",
    "distribution": "Distribution verdict",
    "crps_skill_garch": "CRPS skill vs GARCH-t",
    "best_conditional": "Best conditional baseline",
    "brier_skill_conditional": "Brier skill vs best cond.",
    "log_loss_skill_conditional": "Log-loss skill vs best cond.",
    "ece": "ECE",
    "accuracy": "Accuracy",
    "crps": "CRPS",
    "n": "Test bars",
}
#: Key figures that take either sign (skills: above 0 the model beats the baseline), printed with one; the others
#: (ECE, accuracy, CRPS, counts) are never negative and are printed without.
SIGNED_FIGURES = frozenset({"crps_skill_garch", "brier_skill_conditional", "log_loss_skill_conditional"})


def _skill(model: float | None, baseline: float | None) -> float | None:
    """1 - model / baseline for losses (None when either is missing or the baseline is 0)."""
    if model is None or not baseline:
        return None
    return 1.0 - model / baseline


def key_figures(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``KEY_FIGURES`` of a job's ``metrics.json`` dict (None for a job without metrics).

    ``direction``/``distribution``: the headline verdicts' outcomes (docs/metrics.md); ``crps_skill_garch``:
    1 - CRPS(model)/CRPS(GARCH-t); ``best_conditional``: the conditional direction baseline with the lowest
    pooled log loss, and the model's Brier and log-loss skill against it; ``ece``, ``accuracy``, ``crps``
    and ``n`` of the pooled test bars.
    """
    if not metrics or "pooled" not in metrics:
        return None
    pooled = metrics["pooled"]
    model = pooled.get("model", {})
    baselines = pooled.get("baselines", {})
    headline = pooled.get("verdicts", {}).get("headline") or {}
    present = [name for name in CONDITIONAL_BASELINES if baselines.get(name, {}).get("log_loss") is not None]
    best = min(present, key=lambda name: baselines[name]["log_loss"]) if present else None
    best_block = baselines.get(best, {}) if best else {}
    return {
        "direction": (headline.get("direction") or {}).get("outcome"),
        "distribution": (headline.get("distribution") or {}).get("outcome"),
        "crps_skill_garch": _skill(model.get("crps"), baselines.get("garch", {}).get("crps")),
        "best_conditional": best,
        "brier_skill_conditional": _skill(model.get("brier"), best_block.get("brier")),
        "log_loss_skill_conditional": _skill(model.get("log_loss"), best_block.get("log_loss")),
        "ece": model.get("ece"),
        "accuracy": model.get("accuracy"),
        "crps": model.get("crps"),
        "n": pooled.get("n"),
    }
