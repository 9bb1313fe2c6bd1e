"""``candlecast import`` / ``candlecast datasets`` as real subprocesses, and ``candlecast train --data`` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO_ROOT, SHARED_DATA

FIFTEEN = SHARED_DATA / "ohlcv" / "binance_BTC_USDT-15m_2023-01-01_2023-12-31.feather"
DAILY = SHARED_DATA / "ohlcv" / "binance_BTC_USDT-1d_2020-09-20_2025-09-18.feather"
SHORT_CDD = SHARED_DATA / "formats" / "cryptodatadownload_Binance_BTCUSDT_1h.head.csv"


def candlecast(*args: str) -> subprocess.CompletedProcess:
    """Run ``candlecast ARGS`` (from source) with this test's CANDLECAST_HOME; never raises on a non-zero exit."""
    return subprocess.run([sys.executable, "-m", "desktop_app.cli", *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)


def test_import_json_prints_one_object_with_the_dataset_and_its_report():
    done = candlecast("import", str(FIFTEEN), "--json")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == 1
    body = json.loads(done.stdout)
    assert set(body) == {"dataset", "report"}
    dataset, report = body["dataset"], body["report"]
    assert {"id", "symbol", "timeframe", "rows", "start", "end", "source", "path"} <= set(dataset)
    assert (dataset["id"], dataset["rows"], dataset["source"]) == ("BTCUSDT-15m", 34994, "imported")
    assert Path(dataset["path"]).is_file()
    assert {
        "file", "format", "symbol", "symbol_from", "timeframe", "rows_read", "rows_kept", "dropped", "impossible_detail",
        "units", "order", "range", "gaps", "zero_volume_flat", "still_forming", "notes", "merge", "dataset_gaps",
        "shadowed",
    } == set(report)  # fmt: skip
    assert report["merge"]["rows_after"] == 34994
    assert report["dataset_gaps"] is None and report["shadowed"] is None  # a new dataset nothing served before


def test_import_prints_a_readable_report():
    done = candlecast("import", str(FIFTEEN))
    assert done.returncode == 0, done.stderr
    assert "into BTCUSDT-15m" in done.stdout
    assert "rows       read 34994, kept 34994; dropped: none" in done.stdout
    assert "gaps       1 (5 missing bars; longest 5 after 2023-03-24T12:30:00+00:00)" in done.stdout
    assert "flat fill  5 zero-volume flat candle(s), kept and flagged" in done.stdout


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_refused_import_is_one_line_on_stderr_with_exit_2(json_flag):
    done = candlecast("import", str(SHORT_CDD), *json_flag)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"candlecast: error: {SHORT_CDD}: only 4 usable row(s) of 5; one training window with the default lookback "
        "and horizon needs 89 consecutive bars (feature warm-up 24 + lookback 64 + horizon 1)"
    ]
    assert json.loads(candlecast("datasets", "--json").stdout)["datasets"][1:] == []


def test_the_cli_names_the_input_a_refusal_asks_for_as_its_option(tmp_path):
    path = tmp_path / "candles.csv"
    path.write_text("timestamp,open,high,low,close,volume\n" + "".join(
        f"{1704067200 + 3600 * i},{100 + i},{102 + i},{99 + i},{101 + i},{10 + i}\n" for i in range(70)))
    done = candlecast("import", str(path), "--json")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"candlecast: error: {path}: no symbol in the file or its name; give the symbol (e.g. BTCUSDT) with --symbol"
    ]


