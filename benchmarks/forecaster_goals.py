"""Issue 12's goals, checked with the job's own verdicts: run the default job (or one field changed) on a candle
file and print the figures each goal is judged by.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/forecaster_goals.py [--data FILE] [--horizon H] [--shuffle]
        [--set field=value ...] [--out DIR]
    PYTHONPATH=$PWD .venv/bin/python benchmarks/forecaster_goals.py --job DIR   # the figures of a finished job

``--data``: a candle file with date/open_time, open, high, low, close, volume (feather or csv); default the bundled
BTCUSDT 1 h. ``--shuffle``: permute the bars (one-bar log returns with their candle shape and volume) so there is
nothing to learn (goal 2). Prints the direction tests against climatology and the conditional baselines (log loss
and Brier DM t), ECE raw and calibrated, CRPS skill and PIT KS against GARCH-t with a block-bootstrap interval of
their difference (PIT KS is not a per-bar score, so it has no Diebold–Mariano test), interval coverage and the
wall time.
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
from trainer.distributions import Forecast
from trainer.metrics import expected_calibration_error
from trainer.train import run_job
from trainer.verdicts import CONFIDENCE, block_length

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


def _ks_uniform(u: np.ndarray) -> np.ndarray:
    """Kolmogorov–Smirnov distance to U(0, 1) of each row of ``u`` (r, n)."""
    u = np.sort(u, axis=-1)
    n = u.shape[-1]
    i = np.arange(1, n + 1)
    return np.maximum(np.max(i / n - u, axis=-1), np.max(u - (i - 1) / n, axis=-1))


def _bootstrap_difference(rows: pd.DataFrame, horizon: int, statistic, reps: int, seed: int) -> dict:
    """``statistic(index) -> (model's, baseline's)`` on all bars and on ``reps`` stationary block-bootstrap
    resamples of them (``arch``; the verdicts' mean block length ``block_length(h)``, both sides resampled with
    the same blocks): the model's value minus the baseline's with its percentile interval (``CONFIDENCE``).
    Only the difference: a percentile interval of one ECE or KS distance alone is biased upwards (a resample
    adds noise to a distance, never removes it), much less so their difference."""
    from arch.bootstrap import StationaryBootstrap

    bootstrap = StationaryBootstrap(block_length(horizon), np.arange(len(rows)), seed=seed)
    samples = np.array([statistic(data[0]) for data, _ in bootstrap.bootstrap(reps)])
    tails = [100 * (1 - CONFIDENCE) / 2, 100 * (1 + CONFIDENCE) / 2]
    model, base = statistic(np.arange(len(rows)))
    low, high = np.percentile(samples[:, 0] - samples[:, 1], tails)
    return {"difference": float(model - base), "ci": [round(float(low), 4), round(float(high), 4)]}


def pit_ks_difference(job_dir: Path, reps: int = 500, seed: int = 0) -> dict:
    """PIT KS of the model minus GARCH-t's on a job's pooled test bars (``predictions.csv``) with bootstrap
    intervals (``_bootstrap_difference``). Negative: the model's PITs are closer to uniform."""
    config = json.loads((job_dir / "config.json").read_text())
    rows = pd.read_csv(job_dir / "predictions.csv")
    y = rows["y"].to_numpy()
    student = config["distribution"] == "student_t"
    model = Forecast.from_params(config["distribution"], rows["mu"], rows["sigma"], rows["nu"] if student else None)
    garch = Forecast.from_params("student_t", rows["garch_mu"], rows["garch_sigma"], rows["garch_nu"])
    pits = np.stack([model.cdf(y), garch.cdf(y)])
    return _bootstrap_difference(rows, config["forecast_horizon"], lambda index: _ks_uniform(pits[:, index]),
                                 reps, seed)


def ece_difference(job_dir: Path, reps: int = 500, seed: int = 0) -> dict:
    """ECE of the model's p_up minus climatology's on a job's pooled test bars, with bootstrap intervals
    (``_bootstrap_difference``). Negative: the model's p_up is the better calibrated. An ECE of overlapping
    h-bar labels is noisy (n labels hold about n / h independent ones), and both forecasts share that noise."""
    config = json.loads((job_dir / "config.json").read_text())
    rows = pd.read_csv(job_dir / "predictions.csv")
    up = rows["y"].to_numpy() > 0
    p_up = np.stack([rows["p_up"].to_numpy(), rows["climatology_p_up"].to_numpy()])
    return _bootstrap_difference(
        rows, config["forecast_horizon"],
        lambda index: [expected_calibration_error(p[index], up[index]) for p in p_up], reps, seed)


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


def differences(job_dir: Path) -> dict:
    """The bootstrap figures of a finished job: PIT KS against GARCH-t, ECE against climatology."""
    return {"pit_ks_minus_garch_t": pit_ks_difference(job_dir), "ece_minus_climatology": ece_difference(job_dir)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=BUNDLED)
    parser.add_argument("--horizon", type=int, default=1)
    parser.add_argument("--shuffle", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="another TrainingConfig field, as JSON (e.g. cv_folds=3, model=\"gru\")")
    parser.add_argument("--out", type=Path, help="keep the job folder here (default: a temporary folder)")
    parser.add_argument("--job", type=Path, help="print the figures of this finished job folder; run nothing")
    args = parser.parse_args()
    if args.job:
        metrics = json.loads((args.job / "metrics.json").read_text())
        print(json.dumps({"job": str(args.job), **summary(metrics), **differences(args.job)}, indent=1))
        return 0
    candles = read_candles(args.data)
    if args.shuffle:
        candles = shuffled(candles)
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    config = TrainingConfig(forecast_horizon=args.horizon, **overrides)
    with tempfile.TemporaryDirectory() as tmp:
        job_dir = args.out or Path(tmp) / "job"
        started = time.perf_counter()
        result = run_job(config, job_dir, lambda event: None, candles=candles)
        wall = time.perf_counter() - started
        print(json.dumps({"data": args.data.name, "horizon": args.horizon, "shuffle": args.shuffle, "set": overrides,
                          "wall_s": round(wall, 1), **summary(result.metrics),
                          **differences(job_dir)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
