"""trainer.metrics: a metric block on synthetic inputs whose true values are known."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scoringrules as sr
from scipy import stats
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from trainer.distributions import Forecast
from trainer.metrics import (
    brier_decomposition,
    evaluate,
    expected_calibration_error,
    reliability_table,
    skill_scores,
)

BLOCK_KEYS = {
    "n", "crps", "nll", "pit_hist", "pit_ks", "coverage_50", "coverage_80", "coverage_95", "brier",
    "brier_reliability", "brier_resolution", "brier_uncertainty", "log_loss", "ece", "calibration_in_the_large",
    "accuracy", "roc_auc", "up_rate", "reliability",
}  # fmt: skip
N = 20_000


def draws_from_truth(family: str, seed: int = 0) -> tuple[Forecast, np.ndarray]:
    """Forecasts with varying mu/sigma and outcomes drawn from exactly those distributions."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(0, 0.004, N)
    sigma = rng.uniform(0.005, 0.02, N)
    nu = rng.uniform(3, 10, N) if family == "student_t" else None
    z = {"gaussian": rng.standard_normal, "laplace": lambda n: rng.laplace(size=n)}.get(family)
    noise = rng.standard_t(nu) if family == "student_t" else z(N)
    return Forecast.from_params(family, mu, sigma, nu), mu + sigma * noise


@pytest.mark.parametrize("family", ["gaussian", "laplace", "student_t"])
def test_pit_and_coverage_are_nominal_under_the_true_distribution(family: str) -> None:
    forecast, y = draws_from_truth(family)
    block = evaluate(forecast, y)
    # Each PIT bin holds 10 % +- 4.7 binomial sds (sd = sqrt(.1 * .9 / N) = 0.0021).
    np.testing.assert_allclose(block["pit_hist"], 0.1, atol=0.01)
    assert sum(block["pit_hist"]) == pytest.approx(1.0)
    assert block["pit_ks"] < 1.63 / np.sqrt(N)  # the KS test's 1 % critical value
    for level in (50, 80, 95):
        # sd of a coverage fraction <= sqrt(.25 / N) = 0.0035; 0.012 is ~3.4 sds.
        assert block[f"coverage_{level}"] == pytest.approx(level / 100, abs=0.012), level
    # Outcomes drawn from the forecast itself: p_up is calibrated.
    assert block["ece"] < 0.02
    assert abs(block["calibration_in_the_large"]) < 0.01


def test_distribution_scores_match_reference_implementations() -> None:
    forecast, y = draws_from_truth("student_t", seed=1)
    block = evaluate(forecast, y)
    assert block["crps"] == pytest.approx(np.mean(sr.crps_t(y, forecast.nu, forecast.mu, forecast.sigma)), rel=1e-9)
    nll = -np.mean(stats.t.logpdf(y, forecast.nu, forecast.mu, forecast.sigma))
    assert block["nll"] == pytest.approx(nll, rel=1e-9)
    assert block["pit_ks"] == pytest.approx(stats.kstest(forecast.cdf(y), "uniform").statistic)


def test_direction_scores_match_sklearn() -> None:
    forecast, y = draws_from_truth("gaussian", seed=2)
    block = evaluate(forecast, y)
    up = y > 0
    assert block["n"] == N
    assert block["brier"] == pytest.approx(brier_score_loss(up, forecast.p_up))
    assert block["log_loss"] == pytest.approx(log_loss(up, forecast.p_up))
    assert block["roc_auc"] == pytest.approx(roc_auc_score(up, forecast.p_up))
    assert block["accuracy"] == pytest.approx(np.mean((forecast.p_up > 0.5) == up))
    assert block["up_rate"] == pytest.approx(up.mean())
    assert block["calibration_in_the_large"] == pytest.approx(forecast.p_up.mean() - up.mean())


def test_block_is_json_safe_with_the_contract_keys() -> None:
    forecast, y = draws_from_truth("laplace", seed=3)
    block = evaluate(forecast, y, p_up_raw=np.full(N, 0.5))
    assert set(block) == BLOCK_KEYS | {"ece_raw", "brier_raw"}
    json.dumps(block, allow_nan=False)
    assert len(block["pit_hist"]) == 10
    assert [len(block["reliability"][k]) for k in ("p_mean", "freq", "count")] == [10, 10, 10]
    assert sum(block["reliability"]["count"]) == N
    assert block["brier_raw"] == pytest.approx(np.mean((0.5 - (y > 0)) ** 2))
    assert block["ece_raw"] == pytest.approx(abs(0.5 - np.mean(y > 0)))  # a constant p_up is one bin


def test_one_class_gives_null_auc_not_nan() -> None:
    forecast = Forecast.from_params("gaussian", np.full(50, 0.01), np.full(50, 0.01))
    block = evaluate(forecast, np.full(50, 0.02))  # every outcome is up
    assert block["roc_auc"] is None
    assert block["up_rate"] == 1.0
    json.dumps(block, allow_nan=False)


