"""One metric block per set of test bars (MODEL.md, "What a job reports"; keys: the shared metrics.json contract).

``evaluate(forecast, y)`` scores a ``Forecast`` against the realised forward log returns ``y``: the distribution
(CRPS, NLL, PIT, interval coverage) and the direction p_up against the outcome (y > 0) (Brier and its
decomposition, log loss, ECE, calibration-in-the-large, accuracy, ROC AUC, a reliability table). Every value is a
plain Python float/int/list, and ``None`` where undefined, so a block goes into JSON as is.

Binning: the ECE, the Brier decomposition and the reliability table share the same 10 quantile bins of p_up
(edges at the deciles of p_up; a value on an edge goes to the upper bin; bins left empty by tied values are
dropped, so a constant p_up gives a single bin).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from trainer.distributions import Forecast

N_BINS = 10
COVERAGE_LEVELS = (0.5, 0.8, 0.95)


def finite_or_none(value: Any) -> float | None:
    """``value`` (a Python or NumPy number) as a JSON-safe float: None for None, NaN or infinity."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def quantile_bins(p: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Bin index (int64, shape (n,), values in [0, n_bins)) of each p in ``n_bins`` quantile bins of ``p``."""
    edges = np.quantile(p, np.linspace(0, 1, n_bins + 1)[1:-1])
    return np.searchsorted(edges, p, side="right").astype(np.int64)


def reliability_table(p: np.ndarray, outcome: np.ndarray, n_bins: int = N_BINS) -> dict[str, np.ndarray]:
    """Per non-empty quantile bin: ``p_mean`` (mean p), ``freq`` (observed frequency), ``count``; and ``bin``,
    the (n,) bin index of every input. ``p``: (n,) float in [0, 1]; ``outcome``: (n,) bool or 0/1."""
    index = quantile_bins(p, n_bins)
    count = np.bincount(index, minlength=n_bins)
    used = count > 0
    p_sum = np.bincount(index, weights=p, minlength=n_bins)
    o_sum = np.bincount(index, weights=outcome.astype(np.float64), minlength=n_bins)
    return {"p_mean": p_sum[used] / count[used], "freq": o_sum[used] / count[used], "count": count[used], "bin": index}


def expected_calibration_error(p: np.ndarray, outcome: np.ndarray, n_bins: int = N_BINS) -> float:
    """ECE = sum_k (n_k / n) |mean p_k - freq_k| over quantile bins (Naeini, Cooper & Hauskrecht 2015, AAAI,
    "Obtaining well calibrated probabilities using Bayesian binning"; quantile bins as their equal-frequency
    variant). 0 is perfect; a finite-sample, perfectly calibrated input scores about sqrt(p(1-p) / (n / n_bins))."""
    table = reliability_table(p, outcome, n_bins)
    return float(np.sum(table["count"] * np.abs(table["p_mean"] - table["freq"])) / p.shape[0])


def brier_decomposition(p: np.ndarray, outcome: np.ndarray, n_bins: int = N_BINS) -> dict[str, float]:
    """Murphy's (1973) decomposition of the Brier score over the quantile bins of p.

    Returns ``brier`` = mean (p - o)^2, ``reliability`` = sum_k n_k (pbar_k - obar_k)^2 / n,
    ``resolution`` = sum_k n_k (obar_k - obar)^2 / n, ``uncertainty`` = obar (1 - obar), and the two
    within-bin terms that binning leaves over (Stephenson, Coelho & Jolliffe 2008, Weather and Forecasting
    23, "Two extra components in the Brier score decomposition"): ``within_bin_variance`` =
    sum (p - pbar_k)^2 / n and ``within_bin_covariance`` = sum (p - pbar_k)(o - obar_k) / n, so that exactly
    brier = reliability - resolution + uncertainty + within_bin_variance - 2 within_bin_covariance.
    """
    o = outcome.astype(np.float64)
    n = p.shape[0]
    table = reliability_table(p, o, n_bins)
    k = table["bin"]
    # Per-input bin means, indexed through the non-empty bins.
    used = np.unique(k)
    pbar = np.zeros(n_bins)
    obar = np.zeros(n_bins)
    pbar[used], obar[used] = table["p_mean"], table["freq"]
    o_mean = o.mean()
    dp, do = p - pbar[k], o - obar[k]
    return {
        "brier": float(np.mean((p - o) ** 2)),
        "reliability": float(np.sum(table["count"] * (table["p_mean"] - table["freq"]) ** 2) / n),
        "resolution": float(np.sum(table["count"] * (table["freq"] - o_mean) ** 2) / n),
        "uncertainty": float(o_mean * (1 - o_mean)),
        "within_bin_variance": float(np.mean(dp**2)),
        "within_bin_covariance": float(np.mean(dp * do)),
    }


