"""trainer.calibration: each method fixes the miscalibration it is built for, on synthetic data with a known truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import special, stats
from sklearn.isotonic import IsotonicRegression

from trainer.calibration import METHODS, Calibrator, fit_calibrator
from trainer.config import TrainingConfig
from trainer.distributions import Forecast
from trainer.metrics import expected_calibration_error


def scaled_truth(family: str, n: int, true_over_forecast: float, seed: int) -> tuple[Forecast, np.ndarray]:
    """Forecasts whose sigma is ``true_over_forecast`` times too small; outcomes from the true distribution."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(0, 0.004, n)
    sigma = rng.uniform(0.005, 0.02, n)
    nu = rng.uniform(3, 8, n) if family == "student_t" else None
    noise = {
        "gaussian": lambda: rng.standard_normal(n),
        "laplace": lambda: rng.laplace(size=n),
        "student_t": lambda: rng.standard_t(nu),
    }[family]()
    y = mu + true_over_forecast * sigma * noise
    return Forecast.from_params(family, mu, sigma, nu), y


@pytest.mark.parametrize("family", ["gaussian", "laplace", "student_t"])
def test_abs_recovers_a_known_scale_error(family: str) -> None:
    forecast, y = scaled_truth(family, 20_000, true_over_forecast=2.5, seed=0)
    calibrator = fit_calibrator("abs", forecast, y)
    # Standard error of a mean of |Z| over 20k draws is < 0.5 %; allow 2 %.
    assert calibrator.params["scale"] == pytest.approx(2.5, rel=0.02)
    calibrated = calibrator.apply(forecast)
    np.testing.assert_allclose(calibrated.sigma, forecast.sigma * calibrator.params["scale"])
    np.testing.assert_allclose(calibrated.p_up, calibrated.p_up_from_cdf())  # p_up follows the wider CDF
    assert np.all(np.abs(calibrated.p_up - 0.5) <= np.abs(forecast.p_up - 0.5))


@pytest.mark.parametrize("method", ["mle", "crps"])
@pytest.mark.parametrize("family", ["gaussian", "laplace", "student_t"])
def test_mle_and_crps_recover_a_known_scale_and_tail(family: str, method: str) -> None:
    # The forecast says nu = 2.5 (a peaked centre) and a scale 2x too small; the truth is nu = 6.
    rng = np.random.default_rng(7)
    n = 40_000
    mu, sigma = rng.normal(0, 0.004, n), rng.uniform(0.005, 0.02, n)
    student = family == "student_t"
    noise = rng.standard_t(6.0, n) if student else (rng.laplace(size=n) if family == "laplace" else rng.standard_normal(n))
    y = mu + 2.0 * sigma * noise
    forecast = Forecast.from_params(family, mu, sigma, np.full(n, 2.5) if student else None)
    calibrator = fit_calibrator(method, forecast, y)
    assert calibrator.params["scale"] == pytest.approx(2.0, rel=0.03)
    assert calibrator.params["nu"] == (pytest.approx(6.0, rel=0.15) if student else None)
    calibrated = calibrator.apply(forecast)
    if student:
        np.testing.assert_array_equal(calibrated.nu, np.full(n, calibrator.params["nu"]))
    pit_ks = stats.kstest(calibrated.cdf(y), "uniform").statistic
    assert pit_ks < 0.01 < stats.kstest(forecast.cdf(y), "uniform").statistic  # ~0.0068 is 5 % on 40k bars


def test_abs_keeps_a_head_p_up() -> None:
    forecast, y = scaled_truth("gaussian", 2000, true_over_forecast=2.0, seed=1)
    head = forecast.replace(p_up=np.full(len(forecast), 0.53))
    calibrated = fit_calibrator("abs", head, y, p_up_source="head").apply(head)
    np.testing.assert_array_equal(calibrated.p_up, head.p_up)
    assert calibrated.sigma[0] == pytest.approx(2 * forecast.sigma[0], rel=0.1)


