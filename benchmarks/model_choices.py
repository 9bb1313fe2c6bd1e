"""The model-choice table of docs/benchmarks.md ("Model choices"), by nested validation: every candidate runs as
a walk-forward job on the bars *before* the default job's first test block only, so no choice looks at a bar
that the default job reports.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/model_choices.py [--data FILE] [--horizon H] [--folds 3] [--networks] [--only TEXT]

For the asset (default the bundled BTCUSDT 1 h; ``--data`` another candle file), it cuts the candles where the
default job's first test block starts (minus the horizon: no label reaches it), then runs the default config
and one change at a time (``CANDIDATES``; with ``--networks`` also a GRU and weight decay 0.1, slow on CPU;
``--only TEXT`` runs the default and the candidates whose name holds TEXT; ``--horizon H`` gives every job,
the default's included, ``forecast_horizon`` H). Prints one row each: the direction tests (log loss
DM t against climatology and the gbm baseline), Brier skill, ECE, CRPS skill and PIT KS against GARCH-t, and
the job time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from types import ModuleType
from pathlib import Path

import trainer.direction as direction
import trainer.train as train
from benchmarks.forecaster_goals import BUNDLED, read_candles
from trainer.config import TrainingConfig
from trainer.data.candles import validate_candles
from trainer.features import build_samples
from trainer.splits import walk_forward
from trainer.train import run_job


def _set(constants: dict[tuple[ModuleType, str], object]) -> Callable[[], None]:
    """Set module constants for one candidate; returns the undo."""
    old = {key: getattr(*key) for key in constants}
    for (module, name), value in constants.items():
        setattr(module, name, value)
    return lambda: [setattr(module, name, value) for (module, name), value in old.items()]


#: name -> (config changes, module constants changed). Rule, fixed before the runs: a candidate replaces the
#: default only if its log loss t vs climatology (CRPS skill for the distribution's gate) is better by at least 1
#: (0.1 %) on one asset and not worse on the other; otherwise the simpler, cheaper one stays.
CANDIDATES: dict[str, tuple[dict, dict]] = {
    "default (stack: one boosted model + AR + network, gate t < 0 (h = 1) / -1 (h > 1), base rate prior 100, distribution gate t < 0; MLP; weight decay 1.0)": ({}, {}),
    "p_up from the network's CDF": ({"p_up_source": "cdf"}, {}),
    "stack with 5 bagged boosted models, 70 % of the features per split":
        ({}, {(direction, "BAGS"): 5, (direction, "MAX_FEATURES"): 0.7}),
    "stack gate t < -1 (h = 1)": ({}, {(direction, "GATE_T"): -1.0}),
    "stack gate t < -2 (h = 1)": ({}, {(direction, "GATE_T"): -2.0}),
    "stack gate t < 0 for h > 1": ({}, {(direction, "GATE_T_MULTI_BAR"): 0.0}),
    "stack gate t < -2 for h > 1": ({}, {(direction, "GATE_T_MULTI_BAR"): -2.0}),
    "stack with a free intercept": ({}, {(direction, "INTERCEPT"): True}),
    "stack prior worth 100 samples": ({}, {(direction, "PRIOR_SAMPLES"): 100.0}),
    "stack prior worth 10,000 samples": ({}, {(direction, "PRIOR_SAMPLES"): 10_000.0}),
    "distribution gate t < -1": ({}, {(train, "DISTRIBUTION_GATE_T"): -1.0}),
    "distribution gate t < -2": ({}, {(train, "DISTRIBUTION_GATE_T"): -2.0}),
    "calibration mle (scale and Student-t nu by maximum likelihood)": ({"calibration_method": "mle"}, {}),
    "calibration crps (scale and Student-t nu by minimum CRPS)": ({"calibration_method": "crps"}, {}),
    "refit every 720 bars (30 days of 1 h), warm-started": ({"refit_every": 720}, {}),
    "base rate not shrunk (the history's up-frequency)": ({}, {(direction, "BASE_RATE_PRIOR"): 0.0}),
    "base rate shrunk towards 0.5 by a prior worth 1,000 samples": ({}, {(direction, "BASE_RATE_PRIOR"): 1000.0}),
    "base rate 0.5 (the martingale's)": ({}, {(direction, "BASE_RATE_PRIOR"): 1e12}),
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
        "pit_ks": round(pooled["model"]["pit_ks"], 4), "pit_ks_garch": round(pooled["baselines"]["garch"]["pit_ks"], 4),
        "duration_s": round(metrics["duration_s"], 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=BUNDLED)
    parser.add_argument("--horizon", type=int, default=TrainingConfig().forecast_horizon, help="forecast horizon (bars)")
    parser.add_argument("--folds", type=int, default=3, help="walk-forward folds of the inner jobs")
    parser.add_argument("--networks", action="store_true", help="also the network choices (slow on CPU)")
    parser.add_argument("--only", default="", help="run only the candidates whose name contains this text")
    args = parser.parse_args()
    default = TrainingConfig(forecast_horizon=args.horizon)
    inner = pre_test_candles(read_candles(args.data), default)
    print(f"{args.data.name}: {len(inner)} candles before the default job's first test block "
          f"({inner['open_time'].iloc[0]} .. {inner['open_time'].iloc[-1]}), {args.folds} inner folds, horizon {args.horizon}", flush=True)
    print("| candidate | log loss t vs climatology | t vs gbm | Brier skill % | ECE | CRPS skill vs GARCH-t % | PIT KS model / GARCH-t | s |")
    print("|---|---|---|---|---|---|---|---|")
    candidates = {**CANDIDATES, **(NETWORK_CANDIDATES if args.networks else {})}
    for i, (name, (changes, constants)) in enumerate(candidates.items()):
        if i > 0 and args.only not in name:
            continue
        undo = _set(constants)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                started = time.perf_counter()
                result = run_job(TrainingConfig(cv_folds=args.folds, forecast_horizon=args.horizon, **changes), Path(tmp) / "job",
                                 lambda event: None, candles=inner)
        finally:
            undo()
        r = row(result.metrics)
        print(f"| {name} | {r['t_vs_climatology']:+.2f} | {r['t_vs_gbm']:+.2f} | {r['brier_skill_pct']:+.3f} | "
              f"{r['ece']:.4f} | {r['crps_skill_vs_garch_pct']:+.2f} | {r['pit_ks']:.4f} / {r['pit_ks_garch']:.4f} | {time.perf_counter() - started:.0f} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
