"""Issue 12's goals, checked with the job's own verdicts: run the default job (or one field changed) on a candle
file and print the figures each goal is judged by.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/forecaster_goals.py [--data FILE] [--horizon H] [--shuffle]
        [--set field=value ...] [--out DIR]

``--data``: a candle file with date/open_time, open, high, low, close, volume (feather or csv); default the bundled
BTCUSDT 1 h. ``--shuffle``: permute the bars (one-bar log returns with their candle shape and volume) so there is
nothing to learn (goal 2). Prints the direction tests against climatology and the conditional baselines (log loss
and Brier DM t), ECE raw and calibrated, CRPS skill and PIT KS against GARCH-t, interval coverage and the wall time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from trainer.config import TrainingConfig
from trainer.train import run_job

BUNDLED = Path(__file__).resolve().parents[1] / "trainer" / "data" / "bundled" / "BTCUSDT-1h.feather"


def read_candles(path: Path) -> pd.DataFrame:
    """A candle table with an ``open_time`` column from a feather or csv file."""
    frame = pd.read_feather(path) if path.suffix == ".feather" else pd.read_csv(path)
    return frame.rename(columns={"date": "open_time"})


def shuffled(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The same candles with their bars in random order: one-bar log returns, the open/high/low relative to the
    close, and the volume move together; the timestamps stay, so nothing but noise is left to learn."""
    close = frame["close"].to_numpy(dtype=np.float64)
    returns = np.diff(np.log(close), prepend=np.log(close[0]))
    order = np.random.default_rng(seed).permutation(len(close))
    out = frame.copy()
    new_close = close[0] * np.exp(np.cumsum(returns[order]))
    for column in ("open", "high", "low"):
        out[column] = (frame[column].to_numpy(dtype=np.float64) / close)[order] * new_close
    out["close"] = new_close
    out["volume"] = frame["volume"].to_numpy()[order]
    return out


def summary(metrics: dict) -> dict:
    """The figures of issue 12's goals from a job's ``metrics.json``."""
    pooled = metrics["pooled"]
    tests = pooled["verdicts"]["tests"]
    model = pooled["model"]
    garch = pooled["baselines"]["garch"]
    out = {
        "direction_t": {name: {score: round(tests[name][score]["t"], 2) for score in ("log_loss", "brier")
                               if score in tests[name] and tests[name][score]["t"] is not None}
                        for name in ("climatology", "logit_ar1", "logit_ar3", "gbm")},
        "brier_skill_vs_climatology": tests["climatology"]["brier"]["skill"],
        "distribution_t_vs_climatology": {s: round(t["t"], 2) for s, t in tests["climatology"].items()
                                          if t["t"] is not None},
        "headline": {k: v and v["text"] for k, v in pooled["verdicts"]["headline"].items()},
        "ece": model["ece"], "ece_raw": model["ece_raw"], "brier": model["brier"], "brier_raw": model["brier_raw"],
        "crps_skill_vs_garch_t": pooled["skill"]["garch"]["crps_skill"],
        "pit_ks": model["pit_ks"], "pit_ks_garch_t": garch["pit_ks"],
        "coverage": {level: model[f"coverage_{level}"] for level in (50, 80, 95)},
        "duration_s": round(metrics["duration_s"], 1),
    }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=BUNDLED)
    parser.add_argument("--horizon", type=int, default=1)
    parser.add_argument("--shuffle", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="another TrainingConfig field, as JSON (e.g. cv_folds=3, model=\"gru\")")
    parser.add_argument("--out", type=Path, help="keep the job folder here (default: a temporary folder)")
    args = parser.parse_args()
    candles = read_candles(args.data)
    if args.shuffle:
        candles = shuffled(candles)
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    config = TrainingConfig(forecast_horizon=args.horizon, **overrides)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = run_job(config, args.out or Path(tmp) / "job", lambda event: None, candles=candles)
        wall = time.perf_counter() - started
    print(json.dumps({"data": args.data.name, "horizon": args.horizon, "shuffle": args.shuffle, "set": overrides,
                      "wall_s": round(wall, 1), **summary(result.metrics)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
