"""trainer.verdicts and trainer.direction_baselines on real values: Diebold–Mariano against statsmodels, a planted
signal found, shuffled candles judged "no significant skill", bootstrap coverage, a job re-scored from its files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scoringrules as sr
import statsmodels.api as sm
from scipy import stats
from sklearn.metrics import log_loss

from trainer.baselines import forecast_baselines
from trainer.config import TrainingConfig
from trainer.data.store import load_dataset
from trainer.distributions import Forecast
from trainer.direction_baselines import direction_inputs, fit_models, forecast_direction
from trainer.features import build_samples
from trainer.metrics import per_bar_losses
from trainer.scoreboard import BASELINE_NAMES, DIRECTION_BASELINES, baseline
from trainer.train import run_job
from trainer import verdicts as verdicts_module
from trainer.verdicts import diebold_mariano, hac_lags, job_verdicts, verdicts


def ar1(rng: np.random.Generator, n: int, phi: float, scale: float = 1.0) -> np.ndarray:
    """A stationary Gaussian AR(1) series with unit-free innovations of ``scale``."""
    e = rng.normal(0, scale, n)
    x = np.empty(n)
    x[0] = e[0] / np.sqrt(1 - phi**2)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


@pytest.mark.parametrize("horizon", [1, 8])
def test_diebold_mariano_equals_a_direct_statsmodels_computation(horizon: int) -> None:
    rng = np.random.default_rng(3)
    n = 3000
    base = 1.0 + 0.2 * ar1(rng, n, 0.5)
    model = base - 0.01 + 0.1 * ar1(rng, n, 0.6)  # better by 0.01 per bar, autocorrelated
    result = verdicts({"crps": model}, {"garch": {"crps": base}}, horizon=horizon, seed=1, reps=200)
    test = result["tests"]["garch"]["crps"]

    d = model - base
    fit = sm.OLS(d, np.ones((n, 1))).fit(
        cov_type="HAC", cov_kwds={"maxlags": max(10, 2 * horizon)}
    )
    assert result["hac_lags"] == max(10, 2 * horizon) == hac_lags(horizon)
    assert test["t"] == pytest.approx(fit.tvalues[0], rel=1e-12)
    assert test["p"] == pytest.approx(fit.pvalues[0], rel=1e-9)
    assert test["p"] == pytest.approx(2 * stats.norm.sf(abs(fit.tvalues[0])), rel=1e-9)  # two-sided, normal
    assert test["diff"] == pytest.approx(d.mean())
    assert test["skill"] == pytest.approx(1 - model.mean() / base.mean())
    assert test["verdict"] == "better" and test["t"] < 0
    assert test["ci_low"] < test["skill"] < test["ci_high"]
    assert test["text"].startswith("better than GARCH(1,1)-t on CRPS (skill +")


def test_identical_scores_are_no_difference() -> None:
    same = np.linspace(0.1, 1.0, 500)
    assert diebold_mariano(same - same, 10) == (None, None, 0.0)
    result = verdicts({"brier": same}, {"logit_ar1": {"brier": same.copy()}}, horizon=1, seed=0, reps=100)
    assert result["tests"]["logit_ar1"]["brier"]["verdict"] == "no_difference"
    assert result["headline"]["direction"] is None  # judged on log loss, not given here


def test_beating_only_a_baseline_worse_than_climatology_is_no_skill() -> None:
    rng = np.random.default_rng(11)
    climatology = 0.69 + 0.05 * rng.random(4000)
    model = climatology + 0.002 * rng.standard_normal(4000)  # climatology's loss, give or take noise
    noisy_fit = climatology + 0.02  # a baseline that fits noise: clearly worse than climatology
    result = verdicts({"log_loss": model}, {"climatology": {"log_loss": climatology}, "gbm": {"log_loss": noisy_fit}},
                      horizon=1, seed=0, reps=100)
    headline = result["headline"]["direction"]
    assert headline["outcome"] == "no_skill" and headline["better_than"] == ["gbm"]
    assert headline["text"].startswith("Direction (p_up): no significant skill (not better than Climatology); beats 1 of 2")
    skilled = verdicts({"log_loss": climatology - 0.01}, {"climatology": {"log_loss": climatology}}, horizon=1, seed=0,
                       reps=100)["headline"]["direction"]
    assert skilled["outcome"] == "beats_all" and "no significant skill" not in skilled["text"]


def test_a_constant_p_up_per_fold_is_no_direction_skill() -> None:
    """A base rate nearer the truth than climatology's frequency beats it, and a noisy boosted model, on log loss:
    still no direction signal, so the headline says no skill (fresh-user report: a random walk judged skilled)."""
    rng = np.random.default_rng(12)
    n = 3000
    up = rng.random(n) < 0.5
    y = np.where(up, 0.01, -0.01)
    model = Forecast.from_params("gaussian", np.zeros(n), np.full(n, 0.01), p_up=np.r_[np.full(n // 2, 0.50),
                                                                                       np.full(n - n // 2, 0.51)])
    baselines = {"climatology": Forecast.from_params("gaussian", np.zeros(n), np.full(n, 0.01), p_up=np.full(n, 0.58)),
                 "gbm": np.clip(0.5 + 0.2 * rng.standard_normal(n), 0.01, 0.99)}
    by_fold = job_verdicts(model, baselines, y, horizon=1, seed=0, fold_lengths=[n // 2, n - n // 2])
    direction = by_fold["headline"]["direction"]
    assert {"climatology", "gbm"} <= set(direction["better_than"])
    assert direction["outcome"] == "no_skill"
    assert direction["text"].startswith("Direction (p_up): no significant skill (p_up is one constant per fold")
    # A significant p_up line against another constant (climatology's frequency) says what it measures; against
    # a baseline whose p_up varies (gbm) it is a real difference, and the distribution's lines do not carry it.
    climatology, gbm = (by_fold["tests"][name]["log_loss"]["text"] for name in ("climatology", "gbm"))
    assert climatology.startswith("better than") and gbm.startswith("better than")
    assert climatology.endswith("this tells where the test up-rate fell, not skill") and "base rate" not in gbm
    assert "base rate" not in by_fold["tests"]["climatology"]["crps"]["text"]
    # Varying within a block is a signal to be judged: the same p_up as one block is not constant.
    one_block = job_verdicts(model, baselines, y, horizon=1, seed=0)
    assert one_block["headline"]["direction"]["outcome"] == "beats_all"
    assert "base rate" not in one_block["tests"]["climatology"]["log_loss"]["text"]


def test_the_headlines_say_in_how_many_folds_a_gate_fell_back() -> None:
    """A fresh-user trial could not tell that two of three folds scored climatology's own fit."""
    rng = np.random.default_rng(3)
    n = 900
    y = 0.01 * rng.standard_normal(n)
    model = Forecast.from_params("gaussian", np.zeros(n), np.full(n, 0.01), p_up=0.5 + 0.01 * rng.standard_normal(n))
    baselines = {"climatology": Forecast.from_params("gaussian", np.zeros(n), np.full(n, 0.011), p_up=np.full(n, 0.5))}
    gate = lambda stack, network: {"direction": {"stack": stack, "t": -1.0},  # noqa: E731
                                   "distribution": {"network": network, "t": {"crps": 0.5, "nll": 0.5}}}
    mixed = job_verdicts(model, baselines, y, 1, 0, [300] * 3, [gate(True, False), gate(False, False), gate(True, True)])
    assert mixed["headline"]["direction"]["text"].endswith(
        "; p_up from the stack in 2 of 3 folds (the base rate in the others)")
    assert mixed["headline"]["distribution"]["text"].endswith(
        "; the network's distribution in 1 of 3 folds (an unconditional fit of the history in the others)")
    closed = job_verdicts(model, baselines, y, 1, 0, [300] * 3, [gate(True, False)] * 3)
    assert closed["headline"]["distribution"]["text"].endswith(
        "; the network's distribution in 0 of 3 folds (an unconditional fit of the history in all)")
    assert "folds" not in closed["headline"]["direction"]["text"]  # every fold used the stack
    one = job_verdicts(model, baselines, y, 1, 0, [900], [gate(True, False)])
    assert one["headline"]["distribution"]["text"].endswith("in 0 of 1 fold (an unconditional fit of the history in all)")
    assert "folds" not in job_verdicts(model, baselines, y, 1, 0, [300] * 3)["headline"]["distribution"]["text"]