@pytest.mark.parametrize("method", ["abs", "mle", "crps", "isotonic", "platt", "temperature"])
def test_every_method_lowers_ece_of_an_overconfident_forecast(method: str) -> None:
    # sigma 3x too small makes p_up = 1 - F(0) far too confident; fit on one slice, judge on a later one.
    calibration_slice, y_calibration = scaled_truth("student_t", 5000, true_over_forecast=3.0, seed=2)
    test_slice, y_test = scaled_truth("student_t", 20_000, true_over_forecast=3.0, seed=3)
    before = expected_calibration_error(test_slice.p_up, y_test > 0)
    calibrated = fit_calibrator(method, calibration_slice, y_calibration).apply(test_slice)
    after = expected_calibration_error(calibrated.p_up, y_test > 0)
    assert before > 0.05
    # Sampling noise alone leaves an ECE of ~0.006 on 20k bars; isotonic/platt also pay for 5k fitting bars.
    assert after < 0.015 and after < before / 4, (before, after)


def test_none_is_the_identity() -> None:
    forecast, y = scaled_truth("laplace", 500, 3.0, seed=4)
    calibrator = fit_calibrator("none", forecast, y)
    assert calibrator.apply(forecast) is forecast
    assert calibrator.to_dict() == {"method": "none", "params": {}, "p_up_source": "cdf"}


def logistic_truth(n: int, seed: int, a: float, b: float) -> tuple[Forecast, np.ndarray]:
    """p_up whose true up-probability is sigmoid(a logit(p_up) + b)."""
    rng = np.random.default_rng(seed)
    p = special.expit(rng.normal(0, 1.0, n))
    up = rng.random(n) < special.expit(a * special.logit(p) + b)
    forecast = Forecast("gaussian", np.zeros(n), np.ones(n), None, p)
    return forecast, np.where(up, 0.01, -0.01)


def test_temperature_recovers_a_known_temperature() -> None:
    forecast, y = logistic_truth(40_000, seed=5, a=0.5, b=0.0)
    calibrator = fit_calibrator("temperature", forecast, y)
    assert calibrator.params["temperature"] == pytest.approx(2.0, rel=0.05)


def test_platt_recovers_known_slope_and_intercept() -> None:
    forecast, y = logistic_truth(40_000, seed=6, a=0.6, b=-0.3)
    calibrator = fit_calibrator("platt", forecast, y)
    assert calibrator.params["a"] == pytest.approx(0.6, abs=0.05)
    assert calibrator.params["b"] == pytest.approx(-0.3, abs=0.05)


def test_isotonic_applies_its_saved_thresholds_and_follows_sklearn_on_a_long_block() -> None:
    forecast, y = logistic_truth(3000, seed=7, a=0.5, b=0.2)
    calibrator = fit_calibrator("isotonic", forecast, y)
    later, _ = logistic_truth(1000, seed=8, a=0.5, b=0.2)
    applied = calibrator.apply(later).p_up
    np.testing.assert_array_equal(applied, np.interp(later.p_up, calibrator.params["x"], calibrator.params["y"]))
    assert np.all(np.diff(calibrator.params["y"]) >= 0)  # still monotone after the smoothing
    # Levels of many bars barely move (m = 20 against hundreds of bars); only the sparse end plateaus are pulled in.
    plain = IsotonicRegression(out_of_bounds="clip").fit(forecast.p_up, y > 0).predict(later.p_up)
    inner = (later.p_up > np.quantile(forecast.p_up, 0.05)) & (later.p_up < np.quantile(forecast.p_up, 0.95))
    assert np.max(np.abs(applied - plain)[inner]) < 0.05


def well_calibrated(n: int, seed: int) -> tuple[Forecast, np.ndarray]:
    """A p_up like a real forecaster's (near 0.5) whose outcomes are drawn with exactly that probability."""
    rng = np.random.default_rng(seed)
    p = special.expit(rng.normal(0, 0.2, n))
    forecast = Forecast("gaussian", np.zeros(n), np.ones(n), None, p)
    return forecast, np.where(rng.random(n) < p, 0.01, -0.01)


def log_loss(p: np.ndarray, up: np.ndarray) -> float:
    return float(-np.mean(np.where(up, np.log(p), np.log1p(-p))))