def test_a_refusal_names_the_file_as_the_user_gave_it(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.csv").write_text("a,b\n1,2\n")
    done = subprocess.run([sys.executable, "-m", "desktop_app.cli", "import", "sub/x.csv"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.returncode == 2 and done.stderr.startswith("candlecast: error: sub/x.csv: not a candle table"), done.stderr


def test_the_last_few_daily_candles_append_to_the_stored_dataset(tmp_path):
    """A fresh-user trial: ``candlecast import BTCUSDT-1d-last5.csv`` (5 new days) was refused as too few for one
    training window although the stored BTCUSDT-1d held 1,820 days; the minimum is the merged dataset's."""
    days = pd.read_feather(DAILY).rename(columns={"date": "open_time"})
    days["open_time"] = days["open_time"].dt.strftime("%Y-%m-%d")
    history, last5 = tmp_path / "BTCUSDT-1d.csv", tmp_path / "BTCUSDT-1d-last5.csv"
    days.iloc[:-5].to_csv(history, index=False)
    days.iloc[-5:].to_csv(last5, index=False)
    refused = candlecast("import", str(last5))  # nothing stored yet: a new dataset of 5 days is still refused
    assert refused.returncode == 2 and "only 5 usable row(s) of 5; one training window" in refused.stderr
    assert candlecast("import", str(history)).returncode == 0
    done = candlecast("import", str(last5), "--json")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["report"]["merge"] == {"existing_rows": 1820, "added": 5, "replaced": 0, "unchanged": 0,
                                       "rows_after": 1825}
    assert (body["dataset"]["rows"], body["dataset"]["end"]) == (1825, "2025-09-18T00:00:00+00:00")


def test_datasets_lists_bundled_and_imported():
    assert candlecast("import", str(FIFTEEN)).returncode == 0
    listed = json.loads(candlecast("datasets", "--json").stdout)["datasets"]
    assert [(d["id"], d["source"], d["rows"]) for d in listed] == [
        ("bundled:BTCUSDT-1h", "bundled", 58419), ("BTCUSDT-15m", "imported", 34994)
    ]  # fmt: skip
    table = candlecast("datasets").stdout.splitlines()
    assert table[0].split()[:3] == ["id", "rows", "start"]
    assert table[2].split()[:2] == ["BTCUSDT-15m", "34994"]


@pytest.mark.slow
def test_train_on_a_messy_user_file_end_to_end(tmp_path):
    """A CryptoDataDownload-style file of 1,500 real hours (newest first, s and ms, a NULL, a forming top row)
    is imported by ``candlecast train --data`` and trains one tiny fold."""
    real = pd.read_csv(SHARED_DATA / "ohlcv" / "binance_BTC_USDT-1h_2017-08-17_2024-04-21.derived.csv.gz").tail(1500)
    unix = (real["open_time_ms"] // 1000).astype(object)
    unix.iloc[-48:] = real["open_time_ms"].iloc[-48:]  # the newest two days in ms
    frame = pd.DataFrame({
        "unix": unix.to_numpy(), "date": pd.to_datetime(real["open_time_ms"], unit="ms").dt.strftime("%Y-%m-%d %H:%M:%S"),
        "symbol": "BTC/USDT", "open": real["open"], "high": real["high"], "low": real["low"], "close": real["close"],
        "Volume BTC": real["volume"], "Volume USDT": real["volume"] * real["close"], "tradecount": 1000,
    })  # fmt: skip
    frame.iloc[700, frame.columns.get_loc("close")] = np.nan
    path = tmp_path / "Binance_BTCUSDT_1h.csv"
    with open(path, "w") as handle:
        handle.write("https://www.CryptoDataDownload.com\n")
        frame.iloc[::-1].to_csv(handle, index=False, na_rep="NULL")
    out = tmp_path / "job"
    done = candlecast("train", "--data", str(path), "--epochs", "1", "--cv-folds", "1", "--device", "cpu", "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["pooled"]["n"] > 0
    stored = json.loads(candlecast("datasets", "--json").stdout)["datasets"][1]
    assert (stored["id"], stored["rows"]) == ("BTCUSDT-1h", 1498)  # 1,500 - the NULL row - the forming top row
    assert json.loads((out / "config.json").read_text())["dataset"] == "BTCUSDT-1h"


def test_an_import_says_what_it_shadows_and_the_merged_datasets_gaps(tmp_path):
    """A fresh-user trial: importing 300 daily candles said ``had 0`` although BTCUSDT-1d had meant 2,438 days
    resampled from the bundled hours; then a 2022 file merged into the 2024-25 dataset printed ``gaps 0`` (the
    file's) while the dataset now had an 825-day hole."""
    from trainer.data.store import load_dataset

    resampled = len(load_dataset("BTCUSDT", "1d").candles)
    days = pd.read_feather(DAILY).rename(columns={"date": "open_time"})
    assert (days["open_time"].diff().iloc[1:] == pd.Timedelta(days=1)).all()  # the figures below assume no gap
    recent, old = tmp_path / "BTCUSDT-1d.csv", tmp_path / "BTCUSDT-1d-2022.csv"
    days.iloc[-300:].to_csv(recent, index=False)
    days.iloc[500:700].to_csv(old, index=False)

    first = candlecast("import", str(recent))
    assert first.returncode == 0, first.stderr
    assert "rows (had 0 stored; added 300, replaced 0, unchanged 0)" in first.stdout
    assert (f"note       BTCUSDT-1d was until now resampled from the bundled 1h candles ({resampled:,} candles); "
            "jobs asking for BTCUSDT 1d now train on the stored dataset") in first.stdout
    assert "gaps after" not in first.stdout

    done = candlecast("import", str(old), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)["report"]
    assert report["shadowed"] is None and report["gaps"]["count"] == 0  # the file alone has no gap
    missing = len(days) - 300 - 700
    gap = {"missing_bars": missing, "after": days["open_time"].iloc[699].isoformat(),
           "before": days["open_time"].iloc[-300].isoformat()}  # fmt: skip
    assert report["dataset_gaps"] == {"count": 1, "missing_bars": missing, "longest": gap, "between": [gap]}
    assert (f"the merge left 1 gap(s) between the stored candles and the file's ({missing:,} missing bars; the "
            f"longest {missing:,} after {gap['after']}); the dataset now has 1 gap(s), {missing:,} missing bars in "
            "all") in report["notes"][-1]
    text = candlecast("import", str(old)).stdout  # the same file again: the gap is still between them
    assert "gaps       0 (0 missing bars) — kept as gaps" in text
    gaps_after = f"gaps after 1 ({missing} missing bars; longest {missing} after {gap['after']}) in the merged dataset"
    assert gaps_after in text
    assert "had 500 stored" in text
