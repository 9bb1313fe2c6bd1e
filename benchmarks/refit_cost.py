"""What more frequent refits cost: the default job against the same tested bars refitted 4x as often, cold (every
fold trains its network from scratch) and warm (``refit_every``: each fold starts from the previous fold's
network, so early stopping ends it sooner). Issue 12: "more refits don't cost proportionally more time".

    PYTHONPATH=$PWD .venv/bin/python benchmarks/refit_cost.py [--folds 20]

Runs, one after the other in this process, on the bundled BTCUSDT 1 h: the default job (``cv_folds=5``), then
``cv_folds=20`` (20 cold refits) and ``cv_folds=20`` with ``refit_every`` set to the same block length (warm). The
two 20-refit jobs test the same tail. Prints each job's ``duration_s``, its folds, the ratios, and the pooled log
loss t against climatology (more refits may score differently; docs/model.md says why the default stays).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.forecaster_goals import BUNDLED, read_candles
from trainer.config import TrainingConfig
from trainer.data.candles import validate_candles
from trainer.features import build_samples
from trainer.splits import walk_forward
from trainer.train import run_job


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=20, help="refits of the tested tail in the frequent runs")
    args = parser.parse_args()
    candles = validate_candles(read_candles(BUNDLED), "1h", source="candles")[0]
    default = TrainingConfig()
    samples = build_samples(candles, default.timeframe, default.lookback, default.forecast_horizon)
    first_tested = walk_forward(samples.positions, default.forecast_horizon, args.folds)[0].test[0]
    block = math.ceil((samples.positions[-1] - first_tested + 1) / args.folds)  # bar positions, gaps included
    runs = {
        "default (5 folds, cold)": {},
        f"{args.folds} folds, cold": {"cv_folds": args.folds},
        f"{args.folds} folds, warm (refit_every={block})": {"cv_folds": args.folds, "refit_every": block},
    }
    seconds = {}
    for name, changes in runs.items():
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            result = run_job(TrainingConfig(**changes), Path(tmp) / "job", lambda event: None, candles=candles)
            wall = time.perf_counter() - started
        metrics = result.metrics
        seconds[name] = metrics["duration_s"]
        t = metrics["pooled"]["verdicts"]["tests"]["climatology"]["log_loss"]["t"]
        print(f"{name}: {len(metrics['folds'])} folds, duration_s {metrics['duration_s']:.1f} "
              f"({wall:.1f} s wall), log loss t vs climatology {t:+.2f}", flush=True)
    base, cold_s, warm_s = seconds.values()
    print(f"cold {args.folds} / default: {cold_s / base:.2f}; warm {args.folds} / default: {warm_s / base:.2f}; "
          f"warm / cold: {warm_s / cold_s:.2f} (folds ratio {args.folds / default.cv_folds:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
