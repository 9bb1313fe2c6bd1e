"""Features, labels and samples on the real bundled candles: causal, gap-safe, scaled on training bars only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainer.data.candles import CandleError, segment_ids, validate_candles
from trainer.data.store import load_dataset
from trainer.features import FEATURE_NAMES, WARMUP, WINDOW_FEATURES, DataError, Scaler, bar_features, build_samples


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    """The first 10,000 real BTCUSDT 1 h candles (2017–2018: six exchange outages, i.e. gaps, one 25 bars apart)."""
    return load_dataset("BTCUSDT", "1h").candles.iloc[:10000].reset_index(drop=True)


def test_features_use_nothing_after_their_bar(candles: pd.DataFrame) -> None:
    base = bar_features(candles)
    cut = 5000
    future = candles.copy()
    rng = np.random.default_rng(0)
    scale = np.exp(rng.normal(0, 0.05, len(candles) - cut - 1))
    for column in ("open", "high", "low", "close", "volume"):
        future.loc[cut + 1 :, column] = future.loc[cut + 1 :, column].to_numpy() * scale
    changed = bar_features(future)
    np.testing.assert_array_equal(base[: cut + 1], changed[: cut + 1])
    assert not np.allclose(base[cut + 1 :][WARMUP:], changed[cut + 1 :][WARMUP:], equal_nan=True)


def test_feature_columns_and_warm_up(candles: pd.DataFrame) -> None:
    features = bar_features(candles)
    assert features.shape == (len(candles), len(FEATURE_NAMES))
    assert np.isnan(features[:WARMUP]).all()
    assert np.isfinite(features[WARMUP:]).all()
    assert set(WINDOW_FEATURES) <= set(FEATURE_NAMES)
    close = candles["close"].to_numpy()
    np.testing.assert_allclose(features[100, 0], np.log(close[100] / close[99]))
    np.testing.assert_allclose(features[100, 2], np.log(close[100] / close[76]))
    np.testing.assert_allclose(features[100, 4], np.log(candles["high"][100] / candles["low"][100]))


@pytest.mark.parametrize("horizon", [1, 5, 24])
def test_labels_and_samples_never_cross_a_gap(candles: pd.DataFrame, horizon: int) -> None:
    lookback = 16
    samples = build_samples(candles, "1h", lookback, horizon)
    segment = segment_ids(candles["open_time"], "1h")
    assert segment.max() >= 5, "the slice should contain real gaps"
    t = samples.positions
    first_history = t - lookback + 1 - WARMUP
    assert (first_history >= 0).all()
    assert (segment[first_history] == segment[t]).all()
    assert (segment[t + horizon] == segment[t]).all()
    close = candles["close"].to_numpy()
    np.testing.assert_allclose(samples.y[t], np.log(close[t + horizon] / close[t]))
    # Every bar whose label interval crosses a gap has no label at all.
    crosses = np.flatnonzero(segment[horizon:] != segment[:-horizon])
    assert np.isnan(samples.y[crosses]).all()
    windows = samples.windows(t)
    assert windows.shape == (len(t), lookback, len(FEATURE_NAMES)) and windows.dtype == np.float32
    assert np.isfinite(windows).all()
    np.testing.assert_array_equal(windows[:, -1], samples.features[t])


def test_timestamps_are_unix_seconds_of_the_open_time(candles: pd.DataFrame) -> None:
    samples = build_samples(candles, "1h", 8, 1)
    assert samples.timestamps[0] == pd.Timestamp("2017-08-17 04:00", tz="UTC").timestamp()
    assert (np.diff(samples.timestamps) >= 3600).all()


def test_prediction_samples_include_bars_without_a_label(candles: pd.DataFrame) -> None:
    train = build_samples(candles, "1h", 8, 3)
    predict = build_samples(candles, "1h", 8, 3, require_label=False)
    assert set(train.positions) < set(predict.positions)
    assert predict.positions[-1] == len(candles) - 1


def test_scaler_is_fitted_on_training_windows_only(candles: pd.DataFrame) -> None:
    samples = build_samples(candles, "1h", 8, 1)
    train = samples.positions[:1000]
    scaler = Scaler.fit(samples, train)
    later = samples.features.copy()
    later[train[-1] + 1 :] *= 100.0
    samples.features = later
    again = Scaler.fit(samples, train)
    np.testing.assert_array_equal(scaler.x_mean, again.x_mean)
    np.testing.assert_array_equal(scaler.x_std, again.x_std)
    assert scaler.y_std == pytest.approx(np.std(samples.y[train]))
    scaled = scaler.transform_features(samples.features[train])
    np.testing.assert_allclose(scaled.mean(axis=0)[:6], 0, atol=0.1)
    restored = Scaler.from_dict(scaler.to_dict())
    np.testing.assert_array_equal(restored.x_std, scaler.x_std)
    assert restored.y_mean == scaler.y_mean


def test_too_short_data_is_a_clear_error(candles: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"needs \d+ consecutive bars \(feature warm-up .*longest gap-free run has 50"):
        build_samples(candles.iloc[:50], "1h", 32, 1)
    one_row, _ = validate_candles(candles.iloc[:1], "1h")
    with pytest.raises(DataError, match="no usable samples"):
        build_samples(one_row, "1h", 2, 1)
    with pytest.raises(CandleError, match="empty"):
        validate_candles(candles.iloc[:0], "1h")


def test_daily_bars_trained_as_hourly_name_the_timeframe(candles: pd.DataFrame) -> None:
    """Every daily bar is a gap at 1 h: the error says what the spacing is instead of only "1 bar"."""
    daily = candles.iloc[::24].reset_index(drop=True)
    frame, _ = validate_candles(daily, "1h")
    with pytest.raises(DataError, match=r"has 1 of \d+ bars \(most bars are 1d apart, not 1h: is the timeframe right\?\)$"):
        build_samples(frame, "1h", 32, 1)
    assert len(build_samples(validate_candles(daily, "1d")[0], "1d", 32, 1).positions)