def test_brier_decomposition_identity() -> None:
    rng = np.random.default_rng(4)
    p = np.clip(rng.normal(0.5, 0.03, N), 0, 1)  # a realistic spread of 1 h up-probabilities
    outcome = rng.random(N) < np.clip(p + 0.4 * (p - 0.5), 0, 1)  # somewhat under-confident p
    d = brier_decomposition(p, outcome)
    # Exact (Stephenson et al. 2008): the two within-bin terms close the binned decomposition.
    murphy = d["reliability"] - d["resolution"] + d["uncertainty"]
    exact = murphy + d["within_bin_variance"] - 2 * d["within_bin_covariance"]
    assert exact == pytest.approx(d["brier"], abs=1e-12)
    # Murphy's three terms alone: equal up to those within-bin terms, < 1e-3 with 10 quantile bins here.
    assert murphy == pytest.approx(d["brier"], abs=1e-3)
    block = evaluate(Forecast("gaussian", np.zeros(N), np.ones(N), None, p), np.where(outcome, 1.0, -1.0))
    assert block["brier_reliability"] == pytest.approx(d["reliability"])
    assert block["brier_resolution"] == pytest.approx(d["resolution"])
    assert block["brier_uncertainty"] == pytest.approx(outcome.mean() * (1 - outcome.mean()))


def test_ece_near_zero_when_calibrated_and_large_when_not() -> None:
    rng = np.random.default_rng(5)
    p = rng.uniform(0.3, 0.7, 50_000)
    outcome = rng.random(p.size) < p
    # Sampling noise alone: about sqrt(2/pi) * sqrt(.25 / 5000) = 0.0056 per bin.
    assert expected_calibration_error(p, outcome) < 0.012
    assert expected_calibration_error(np.clip(p + 0.1, 0, 1), outcome) == pytest.approx(0.1, abs=0.012)


def test_reliability_bins_are_quantiles_and_ties_share_a_bin() -> None:
    p = np.linspace(0.4, 0.6, 1000)
    table = reliability_table(p, p > 0.5)
    np.testing.assert_array_equal(table["count"], np.full(10, 100))
    assert np.all(np.diff(table["p_mean"]) > 0)
    tied = reliability_table(np.r_[np.full(900, 0.5), np.linspace(0.6, 0.7, 100)], np.zeros(1000, bool))
    assert tied["count"].tolist() == [900, 100]


def test_skill_scores() -> None:
    assert skill_scores({"crps": 0.9, "brier": 0.25}, {"crps": 1.0, "brier": 0.25}) == pytest.approx(
        {"crps_skill": 0.1, "brier_skill": 0.0}
    )
    undefined = skill_scores({"crps": 0.9, "brier": None}, {"crps": 0.0, "brier": 0.2})
    assert undefined == {"crps_skill": None, "brier_skill": None}


@pytest.mark.parametrize(
    ("y", "message"),
    [(np.zeros(3), r"shape \(2,\)"), (np.array([0.0, np.nan]), "non-finite"), (np.zeros((2, 1)), "shape")],
)
def test_bad_outcomes_raise(y: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate(Forecast.from_params("gaussian", [0.0, 0.0], [1.0, 1.0]), y)


def test_empty_forecast_raises() -> None:
    with pytest.raises(ValueError, match="empty"):
        evaluate(Forecast.from_params("gaussian", [], []), np.array([]))


def test_the_reliability_plot_draws_calibrated_equal_to_raw_as_one_line(tmp_path) -> None:
    """With the default abs calibration and the direction stack p_up is its raw value: one line says so, rather than
    a calibrated line hidden exactly under the raw one."""
    import pandas as pd

    from trainer.report import plot_reliability, reliability_series

    rng = np.random.default_rng(0)
    p_raw = rng.uniform(0.3, 0.7, 500)
    y = rng.normal(size=500)
    garch = reliability_table(rng.uniform(0.45, 0.55, 500), y > 0)
    for p_up, labels in [(p_raw, ["model (calibrated = raw)", "garch"]),
                         (np.clip(p_raw + 0.05, 0, 1), ["model (calibrated)", "model (raw)", "garch"])]:
        predictions = pd.DataFrame({"y": y, "p_up": p_up, "p_up_raw": p_raw})
        metrics = {"pooled": {"model": {"reliability": reliability_table(p_up, y > 0)},
                              "baselines": {"garch": {"reliability": garch}}}}
        series = reliability_series(metrics, predictions)
        assert [label for label, _ in series] == labels
        assert series[0][1] is metrics["pooled"]["model"]["reliability"]
        plot_reliability(metrics, predictions, tmp_path / "reliability.png")
        assert (tmp_path / "reliability.png").read_bytes().startswith(b"\x89PNG")
