"""trainer.distributions: closed-form CRPS against published values and scoringrules, densities against scipy."""

from __future__ import annotations

import numpy as np
import pytest
import scoringrules as sr
from scipy import stats

from trainer.distributions import Forecast, concat_forecasts, expected_abs_z


def one(family: str, mu=0.0, sigma=1.0, nu=None) -> Forecast:
    return Forecast.from_params(family, [mu], [sigma], None if nu is None else [nu])


# Published values: Gneiting & Raftery (2007) for the normal; Jordan, Krueger & Lerch (2019) / scoringRules for
# the Laplace and Student-t closed forms at z = -3.
@pytest.mark.parametrize(
    ("forecast", "y", "expected", "tol"),
    [
        (one("gaussian"), 0.0, 0.233695, 1e-6),
        (one("laplace"), -3.0, 2.29978707, 1e-8),
        (one("student_t", nu=5.0), -3.0, 2.33875895, 1e-8),
    ],
    ids=["gaussian", "laplace", "student_t"],
)
def test_crps_matches_published_values(forecast: Forecast, y: float, expected: float, tol: float) -> None:
    assert forecast.crps(y)[0] == pytest.approx(expected, abs=tol)


@pytest.fixture
def random_inputs():
    rng = np.random.default_rng(7)
    n = 2000
    return {
        "mu": rng.normal(0, 0.01, n),
        "sigma": rng.uniform(1e-4, 0.05, n),
        "nu": rng.uniform(2.05, 300, n),
        "y": rng.normal(0, 0.03, n),
    }


def test_crps_matches_scoringrules_on_random_inputs(random_inputs) -> None:
    mu, sigma, nu, y = (random_inputs[k] for k in ("mu", "sigma", "nu", "y"))
    cases = {
        "gaussian": (Forecast.from_params("gaussian", mu, sigma), sr.crps_normal(y, mu, sigma)),
        "laplace": (Forecast.from_params("laplace", mu, sigma), sr.crps_laplace(y, mu, sigma)),
        "student_t": (Forecast.from_params("student_t", mu, sigma, nu), sr.crps_t(y, nu, mu, sigma)),
    }
    for family, (forecast, reference) in cases.items():
        np.testing.assert_allclose(forecast.crps(y), reference, rtol=1e-9, atol=1e-13, err_msg=family)


def test_crps_is_location_scale_equivariant() -> None:
    # CRPS(F_{mu,sigma}, y) = sigma * CRPS(F_{0,1}, (y - mu) / sigma): a units check on the closed forms.
    for family, nu in (("gaussian", None), ("laplace", None), ("student_t", 4.0)):
        standard = one(family, nu=nu).crps(-0.7)[0]
        scaled = one(family, mu=0.01, sigma=0.02, nu=nu).crps(0.01 - 0.7 * 0.02)[0]
        assert scaled == pytest.approx(0.02 * standard, rel=1e-12), family


def test_logpdf_cdf_ppf_match_scipy(random_inputs) -> None:
    mu, sigma, nu, y = (random_inputs[k] for k in ("mu", "sigma", "nu", "y"))
    references = {
        "gaussian": stats.norm(mu, sigma),
        "laplace": stats.laplace(mu, sigma),
        "student_t": stats.t(nu, mu, sigma),
    }
    for family, reference in references.items():
        forecast = Forecast.from_params(family, mu, sigma, nu if family == "student_t" else None)
        np.testing.assert_allclose(forecast.logpdf(y), reference.logpdf(y), rtol=1e-10, err_msg=family)
        np.testing.assert_allclose(forecast.cdf(y), reference.cdf(y), rtol=1e-10, atol=1e-15, err_msg=family)
        np.testing.assert_allclose(forecast.ppf(0.9), reference.ppf(0.9), rtol=1e-10, err_msg=family)
        np.testing.assert_allclose(forecast.p_up, reference.sf(0.0), rtol=1e-10, atol=1e-15, err_msg=family)
        low, high = forecast.interval(0.8)
        np.testing.assert_allclose(forecast.cdf(high) - forecast.cdf(low), 0.8, atol=1e-9, err_msg=family)