def _check_inputs(forecast: Forecast, y) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1 or y.shape[0] != len(forecast):
        raise ValueError(f"evaluate: y must have shape ({len(forecast)},) like the forecast, got {y.shape}")
    if y.shape[0] == 0:
        raise ValueError("evaluate: no bars to score (y is empty)")
    if not np.isfinite(y).all():
        raise ValueError(f"evaluate: y has {int((~np.isfinite(y)).sum())} non-finite value(s)")
    return y


def evaluate(forecast: Forecast, y: np.ndarray, p_up_raw: np.ndarray | None = None) -> dict:
    """One metric block of ``forecast`` (n bars) against the realised forward log returns ``y`` ((n,) float64).

    Keys (shared metrics.json contract): ``n``; distribution: ``crps`` (mean CRPS, log-return units),
    ``nll`` (mean -log density), ``pit_hist`` (10 fractions of PIT = F(y) in [0, .1), ..., [.9, 1]),
    ``pit_ks`` (Kolmogorov-Smirnov distance of the PITs to U(0, 1)), ``coverage_50/80/95`` (fraction of y inside
    the central interval); direction, outcome o = (y > 0): ``brier``, ``brier_reliability``,
    ``brier_resolution``, ``brier_uncertainty`` (see ``brier_decomposition``), ``log_loss``, ``ece``
    (``expected_calibration_error``), ``calibration_in_the_large`` (mean p_up - up_rate), ``accuracy``
    ((p_up > 0.5) == o), ``roc_auc`` (None with one class only), ``up_rate``, ``reliability``
    ({p_mean, freq, count} lists over the quantile bins). With ``p_up_raw`` ((n,), p_up before calibration) the
    block also gets ``ece_raw`` and ``brier_raw``.

    Raises ValueError when y is empty, non-finite or not shaped like the forecast.
    """
    y = _check_inputs(forecast, y)
    n = y.shape[0]
    p = forecast.p_up
    outcome = y > 0

    pit = forecast.cdf(y)
    pit_hist = np.histogram(pit, bins=N_BINS, range=(0.0, 1.0))[0] / n
    block: dict = {
        "n": int(n),
        "crps": finite_or_none(np.mean(forecast.crps(y))),
        "nll": finite_or_none(-np.mean(forecast.logpdf(y))),
        "pit_hist": [finite_or_none(v) for v in pit_hist],
        "pit_ks": finite_or_none(stats.kstest(pit, "uniform").statistic),
    }
    for level in COVERAGE_LEVELS:
        low, high = forecast.interval(level)
        block[f"coverage_{round(level * 100)}"] = finite_or_none(np.mean((y >= low) & (y <= high)))

    block.update(direction_block(p, y))
    if p_up_raw is not None:
        raw = np.asarray(p_up_raw, dtype=np.float64)
        if raw.shape != p.shape:
            raise ValueError(f"evaluate: p_up_raw must have shape {p.shape}, got {raw.shape}")
        block["ece_raw"] = finite_or_none(expected_calibration_error(raw, outcome))
        block["brier_raw"] = finite_or_none(np.mean((raw - outcome) ** 2))
    return block


