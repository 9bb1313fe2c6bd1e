"""trainer.baselines on a simulated GARCH(1,1)-t series (known truth) and on a slice of the bundled candles."""

from __future__ import annotations

import numpy as np
import pytest
from arch import arch_model
from arch.univariate import GARCH, ConstantMean, StudentsT

from trainer.baselines import MIN_TRAIN_RETURNS, forecast_baselines, garch_horizon_weights
from trainer.data.candles import segment_ids
from trainer.data.store import load_dataset
from trainer.metrics import evaluate

# Simulation parameters in percent returns: mu, omega, alpha, beta, nu.
TRUE_PARAMS = [0.01, 0.02, 0.08, 0.90, 6.0]
N_BARS = 6001
TRAIN_END = 4000  # training samples t < TRAIN_END - h; test samples from TRAIN_END on


@pytest.fixture(scope="module")
def garch_series() -> dict[str, np.ndarray]:
    """Closes of a GARCH(1,1)-t log-price path; ``true_vol[t]`` is the true sd (log units) of the return
    ending at bar t + 1, i.e. the one a forecast made at bar t predicts."""
    model = ConstantMean(None, volatility=GARCH(), distribution=StudentsT(seed=np.random.default_rng(11)))
    sim = model.simulate(TRUE_PARAMS, N_BARS - 1, burn=500)
    close = 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(sim["data"].to_numpy() / 100)]))
    return {"close": close, "true_vol": sim["volatility"].to_numpy() / 100, "segment": np.zeros(N_BARS, np.int64)}


def split(horizon: int, n: int = N_BARS) -> tuple[np.ndarray, np.ndarray]:
    train_t = np.arange(0, TRAIN_END - horizon)
    test_t = np.arange(TRAIN_END, n - horizon)
    return train_t, test_t


def labels(close: np.ndarray, t: np.ndarray, horizon: int) -> np.ndarray:
    return np.log(close[t + horizon] / close[t])


@pytest.mark.parametrize("horizon", [1, 5])
def test_garch_beats_ewma_beats_climatology_on_a_garch_series(garch_series, horizon: int) -> None:
    close, segment = garch_series["close"], garch_series["segment"]
    train_t, test_t = split(horizon)
    forecasts = forecast_baselines(close, segment, train_t, test_t, horizon)
    assert set(forecasts) == {"climatology", "ewma", "garch"}
    y = labels(close, test_t, horizon)
    blocks = {name: evaluate(forecast, y) for name, forecast in forecasts.items()}
    crps = {name: block["crps"] for name, block in blocks.items()}
    assert crps["garch"] < crps["climatology"]
    assert crps["ewma"] < crps["climatology"]
    assert crps["garch"] <= crps["ewma"] * 1.005  # the true model class is at least as good as EWMA
    # NLL: GARCH-t best; Gaussian EWMA is not ranked, its thin tails can cost more than climatology's t.
    assert blocks["garch"]["nll"] < min(blocks["ewma"]["nll"], blocks["climatology"]["nll"])
    assert blocks["garch"]["coverage_80"] == pytest.approx(0.8, abs=0.03)
    for block in blocks.values():
        assert block["n"] == len(test_t)
        assert 0.2 < block["brier"] < 0.27


def test_garch_tracks_the_true_volatility(garch_series) -> None:
    close, segment = garch_series["close"], garch_series["segment"]
    train_t, test_t = split(1)
    garch = forecast_baselines(close, segment, train_t, test_t, 1)["garch"]
    nu = garch.nu[0]
    assert 4.0 < nu < 10.0  # true 6
    forecast_sd = garch.sigma * np.sqrt(nu / (nu - 2))
    true_sd = garch_series["true_vol"][test_t]
    assert np.median(np.abs(forecast_sd / true_sd - 1)) < 0.1
    assert np.corrcoef(forecast_sd, true_sd)[0, 1] > 0.95
    # Climatology: p_up is the training up-frequency, constant over the test bars.
    climatology = forecast_baselines(close, segment, train_t, test_t, 1)["climatology"]
    np.testing.assert_allclose(climatology.p_up, np.mean(labels(close, train_t, 1) > 0))


def test_no_forecast_uses_a_later_close(garch_series) -> None:
    close, segment = garch_series["close"], garch_series["segment"]
    train_t, test_t = split(3)
    k = 5000
    changed = close.copy()
    changed[k + 1 :] *= 1.3  # a jump in the return ending at k + 1 ...
    changed[k + 10] *= 2.0  # ... and an outlier later on
    before = forecast_baselines(close, segment, train_t, test_t, 3)
    after = forecast_baselines(changed, segment, train_t, test_t, 3)
    earlier = test_t <= k
    for name in before:
        for field in ("mu", "sigma", "p_up"):
            np.testing.assert_array_equal(getattr(after[name], field)[earlier], getattr(before[name], field)[earlier])
    for name in ("ewma", "garch"):  # the check can fail: later forecasts do see the change
        assert not np.allclose(after[name].sigma[~earlier], before[name].sigma[~earlier])


