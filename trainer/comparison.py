"""Two to four jobs side by side (``GET /compare``, the GUI's Compare view): their configuration differences, key
figures and pooled metrics, reliability diagrams and PIT histograms, and a Diebold–Mariano test of each pair's
p_up on the test bars they share. Worker-side (numpy, statsmodels): the server reaches it through the predictor
process.

The pairwise test is ``trainer.verdicts``' (the same HAC regression, the same lag rule) on per-bar log-loss and
Brier differences of the two jobs' calibrated p_up, over the open times both ``predictions.csv`` hold with the
same label (same symbol, timeframe and horizon; other pairs share no bars and get no test).
"""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainer.config import effective_dataset
from trainer.key_figures import key_figures
from trainer.metrics import finite_or_none
from trainer.verdicts import LEVEL, diebold_mariano, dm_verdict, hac_lags

#: Pooled model metrics shown side by side (keys of ``metrics.json``'s ``pooled.model``).
SIDE_BY_SIDE = ("crps", "nll", "log_loss", "brier", "ece", "accuracy", "roc_auc", "coverage_50", "coverage_80",
                "coverage_95", "pit_ks")
_EPS = 1e-12


class ComparisonRefused(ValueError):
    """A job cannot be compared (no metrics or predictions yet); the message names it."""


def _load(job_dir: Path) -> tuple[dict[str, Any], dict[str, Any], pd.DataFrame]:
    try:
        config = json.loads((job_dir / "config.json").read_text(encoding="utf-8"))
        metrics = json.loads((job_dir / "metrics.json").read_text(encoding="utf-8"))
        predictions = pd.read_csv(job_dir / "predictions.csv", usecols=["timestamp", "y", "p_up"])
    except (OSError, ValueError) as exc:
        raise ComparisonRefused(f"job {job_dir.name} has no results to compare ({exc})") from None
    return config, metrics, predictions


def _losses(y: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
    up = (y > 0).astype(np.float64)
    p = np.clip(p, _EPS, 1 - _EPS)
    return {"log_loss": -(up * np.log(p) + (1 - up) * np.log(1 - p)), "brier": (p - up) ** 2}


def pair_test(a: str, b: str, pa: pd.DataFrame, pb: pd.DataFrame, horizon: int) -> dict[str, Any]:
    """DM tests of job ``a`` against ``b`` (their predictions ``timestamp, y, p_up``) on the bars both scored
    with the same label: ``{a, b, n, tests: {score: {a_mean, b_mean, diff, t, p, verdict}}}``; verdict
    ``better``/``worse``/``no_difference`` says how ``a`` compares (``n`` 0 and no tests when they share none)."""
    both = pa.merge(pb, on="timestamp", suffixes=("_a", "_b"))
    both = both[np.isclose(both["y_a"], both["y_b"], rtol=0, atol=1e-12)]
    out: dict[str, Any] = {"a": a, "b": b, "n": len(both), "tests": {}}
    if len(both) < 2:
        return out
    la = _losses(both["y_a"].to_numpy(), both["p_up_a"].to_numpy())
    lb = _losses(both["y_b"].to_numpy(), both["p_up_b"].to_numpy())
    for score in ("log_loss", "brier"):
        d = la[score] - lb[score]
        t, p, _ = diebold_mariano(d, hac_lags(horizon))
        out["tests"][score] = {"a_mean": float(la[score].mean()), "b_mean": float(lb[score].mean()),
                               "diff": float(d.mean()), "t": None if t is None else finite_or_none(t), "p": p,
                               "verdict": dm_verdict(t, p, LEVEL)}
    return out


def _as_compared(config: dict[str, Any]) -> dict[str, Any]:
    """A job's config as its differences are told: ``dataset`` is the dataset it trained on
    (``trainer.config.effective_dataset``), so a job that named ``BTCUSDT-1d`` and one that gave only BTCUSDT and
    1d do not differ."""
    if "symbol" not in config or "timeframe" not in config:
        return config
    return {**config, "dataset": effective_dataset(config.get("dataset"), config["symbol"], config["timeframe"])}


def _candles(metrics: dict[str, Any]) -> str | None:
    """The candles a job trained on, from its provenance (``trainer.provenance``): rows, first and last open time
    and the SHA-256's first 12 hex digits; None when not recorded."""
    dataset = (metrics.get("provenance") or {}).get("dataset")
    if not dataset:
        return None
    return (f"{dataset['rows']} candles {dataset['first_open_time'][:16]} .. {dataset['last_open_time'][:16]} "
            f"(sha256 {dataset['sha256'][:12]})")


def compare_jobs(job_dirs: list[Path]) -> dict[str, Any]:
    """The comparison of the jobs in ``job_dirs`` (module doc): ``{jobs, configs, differences, key_figures,
    metrics, reliability, pit, pairs}``, each per job id except ``differences`` (config key → values in job
    order, only the keys that differ, ``dataset`` as ``_as_compared`` tells it, and ``candles`` (``_candles``)
    when the jobs trained on different candles, whatever their configs say) and ``pairs`` (``pair_test`` of
    every pair). ``configs`` are the jobs' saved configs as they are. Raises ``ComparisonRefused``."""
    loaded = {d.name: _load(d) for d in job_dirs}
    ids = list(loaded)
    configs = {i: c for i, (c, _, _) in loaded.items()}
    compared = {i: _as_compared(c) for i, c in configs.items()}
    keys = sorted(set().union(*(c.keys() for c in compared.values())))
    differences = {k: [compared[i].get(k) for i in ids] for k in keys
                   if len({json.dumps(compared[i].get(k)) for i in ids}) > 1}
    candles = [_candles(loaded[i][1]) for i in ids]
    if len(set(candles)) > 1:
        differences["candles"] = candles
    pooled = {i: m["pooled"]["model"] for i, (_, m, _) in loaded.items()}
    pairs = []
    for a, b in combinations(ids, 2):
        horizon = max(int(configs[a].get("forecast_horizon", 1)), int(configs[b].get("forecast_horizon", 1)))
        pairs.append(pair_test(a, b, loaded[a][2], loaded[b][2], horizon))
    return {
        "jobs": ids,
        "configs": configs,
        "differences": differences,
        "key_figures": {i: key_figures(m) for i, (_, m, _) in loaded.items()},
        "metrics": {i: {k: pooled[i].get(k) for k in SIDE_BY_SIDE} for i in ids},
        "reliability": {i: pooled[i].get("reliability") for i in ids},
        "pit": {i: pooled[i].get("pit_hist") for i in ids},
        "pairs": pairs,
    }
