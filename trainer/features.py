"""Per-bar features, forward-return labels and the samples a job trains on (MODEL.md, "Data → samples").

Every feature of bar t is known at bar t's close: it uses closes, highs, lows and volumes of bars <= t only.
The label of bar t is the forward log return ``y[t] = log(close[t+h] / close[t])`` over h = ``forecast_horizon``
bars, so its label interval is (t, t+h]. A *sample* is the window of ``lookback`` bars ending at t plus its
label; it exists only when the window, the features' own history (``WARMUP`` bars) and the label interval all
lie inside one run of consecutive bars (``trainer.data.candles.segment_ids``): no sample bridges a gap.

Scaling statistics (``Scaler``) are fitted on a fold's training positions only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from trainer.config import TIMEFRAME_SECONDS
from trainer.data.candles import segment_ids
from trainer.sample_window import RETURN_LAGS, ROLLING_BARS, WARMUP, bars_needed_words


FEATURE_NAMES = (
    *(f"log_return_{lag}" for lag in RETURN_LAGS),
    f"realised_vol_{ROLLING_BARS}",
    "log_high_low_range",
    f"log_volume_z_{ROLLING_BARS}",
    "hour_sin",
    "hour_cos",
    "weekday_sin",
    "weekday_cos",
)

#: Features the model sees for every bar of the window; the others (slow lags, time of day/week) repeat
#: almost unchanged from bar to bar, so it sees them for the window's last bar only (fewer inputs to overfit).
WINDOW_FEATURES = ("log_return_1", f"realised_vol_{ROLLING_BARS}", "log_high_low_range", f"log_volume_z_{ROLLING_BARS}")


class DataError(ValueError):
    """The candles cannot make the samples a job needs; the message is one line saying what is missing."""


@dataclass
class Samples:
    """Everything a job trains and evaluates on, indexed by bar position 0..n-1.

    ``features``: (n, F) float32 raw (unscaled) features, NaN where a bar lacks ``WARMUP`` bars of history.
    ``y``: (n,) float64 forward log return over ``horizon`` bars, NaN where the label would cross a gap or the end.
    ``positions``: (m,) int64 sorted bar positions t that are valid samples.
    ``timestamps``: (n,) float64 Unix seconds of each bar's open time. ``close``: (n,) float64.
    ``segment``: (n,) int64 run ids from ``segment_ids``.
    """

    features: np.ndarray
    y: np.ndarray
    positions: np.ndarray
    timestamps: np.ndarray
    close: np.ndarray
    segment: np.ndarray
    lookback: int
    horizon: int

    def windows(self, positions: np.ndarray) -> np.ndarray:
        """Raw feature windows of the samples at ``positions``: (len, lookback, F) float32, oldest bar first."""
        offsets = np.arange(-self.lookback + 1, 1)
        return self.features[positions[:, None] + offsets[None, :]]


def bar_features(candles: pd.DataFrame) -> np.ndarray:
    """Features of every bar from a validated candle table: (n, len(FEATURE_NAMES)) float64.

    Columns (FEATURE_NAMES order): log returns over ``RETURN_LAGS`` bars; realised volatility = root mean
    square of the last ``ROLLING_BARS`` one-bar log returns; log(high/low); z-score of log(1 + volume) against
    its trailing ``ROLLING_BARS``-bar mean and standard deviation; sine/cosine of hour of day and day of week
    of the bar's open time. Rolling values ignore gaps here: ``build_samples`` drops every bar whose history
    crosses one. The first ``WARMUP`` rows are NaN.
    """
    close = candles["close"].to_numpy(np.float64)
    log_close = pd.Series(np.log(close))
    columns = [log_close.diff(lag) for lag in RETURN_LAGS]
    one_bar = log_close.diff()
    columns.append(np.sqrt((one_bar**2).rolling(ROLLING_BARS).mean()))
    columns.append(pd.Series(np.log(candles["high"].to_numpy() / candles["low"].to_numpy())))
    log_volume = pd.Series(np.log1p(candles["volume"].to_numpy(np.float64)))
    # The z-score is taken against the *previous* bars so a bar is not compared with itself; +1e-6 keeps
    # a flat-volume stretch finite.
    previous = log_volume.shift(1).rolling(ROLLING_BARS)
    columns.append((log_volume - previous.mean()) / (previous.std() + 1e-6))
    open_time = candles["open_time"]
    hour = 2 * np.pi * (open_time.dt.hour.to_numpy() + open_time.dt.minute.to_numpy() / 60) / 24
    weekday = 2 * np.pi * open_time.dt.day_of_week.to_numpy() / 7
    columns += [pd.Series(f(a)) for a in (hour, weekday) for f in (np.sin, np.cos)]
    out = np.column_stack([np.asarray(c, dtype=np.float64) for c in columns])
    out[:WARMUP] = np.nan  # the lag-24 return already is; make every column agree
    return out


def _spacing_hint(open_time: pd.Series, timeframe: str) -> str:
    """The error's hint ``" (most bars are 1d apart, not 1h: is the timeframe right?)"`` when the median spacing
    of ``open_time`` is longer than ``timeframe`` (every bar then starts a segment of its own), else ``""``."""
    spacing = open_time.diff().median()
    if pd.isna(spacing) or spacing <= pd.Timedelta(seconds=TIMEFRAME_SECONDS[timeframe]):
        return ""
    seconds = spacing.total_seconds()
    names = [name for name, length in TIMEFRAME_SECONDS.items() if length == seconds]
    spaced = names[0] if names else f"{seconds:g} s"
    return f" (most bars are {spaced} apart, not {timeframe}: is the timeframe right?)"


def build_samples(
    candles: pd.DataFrame, timeframe: str, lookback: int, horizon: int, require_label: bool = True
) -> Samples:
    """Features, labels and valid sample positions of a validated candle table (``validate_candles`` output).

    A bar t is a sample when its ``lookback`` window plus the ``WARMUP`` bars before it and the label bars up
    to t + ``horizon`` all share one segment (no gap), and every value is finite. With ``require_label=False``
    (predicting, not training) bars whose label is not known yet count too. Raises ``DataError`` when no bar
    qualifies, naming what the data would need.
    """
    n = len(candles)
    segment = segment_ids(candles["open_time"], timeframe)
    close = candles["close"].to_numpy(np.float64)
    # Position of each bar inside its segment (0 at the first bar after a gap).
    starts = np.flatnonzero(np.r_[True, segment[1:] != segment[:-1]])
    pos_in_segment = np.arange(n) - starts[segment]

    y = np.full(n, np.nan)
    if horizon < n:
        same = segment[horizon:] == segment[:-horizon]
        y[:-horizon] = np.where(same, np.log(close[horizon:] / close[:-horizon]), np.nan)
    features = bar_features(candles)

    valid = pos_in_segment >= WARMUP + lookback - 1
    if require_label:
        valid &= np.isfinite(y)
    valid &= np.isfinite(features).all(axis=1)
    positions = np.flatnonzero(valid).astype(np.int64)
    if positions.size == 0:
        longest = int(np.bincount(segment).max())
        raise DataError(
            f"no usable samples: one needs {bars_needed_words(lookback, horizon)}, the longest gap-free run "
            f"has {longest} of {n} bars{_spacing_hint(candles['open_time'], timeframe)}"
        )
    # Via timedelta, not astype(int64): pandas 3 may hold the times at us or ms resolution.
    timestamps = (candles["open_time"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    return Samples(
        features=features.astype(np.float32),
        y=y,
        positions=positions,
        timestamps=np.asarray(timestamps, dtype=np.float64),
        close=close,
        segment=segment,
        lookback=lookback,
        horizon=horizon,
    )


@dataclass
class Scaler:
    """Standardisation fitted on training positions: features ``(x - x_mean) / x_std`` per column and labels
    ``(y - y_mean) / y_std``. Arrays are (F,) float32; y stats are floats in log-return units."""

    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: float
    y_std: float

    @classmethod
    def fit(cls, samples: Samples, train_positions: np.ndarray) -> Scaler:
        """Fit on the bars of the training windows and the training labels only (no test information)."""
        bars = np.unique((train_positions[:, None] + np.arange(-samples.lookback + 1, 1)[None, :]).ravel())
        x = samples.features[bars].astype(np.float64)
        x_std = x.std(axis=0)
        # A constant column (e.g. hour of day on daily candles) is left unscaled rather than divided by zero.
        x_std[x_std < 1e-12] = 1.0
        y = samples.y[train_positions]
        return cls(
            x_mean=x.mean(axis=0).astype(np.float32),
            x_std=x_std.astype(np.float32),
            y_mean=float(y.mean()),
            y_std=float(max(y.std(), 1e-12)),
        )

    def transform_features(self, features: np.ndarray) -> np.ndarray:
        """Scaled copy of (n, F) features, float32; NaN rows stay NaN (they are never sampled)."""
        return ((features - self.x_mean) / self.x_std).astype(np.float32)

    def to_dict(self) -> dict:
        """JSON-safe form, stored in ``model.pt``."""
        return {
            "x_mean": self.x_mean.tolist(),
            "x_std": self.x_std.tolist(),
            "y_mean": self.y_mean,
            "y_std": self.y_std,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Scaler:
        """Inverse of ``to_dict``."""
        return cls(
            x_mean=np.asarray(data["x_mean"], dtype=np.float32),
            x_std=np.asarray(data["x_std"], dtype=np.float32),
            y_mean=float(data["y_mean"]),
            y_std=float(data["y_std"]),
        )
