"""Predictive distributions of the forward log return, and their proper scores (MODEL.md, "What a job reports").

A ``Forecast`` holds, for n bars, one member of a location-scale family (gaussian, student_t, laplace) of the
forward log return r = log(close[t+h] / close[t]) and the probability p_up = P(r > 0) used for the direction
scores. Everything here is numpy/scipy: the torch model, the calibrators and the baselines all hand their
output over as a ``Forecast``, so one set of formulas scores them all.

CRPS closed forms (all in log-return units, z = (y - mu) / sigma):

- gaussian: sigma * [z (2 Phi(z) - 1) + 2 phi(z) - 1/sqrt(pi)]
  (Gneiting & Raftery 2007, "Strictly proper scoring rules, prediction, and estimation", JASA 102, eq. 21).
- laplace: sigma * [|z| + exp(-|z|) - 3/4]
- student_t: sigma * [z (2 F_nu(z) - 1) + 2 f_nu(z) (nu + z^2) / (nu - 1)
  - 2 sqrt(nu) B(1/2, nu - 1/2) / ((nu - 1) B(1/2, nu/2)^2)]
  (both: Jordan, Krueger & Lerch 2019, "Evaluating probabilistic forecasts with scoringRules",
  J. Stat. Softw. 90(12), appendix A; the same formulas as the ``scoringrules`` package, which the tests
  compare against.)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special, stats

from trainer.names import DISTRIBUTIONS

Family = Literal[DISTRIBUTIONS]  # type: ignore[valid-type]  # the registry's names
FAMILIES: tuple[str, ...] = DISTRIBUTIONS

# The Student-t CRPS and E|Z| need nu > 1; MODEL.md's heads produce nu > 2 (finite variance).
NU_MIN = 1.0


def _as_vector(name: str, values, n: int | None = None) -> np.ndarray:
    """A read-only float64 copy of ``values`` with shape (n,); raises ValueError naming ``name``."""
    array = np.array(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"Forecast.{name}: expected a 1-D array, got shape {array.shape}")
    if n is not None and array.shape[0] != n:
        raise ValueError(f"Forecast.{name}: expected {n} values (one per bar), got {array.shape[0]}")
    array.setflags(write=False)
    return array


def _check(name: str, ok: np.ndarray, rule: str) -> None:
    if not ok.all():
        bad = np.flatnonzero(~ok)
        shown = ", ".join(map(str, bad[:5])) + (f" and {bad.size - 5} more" if bad.size > 5 else "")
        raise ValueError(f"Forecast.{name}: {bad.size} value(s) not {rule} at bar position(s) {shown}")


@dataclass(frozen=True, eq=False)
class Forecast:
    """Predictive distributions of the forward log return for n bars, plus P(up).

    Fields (each a read-only float64 array of shape (n,), copied on construction):

    - ``family``: "gaussian", "student_t" or "laplace".
    - ``mu``: location, log-return units.
    - ``sigma``: SCALE parameter, > 0 (the standard deviation only for gaussian; Laplace's b; Student-t's scale,
      whose std is sigma * sqrt(nu / (nu - 2))).
    - ``nu``: degrees of freedom (> 1 required, > 2 expected) for student_t, else None.
    - ``p_up``: the probability of r > 0 used by the direction scores, in [0, 1]. It is 1 - F(0) for a raw
      ``cdf`` forecast, the direction head's output for ``head``, or a calibrator's output.

    Raises ValueError (naming the field and bar positions) on a shape mismatch, a non-finite value,
    sigma <= 0, nu <= 1, p_up outside [0, 1], nu given for another family or missing for student_t.
    """

    family: Family
    mu: np.ndarray
    sigma: np.ndarray
    nu: np.ndarray | None
    p_up: np.ndarray

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"Forecast.family: unknown family {self.family!r}; expected one of {', '.join(FAMILIES)}")
        mu = _as_vector("mu", self.mu)
        n = mu.shape[0]
        sigma = _as_vector("sigma", self.sigma, n)
        p_up = _as_vector("p_up", self.p_up, n)
        _check("mu", np.isfinite(mu), "finite")
        _check("sigma", np.isfinite(sigma) & (sigma > 0), "finite and > 0")
        _check("p_up", (p_up >= 0) & (p_up <= 1), "in [0, 1]")
        nu = None
        if self.family == "student_t":
            if self.nu is None:
                raise ValueError("Forecast.nu: student_t needs degrees of freedom nu (got None)")
            nu = _as_vector("nu", self.nu, n)
            _check("nu", np.isfinite(nu) & (nu > NU_MIN), f"finite and > {NU_MIN:g}")
        elif self.nu is not None:
            raise ValueError(f"Forecast.nu: only student_t has degrees of freedom, not {self.family}")
        for name, value in (("mu", mu), ("sigma", sigma), ("nu", nu), ("p_up", p_up)):
            object.__setattr__(self, name, value)

    @classmethod
    def from_params(cls, family: Family, mu, sigma, nu=None, p_up=None) -> Forecast:
        """Build a forecast whose p_up is 1 - F(0) of its own distribution unless ``p_up`` is given."""
        forecast = cls(family, mu, sigma, nu, np.full(np.shape(mu), 0.5))
        return forecast.replace(p_up=forecast.p_up_from_cdf() if p_up is None else p_up)

    def __len__(self) -> int:
        return self.mu.shape[0]

    def _z(self, x) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.mu) / self.sigma

    def _standard(self):
        """The scipy distribution of Z = (r - mu) / sigma."""
        if self.family == "gaussian":
            return stats.norm()
        if self.family == "laplace":
            return stats.laplace()
        return stats.t(self.nu)

    def cdf(self, x) -> np.ndarray:
        """F(x) per bar; ``x`` is a scalar or an (n,) array of log returns. Returns (n,) float64 in [0, 1]."""
        return self._standard().cdf(self._z(x))

    def sf(self, x) -> np.ndarray:
        """1 - F(x) per bar, computed without cancellation in the upper tail. Returns (n,) float64."""
        return self._standard().sf(self._z(x))

    def ppf(self, q: float) -> np.ndarray:
        """The q-quantile (0 < q < 1) of every bar's distribution, (n,) float64 log returns."""
        if not 0.0 < q < 1.0:
            raise ValueError(f"Forecast.ppf: q must lie in (0, 1), got {q}")
        return self.mu + self.sigma * self._standard().ppf(q)

    def logpdf(self, y) -> np.ndarray:
        """log f(y) per bar (natural log, density in log-return units); ``y`` scalar or (n,). Returns (n,)."""
        return self._standard().logpdf(self._z(y)) - np.log(self.sigma)

    def crps(self, y) -> np.ndarray:
        """CRPS of each bar's distribution at outcome ``y`` (scalar or (n,)), closed forms in the module doc.

        Returns (n,) float64 >= 0 in log-return units (lower is better).
        """
        z = self._z(y)
        if self.family == "gaussian":
            score = z * (2 * special.ndtr(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi)
        elif self.family == "laplace":
            score = np.abs(z) + np.exp(-np.abs(z)) - 0.75
        else:
            nu = self.nu
            # B(1/2, nu - 1/2) / B(1/2, nu/2)^2 via log-beta: the betas over/underflow for large nu.
            beta_ratio = np.exp(special.betaln(0.5, nu - 0.5) - 2 * special.betaln(0.5, nu / 2))
            score = (
                z * (2 * stats.t.cdf(z, nu) - 1)
                + 2 * stats.t.pdf(z, nu) * (nu + z**2) / (nu - 1)
                - 2 * np.sqrt(nu) * beta_ratio / (nu - 1)
            )
        return self.sigma * score

    def p_up_from_cdf(self) -> np.ndarray:
        """P(r > 0) = 1 - F(0) of each bar's distribution, (n,) float64 in [0, 1]."""
        return self.sf(0.0)

    def interval(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """The central ``level`` (e.g. 0.8) prediction interval per bar: (F^-1((1-level)/2), F^-1((1+level)/2))."""
        return self.ppf((1 - level) / 2), self.ppf((1 + level) / 2)

    def replace(self, **changes) -> Forecast:
        """A copy with some fields replaced (validated again), e.g. ``f.replace(p_up=calibrated)``."""
        return dataclasses.replace(self, **changes)

    def take(self, index) -> Forecast:
        """The forecasts of a subset of bars; ``index`` is anything numpy accepts on an (n,) array."""
        return Forecast(
            self.family,
            self.mu[index],
            self.sigma[index],
            None if self.nu is None else self.nu[index],
            self.p_up[index],
        )


def concat_forecasts(parts: list[Forecast]) -> Forecast:
    """Join forecasts of one family end to end (e.g. the test blocks of all folds, in fold order).

    Raises ValueError when ``parts`` is empty or mixes families.
    """
    if not parts:
        raise ValueError("concat_forecasts: no forecasts to join")
    families = {part.family for part in parts}
    if len(families) > 1:
        raise ValueError(f"concat_forecasts: cannot join different families {sorted(families)}")
    family = parts[0].family
    return Forecast(
        family,
        np.concatenate([part.mu for part in parts]),
        np.concatenate([part.sigma for part in parts]),
        np.concatenate([part.nu for part in parts]) if family == "student_t" else None,
        np.concatenate([part.p_up for part in parts]),
    )


def expected_abs_z(family: Family, nu=None):
    """E|Z| of the standard member (mu = 0, sigma = 1) of ``family``: the mean absolute error per unit scale.

    gaussian: sqrt(2/pi); laplace: 1; student_t: 2 sqrt(nu) Gamma((nu+1)/2) / (sqrt(pi) (nu-1) Gamma(nu/2)),
    finite for nu > 1 (a float, or an array shaped like ``nu``). Used by the ``abs`` calibrator (MODEL.md).
    Raises ValueError for an unknown family or a student_t without nu > 1.
    """
    if family == "gaussian":
        return float(np.sqrt(2 / np.pi))
    if family == "laplace":
        return 1.0
    if family != "student_t":
        raise ValueError(f"expected_abs_z: unknown family {family!r}")
    if nu is None:
        raise ValueError("expected_abs_z: student_t needs nu")
    nu = np.asarray(nu, dtype=np.float64)
    if not (np.isfinite(nu) & (nu > NU_MIN)).all():
        raise ValueError("expected_abs_z: student_t E|Z| is finite only for nu > 1")
    # Gamma ratio through gammaln: Gamma overflows for nu > ~340.
    gamma_ratio = np.exp(special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2))
    value = 2 * np.sqrt(nu) * gamma_ratio / (np.sqrt(np.pi) * (nu - 1))
    return float(value) if value.ndim == 0 else value