def test_same_seed_same_interval_other_seed_another() -> None:
    rng = np.random.default_rng(5)
    base, model = 1 + rng.random(2000), 1 + rng.random(2000)
    run = lambda seed: verdicts({"crps": model}, {"ewma": {"crps": base}}, 1, seed, reps=300)  # noqa: E731
    first, again, other = run(7), run(7), run(8)
    assert first == again
    assert first["tests"]["ewma"]["crps"]["ci_low"] != other["tests"]["ewma"]["crps"]["ci_low"]


def test_bootstrap_interval_covers_the_known_skill_90_to_99_percent() -> None:
    """200 seeded repeats of autocorrelated per-bar losses with known means: baseline mean c, difference mean
    mu, so the true skill is -mu / c; the 95 % interval must cover it in 90–99 % of the repeats."""
    n, c, mu = 1000, 1.0, -0.02
    covered = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        base = c + 0.3 * ar1(rng, n, 0.5)
        model = base + mu + 0.2 * ar1(rng, n, 0.4)
        result = verdicts({"crps": model}, {"ewma": {"crps": base}}, horizon=1, seed=seed, reps=400)
        test = result["tests"]["ewma"]["crps"]
        covered += test["ci_low"] <= -mu / c <= test["ci_high"]
    assert 180 <= covered <= 198, covered


