"""What a job's results table shows, in one place for ``candlecast train``, ``report.html`` and the GUI: the
baselines (name, label, which scores each is tested on), the tested scores, and the summary metrics with the
way each one is better.

Light on purpose (standard library only): the GUI imports it. The forecasts themselves are made in
``trainer.baselines`` (distributions) and ``trainer.direction_baselines`` (p_up only); the tests in
``trainer.verdicts``; the definitions are in ``docs/metrics.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["distribution", "direction"]

#: Scores a baseline can be tested on: key in a metric block / per-bar loss -> label. All are losses per bar
#: (lower is better); ``accuracy`` is tested as its loss, the 0/1 error (1 - hit).
SCORE_LABELS = {"crps": "CRPS", "nll": "NLL", "log_loss": "log loss", "brier": "Brier", "accuracy": "accuracy"}
#: Scores with a skill score 1 - model / baseline: the non-negative ones. NLL can be negative (a density above
#: 1), where that ratio means nothing, so the verdicts report its difference (nats per bar) instead.
SKILL_SCORES = ("crps", "log_loss", "brier", "accuracy")
#: Scores of p_up alone (the direction); CRPS and NLL score the whole distribution.
P_UP_SCORES = ("log_loss", "brier", "accuracy")


@dataclass(frozen=True)
class Baseline:
    """One baseline: ``name`` (key in metrics.json and column suffix in predictions.csv), ``label`` (a short
    column title), ``description`` (how a verdict sentence names it), ``kind`` and the ``scores`` it is tested
    on, the first one being the score of the headline verdict."""

    name: str
    label: str
    description: str
    kind: Kind
    scores: tuple[str, ...]


BASELINES: tuple[Baseline, ...] = (
    Baseline("climatology", "Climatology", "climatology",
             "distribution", ("crps", "nll", "log_loss", "brier")),
    Baseline("ewma", "EWMA", "EWMA volatility", "distribution", ("crps", "nll", "log_loss", "brier")),
    Baseline("garch", "GARCH-t", "GARCH(1,1)-t", "distribution", ("crps", "nll", "log_loss", "brier")),
    Baseline("logit_ar1", "Logit AR1", "a logistic regression on the last return", "direction",
             ("log_loss", "brier")),
    Baseline("logit_ar3", "Logit AR3", "a logistic regression on the last three returns", "direction",
             ("log_loss", "brier")),
    Baseline("gbm", "Boosting", "gradient boosting on 13 lagged features", "direction", ("log_loss", "brier")),
    Baseline("majority", "Majority", "the majority direction", "direction", ("accuracy",)),
)
BASELINE_NAMES = tuple(b.name for b in BASELINES)
DISTRIBUTION_BASELINES = tuple(b.name for b in BASELINES if b.kind == "distribution")
DIRECTION_BASELINES = tuple(b.name for b in BASELINES if b.kind == "direction")

#: The score each headline verdict is judged on, per baseline: the distribution headline on CRPS against the
#: distribution baselines; the p_up headline on log loss against every baseline with a probability (and on
#: accuracy against the majority rule, which has none).
HEADLINE_SCORES = {
    "distribution": {name: "crps" for name in DISTRIBUTION_BASELINES},
    "direction": {b.name: b.scores[0] if b.name == "majority" else "log_loss" for b in BASELINES},
}


def baseline(name: str) -> Baseline:
    """The registered baseline called ``name``; raises KeyError naming the known ones."""
    for entry in BASELINES:
        if entry.name == name:
            return entry
    raise KeyError(f"unknown baseline {name!r}; known: {', '.join(BASELINE_NAMES)}")


@dataclass(frozen=True)
class MetricRow:
    """One row of the results table: ``key`` in a metric block, ``label``, ``fmt`` (a format pattern),
    ``better`` ("lower", "higher", or "near" ``target``)."""

    key: str
    label: str
    fmt: str
    better: Literal["lower", "higher", "near"]
    target: float | None = None

    @property
    def better_text(self) -> str:
        """What the ``better`` column says: "lower", "higher" or "near 0.80" (every row the same way)."""
        return f"near {self.target:g}" if self.better == "near" else self.better

    def worse(self, model: float | None, other: float | None) -> bool:
        """Whether ``model`` is worse than ``other`` by this row's rule (False when either is missing)."""
        if model is None or other is None:
            return False
        if self.better == "lower":
            return model > other
        if self.better == "higher":
            return model < other
        return abs(model - self.target) > abs(other - self.target)


SUMMARY_ROWS: tuple[MetricRow, ...] = (
    MetricRow("crps", "CRPS", "{:.6f}", "lower"),
    MetricRow("nll", "NLL", "{:.4f}", "lower"),
    MetricRow("pit_ks", "PIT KS", "{:.4f}", "lower"),
    MetricRow("coverage_50", "coverage 50%", "{:.3f}", "near", 0.5),
    MetricRow("coverage_80", "coverage 80%", "{:.3f}", "near", 0.8),
    MetricRow("coverage_95", "coverage 95%", "{:.3f}", "near", 0.95),
    MetricRow("brier", "Brier", "{:.5f}", "lower"),
    MetricRow("log_loss", "log loss", "{:.5f}", "lower"),
    MetricRow("ece", "ECE", "{:.4f}", "lower"),
    MetricRow("calibration_in_the_large", "cal. in the large", "{:+.4f}", "near", 0.0),
    MetricRow("accuracy", "accuracy", "{:.4f}", "higher"),
    MetricRow("roc_auc", "ROC AUC", "{:.4f}", "higher"),
)
