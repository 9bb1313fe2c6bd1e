"""The forecaster network, its NLL, the training loop (early stopping, stop, determinism) and device choice."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from trainer.model import (
    NU_MIN,
    SIGMA_FLOOR,
    ModelArgs,
    Output,
    TrainingStopped,
    build_model,
    configure_torch,
    cpu_threads,
    fit,
    mean_loss,
    nll,
    predict,
    select_device,
)


@pytest.mark.parametrize("family", ["gaussian", "student_t", "laplace"])
@pytest.mark.parametrize("head", [False, True])
def test_heads_and_shapes(family: str, head: bool) -> None:
    args = ModelArgs(lookback=12, n_features=5, family=family, direction_head=head, window_columns=(0, 2))
    model = build_model(args)
    assert model.body[0].in_features == 12 * 2 + 3  # two columns for every bar, three for the last bar only
    out = model(torch.randn(7, 12, 5) * 10)
    assert out.mu.shape == out.sigma.shape == (7,)
    assert (out.sigma >= SIGMA_FLOOR).all()
    assert (out.nu is not None) == (family == "student_t")
    if out.nu is not None:
        assert (out.nu > NU_MIN).all()
    assert (out.logit is not None) == head


def test_the_window_is_flattened_with_last_bar_extras() -> None:
    model = build_model(ModelArgs(lookback=3, n_features=2, family="gaussian", direction_head=False, window_columns=(0,)))
    x = torch.zeros(1, 3, 2)
    x[0, 0, 1] = 1e6  # column 1 of an older bar is not an input at all
    model.eval()
    assert torch.equal(model(x).mu, model(torch.zeros(1, 3, 2)).mu)
    x[0, -1, 1] = 1.0  # ... but of the last bar it is
    assert not torch.equal(model(x).mu, model(torch.zeros(1, 3, 2)).mu)


@pytest.mark.parametrize(
    "family, scipy_logpdf",
    [
        ("gaussian", lambda y, m, s, nu: stats.norm.logpdf(y, m, s)),
        ("laplace", lambda y, m, s, nu: stats.laplace.logpdf(y, m, s)),
        ("student_t", lambda y, m, s, nu: stats.t.logpdf(y, nu, m, s)),
    ],
)
def test_nll_matches_scipy(family: str, scipy_logpdf) -> None:
    rng = np.random.default_rng(3)
    y, mu = rng.normal(size=50), rng.normal(size=50)
    sigma, nu = rng.uniform(0.1, 3, 50), rng.uniform(2.1, 30, 50)
    out = Output(mu=torch.tensor(mu), sigma=torch.tensor(sigma), nu=torch.tensor(nu))
    np.testing.assert_allclose(nll(family, out, torch.tensor(y)).numpy(), -scipy_logpdf(y, mu, sigma, nu), rtol=1e-10)


def _synthetic(n: int = 4000, lookback: int = 4, seed: int = 0):
    """Returns whose scale is set by feature 0 of the last bar: y ~ N(0, exp(x)) — learnable volatility."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)).astype(np.float32)
    y = (rng.normal(size=n) * np.exp(0.7 * x[:, 0])).astype(np.float32)
    y[: lookback - 1] = 0
    positions = np.arange(lookback - 1, n)
    return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy((y > 0).astype(np.float32)), positions


def _train(seed: int, epochs: int = 6, **kwargs):
    x, y, up, positions = _synthetic()
    configure_torch(seed, torch.device("cpu"))
    model = build_model(ModelArgs(lookback=4, n_features=2, family="gaussian", direction_head=True, hidden=16, dropout=0.0))
    train, val = torch.from_numpy(positions[:3000]), torch.from_numpy(positions[3000:])
    result = fit(model, x, y, up, train, val, epochs=epochs, batch_size=64, learning_rate=3e-3, seed=seed, **kwargs)
    return model, result, (x, y, up, val)


def test_fit_learns_the_volatility_and_restores_the_best_epoch() -> None:
    epochs_seen = []
    model, result, (x, y, up, val) = _train(seed=1, epochs=8, on_epoch=epochs_seen.append)
    assert [s.epoch for s in epochs_seen] == list(range(1, result.epochs_run + 1))
    assert result.history[-1].train_loss < result.history[0].train_loss
    # The restored weights are the best epoch's: their validation loss is the best one seen.
    assert mean_loss(model, x, y, up, val) == pytest.approx(result.best_val_loss, rel=1e-6)
    assert result.best_val_loss == min(s.val_loss for s in result.history)
    out = predict(model, x, val)
    true_sigma = np.exp(0.7 * x[val, 0].numpy())
    assert np.corrcoef(np.log(out["sigma"]), np.log(true_sigma))[0, 1] > 0.9
    assert set(out) == {"mu", "sigma", "logit"} and out["mu"].dtype == np.float64


def test_early_stopping_ends_before_the_last_epoch() -> None:
    _, result, _ = _train(seed=2, epochs=200, patience=2)
    assert result.epochs_run < 200 and result.epochs_run - result.best_epoch == 2


def test_same_seed_same_weights_other_seed_differs() -> None:
    first, r1, _ = _train(seed=5)
    second, r2, _ = _train(seed=5)
    other, _, _ = _train(seed=6)
    assert [s.val_loss for s in r1.history] == [s.val_loss for s in r2.history]
    for name, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[name]), name
    assert not torch.equal(first.state_dict()["dist_head.weight"], other.state_dict()["dist_head.weight"])
    assert torch.are_deterministic_algorithms_enabled()


def test_stop_request_is_seen_between_batches() -> None:
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(TrainingStopped):
        _train(seed=0, should_stop=should_stop)
    assert len(calls) == 4


def test_diverging_loss_is_an_error() -> None:
    with pytest.raises(FloatingPointError, match="learning_rate"):
        x, y, up, positions = _synthetic()
        y = y.clone()
        y[100] = float("nan")
        model = build_model(ModelArgs(lookback=4, n_features=2, family="laplace", direction_head=False))
        fit(model, x, y, up, torch.from_numpy(positions[:3000]), torch.from_numpy(positions[3000:]),
            epochs=1, batch_size=64, learning_rate=1e-3, seed=0)


def test_device_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert select_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert select_device("auto").type == expected
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no usable CUDA"):
        select_device("cuda")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert select_device("auto") == torch.device("cpu")


def test_cpu_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CANDLECAST_TORCH_THREADS", raising=False)
    assert cpu_threads() == 1
    monkeypatch.setenv("CANDLECAST_TORCH_THREADS", "2")
    assert cpu_threads() == 2
    before = torch.get_num_threads()
    configure_torch(0, torch.device("cpu"))
    assert torch.get_num_threads() == 2
    torch.set_num_threads(before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fit_on_cuda() -> None:
    x, y, up, positions = _synthetic()
    device = torch.device("cuda")
    configure_torch(0, device)
    model = build_model(ModelArgs(lookback=4, n_features=2, family="student_t", direction_head=True)).to(device)
    result = fit(model, x.to(device), y.to(device), up.to(device), torch.from_numpy(positions[:3000]).to(device),
                 torch.from_numpy(positions[3000:]).to(device), epochs=2, batch_size=256, learning_rate=1e-3, seed=0)
    assert math.isfinite(result.best_val_loss)
