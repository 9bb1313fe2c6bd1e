"""Conditional direction baselines: p_up from simple models fitted on each fold's training history only.

Constant-p baselines (climatology, EWMA, GARCH-t) flatter any signal at all; these are what a direction model
must beat (MODEL.md, "What a job reports"). For every test bar t they give p_up = P(y[t] > 0), the forward
log return over h = horizon bars, from inputs known at bar t's close:

- ``logit_ar1``: scikit-learn ``LogisticRegression`` (L2, C = 1, on standardised inputs) of the outcome on the
  last one-bar log return r[t] = log(close[t] / close[t-1]); for h > 1 also on the last h-bar return
  log(close[t] / close[t-h]).
- ``logit_ar3``: the same on r[t], r[t-1], r[t-2] (and the last h-bar return for h > 1).
- ``gbm``: scikit-learn ``HistGradientBoostingClassifier`` with ``GBM_PARAMS`` (fixed, seeded) on the
  ``GBM_FEATURES``: the 10 bar features of ``trainer.features`` (log returns over 1, 4 and 24 bars, realised
  volatility of 24 bars, log high/low range, volume z-score, hour and weekday as sine/cosine) plus r[t-1],
  r[t-2] and the 12-bar return, 13 in all (and the last h-bar return for h > 1).
- ``majority``: the training block's majority direction, p_up 1 or 0: the accuracy floor.

Fitting: on the samples at the ``history`` positions (the fold's train, validation and calibration blocks, the
same history the distribution baselines get), labels y > 0. Every training label ends before the first test bar
(the walk-forward purge, checked here), so no test outcome reaches a fit. A return whose bars cross a gap in
the candles (``segment`` changes) or run before the first bar is 0 (no information).
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from trainer.features import FEATURE_NAMES

#: Fixed hyperparameters of the ``gbm`` baseline: a small, strongly regularised model (shallow trees, few
#: iterations, no early stopping so the fit is a pure function of the training block and the seed).
GBM_PARAMS = {
    "max_iter": 100,
    "learning_rate": 0.05,
    "max_depth": 3,
    "min_samples_leaf": 200,
    "l2_regularization": 1.0,
    "early_stopping": False,
}
#: Extra lags of the ``gbm`` features besides FEATURE_NAMES.
GBM_EXTRA = ("log_return_1_lag1", "log_return_1_lag2", "log_return_12")
GBM_FEATURES = (*FEATURE_NAMES, *GBM_EXTRA)


def past_return(close: np.ndarray, segment: np.ndarray, t: np.ndarray, bars: int, lag: int = 0) -> np.ndarray:
    """log(close[t-lag] / close[t-lag-bars]) per position t ((m,) int64 -> (m,) float64), 0 where those bars
    cross a gap or start before bar 0."""
    end = t - lag
    start = end - bars
    ok = (start >= 0) & (segment[np.maximum(start, 0)] == segment[t])
    out = np.zeros(t.shape[0])
    out[ok] = np.log(close[end[ok]] / close[start[ok]])
    return out


def direction_inputs(
    features: np.ndarray, close: np.ndarray, segment: np.ndarray, t: np.ndarray, horizon: int
) -> dict[str, np.ndarray]:
    """The input matrix of each model at positions ``t``: ``logit_ar1`` (m, 1 or 2), ``logit_ar3`` (m, 3 or 4),
    ``gbm`` (m, 13 or 14), float64. ``features``: (n, len(FEATURE_NAMES)) bar features of ``build_samples``."""
    lags = [past_return(close, segment, t, 1, lag) for lag in range(3)]
    extra = [past_return(close, segment, t, horizon)] if horizon > 1 else []
    gbm = [features[t].astype(np.float64), np.column_stack([lags[1], lags[2], past_return(close, segment, t, 12)])]
    return {
        "logit_ar1": np.column_stack([lags[0], *extra]),
        "logit_ar3": np.column_stack([*lags, *extra]),
        "gbm": np.column_stack([*gbm, *extra]),
    }


def forecast_direction(
    features: np.ndarray,
    close: np.ndarray,
    segment: np.ndarray,
    y: np.ndarray,
    history: np.ndarray,
    test_t: np.ndarray,
    horizon: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """p_up of each direction baseline (module doc) at the test positions: name -> (len(test_t),) float64.

    ``features`` (n, F) float, ``close`` (n,) float64 > 0, ``segment`` (n,) int64 run ids, ``y`` (n,) float64
    forward log returns (labels); ``history`` / ``test_t``: int64 sample positions to fit on / to forecast;
    ``horizon``: h in bars; ``seed``: the gbm's random state.

    Raises ValueError when a training label reaches the first test bar (look-ahead), a training label is not
    finite, or the training block holds one direction only.
    """
    history = np.asarray(history, dtype=np.int64)
    test_t = np.asarray(test_t, dtype=np.int64)
    if history.max() + horizon >= test_t.min():
        raise ValueError(
            f"direction baselines: a training label uses bar {history.max() + horizon}, "
            f"at or after the first test bar {test_t.min()} (look-ahead)"
        )
    labels = y[history]
    if not np.isfinite(labels).all():
        raise ValueError("direction baselines: a training label is missing (NaN)")
    up = labels > 0
    if up.all() or not up.any():
        raise ValueError("direction baselines: the training block holds one direction only")
    models = fit_models(direction_inputs(features, close, segment, history, horizon), up, seed)
    test_x = direction_inputs(features, close, segment, test_t, horizon)
    with threadpool_limits(1):
        out = {name: model.predict_proba(test_x[name])[:, 1] for name, model in models.items()}
    out["majority"] = np.full(test_t.shape[0], 1.0 if up.mean() >= 0.5 else 0.0)
    return out


def fit_models(inputs: dict[str, np.ndarray], up: np.ndarray, seed: int) -> dict:
    """The fitted scikit-learn model of each conditional baseline (``direction_inputs`` keys) on the outcomes
    ``up`` ((m,) bool); ``seed``: the gbm's random state."""
    # Imported here: scikit-learn's estimators take about a second to import, and a worker imports this module
    # before it may report training.started; these baselines are fitted only after the network's folds.
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    models = {
        "logit_ar1": make_pipeline(StandardScaler(), LogisticRegression()),
        "logit_ar3": make_pipeline(StandardScaler(), LogisticRegression()),
        "gbm": HistGradientBoostingClassifier(**GBM_PARAMS, random_state=seed),
    }
    # One thread: OpenMP's worker threads spin-wait for a core, and on a laptop's few cores shared with the GUI
    # (or with other jobs) the gradient boosting fit took 15x as long with two threads as with one (measured).
    with threadpool_limits(1):
        return {name: model.fit(inputs[name], up) for name, model in models.items()}
