"""Baseline forecasts on the very same test bars as the model (MODEL.md, "What a job reports").

``forecast_baselines(close, segment, train_t, test_t, horizon)`` gives, for every test bar t, three forecasts of
the forward log return r = log(close[t+h] / close[t]) made at t's close:

- ``climatology``: no conditioning at all. p_up = the up-frequency of the training labels; the distribution is a
  Student-t fitted by maximum likelihood (scipy) to the training labels, with nu >= NU_MIN_FIT.
- ``ewma``: RiskMetrics (J.P. Morgan/Reuters 1996, "RiskMetrics - Technical Document", 4th ed., sec. 5.2):
  sigma_1^2 after bar s = lambda sigma_1^2 after the previous return + (1 - lambda) r_s^2 with lambda = 0.94 on
  1-bar log returns, zero mean, Gaussian with h-bar variance h sigma_1^2; p_up = 1 - F(0) = 0.5.
- ``garch``: GARCH(1,1) with Student-t innovations and a constant mean (Bollerslev 1986; Bollerslev 1987 for
  the t), fitted by arch on the training returns only (x100 so the optimiser works in percent), then run with
  those FIXED parameters through the returns up to the last test bar (arch's ``GARCH.forecast``, one step) to
  get sigma^2_{s+1|s}. The h-bar variance sums the usual multi-step GARCH(1,1) forecasts
  sigma^2_{s+k|s} = omega sum_{j<k-1} phi^j + phi^(k-1) sigma^2_{s+1|s}, phi = alpha + beta (the recursion
  arch's analytic forecast uses; summed in closed form here because arch's multi-step loop runs in Python per
  bar and horizon: ~40 s per fold at h = 500 on the bundled candles, see benchmarks/baselines_speed.py; a test
  checks both agree). Predictive distribution: a Student-t with the fitted nu whose variance is that h-bar
  variance (exact for h = 1, the customary approximation beyond: a sum of t innovations is not t) and mean
  h mu; p_up = 1 - F(0).

Bars and gaps: a 1-bar return that crosses a gap (``segment`` changes) is not a return and is dropped; the
volatility state carries over such a gap. Only returns up to the latest test bar enter, and every recursion
runs forward in time, so a forecast at bar t never uses a close after t (tests change a later close to check).
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import stats

from trainer.distributions import Forecast

log = logging.getLogger(__name__)

EWMA_LAMBDA = 0.94  # RiskMetrics' decay for daily data, MODEL.md's choice for every timeframe
NU_MIN_FIT = 2.01  # climatology's t keeps a finite variance like every other predictive distribution
GARCH_SCALE = 100.0  # returns in percent: arch's optimiser is tuned for variances near 1
MIN_TRAIN_RETURNS = 10  # below this a 5-parameter GARCH(1,1)-t fit means nothing


def _positions(name: str, values, n: int) -> np.ndarray:
    t = np.asarray(values)
    if t.ndim != 1 or t.size == 0 or not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"baselines: {name} must be a non-empty 1-D integer array of bar positions")
    if t.min() < 0 or t.max() >= n:
        raise ValueError(f"baselines: {name} has positions outside the {n} bars")
    return t.astype(np.int64)


def _check_inputs(close, segment, train_t, test_t, horizon: int):
    close = np.asarray(close, dtype=np.float64)
    segment = np.asarray(segment)
    if close.ndim != 1 or segment.shape != close.shape:
        raise ValueError(
            f"baselines: close and segment must be 1-D of equal length, got {close.shape} and {segment.shape}"
        )
    if not (np.isfinite(close) & (close > 0)).all():
        raise ValueError("baselines: close prices must be finite and > 0")
    if not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"baselines: horizon must be an integer >= 1, got {horizon!r}")
    n = close.shape[0]
    train_t = _positions("train_t", train_t, n)
    test_t = _positions("test_t", test_t, n)
    label_end = train_t + horizon
    if label_end.max() >= n or (segment[train_t] != segment[np.minimum(label_end, n - 1)]).any():
        raise ValueError("baselines: a training label runs past the data or crosses a gap in the candles")
    if label_end.max() > test_t.min():
        raise ValueError(
            f"baselines: a training label uses bar {label_end.max()}, "
            f"after the first test bar {test_t.min()} (look-ahead)"
        )
    return close, segment, train_t, test_t


def _returns(close: np.ndarray, segment: np.ndarray, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
    """The 1-bar log returns ending at bars first+1 .. last that do not cross a gap: (end bar s, return)."""
    s = np.arange(first + 1, last + 1)
    keep = segment[s] == segment[s - 1]
    s = s[keep]
    return s, np.log(close[s] / close[s - 1])


def _climatology(close: np.ndarray, train_t: np.ndarray, test_t: np.ndarray, horizon: int) -> Forecast:
    labels = np.log(close[train_t + horizon] / close[train_t])
    nu, loc, scale = stats.t.fit(labels)
    if nu < NU_MIN_FIT:
        # The likelihood is unimodal in nu, so the constrained maximum sits on the bound.
        nu, loc, scale = stats.t.fit(labels, fix_df=NU_MIN_FIT)
    m = test_t.shape[0]
    return Forecast("student_t", np.full(m, loc), np.full(m, scale), np.full(m, nu), np.full(m, np.mean(labels > 0)))


def _ewma(returns: np.ndarray, n_train: int, horizon: int, at: np.ndarray) -> Forecast:
    """EWMA variance after each return (causal recursion), read at the return index ``at`` of each test bar."""
    # Imported here: scipy.signal takes over a second to import, and a worker imports this module before it may
    # report training.started.
    from scipy import signal

    sq = returns**2
    seed = np.mean(sq[:n_train])  # the training returns' mean square: all before any test bar
    # v_k = lambda v_{k-1} + (1 - lambda) r_k^2 with v_{-1} = seed, as a first-order IIR filter.
    variance, _ = signal.lfilter([1 - EWMA_LAMBDA], [1.0, -EWMA_LAMBDA], sq, zi=[EWMA_LAMBDA * seed])
    sigma = np.sqrt(horizon * variance[at])
    return Forecast.from_params("gaussian", np.zeros(at.shape[0]), sigma)


def garch_horizon_weights(phi: float, horizon: int) -> tuple[float, float]:
    """(a, b) with sum_{k=1..h} sigma^2_{s+k|s} = a sigma^2_{s+1|s} + b omega for a GARCH(1,1), phi = alpha + beta.

    a = sum_{k=1..h} phi^(k-1); b = sum_{k=1..h} sum_{j=0..k-2} phi^j. Finite for any phi (also phi >= 1).
    """
    a, b, step_a, step_b = 0.0, 0.0, 1.0, 0.0
    for _ in range(horizon):
        a, b = a + step_a, b + step_b
        step_b = 1.0 + phi * step_b
        step_a *= phi
    return a, b


def _garch(returns: np.ndarray, n_train: int, horizon: int, at: np.ndarray) -> Forecast:
    from arch import arch_model  # lazy: importing arch costs seconds, and the worker reports its start first

    x = returns * GARCH_SCALE
    model = arch_model(x[:n_train], mean="Constant", vol="GARCH", p=1, q=1, dist="t", rescale=False)
    fit = model.fit(disp="off", show_warning=False)
    if fit.convergence_flag != 0:
        log.warning("GARCH baseline: the optimiser did not converge (%s); using its last parameters",
                    fit.optimization_result.message)
    mu, omega, alpha, beta, nu = (float(v) for v in fit.params[["mu", "omega", "alpha[1]", "beta[1]", "nu"]])
    resid = x - mu
    volatility = model.volatility
    backcast = volatility.backcast(resid[:n_train])
    # No clamping bounds: arch's default bounds come from the whole sample's variance, i.e. from later bars.
    bounds = np.column_stack([np.zeros_like(resid), np.full_like(resid, np.inf)])
    one_step = volatility.forecast(np.array([omega, alpha, beta]), resid, backcast, bounds, start=0, horizon=1)
    sigma2_next = one_step.forecasts[:, 0]
    a, b = garch_horizon_weights(alpha + beta, horizon)
    variance_h = (a * sigma2_next[at] + b * omega) / GARCH_SCALE**2
    scale = np.sqrt(variance_h * (nu - 2) / nu)  # arch's t innovations have unit variance; scipy's t has nu/(nu-2)
    m = at.shape[0]
    return Forecast.from_params("student_t", np.full(m, horizon * mu / GARCH_SCALE), scale, np.full(m, nu))


def forecast_baselines(
    close: np.ndarray, segment: np.ndarray, train_t: np.ndarray, test_t: np.ndarray, horizon: int
) -> dict[str, Forecast]:
    """The ``climatology``, ``ewma`` and ``garch`` forecasts (module doc) for the test bars ``test_t``.

    ``close``: (n,) float64 candle closes; ``segment``: (n,) int64 run ids from
    ``trainer.data.candles.segment_ids``; ``train_t`` / ``test_t``: int64 bar positions of the training and test
    samples (the label of t is log(close[t+h] / close[t])); ``horizon``: h in bars. Each forecast has
    len(test_t) bars in the order of ``test_t``.

    Raises ValueError for mis-shaped or non-positive inputs, a training label that crosses a gap or runs past
    the data, a training label that reaches beyond the first test bar, or fewer than MIN_TRAIN_RETURNS training
    returns.
    """
    close, segment, train_t, test_t = _check_inputs(close, segment, train_t, test_t, horizon)
    train_end = int(train_t.max()) + horizon  # the last close any training label uses
    ends, returns = _returns(close, segment, int(train_t.min()), int(test_t.max()))
    n_train = int(np.searchsorted(ends, train_end, side="right"))
    if n_train < MIN_TRAIN_RETURNS:
        raise ValueError(
            f"baselines: {n_train} training returns; the GARCH baseline needs at least {MIN_TRAIN_RETURNS}"
        )
    # Each test bar reads the volatility state after the latest return that ends at or before it.
    at = np.searchsorted(ends, test_t, side="right") - 1
    return {
        "climatology": _climatology(close, train_t, test_t, horizon),
        "ewma": _ewma(returns, n_train, horizon, at),
        "garch": _garch(returns, n_train, horizon, at),
    }
