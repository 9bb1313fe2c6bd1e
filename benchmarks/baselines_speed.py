"""How long the three baselines take per fold on the bundled BTCUSDT 1 h candles, and why the GARCH h-step
variance is summed in closed form rather than with arch's own multi-step forecast.

Run: .venv/bin/python benchmarks/baselines_speed.py
Prints seconds for one fold (80 % train, 20 % test) at horizons 1, 24 and 500 (the longest a request allows),
and the ratio of arch's multi-step analytic forecast (timed on a slice, scaled to the same test bars) to the
whole baseline call.
"""

from __future__ import annotations

import time

import numpy as np
from arch import arch_model

from trainer.baselines import forecast_baselines
from trainer.data.candles import segment_ids
from trainer.data.store import load_dataset

SLICE = 2000  # bars of arch's per-bar Python loop to time; scaled linearly to the full test block


def main() -> None:
    dataset = load_dataset("BTCUSDT", "1h")
    close = dataset.candles["close"].to_numpy()
    segment = segment_ids(dataset.candles["open_time"], "1h")
    n = close.shape[0]
    for horizon in (1, 24, 500):
        valid = np.arange(64, n - horizon)
        valid = valid[segment[valid] == segment[valid + horizon]]
        cut = int(0.8 * n)
        train_t, test_t = valid[valid + horizon <= cut], valid[valid >= cut + horizon]
        started = time.perf_counter()
        forecast_baselines(close, segment, train_t, test_t, horizon)
        ours = time.perf_counter() - started

        returns = np.diff(np.log(close[: cut + 1])) * 100
        model = arch_model(returns, mean="Constant", vol="GARCH", p=1, q=1, dist="t", rescale=False)
        fit = model.fit(disp="off", show_warning=False)
        started = time.perf_counter()
        fit.forecast(horizon=horizon, start=len(returns) - SLICE, reindex=False)
        arch_multi = (time.perf_counter() - started) * len(test_t) / SLICE
        print(
            f"h={horizon:>2}: {len(train_t)} train / {len(test_t)} test bars: forecast_baselines {ours:.2f} s; "
            f"arch multi-step forecast alone would take ~{arch_multi:.2f} s ({arch_multi / ours:.1f}x the whole call)"
        )


if __name__ == "__main__":
    main()
