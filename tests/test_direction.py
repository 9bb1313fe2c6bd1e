"""The direction stack (trainer.direction): exported trees equal scikit-learn's, a planted AR signal is found
almost as well as the oracle finds it, pure noise gets the base rate (no claim), and a saved stack predicts the
same p_up again."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

import trainer.direction as direction
from trainer.direction import GBM_PARAMS, DirectionStack, Trees, fit_direction
from trainer.direction_baselines import direction_inputs
from trainer.features import build_samples
from trainer.splits import walk_forward

NOISE = 0.01
#: The model's test AUC may fall short of the oracle's by at most this much on the planted series.
AUC_MARGIN = 0.02


def planted(n: int, phi: float, seed: int) -> pd.DataFrame:
    """Hourly candles whose one-bar log returns follow r[t] = phi r[t-1] + N(0, NOISE²)."""
    rng = np.random.default_rng(seed)
    eps = rng.normal(0.0, NOISE, n)
    r = np.zeros(n)
    for t in range(1, n):
        r[t] = phi * r[t - 1] + eps[t]
    close = 100.0 * np.exp(np.cumsum(r))
    open_ = np.concatenate([[100.0], close[:-1]])
    return pd.DataFrame({
        "open_time": pd.date_range("2022-01-01", periods=n, freq="h", tz="UTC"),
        "open": open_, "high": np.maximum(open_, close) * 1.001, "low": np.minimum(open_, close) * 0.999,
        "close": close, "volume": 1.0 + rng.random(n),
    })


def fitted(frame: pd.DataFrame, horizon: int = 1):
    """The stack fitted on the last of two walk-forward folds, with its test positions and samples."""
    samples = build_samples(frame, "1h", 8, horizon)
    fold = walk_forward(samples.positions, horizon, 2)[-1]
    inner = np.concatenate([fold.train, fold.validation])
    net = np.full(len(fold.calibration), 0.5)  # a network without direction signal
    stack = fit_direction(samples.features, samples.close, samples.segment, samples.y, inner, fold.calibration,
                          net, horizon, seed=3)
    return stack, samples, fold.test


def test_exported_trees_predict_exactly_like_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 5))
    up = x[:, 0] + rng.normal(size=4000) > 0
    model = HistGradientBoostingClassifier(**GBM_PARAMS, max_features=0.7, random_state=1).fit(x, up)
    new = rng.normal(size=(1000, 5))
    new[0, 0] = np.nan  # missing values follow the tree's learnt side
    trees = Trees.from_dict(Trees.from_sklearn(model).to_dict())
    np.testing.assert_array_equal(trees.raw(new), model._raw_predict(new).ravel())


def test_planted_ar_signal_comes_within_margin_of_the_oracle() -> None:
    phi = -0.15
    frame = planted(12_000, phi, seed=1)
    stack, samples, test = fitted(frame)
    assert stack.active
    p = stack.predict(direction_inputs(samples.features, samples.close, samples.segment, test, 1),
                      np.full(len(test), 0.5))
    last = np.log(samples.close[test] / samples.close[test - 1])
    oracle = stats.norm.cdf(phi * last / NOISE)  # P(r[t+1] > 0 | r[t]) of the generating process
    up = samples.y[test] > 0
    model_auc, oracle_auc = roc_auc_score(up, p), roc_auc_score(up, oracle)
    assert oracle_auc > 0.55
    assert model_auc >= oracle_auc - AUC_MARGIN, (model_auc, oracle_auc)


@pytest.mark.parametrize("horizon", [1, 4])
def test_no_signal_no_claim(horizon: int) -> None:
    stack, samples, test = fitted(planted(8_000, 0.0, seed=2), horizon)
    assert not stack.active
    p = stack.predict(direction_inputs(samples.features, samples.close, samples.segment, test, horizon),
                      np.full(len(test), 0.5))
    np.testing.assert_array_equal(p, stack.base_rate)


@pytest.mark.parametrize("intercept", [False, True])
def test_saved_stack_predicts_the_same(intercept: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(direction, "INTERCEPT", intercept)  # the nested model choice's candidate
    stack, samples, test = fitted(planted(6_000, -0.2, seed=4))
    assert len(stack.weights) == 3 + intercept
    inputs = direction_inputs(samples.features, samples.close, samples.segment, test, 1)
    net = np.linspace(0.45, 0.55, len(test))
    again = DirectionStack.from_dict(stack.to_dict())
    np.testing.assert_array_equal(again.predict(inputs, net), stack.predict(inputs, net))


@pytest.mark.parametrize("informative", [True, False])
def test_distribution_gate_keeps_only_a_network_that_beats_the_unconditional_fit(informative: bool) -> None:
    """The distribution's "no signal, no claim": a forecast whose sigma tracks the true one is kept; one whose
    sigma varies at random around the right level falls back to the unconditional Student-t fit."""
    from types import SimpleNamespace

    from trainer.config import TrainingConfig
    from trainer.distributions import Forecast
    from trainer.train import distribution_gate

    rng = np.random.default_rng(7)
    n = 6000
    true_sigma = np.exp(rng.normal(np.log(0.01), 0.5, n))
    y = true_sigma * rng.standard_t(5, n)
    sigma = true_sigma if informative else rng.permutation(true_sigma)
    forecast = Forecast.from_params("student_t", np.zeros(n), sigma * np.sqrt(3 / 5), np.full(n, 5.0))
    inner, block = np.arange(0, 4000), np.arange(4001, n)
    params, t = distribution_gate(TrainingConfig(), SimpleNamespace(y=y), inner, block, forecast.take(block))
    if informative:
        assert params is None and t["crps"] < -2 and t["nll"] < -2
    else:
        assert params is not None and params["nu"] > 2 and params["sigma"] > 0


def test_base_rate_counts_overlapping_labels_as_fewer_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    up = np.r_[np.ones(600, bool), np.zeros(400, bool)]  # up-frequency 0.6
    monkeypatch.setattr(direction, "BASE_RATE_PRIOR", 0.0)
    assert direction.base_rate(up, 24) == pytest.approx(0.6)  # no prior: the plain frequency at any horizon
    monkeypatch.setattr(direction, "BASE_RATE_PRIOR", 100.0)
    # 1,000 labels = 1,000 independent samples at h = 1, about 41.7 at h = 24: the prior weighs 100 / 1,100 and 100 / 141.7.
    assert direction.base_rate(up, 1) == pytest.approx((600 + 50) / 1100)
    assert direction.base_rate(up, 24) == pytest.approx((600 / 24 + 50) / (1000 / 24 + 100))
    assert 0.5 < direction.base_rate(up, 24) < direction.base_rate(up, 1) < 0.6
