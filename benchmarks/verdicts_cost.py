"""What the conditional direction baselines and the verdicts (issue 11) add to the default job's time.

Run: .venv/bin/python benchmarks/verdicts_cost.py            # the default job (bundled BTCUSDT 1 h, 5 folds)
     .venv/bin/python benchmarks/verdicts_cost.py --skip-job # only the added parts

Runs the default job once (``run_job``, the whole pipeline, in a temp folder), then times, on the same samples
and folds, exactly the work this issue added: ``forecast_direction`` on every fold's history and test block,
their metric blocks, and ``job_verdicts`` on the pooled test bars (the GARCH forecast standing in for the model's,
the same shapes). Prints both and the added share: added / (job - added), the goal being <= 0.20.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from trainer.baselines import forecast_baselines
from trainer.config import TrainingConfig
from trainer.data.store import load_dataset
from trainer.direction_baselines import forecast_direction
from trainer.distributions import concat_forecasts
from trainer.features import build_samples
from trainer.metrics import evaluate_baseline
from trainer.splits import walk_forward
from trainer.verdicts import job_verdicts


def added_seconds(config: TrainingConfig) -> tuple[float, float, int]:
    """(seconds of the direction baselines + their blocks, seconds of the verdicts, pooled test bars)."""
    samples = build_samples(load_dataset(config.symbol, config.timeframe).candles, config.timeframe, config.lookback,
                            config.forecast_horizon)
    folds = walk_forward(samples.positions, config.forecast_horizon, config.cv_folds, config.use_cv)
    direction_s, parts, ys = 0.0, [], []
    for fold in folds:
        history = np.concatenate([fold.train, fold.validation, fold.calibration])
        y = samples.y[fold.test]
        started = time.perf_counter()
        p_up = forecast_direction(samples.features, samples.close, samples.segment, samples.y, history, fold.test,
                                  config.forecast_horizon, config.seed + fold.fold)
        for value in p_up.values():
            evaluate_baseline(value, y)
        direction_s += time.perf_counter() - started
        parts.append((forecast_baselines(samples.close, samples.segment, history, fold.test, config.forecast_horizon),
                      p_up))
        ys.append(y)
    y_all = np.concatenate(ys)
    pooled = {name: concat_forecasts([d[name] for d, _ in parts]) for name in parts[0][0]}
    pooled.update({name: np.concatenate([p[name] for _, p in parts]) for name in parts[0][1]})
    started = time.perf_counter()
    job_verdicts(pooled["garch"], pooled, y_all, config.forecast_horizon, config.seed)
    return direction_s, time.perf_counter() - started, len(y_all)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-job", action="store_true", help="time only the added parts")
    args = parser.parse_args()
    config = TrainingConfig()
    job_s = None
    if not args.skip_job:
        from trainer.train import run_job

        with tempfile.TemporaryDirectory() as folder:
            job_s = run_job(config, f"{folder}/job", lambda event: None).duration_s
    direction_s, verdict_s, n = added_seconds(config)
    added = direction_s + verdict_s
    print(f"pooled test bars: {n}")
    print(f"direction baselines (fit + predict + blocks, all folds): {direction_s:.1f} s")
    print(f"verdicts (DM/HAC + stationary bootstrap, all baselines and scores): {verdict_s:.1f} s")
    if job_s is not None:
        print(f"default job (duration_s, everything included): {job_s:.1f} s")
        print(f"added share: {added:.1f} / ({job_s:.1f} - {added:.1f}) = {added / (job_s - added):.3f} (goal <= 0.20)")


if __name__ == "__main__":
    main()