def synthetic_candles(returns: np.ndarray, start: str = "2020-01-01") -> pd.DataFrame:
    """An hourly candle table whose closes follow the given one-bar log returns (open = previous close)."""
    close = 100 * np.exp(np.cumsum(returns))
    open_ = np.r_[100.0, close[:-1]]
    wiggle = np.abs(returns) / 2 + 1e-4
    return pd.DataFrame({
        "open_time": pd.date_range(start, periods=len(returns), freq="1h", tz="UTC"),
        "open": open_, "high": np.maximum(open_, close) * np.exp(wiggle),
        "low": np.minimum(open_, close) * np.exp(-wiggle), "close": close, "volume": 1000 + np.arange(len(returns)) % 7,
    })


def test_planted_ar1_signal_is_recovered_and_beats_climatology() -> None:
    phi, sigma_e, n = -0.2, 0.01, 24_000
    returns = ar1(np.random.default_rng(11), n, phi, sigma_e)
    samples = build_samples(synthetic_candles(returns), "1h", lookback=2, horizon=1)
    positions = samples.positions
    cut = int(0.7 * len(positions))
    history, test_t = positions[: cut - 1], positions[cut:]

    up = samples.y[history] > 0
    inputs = direction_inputs(samples.features, samples.close, samples.segment, history, 1)
    model = fit_models(inputs, up, seed=0)["logit_ar1"]
    scaler, logit = model.named_steps["standardscaler"], model.named_steps["logisticregression"]
    slope = logit.coef_[0, 0] / scaler.scale_[0]  # per unit of log return
    # P(up | r) = Phi(phi r / sigma_e); a logistic curve matches a probit one with a slope 1.6 times as steep.
    phi_hat = slope * sigma_e / 1.6
    assert phi_hat == pytest.approx(phi, rel=0.15), phi_hat

    p_up = forecast_direction(samples.features, samples.close, samples.segment, samples.y, history, test_t, 1, seed=0)
    climatology = forecast_baselines(samples.close, samples.segment, history, test_t, 1)["climatology"]
    y = samples.y[test_t]
    result = verdicts(
        {k: v for k, v in per_bar_losses(y, p_up["logit_ar1"]).items() if k in ("log_loss", "brier")},
        {"climatology": {k: v for k, v in per_bar_losses(y, climatology.p_up).items() if k in ("log_loss", "brier")}},
        horizon=1, seed=0, reps=300,
    )
    for score in ("log_loss", "brier"):
        test = result["tests"]["climatology"][score]
        assert test["verdict"] == "better" and test["t"] < -5 and test["p"] < 1e-6, test
        assert test["ci_low"] > 0


def test_direction_baselines_refuse_a_training_label_that_reaches_the_test_block() -> None:
    samples = build_samples(synthetic_candles(ar1(np.random.default_rng(1), 600, 0.0, 0.01)), "1h", 2, 3)
    pos = samples.positions
    with pytest.raises(ValueError, match="look-ahead"):
        forecast_direction(samples.features, samples.close, samples.segment, samples.y, pos[:300], pos[301:], 3, 0)


def test_registry_is_what_a_job_produces() -> None:
    assert BASELINE_NAMES == ("climatology", "ewma", "garch", "logit_ar1", "logit_ar3", "gbm", "majority")
    assert set(DIRECTION_BASELINES) == {"logit_ar1", "logit_ar3", "gbm", "majority"}
    assert baseline("majority").scores == ("accuracy",)


