"""Post-hoc calibration of a forecast, fitted on the calibration slice only (MODEL.md, "Calibration").

``fit_calibrator(method, forecast, y)`` learns one small map from a fold's calibration slice; its
``Calibrator.apply`` turns any later forecast (the test block, or a saved model's new predictions) into the
calibrated one. A calibrator is plain data (``to_dict``/``from_dict``, JSON-able) so it travels in model.pt.

Methods:

- ``abs``: one scale factor s = mean(|y - mu| / (sigma E|Z|)) (E|Z| of the family, ``expected_abs_z``; for a
  constant nu this is MODEL.md's mean(|y - mu| / sigma) / E|Z|; with a per-bar nu each bar is normalised by its
  own E|Z|). Then sigma' = s sigma, and p_up = 1 - F'(0) of the rescaled distribution when p_up comes from the
  CDF (``p_up_source="cdf"``); a direction head's or the direction stack's p_up (``"head"``, ``"stack"``) is
  left as is. Method-of-moments: under a
  correct shape, E|y - mu| = s sigma E|Z|.
- ``mle``: the scale factor s, and for Student-t one degrees of freedom nu' for every bar, by maximum likelihood
  of the calibration slice's outcomes (mean log score of y under the family with sigma' = s sigma and nu';
  scipy's L-BFGS-B on log s and log(nu' - 2), nu' in (2, 200]). It fixes the shape as well as the width: a
  network's nu that makes the centre too peaked shows as a PIT histogram with a hollow middle, which a scale
  alone cannot fill (Gneiting, Balabdaoui & Raftery 2007, JRSS B, "Probabilistic forecasts, calibration and
  sharpness": calibration as uniform PIT). p_up as for ``abs``.
- ``crps``: the same two parameters by minimum CRPS estimation instead (mean closed-form CRPS of the slice;
  Gneiting, Raftery, Westveld & Goldman 2005, Monthly Weather Review 133, "Calibrated probabilistic forecasting
  using ensemble model output statistics and minimum CRPS estimation"): the score the job is judged by, less
  driven by the tails than the likelihood. p_up as for ``abs``.
- ``isotonic``: isotonic regression of the outcome (y > 0) on p_up (Zadrozny & Elkan 2002, KDD, "Transforming
  classifier scores into accurate multiclass probability estimates"), scikit-learn's ``IsotonicRegression``
  with ``out_of_bounds="clip"``. Each level (a run of n_k calibration bars, k_k of them up) is then replaced by
  its m-estimate towards the base rate b, (k_k + m b) / (n_k + m) (Cestnik 1990, ECAI, "Estimating
  probabilities: a crucial task in machine learning"), with Zadrozny & Elkan's (2001, ICML, "Obtaining
  calibrated probability estimates from decision trees and naive Bayesian classifiers") b m = 10, b taken as
  the rarer outcome's rate so up and down are treated alike: m = 20 at b = 0.5. A plateau of a few bars at
  either end therefore stays near b instead of reaching 0 or 1 (on a short calibration block those plateaus
  cost more log loss than calibration gains). The smoothed levels are made monotone again by a second
  isotonic fit (weights = bars per level), and the output is clipped into [1e-4, 1 - 1e-4] so log loss stays
  finite. Saved as the (x, y) thresholds, applied by linear interpolation with clamped ends.
- ``platt``: logistic regression of the outcome on logit(p_up), p' = sigmoid(a logit(p_up) + b) (Platt 1999,
  "Probabilistic outputs for support vector machines"), scikit-learn's ``LogisticRegression`` unpenalised.
- ``temperature``: p' = sigmoid(logit(p_up) / T) with one T > 0 minimising the log loss (Guo, Pleiss, Sun &
  Weinberger 2017, ICML, "On calibration of modern neural networks"), scipy's bounded scalar minimiser.
- ``none``: the identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import optimize, special

from trainer.distributions import Forecast, expected_abs_z
from trainer.names import CALIBRATION_METHODS, P_UP_SOURCES

Method = Literal[CALIBRATION_METHODS]  # type: ignore[valid-type]  # the registry's names
METHODS: tuple[str, ...] = CALIBRATION_METHODS
PARAM_KEYS = {
    "abs": {"scale"}, "mle": {"scale", "nu"}, "crps": {"scale", "nu"}, "isotonic": {"x", "y"}, "platt": {"a", "b"}, "temperature": {"temperature"}, "none": set()
}

#: The methods that refit the distribution (its scale, and nu); the others remap p_up only.
DISTRIBUTION_METHODS = ("abs", "mle", "crps")
ISOTONIC_CLIP = 1e-4  # keeps isotonic's 0/1 plateaus off the log loss's infinities
M_ESTIMATE_BM = 10.0  # isotonic's m-estimate: b m = 10 (Zadrozny & Elkan 2001), b the rarer outcome's rate
LOGIT_CLIP = 1e-6  # p_up from a CDF may be exactly 0 or 1 in float64; logit needs the open interval
NU_BOUNDS = (2.0, 200.0)  # mle's and crps's nu': a finite variance; 200 is a Gaussian for every practical purpose
LOG_T_BOUNDS = (-6.0, 6.0)  # T in [0.0025, 403]: from extreme sharpening to p_up = 0.5 +- 0.001


def _logit(p: np.ndarray) -> np.ndarray:
    return special.logit(np.clip(p, LOGIT_CLIP, 1 - LOGIT_CLIP))


@dataclass(frozen=True)
class Calibrator:
    """A fitted calibration map: ``method`` (one of METHODS), ``params`` (JSON-able floats or lists:
    abs {"scale"}, mle and crps {"scale", "nu"} (nu None unless Student-t), isotonic {"x", "y"} thresholds, platt {"a", "b"}, temperature {"temperature"}, none {}),
    and ``p_up_source`` ("cdf" or "head", which decides whether ``abs`` recomputes p_up).

    Raises ValueError for an unknown method or source, or params that do not fit the method.
    """

    method: Method
    params: dict = field(default_factory=dict)
    p_up_source: str = "cdf"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"calibrator: unknown method {self.method!r}; expected one of {', '.join(METHODS)}")
        if self.p_up_source not in P_UP_SOURCES:
            raise ValueError(
                f"calibrator: unknown p_up_source {self.p_up_source!r}; expected one of {', '.join(P_UP_SOURCES)}")
        if set(self.params) != PARAM_KEYS[self.method]:
            raise ValueError(
                f"calibrator: {self.method} needs params {sorted(PARAM_KEYS[self.method])}, got {sorted(self.params)}"
            )
        if self.method in DISTRIBUTION_METHODS and not self.params["scale"] > 0:
            raise ValueError(f"calibrator: {self.method} scale must be > 0, got {self.params['scale']}")
        if self.method == "temperature" and not self.params["temperature"] > 0:
            raise ValueError(f"calibrator: temperature must be > 0, got {self.params['temperature']}")
        if self.method == "isotonic" and (len(self.params["x"]) != len(self.params["y"]) or not self.params["x"]):
            raise ValueError("calibrator: isotonic x and y must be non-empty lists of equal length")

    def apply(self, forecast: Forecast) -> Forecast:
        """The calibrated copy of ``forecast`` (same bars): rescaled sigma (and for ``mle``/``crps`` one nu) for ``abs``,
        ``mle`` and ``crps``, a new p_up otherwise."""
        p = forecast.p_up
        if self.method == "none":
            return forecast
        if self.method in DISTRIBUTION_METHODS:
            rescaled = forecast.replace(sigma=forecast.sigma * self.params["scale"])
            if self.method != "abs" and forecast.nu is not None:
                rescaled = rescaled.replace(nu=np.full(len(forecast), self.params["nu"]))
            if self.p_up_source == "cdf":
                rescaled = rescaled.replace(p_up=rescaled.p_up_from_cdf())
            return rescaled
        if self.method == "isotonic":
            # np.interp with end clamping is exactly IsotonicRegression.predict with out_of_bounds="clip".
            calibrated = np.interp(p, self.params["x"], self.params["y"])
            calibrated = np.clip(calibrated, ISOTONIC_CLIP, 1 - ISOTONIC_CLIP)
        elif self.method == "platt":
            calibrated = special.expit(self.params["a"] * _logit(p) + self.params["b"])
        else:
            calibrated = special.expit(_logit(p) / self.params["temperature"])
        return forecast.replace(p_up=calibrated)

    def to_dict(self) -> dict:
        """{"method", "params", "p_up_source"}: plain JSON types, the inverse of ``from_dict``."""
        return {"method": self.method, "params": dict(self.params), "p_up_source": self.p_up_source}

    @classmethod
    def from_dict(cls, d: dict) -> Calibrator:
        """Rebuild a calibrator saved by ``to_dict``; raises ValueError naming what is missing or wrong."""
        if not isinstance(d, dict) or "method" not in d:
            raise ValueError(f"calibrator: expected a dict with a 'method', got {d!r:.80}")
        unknown = set(d) - {"method", "params", "p_up_source"}
        if unknown:
            raise ValueError(f"calibrator: unknown key(s) {sorted(unknown)}")
        return cls(d["method"], dict(d.get("params", {})), d.get("p_up_source", "cdf"))


def _fit_abs(forecast: Forecast, y: np.ndarray) -> dict:
    abs_z = expected_abs_z(forecast.family, forecast.nu)
    scale = float(np.mean(np.abs(y - forecast.mu) / (forecast.sigma * abs_z)))
    if not scale > 0:
        raise ValueError("calibration (abs): every outcome equals its forecast location; no scale to fit")
    return {"scale": scale}


def _fit_mle(forecast: Forecast, y: np.ndarray) -> dict:
    return _fit_scale_and_nu(forecast, y, lambda f: -f.logpdf(y))


def _fit_crps(forecast: Forecast, y: np.ndarray) -> dict:
    return _fit_scale_and_nu(forecast, y, lambda f: f.crps(y))


def _fit_scale_and_nu(forecast: Forecast, y: np.ndarray, score) -> dict:
    """The scale factor (and for Student-t one nu) minimising the mean of ``score(forecast)`` (per-bar, lower is
    better) on the calibration slice, from ``abs``'s scale and the forecast's median nu."""
    start = _fit_abs(forecast, y)["scale"]
    student = forecast.nu is not None
    nu0 = float(np.clip(np.median(forecast.nu), *NU_BOUNDS)) if student else None

    def mean_score(theta: np.ndarray) -> float:
        changes = {"sigma": forecast.sigma * np.exp(theta[0])}
        if student:
            changes["nu"] = np.full(len(y), NU_BOUNDS[0] + np.exp(theta[1]))
        return float(np.mean(score(forecast.replace(**changes))))

    theta0 = [np.log(start)] + ([np.log(max(nu0 - NU_BOUNDS[0], 1e-3))] if student else [])
    bounds = [(-5.0, 5.0)] + ([(-7.0, np.log(NU_BOUNDS[1] - NU_BOUNDS[0]))] if student else [])
    theta = optimize.minimize(mean_score, theta0, method="L-BFGS-B", bounds=bounds).x
    return {"scale": float(np.exp(theta[0])), "nu": float(NU_BOUNDS[0] + np.exp(theta[1])) if student else None}


def _fit_isotonic(p: np.ndarray, outcome: np.ndarray) -> dict:
    # scikit-learn is imported by the method that uses it: a worker imports this module before it may report
    # training.started, and each method needs a different part.
    from sklearn.isotonic import IsotonicRegression

    o = outcome.astype(np.float64)
    level = IsotonicRegression(out_of_bounds="clip").fit(p, o).predict(p)  # each bar's level
    base_rate = float(o.mean())
    rarer = min(base_rate, 1.0 - base_rate)
    m = M_ESTIMATE_BM / rarer if rarer > 0 else 0.0  # one class only: every level is the base rate already
    # A level is the mean outcome of its bars, so k_k = level * n_k; its bars are counted by their shared value.
    values, index, counts = np.unique(level, return_inverse=True, return_counts=True)
    smoothed = ((values * counts + m * base_rate) / (counts + m))[index]
    iso = IsotonicRegression(out_of_bounds="clip").fit(p, smoothed)
    return {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}


def _fit_platt(p: np.ndarray, outcome: np.ndarray) -> dict:
    if outcome.all() or not outcome.any():
        raise ValueError("calibration (platt): the calibration slice has only up or only down outcomes")
    from sklearn.linear_model import LogisticRegression  # lazy, as in _fit_isotonic

    model = LogisticRegression(C=np.inf, max_iter=1000).fit(_logit(p)[:, None], outcome)
    return {"a": float(model.coef_[0, 0]), "b": float(model.intercept_[0])}


def _fit_temperature(p: np.ndarray, outcome: np.ndarray) -> dict:
    logits = _logit(p)
    o = outcome.astype(np.float64)

    def log_loss(log_t: float) -> float:
        z = logits / np.exp(log_t)
        # -[o log s(z) + (1-o) log s(-z)] = softplus(z) - o z, written stably with logaddexp.
        return float(np.mean(np.logaddexp(0.0, z) - o * z))

    result = optimize.minimize_scalar(log_loss, bounds=LOG_T_BOUNDS, method="bounded")
    return {"temperature": float(np.exp(result.x))}


def fit_calibrator(method: Method, forecast: Forecast, y: np.ndarray, p_up_source: str = "cdf") -> Calibrator:
    """Fit ``method`` on the calibration slice: ``forecast`` (n bars) and the realised forward log returns
    ``y`` ((n,) float64); the outcome is (y > 0). See the module doc for each method and its source.

    Raises ValueError for an unknown method/source, an empty or mis-shaped or non-finite ``y``, or a slice the
    method cannot fit (platt with one class only, abs with zero errors).
    """
    if method not in METHODS:
        raise ValueError(f"calibration: unknown method {method!r}; expected one of {', '.join(METHODS)}")
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1 or y.shape[0] != len(forecast) or y.shape[0] == 0:
        raise ValueError(
            f"calibration: y must have shape ({len(forecast)},) like the forecast and be non-empty, got {y.shape}"
        )
    if not np.isfinite(y).all():
        raise ValueError(f"calibration: y has {int((~np.isfinite(y)).sum())} non-finite value(s)")
    outcome = y > 0
    fit = _FITTERS[method]
    params = fit(forecast, y) if method in DISTRIBUTION_METHODS else fit(forecast.p_up, outcome)
    return Calibrator(method, params, p_up_source)


#: How each method of ``trainer.names.CALIBRATION_METHODS`` is fitted (``DISTRIBUTION_METHODS`` from the distribution,
#: the others from p_up and the outcome).
_FITTERS = {
    "abs": _fit_abs, "mle": _fit_mle, "crps": _fit_crps, "isotonic": _fit_isotonic, "platt": _fit_platt, "temperature": _fit_temperature,
    "none": lambda p, outcome: {},
}