@pytest.mark.parametrize("seed", range(5))
def test_isotonic_on_a_short_block_keeps_sparse_end_plateaus_off_0_and_1(seed: int) -> None:
    # 200 calibration bars: plain isotonic puts the few lowest/highest p_up on a 0 or 1 plateau (clipped to
    # 1e-4 / 0.9999), which costs ~0.08 nats of log loss on fresh bars on average; the m-estimate keeps them near
    # the base rate. 0.02 nats is what a 2-parameter Platt fit on the same 200 bars costs at worst (40 seeds).
    forecast, y = well_calibrated(200, seed)
    fresh, y_fresh = well_calibrated(20_000, 1000 + seed)
    calibrated = fit_calibrator("isotonic", forecast, y).apply(fresh).p_up
    assert 0.2 < calibrated.min() and calibrated.max() < 0.8  # the input p_up spans about [0.3, 0.7]
    assert log_loss(calibrated, y_fresh > 0) - log_loss(fresh.p_up, y_fresh > 0) < 0.02
    assert expected_calibration_error(calibrated, y_fresh > 0) < 0.1


def test_the_short_block_is_one_where_plain_isotonic_reaches_the_clip() -> None:
    # The case above is a real one: without the smoothing, these blocks put plateaus at 0 or 1.
    reached = []
    for seed in range(5):
        forecast, y = well_calibrated(200, seed)
        plain = IsotonicRegression(out_of_bounds="clip").fit(forecast.p_up, y > 0)
        reached.append(plain.y_thresholds_.min() == 0.0 or plain.y_thresholds_.max() == 1.0)
    assert sum(reached) >= 3, reached


@pytest.mark.parametrize("method", METHODS)
def test_round_trip_through_json(method: str) -> None:
    forecast, y = scaled_truth("student_t", 3000, 2.0, seed=9)
    calibrator = fit_calibrator(method, forecast, y)
    restored = Calibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())))
    assert restored == calibrator
    np.testing.assert_array_equal(restored.apply(forecast).p_up, calibrator.apply(forecast).p_up)


@pytest.mark.parametrize(
    ("saved", "message"),
    [
        ({"method": "beta"}, "unknown method 'beta'"),
        ({"method": "abs", "params": {}}, r"abs needs params \['scale'\]"),
        ({"method": "abs", "params": {"scale": -1.0}}, "scale must be > 0"),
        ({"method": "platt", "params": {"a": 1.0, "b": 0.0}, "p_up_source": "oracle"}, "unknown p_up_source"),
        ({"method": "none", "extra": 1}, "unknown key"),
        ([1, 2], "expected a dict"),
    ],
)
def test_from_dict_rejects_bad_input(saved, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Calibrator.from_dict(saved)


def test_fit_rejects_what_it_cannot_fit() -> None:
    forecast = Forecast.from_params("gaussian", np.zeros(10), np.ones(10))
    with pytest.raises(ValueError, match="only up or only down"):
        fit_calibrator("platt", forecast, np.full(10, 0.01))
    with pytest.raises(ValueError, match="unknown method"):
        fit_calibrator("histogram", forecast, np.zeros(10))
    with pytest.raises(ValueError, match="shape"):
        fit_calibrator("abs", forecast, np.zeros(9))
    with pytest.raises(ValueError, match="no scale"):
        fit_calibrator("abs", forecast, np.zeros(10))


@pytest.mark.parametrize("source", ["stack", "cdf"])
def test_default_never_worse_than_raw_on_a_well_calibrated_input(source: str) -> None:
    """The default job's calibration (``abs``) on a forecast that is already right: fitted on one sample,
    scored on a fresh one, the calibrated p_up is not worse than the raw one (the stack's p_up is kept as is)."""
    fit_on, y_fit = scaled_truth("student_t", 20_000, true_over_forecast=1.0, seed=5)
    scored, y = scaled_truth("student_t", 20_000, true_over_forecast=1.0, seed=6)
    calibrator = fit_calibrator(TrainingConfig().calibration_method, fit_on, y_fit, p_up_source=source)
    calibrated = calibrator.apply(scored)
    up = y > 0
    brier_raw, brier = np.mean((scored.p_up - up) ** 2), np.mean((calibrated.p_up - up) ** 2)
    if source == "stack":
        np.testing.assert_array_equal(calibrated.p_up, scored.p_up)
    assert brier <= brier_raw + 1e-5
    assert expected_calibration_error(calibrated.p_up, up) <= expected_calibration_error(scored.p_up, up) + 0.002