@pytest.fixture(scope="module")
def shuffled_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real job on the last 6,000 bundled candles with their bars shuffled: each bar keeps its own
    return, range and volume, the order is random, so nothing about the next bar can be known."""
    frame = load_dataset("BTCUSDT", "1h").candles.iloc[-6000:].reset_index(drop=True)
    close = frame["close"].to_numpy()
    order = np.random.default_rng(2024).permutation(len(frame) - 1) + 1
    returns = np.log(close[1:] / close[:-1])[order - 1]
    new_close = close[0] * np.exp(np.r_[0.0, np.cumsum(returns)])
    ratio = np.r_[1.0, new_close[1:] / close[order]]  # move each bar's open/high/low with its close
    shuffled = frame.copy()
    for column in ("open", "high", "low", "close"):
        shuffled[column] = np.r_[frame[column].iloc[0], frame[column].to_numpy()[order]] * ratio
    shuffled["volume"] = np.r_[frame["volume"].iloc[0], frame["volume"].to_numpy()[order]]
    job_dir = tmp_path_factory.mktemp("shuffled") / "job"
    config = TrainingConfig(epochs=2, cv_folds=2, lookback=16)
    run_job(config, job_dir, lambda event: None, candles=shuffled)
    return job_dir


@pytest.mark.slow
def test_shuffled_candles_get_no_significant_direction_skill(shuffled_job: Path) -> None:
    verdict = json.loads((shuffled_job / "metrics.json").read_text())["pooled"]["verdicts"]
    for score, test in verdict["tests"]["climatology"].items():
        if score in ("log_loss", "brier"):
            assert test["verdict"] in ("no_difference", "worse"), test
    direction = verdict["headline"]["direction"]
    assert direction["outcome"] in ("beats_none", "no_skill") and "no significant skill" in direction["text"], direction


@pytest.mark.slow
def test_a_job_is_rescored_from_its_predictions_alone(shuffled_job: Path) -> None:
    metrics = json.loads((shuffled_job / "metrics.json").read_text())["pooled"]
    config = json.loads((shuffled_job / "config.json").read_text())
    rows = pd.read_csv(shuffled_job / "predictions.csv")
    y, up = rows["y"].to_numpy(), rows["y"].to_numpy() > 0
    assert config["distribution"] == "student_t" and (rows["nu"] > 2).all()

    crps = sr.crps_t(y, rows["nu"].to_numpy(), rows["mu"].to_numpy(), rows["sigma"].to_numpy())
    assert crps.mean() == pytest.approx(metrics["model"]["crps"], rel=1e-6)
    assert log_loss(up, rows["p_up"]) == pytest.approx(metrics["model"]["log_loss"], rel=1e-6)
    for name in ("climatology", "garch", "logit_ar1", "logit_ar3", "gbm"):
        assert log_loss(up, rows[f"{name}_p_up"]) == pytest.approx(metrics["baselines"][name]["log_loss"], rel=1e-6)
    garch_crps = sr.crps_t(y, rows["garch_nu"].to_numpy(), rows["garch_mu"].to_numpy(), rows["garch_sigma"].to_numpy())
    assert garch_crps.mean() == pytest.approx(metrics["baselines"]["garch"]["crps"], rel=1e-6)
    accuracy = np.mean((rows["majority_p_up"] > 0.5) == up)
    assert accuracy == pytest.approx(metrics["baselines"]["majority"]["accuracy"])

    # The verdict against GARCH-t on CRPS, recomputed independently from the file.
    fit = sm.OLS(crps - garch_crps, np.ones(len(rows))).fit(cov_type="HAC", cov_kwds={"maxlags": 10})
    test = metrics["verdicts"]["tests"]["garch"]["crps"]
    assert test["t"] == pytest.approx(fit.tvalues[0], rel=1e-4) and test["p"] == pytest.approx(fit.pvalues[0], rel=1e-3)


@pytest.mark.slow
def test_report_html_starts_with_the_verdicts(shuffled_job: Path) -> None:
    verdict = json.loads((shuffled_job / "metrics.json").read_text())["pooled"]["verdicts"]
    page = (shuffled_job / "report.html").read_text()
    body = page[page.index("<body>"):]
    first_h2 = body.index("<h2>")
    assert body[first_h2:].startswith("<h2>Verdicts</h2>") and first_h2 < body.index("<table")
    for kind in ("direction", "distribution"):
        assert body.index(verdict["headline"][kind]["text"].split(";")[0]) < body.index("<table")
    assert "no significant difference from" in body or "worse than" in body  # the per-baseline sentences


def test_bootstrap_prefix_sums_equal_gathering_the_resampled_rows() -> None:
    """The fast path (sums of runs from prefix sums) gives the intervals that gathering each resample's rows gives."""
    from arch.bootstrap import StationaryBootstrap

    rng = np.random.default_rng(3)
    n, block, seed, reps = 500, 10, 11, 200
    model = {"log_loss": rng.gamma(2.0, 0.35, n)}
    base = model["log_loss"] + rng.normal(0.01, 0.05, n)
    skill_ci, diff_ci = verdicts_module._bootstrap(model, [("log_loss", base)], block, seed, reps)
    means = np.array([
        [model["log_loss"][data[0]].mean(), base[data[0]].mean()]
        for data, _ in StationaryBootstrap(block, np.arange(n), seed=seed).bootstrap(reps)
    ])
    tails = [2.5, 97.5]
    np.testing.assert_allclose(skill_ci[:, 0], np.percentile(1 - means[:, 0] / means[:, 1], tails), rtol=1e-10)
    np.testing.assert_allclose(diff_ci[:, 0], np.percentile(means[:, 0] - means[:, 1], tails), rtol=1e-10, atol=1e-14)
