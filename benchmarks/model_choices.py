"""The model-choice table of docs/benchmarks.md ("Model choices"), by nested validation: every candidate runs as
a walk-forward job on the bars *before* the default job's first test block only, so no choice looks at a bar
that the default job reports.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/model_choices.py [--data FILE] [--folds 3]

For the asset (default the bundled BTCUSDT 1 h; ``--data`` another candle file), it cuts the candles where the
default job's first test block starts (minus the horizon: no label reaches it), then runs the default config
and one change at a time: p_up from the network's CDF (the old default), one boosted model instead of the bag,
no feature subsampling (and, with ``--networks``, a GRU and weight decay 0.1). Prints one row each: the
direction tests (log loss DM t against climatology and the gbm baseline), Brier skill, ECE, CRPS skill against
GARCH-t and the job time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import trainer.direction as direction
from benchmarks.forecaster_goals import BUNDLED, read_candles
from trainer.config import TrainingConfig
from trainer.data.candles import validate_candles
from trainer.features import build_samples
from trainer.splits import walk_forward
from trainer.train import run_job


def _set(module, **values) -> Callable[[], None]:
    """Set module constants for one candidate; returns the undo."""
    old = {k: getattr(module, k) for k in values}
    for k, v in values.items():
        setattr(module, k, v)
    return lambda: [setattr(module, k, v) for k, v in old.items()]


#: name -> (config changes, module constants changed)
CANDIDATES: dict[str, tuple[dict, dict]] = {
    "default (stack: 5 boosted bags + AR + network; MLP; weight decay 1.0)": ({}, {}),
    "p_up from the network's CDF": ({"p_up_source": "cdf"}, {}),
    "stack with one boosted model (no bagging)": ({}, {"BAGS": 1}),
    "stack, bags without feature subsampling": ({}, {"MAX_FEATURES": 1.0}),
}
#: Network choices (``--networks``): a GRU took over 10 minutes per inner job on the loaded 2-core machine.
NETWORK_CANDIDATES: dict[str, tuple[dict, dict]] = {
    "GRU network": ({"model": "gru"}, {}),
    "weight decay 0.1": ({"weight_decay": 0.1}, {}),
}


def pre_test_candles(frame, config: TrainingConfig):
    """The candles before the default job's first test block, less the horizon's bars."""
    frame = validate_candles(frame, config.timeframe, source="candles")[0]
    samples = build_samples(frame, config.timeframe, config.lookback, config.forecast_horizon)
    first_test = walk_forward(samples.positions, config.forecast_horizon, config.cv_folds)[0].test[0]
    return frame.iloc[: first_test].reset_index(drop=True)


def row(metrics: dict) -> dict:
    pooled = metrics["pooled"]
    tests = pooled["verdicts"]["tests"]
    return {
        "t_vs_climatology": round(tests["climatology"]["log_loss"]["t"] or 0.0, 2),
        "t_vs_gbm": round(tests["gbm"]["log_loss"]["t"] or 0.0, 2),
        "brier_skill_pct": round(100 * tests["climatology"]["brier"]["skill"], 3),
        "ece": round(pooled["model"]["ece"], 4),
        "crps_skill_vs_garch_pct": round(100 * pooled["skill"]["garch"]["crps_skill"], 2),
        "duration_s": round(metrics["duration_s"], 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=BUNDLED)
    parser.add_argument("--folds", type=int, default=3, help="walk-forward folds of the inner jobs")
    parser.add_argument("--networks", action="store_true", help="also the network choices (slow on CPU)")
    args = parser.parse_args()
    default = TrainingConfig()
    inner = pre_test_candles(read_candles(args.data), default)
    print(f"{args.data.name}: {len(inner)} candles before the default job's first test block "
          f"({inner['open_time'].iloc[0]} .. {inner['open_time'].iloc[-1]}), {args.folds} inner folds", flush=True)
    print("| candidate | log loss t vs climatology | t vs gbm | Brier skill % | ECE | CRPS skill vs GARCH-t % | s |")
    print("|---|---|---|---|---|---|---|")
    candidates = {**CANDIDATES, **(NETWORK_CANDIDATES if args.networks else {})}
    for name, (changes, constants) in candidates.items():
        undo = _set(direction, **constants)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                started = time.perf_counter()
                result = run_job(TrainingConfig(cv_folds=args.folds, **changes), Path(tmp) / "job",
                                 lambda event: None, candles=inner)
        finally:
            undo()
        r = row(result.metrics)
        print(f"| {name} | {r['t_vs_climatology']:+.2f} | {r['t_vs_gbm']:+.2f} | {r['brier_skill_pct']:+.3f} | "
              f"{r['ece']:.4f} | {r['crps_skill_vs_garch_pct']:+.2f} | {time.perf_counter() - started:.0f} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
