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
#: Rows of a comparison of jobs (``GET /compare``: the GUI's Compare window, ``candlecast compare``): (part of the
#: answer, key, label, +1 when higher is better, -1 lower, 0 no "best").
COMPARE_ROWS = (
    ("key_figures", "crps_skill_garch", KEY_FIGURES["crps_skill_garch"], 1),
    ("key_figures", "brier_skill_conditional", KEY_FIGURES["brier_skill_conditional"], 1),
    ("key_figures", "log_loss_skill_conditional", KEY_FIGURES["log_loss_skill_conditional"], 1),
    ("key_figures", "direction", "Direction verdict", 0),
    ("key_figures", "distribution", "Distribution verdict", 0),
    ("metrics", "crps", "CRPS", -1),
    ("metrics", "nll", "NLL", -1),
    ("metrics", "log_loss", "Log loss", -1),
    ("metrics", "brier", "Brier", -1),
    ("metrics", "ece", "ECE", -1),
    ("metrics", "accuracy", "Accuracy", 1),
    ("metrics", "roc_auc", "ROC AUC", 1),
    ("metrics", "coverage_80", "80 % coverage", 0),
    ("metrics", "pit_ks", "PIT KS", -1),
)
#: Key figures that take either sign (skills: above 0 the model beats the baseline), printed with one; the others
#: (ECE, accuracy, CRPS, counts) are never negative and are printed without.
SIGNED_FIGURES = frozenset({"crps_skill_garch", "brier_skill_conditional", "log_loss_skill_conditional"})


def best_index(values: list[Any], sense: int) -> int | None:
    """Index of the best number of ``values`` (``sense`` +1: highest, -1: lowest); None when fewer than two are
    numbers, for no sense, or when several share the best value (a tie has no best)."""
    numbers = [(v, i) for i, v in enumerate(values) if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not sense or len(numbers) < 2:
        return None
    best = (max if sense > 0 else min)(v for v, _ in numbers)
    winners = [i for v, i in numbers if v == best]
    return winners[0] if len(winners) == 1 else None


def unequal_test_bars(figures: dict[str, dict[str, Any] | None], ids: list[str]) -> list[Any] | None:
    """The test-bar counts (key figure ``n``) of the jobs ``ids`` in a comparison's ``key_figures``, in job order,
    when they differ; None when they are equal. Jobs tested on different bars have pooled figures that are not
    comparable bar for bar (a comparison's pairs test each pair on the bars both scored)."""
    counts = [(figures.get(i) or {}).get("n") for i in ids]
    return counts if len(set(counts)) > 1 else None


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
