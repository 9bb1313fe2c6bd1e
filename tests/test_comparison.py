"""``trainer.comparison`` on job folders written by hand: what differs between two jobs, data included."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from trainer.comparison import compare_jobs


def job(folder: Path, config: dict, dataset: dict, timestamps: list[int]) -> Path:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    metrics = {"pooled": {"model": {"crps": 0.003, "reliability": None, "pit_hist": None}}, "folds": [],
               "provenance": {"dataset": dataset}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    pd.DataFrame({"timestamp": timestamps, "y": [0.01, -0.01, 0.02][: len(timestamps)],
                  "p_up": [0.5] * len(timestamps)}).to_csv(folder / "predictions.csv", index=False)
    return folder


def test_jobs_on_other_candles_differ_in_candles_and_share_no_bars(tmp_path: Path) -> None:
    """A fresh-user trial compared a job on 2,438 resampled daily candles with one on 705 imported ones: only
    cv_folds and epochs differed, and the pair's test was run on the 41 bars both happened to score."""
    config = {"symbol": "BTCUSDT", "timeframe": "1d", "dataset": None, "epochs": 2}
    span = {"id": "BTCUSDT-1d", "first_open_time": "2017-08-17T00:00:00+00:00"}
    a = job(tmp_path / "a", config, {**span, "rows": 2438, "sha256": "ab" * 32,
                                     "last_open_time": "2024-04-21T00:00:00+00:00"}, [1, 2, 3])
    b = job(tmp_path / "b", {**config, "dataset": "BTCUSDT-1d"},
            {**span, "rows": 705, "sha256": "cd" * 32, "last_open_time": "2026-01-31T00:00:00+00:00"}, [7, 8])
    result = compare_jobs([a, b])
    assert result["differences"] == {"candles": [
        "2438 candles 2017-08-17T00:00 .. 2024-04-21T00:00 (sha256 abababababab)",
        "705 candles 2017-08-17T00:00 .. 2026-01-31T00:00 (sha256 cdcdcdcdcdcd)"]}  # dataset: the same id
    assert result["pairs"] == [{"a": "a", "b": "b", "n": 0, "tests": {}}]
    same = compare_jobs([a, job(tmp_path / "c", config, json.loads((a / "metrics.json").read_text())["provenance"]
                                ["dataset"], [1, 2, 3])])
    assert same["differences"] == {} and same["pairs"][0]["n"] == 3