def direction_block(p_up: np.ndarray, y: np.ndarray) -> dict:
    """The direction part of a metric block (``evaluate``'s direction keys, no ``n``) of p_up ((n,) float in
    [0, 1]) against the outcomes y > 0 of the forward log returns ``y`` ((n,) float64)."""
    # Imported here: sklearn.metrics adds a quarter second to a worker's start, before its training.started.
    from sklearn.metrics import log_loss, roc_auc_score

    p = np.asarray(p_up, dtype=np.float64)
    outcome = np.asarray(y) > 0
    both_classes = 0 < outcome.sum() < outcome.shape[0]
    decomposition = brier_decomposition(p, outcome)
    table = reliability_table(p, outcome)
    return {
        "brier": finite_or_none(decomposition["brier"]),
        "brier_reliability": finite_or_none(decomposition["reliability"]),
        "brier_resolution": finite_or_none(decomposition["resolution"]),
        "brier_uncertainty": finite_or_none(decomposition["uncertainty"]),
        "log_loss": finite_or_none(log_loss(outcome, p, labels=[False, True])),
        "ece": finite_or_none(expected_calibration_error(p, outcome)),
        "calibration_in_the_large": finite_or_none(np.mean(p) - np.mean(outcome)),
        "accuracy": finite_or_none(np.mean((p > 0.5) == outcome)),
        "roc_auc": finite_or_none(roc_auc_score(outcome, p)) if both_classes else None,
        "up_rate": finite_or_none(np.mean(outcome)),
        "reliability": {
            "p_mean": [finite_or_none(v) for v in table["p_mean"]],
            "freq": [finite_or_none(v) for v in table["freq"]],
            "count": [int(v) for v in table["count"]],
        },
    }


def evaluate_baseline(forecast: Forecast | np.ndarray, y: np.ndarray) -> dict:
    """The metric block of a baseline: ``evaluate`` for a ``Forecast``; for a p_up array ((n,), a direction
    baseline) ``n`` and the direction keys; for a hard 0/1 rule (the majority direction) only ``n``,
    ``accuracy`` and ``up_rate``: a probability of exactly 0 or 1 has no finite log loss."""
    if isinstance(forecast, Forecast):
        return evaluate(forecast, y)
    p = np.asarray(forecast, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if p.shape != y.shape or p.ndim != 1 or p.shape[0] == 0:
        raise ValueError(f"evaluate_baseline: p_up and y must have one equal (n,) shape, got {p.shape} and {y.shape}")
    block = {"n": int(p.shape[0]), **direction_block(p, y)}
    if np.isin(p, (0.0, 1.0)).all():
        block = {key: block[key] for key in ("n", "accuracy", "up_rate")}
    return block


def per_bar_losses(y: np.ndarray, p_up: np.ndarray, forecast: Forecast | None = None) -> dict[str, np.ndarray]:
    """Each bar's loss under every score the verdicts test, (n,) float64 each, lower is better; their means
    are the block's scores. From p_up: ``log_loss`` = -[o log p + (1 - o) log(1 - p)] (p clipped to
    [eps, 1 - eps] as scikit-learn's ``log_loss`` does), ``brier`` = (p - o)^2 and ``accuracy`` = the 0/1
    error [(p > 0.5) != o], o = (y > 0); from a ``forecast`` also ``crps`` and ``nll`` = -log f(y)."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p_up, dtype=np.float64)
    o = (y > 0).astype(np.float64)
    eps = np.finfo(np.float64).eps
    clipped = np.clip(p, eps, 1 - eps)
    losses = {
        "log_loss": -(o * np.log(clipped) + (1 - o) * np.log1p(-clipped)),
        "brier": (p - o) ** 2,
        "accuracy": ((p > 0.5) != (o > 0)).astype(np.float64),
    }
    if forecast is not None:
        losses["crps"] = forecast.crps(y)
        losses["nll"] = -forecast.logpdf(y)
    return losses


def skill_scores(model_block: dict, baseline_block: dict) -> dict:
    """Skill of the model over a baseline on the same bars: ``crps_skill`` = 1 - crps_model / crps_baseline and
    ``brier_skill`` = 1 - brier_model / brier_baseline (> 0: the model is better; 1 is perfect). A score is
    None when either value is missing or the baseline's is 0."""

    def skill(key: str) -> float | None:
        model, baseline = model_block.get(key), baseline_block.get(key)
        if model is None or baseline is None or baseline == 0:
            return None
        return finite_or_none(1 - model / baseline)

    return {"crps_skill": skill("crps"), "brier_skill": skill("brier")}