def test_a_return_across_a_gap_is_dropped(garch_series) -> None:
    close, train_t, test_t = garch_series["close"], *split(1)
    gap = 5000
    segment = np.where(np.arange(N_BARS) >= gap, 1, 0).astype(np.int64)
    jumped = close.copy()
    jumped[gap:] *= 5.0  # a 5x move between the bars either side of the gap
    with_gap = forecast_baselines(jumped, segment, train_t, test_t, 1)
    without_jump = forecast_baselines(close, segment, train_t, test_t, 1)
    bridged = forecast_baselines(jumped, np.zeros(N_BARS, np.int64), train_t, test_t, 1)
    for name in ("ewma", "garch"):
        np.testing.assert_allclose(with_gap[name].sigma, without_jump[name].sigma, rtol=1e-9)
        assert bridged[name].sigma[test_t == gap].item() > 2 * with_gap[name].sigma[test_t == gap].item()


def test_multi_step_variance_matches_arch_forecast(garch_series) -> None:
    returns = np.diff(np.log(garch_series["close"][:2001])) * 100
    model = arch_model(returns, mean="Constant", vol="GARCH", p=1, q=1, dist="t", rescale=False)
    params = model.fit(disp="off").params
    omega, alpha, beta = params["omega"], params["alpha[1]"], params["beta[1]"]
    resid = returns - params["mu"]
    bounds = np.column_stack([np.zeros_like(resid), np.full_like(resid, np.inf)])
    backcast = model.volatility.backcast(resid)
    steps = model.volatility.forecast(np.array([omega, alpha, beta]), resid, backcast, bounds, start=0, horizon=7)
    a, b = garch_horizon_weights(alpha + beta, 7)
    np.testing.assert_allclose(a * steps.forecasts[:, 0] + b * omega, steps.forecasts.sum(axis=1), rtol=1e-10)
    assert garch_horizon_weights(1.0, 3) == (3.0, 3.0)  # phi = 1 (integrated GARCH) stays finite


def test_bad_inputs_raise_one_clear_error(garch_series) -> None:
    close, segment = garch_series["close"], garch_series["segment"]
    train_t, test_t = split(2)
    with pytest.raises(ValueError, match="look-ahead"):
        forecast_baselines(close, segment, train_t, test_t, horizon=10)
    gappy = np.where(np.arange(N_BARS) >= 1000, 1, 0).astype(np.int64)
    with pytest.raises(ValueError, match="crosses a gap"):
        forecast_baselines(close, gappy, train_t, test_t, 2)
    with pytest.raises(ValueError, match="integer array"):
        forecast_baselines(close, segment, train_t.astype(float), test_t, 2)
    with pytest.raises(ValueError, match="outside"):
        forecast_baselines(close, segment, train_t, test_t + 10, 2)
    with pytest.raises(ValueError, match=f"at least {MIN_TRAIN_RETURNS}"):
        forecast_baselines(close, segment, np.arange(3), test_t, 2)
    with pytest.raises(ValueError, match="finite and > 0"):
        forecast_baselines(np.where(np.arange(N_BARS) == 7, -1.0, close), segment, train_t, test_t, 2)


def test_on_the_bundled_candles() -> None:
    dataset = load_dataset("BTCUSDT", "1h")
    candles = dataset.candles.iloc[-9000:].reset_index(drop=True)
    close, segment = candles["close"].to_numpy(), segment_ids(candles["open_time"], "1h")
    horizon = 1
    valid = np.arange(len(close) - horizon)
    valid = valid[segment[valid] == segment[valid + horizon]]
    train_t, test_t = valid[valid < 6000 - horizon], valid[valid >= 6000]
    forecasts = forecast_baselines(close, segment, train_t, test_t, horizon)
    y = labels(close, test_t, horizon)
    blocks = {name: evaluate(forecast, y) for name, forecast in forecasts.items()}
    # Volatility clusters in real 1 h BTC returns: the conditional models beat the unconditional one.
    assert blocks["garch"]["crps"] < blocks["climatology"]["crps"]
    assert blocks["garch"]["nll"] < blocks["climatology"]["nll"]
    for block in blocks.values():
        assert 0.4 < block["accuracy"] < 0.6  # direction is close to a coin flip for every baseline
        assert 0.6 < block["coverage_80"] < 0.95