def test_p_up_from_cdf_is_one_minus_cdf_at_zero() -> None:
    forecast = Forecast.from_params("student_t", [0.0, 0.01, -0.01], [0.01, 0.01, 0.01], [5.0, 5.0, 5.0])
    np.testing.assert_allclose(forecast.p_up_from_cdf(), 1 - forecast.cdf(0.0))
    assert forecast.p_up[0] == 0.5
    assert forecast.p_up[1] > 0.5 > forecast.p_up[2]


def test_expected_abs_z_matches_numerical_integration() -> None:
    assert expected_abs_z("gaussian") == pytest.approx(np.sqrt(2 / np.pi))
    assert expected_abs_z("laplace") == 1.0
    for nu in (1.5, 3.0, 5.0, 30.0):
        assert expected_abs_z("student_t", nu) == pytest.approx(stats.t(nu).expect(np.abs), rel=1e-7), nu
    # Very large nu: the t tends to the normal (and the Gamma ratio must not overflow).
    assert expected_abs_z("student_t", 1e6) == pytest.approx(np.sqrt(2 / np.pi), rel=1e-5)
    np.testing.assert_allclose(expected_abs_z("student_t", np.array([3.0, 5.0])), [2 * np.sqrt(3) / np.pi, 0.9490167])
    with pytest.raises(ValueError, match="nu > 1"):
        expected_abs_z("student_t", 1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sigma": [0.01, 0.0]}, r"sigma: 1 value\(s\) not finite and > 0 at bar position\(s\) 1"),
        ({"sigma": [0.01]}, "sigma: expected 2 values"),
        ({"mu": [np.nan, 0.0]}, "mu: 1 value"),
        ({"p_up": [0.5, 1.5]}, r"p_up: 1 value\(s\) not in \[0, 1\]"),
        ({"nu": None}, "student_t needs degrees of freedom"),
        ({"nu": [5.0, 1.0]}, "nu: 1 value"),
        ({"family": "cauchy"}, "unknown family 'cauchy'"),
    ],
)
def test_invalid_forecasts_raise_naming_the_field(kwargs: dict, message: str) -> None:
    fields = {"family": "student_t", "mu": [0.0, 0.0], "sigma": [0.01, 0.01], "nu": [5.0, 5.0], "p_up": [0.5, 0.5]}
    with pytest.raises(ValueError, match=message):
        Forecast(**(fields | kwargs))


def test_nu_only_for_student_t() -> None:
    with pytest.raises(ValueError, match="only student_t"):
        Forecast("gaussian", [0.0], [1.0], [5.0], [0.5])


def test_take_concat_replace_and_immutability() -> None:
    forecast = Forecast.from_params("student_t", np.arange(5) * 0.01, np.full(5, 0.02), np.arange(5) + 3.0)
    head, tail = forecast.take(slice(0, 2)), forecast.take(np.array([2, 3, 4]))
    joined = concat_forecasts([head, tail])
    for field in ("mu", "sigma", "nu", "p_up"):
        np.testing.assert_array_equal(getattr(joined, field), getattr(forecast, field))
    assert len(joined) == 5
    wider = forecast.replace(sigma=forecast.sigma * 2)
    np.testing.assert_array_equal(wider.sigma, forecast.sigma * 2)
    np.testing.assert_array_equal(wider.p_up, forecast.p_up)  # replace changes only what it is told
    with pytest.raises(ValueError):
        forecast.mu[0] = 1.0  # read-only arrays: a frozen forecast stays frozen
    with pytest.raises(ValueError, match="different families"):
        concat_forecasts([head, Forecast.from_params("gaussian", [0.0], [1.0])])
    with pytest.raises(ValueError, match="no forecasts"):
        concat_forecasts([])


def test_inputs_are_copied_not_aliased() -> None:
    mu = np.zeros(3, dtype=np.float32)
    forecast = Forecast.from_params("gaussian", mu, np.ones(3))
    mu[0] = 5.0
    assert forecast.mu[0] == 0.0 and forecast.mu.dtype == np.float64
