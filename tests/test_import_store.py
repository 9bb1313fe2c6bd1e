"""The dataset store: save and merge, the saved report and metadata, the catalog, and load_dataset's resolution
(store, bundled, resampled)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO_ROOT, SHARED_DATA
from trainer.data import catalog
from trainer.data.candles import CandleError
from trainer.data.importer import CandleImportError, import_file
from trainer.data.store import load_dataset, resample_candles
from trainer.features import build_samples
from trainer.paths import datasets_dir

OHLCV = SHARED_DATA / "ohlcv"
HEADER = "timestamp,open,high,low,close,volume\n"


def write_hours(path: Path, hours: range, close_offset: float = 0.0) -> Path:
    """Candles at 2024-01-01 00:00 + h hours for h in ``hours``; ``close_offset`` changes the close (a conflict)."""
    rows = [f"{1704067200 + 3600 * h},{100 + h},{103 + h},{99 + h},{101 + h + close_offset},{10 + h}" for h in hours]
    path.write_text(HEADER + "\n".join(rows) + "\n")
    return path


def test_import_writes_parquet_metadata_and_report(tmp_path):
    result = import_file(write_hours(tmp_path / "BTCUSDT-1h.csv", range(100)))
    paths = catalog.stored_paths("BTCUSDT-1h")
    assert sorted(p.name for p in datasets_dir().iterdir()) == sorted(p.name for p in paths.values())
    stored = pd.read_parquet(paths["candles"])
    pd.testing.assert_frame_equal(stored, result.candles)
    metadata = json.loads(paths["metadata"].read_text())
    assert metadata == result.dataset
    assert {k: metadata[k] for k in ("id", "symbol", "timeframe", "rows", "start", "end", "source")} == {
        "id": "BTCUSDT-1h", "symbol": "BTCUSDT", "timeframe": "1h", "rows": 100,
        "start": "2024-01-01T00:00:00+00:00", "end": "2024-01-05T03:00:00+00:00", "source": "imported",
    }  # fmt: skip
    assert metadata["path"] == str(paths["candles"])
    assert json.loads(paths["report"].read_text()) == result.report
    assert result.report["merge"] == {"existing_rows": 0, "added": 100, "replaced": 0, "unchanged": 0, "rows_after": 100}


def test_second_import_merges_and_the_newer_file_wins(tmp_path):
    import_file(write_hours(tmp_path / "BTCUSDT-1h-a.csv", range(0, 100)))
    second = import_file(write_hours(tmp_path / "BTCUSDT-1h-b.csv", range(80, 180), close_offset=0.5))
    assert second.report["merge"] == {"existing_rows": 100, "added": 80, "replaced": 20, "unchanged": 0, "rows_after": 180}
    dataset = load_dataset("BTCUSDT", "1h")
    candles = dataset.candles.set_index("open_time")
    assert len(candles) == 180 and dataset.source == "imported:BTCUSDT-1h.parquet"
    assert candles.loc[pd.Timestamp("2024-01-01 00:00", tz="UTC"), "close"] == 101.0  # only in the first file
    assert candles.loc[pd.Timestamp("2024-01-04 08:00", tz="UTC"), "close"] == 181.5  # h=80: the second file's
    entry = catalog.find_dataset("BTCUSDT-1h")
    assert entry["rows"] == 180 and [i["file"] for i in entry["imports"]] == ["BTCUSDT-1h-a.csv", "BTCUSDT-1h-b.csv"]
    again = import_file(tmp_path / "BTCUSDT-1h-b.csv")
    assert again.report["merge"]["unchanged"] == 100 and again.report["merge"]["rows_after"] == 180


def test_the_merged_datasets_gaps_and_those_between_the_stored_candles_and_the_files(tmp_path):
    import_file(write_hours(tmp_path / "BTCUSDT-1h.csv", [*range(100), *range(400, 500)]))  # one 299-bar gap
    inside = import_file(write_hours(tmp_path / "BTCUSDT-1h-mid.csv", range(200, 300)))  # splits it in two
    hour = lambda h: (pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(hours=h)).isoformat()  # noqa: E731
    between = [{"missing_bars": 100, "after": hour(99), "before": hour(200)},
               {"missing_bars": 100, "after": hour(299), "before": hour(400)}]  # fmt: skip
    assert inside.report["gaps"] == {"count": 0, "missing_bars": 0, "longest": None}  # the file alone
    assert inside.report["dataset_gaps"] == {"count": 2, "missing_bars": 200, "longest": between[0], "between": between}
    assert inside.report["notes"][-1] == (
        f"the merge left 2 gap(s) between the stored candles and the file's (200 missing bars; the longest 100 "
        f"after {hour(99)}); the dataset now has 2 gap(s), 200 missing bars in all — no training sample crosses "
        "a gap")
    assert json.loads(catalog.stored_paths("BTCUSDT-1h")["report"].read_text()) == inside.report

    joined = import_file(write_hours(tmp_path / "BTCUSDT-1h-end.csv", range(500, 600)))  # no new gap
    assert joined.report["dataset_gaps"] == {"count": 2, "missing_bars": 200, "longest": between[0], "between": []}
    assert not [n for n in joined.report["notes"] if n.startswith("the merge left")]


def test_an_import_that_creates_a_dataset_says_what_served_its_id_until_then(tmp_path):
    """The store comes first in ``load_dataset``'s order, so a new stored dataset shadows the bundled candles or a
    resample of a lower timeframe: the report says which, and how many candles they were."""
    hours = import_file(write_hours(tmp_path / "BTCUSDT-1h.csv", range(100)))
    assert hours.report["shadowed"] == {"source": "bundled:BTCUSDT-1h.feather", "rows": 58419}
    assert ("BTCUSDT-1h was until now the bundled candles (58,419 candles); jobs asking for BTCUSDT 1h now train on "
            "the stored dataset (they stay reachable as dataset bundled:BTCUSDT-1h)") in hours.report["notes"]
    assert import_file(write_hours(tmp_path / "BTCUSDT-1h-b.csv", range(100, 200))).report["shadowed"] is None

    served = load_dataset("BTCUSDT", "4h")  # now resampled from the stored hours, no longer the bundled ones
    rows = [f"{1704067200 + 4 * 3600 * h},{100 + h},{103 + h},{99 + h},{101 + h},{10 + h}" for h in range(100)]
    (tmp_path / "BTCUSDT-4h.csv").write_text(HEADER + "\n".join(rows) + "\n")
    four = import_file(tmp_path / "BTCUSDT-4h.csv")
    assert four.report["shadowed"] == {"source": "resampled from 1h (imported:BTCUSDT-1h.parquet)",
                                       "rows": len(served.candles)}  # fmt: skip
    assert (f"BTCUSDT-4h was until now resampled from the stored 1h candles ({len(served.candles):,} candles); jobs "
            "asking for BTCUSDT 4h now train on the stored dataset") in four.report["notes"]
    assert import_file(write_hours(tmp_path / "ETHUSDT-1h.csv", range(100))).report["shadowed"] is None  # none


def test_merge_that_does_not_line_up_is_refused_and_writes_nothing(tmp_path):
    import_file(write_hours(tmp_path / "BTCUSDT-1h.csv", range(100)))
    before = {p.name: p.read_bytes() for p in datasets_dir().iterdir()}
    shifted = tmp_path / "BTCUSDT-1h-shifted.csv"
    rows = [f"{1704067200 + 1800 + 3600 * h},{100 + h},{103 + h},{99 + h},{101 + h},{10 + h}" for h in range(100)]
    shifted.write_text(HEADER + "\n".join(rows) + "\n")
    with pytest.raises(CandleImportError, match=rf"^{re.escape(str(shifted))}: does not merge with the stored BTCUSDT-1h: bars closer"):
        import_file(shifted)
    assert {p.name: p.read_bytes() for p in datasets_dir().iterdir()} == before


def test_a_few_new_candles_append_when_the_merged_dataset_is_big_enough(tmp_path):
    """The training-window minimum (89 bars) is judged on the dataset the import makes, not on the file alone."""
    def stored() -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in datasets_dir().iterdir()} if datasets_dir().is_dir() else {}

    five = write_hours(tmp_path / "BTCUSDT-1h-new.csv", range(100, 105))
    with pytest.raises(CandleImportError, match=r": only 5 usable row\(s\) of 5; one training window .* needs 89 "):
        import_file(five)  # a new dataset of 5 candles: no default job could train on it
    assert stored() == {}
    few = write_hours(tmp_path / "BTCUSDT-1h-few.csv", range(40))
    with pytest.raises(CandleImportError, match=r": only 40 usable row\(s\) of 40; "):
        import_file(few)

    import_file(write_hours(tmp_path / "BTCUSDT-1h.csv", range(100)))
    assert import_file(five, save=False).report["merge"] is None  # judged on the would-be merge, nothing written
    appended = import_file(five)
    assert appended.report["merge"] == {"existing_rows": 100, "added": 5, "replaced": 0, "unchanged": 0,
                                        "rows_after": 105}
    assert appended.dataset["rows"] == 105 and len(load_dataset("BTCUSDT", "1h").candles) == 105
    assert not [n for n in appended.report["notes"] if n.startswith("too few for training")]  # 105 bars: one window

    import_file(write_hours(tmp_path / "ETHUSDT-1h.csv", range(50)), min_rows=2)  # a small stored dataset
    before = stored()
    more = write_hours(tmp_path / "ETHUSDT-1h-more.csv", range(50, 80))
    with pytest.raises(CandleImportError, match=(
            rf"^{re.escape(str(more))}: only 30 usable row\(s\) of 30, 80 with the 50 stored in ETHUSDT-1h; one "
            r"training window with the default lookback and horizon needs 89 consecutive bars")):
        import_file(more)
    after_gap = write_hours(tmp_path / "ETHUSDT-1h-later.csv", range(60, 100))
    with pytest.raises(CandleImportError, match=(
            r": 40 usable row\(s\) of 40, 90 with the 50 stored in ETHUSDT-1h, but gaps leave at most 50 in a row; ")):
        import_file(after_gap)
    assert stored() == before  # refused: nothing written
    single = tmp_path / "ETHUSDT-1h-one.csv"
    single.write_text(HEADER + "1704067200,100,103,99,101,10\n")
    with pytest.raises(CandleImportError, match=(
            r": only 1 usable row\(s\) of 1; an import needs 2 or more, to read the timeframe from their spacing$")):
        import_file(single, timeframe="1h")


def test_catalog_lists_bundled_then_stored_and_stays_light(tmp_path, candlecast_home):
    import_file(OHLCV / "binance_BTC_USDT-15m_2023-01-01_2023-12-31.feather")
    entries = catalog.list_datasets()
    assert [e["id"] for e in entries] == ["bundled:BTCUSDT-1h", "BTCUSDT-15m"]
    assert {k: entries[1][k] for k in ("rows", "start", "end", "gaps", "zero_volume_flat")} == {
        "rows": 34994, "start": "2023-01-01T00:00:00+00:00", "end": "2023-12-31T13:30:00+00:00",
        "gaps": {"count": 1, "missing_bars": 5}, "zero_volume_flat": 5,
    }  # fmt: skip
    code = "import sys, trainer.data.catalog as c; c.list_datasets(); print(sorted({'pandas', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_catalog_skips_damaged_metadata_and_rejects_bad_ids():
    (datasets_dir() / "ETHUSDT-1h.parquet").write_bytes(b"not parquet")
    (datasets_dir() / "ETHUSDT-1h.json").write_text("{broken")
    assert [e["id"] for e in catalog.list_datasets()] == ["bundled:BTCUSDT-1h"]
    assert catalog.find_dataset("../../etc/passwd") is None
    with pytest.raises(ValueError, match="not a dataset id"):
        catalog.stored_paths("../x-1h")


def test_bundled_catalog_facts_match_the_file():
    entry = catalog.find_dataset("bundled:BTCUSDT-1h")
    frame = pd.read_feather(entry["path"])
    assert entry["rows"] == len(frame)
    assert (entry["start"], entry["end"]) == (frame["date"].iloc[0].isoformat(), frame["date"].iloc[-1].isoformat())


def test_load_dataset_prefers_the_store_and_bundled_id_names_the_bundled_data(tmp_path):
    assert load_dataset("BTCUSDT", "1h").source == "bundled:BTCUSDT-1h.feather"
    import_file(write_hours(tmp_path / "BTCUSDT-1h.csv", range(100)))
    assert len(load_dataset("BTCUSDT", "1h").candles) == 100
    bundled = load_dataset("BTCUSDT", "1h", "bundled:BTCUSDT-1h")
    assert (bundled.dataset_id, len(bundled.candles)) == ("bundled:BTCUSDT-1h", 58419)


def test_load_dataset_errors_name_the_fix():
    with pytest.raises(CandleError, match=r"no dataset 'ETHUSDT-1h': import one with `candlecast import FILE"):
        load_dataset("ETHUSDT", "1h")
    with pytest.raises(CandleError, match="holds BTCUSDT 4h candles, not BTCUSDT 1h"):
        load_dataset("BTCUSDT", "1h", "BTCUSDT-4h")
    with pytest.raises(CandleError, match="not a dataset id"):
        load_dataset("BTCUSDT", "1h", "BTCUSDT")
    with pytest.raises(CandleError, match="no dataset 'bundled:BTCUSDT-4h'"):
        load_dataset("BTCUSDT", "4h", "bundled:BTCUSDT-4h")  # bundled: ids are never resampled


def test_daily_resampled_from_bundled_hours_keeps_nearly_every_day_and_equals_the_real_daily_file():
    """1d from the bundled 1h: a day with an outage hour is a partial candle, not a hole, and every overlapping day
    (partial ones included) equals Binance's own daily candle."""
    dataset = load_dataset("BTCUSDT", "1d")
    assert dataset.source == "resampled from 1h (bundled:BTCUSDT-1h.feather)"
    hours = load_dataset("BTCUSDT", "1h").candles["open_time"]
    days = hours.dt.floor("1D").nunique()  # 2440: the first day starts at 04:00, the last one is unfinished
    assert len(dataset.candles) == days - 2 and dataset.report.gaps == 1  # one day with under 12 hours, the last
    assert dataset.partial_candles == 29 and "29 partial 1d candle(s)" in dataset.report.notes[0]
    assert "the unfinished last 1d candle left out" in dataset.report.notes[0]
    # The job's samples (default lookback 64, horizon 1): 974 when a single missing hour dropped its day.
    assert len(build_samples(dataset.candles, "1d", 64, 1).positions) == 2262
    daily = pd.read_feather(OHLCV / "binance_BTC_USDT-1d_2020-09-20_2025-09-18.feather").rename(columns={"date": "open_time"})
    both = dataset.candles.merge(daily, on="open_time", suffixes=("", "_real"))
    assert len(both) == 1309  # every overlapping day up to the last finished one
    partial_days = set(hours.dt.floor("1D").value_counts().loc[lambda n: n < 24].index)
    assert len(partial_days & set(both["open_time"])) == 10  # outage days, each equal to the real one
    for column in ("open", "high", "low", "close"):
        assert (both[column] == both[f"{column}_real"]).all(), column
    assert ((both["volume"] - both["volume_real"]).abs() <= 1e-9 * both["volume_real"]).all()


def test_resampling_builds_partial_candles_and_uses_stored_lower_timeframes(tmp_path):
    hours = [h for h in range(48) if h not in (5, 30, 31)]  # a hole inside one 4h bucket and at the end of another
    import_file(_hours_file(tmp_path, hours), min_rows=2)
    four = load_dataset("ETHUSDT", "4h")
    starts = [ts.hour + 24 * (ts.day - 1) for ts in four.candles["open_time"]]
    assert starts == list(range(0, 48, 4))  # no bucket left out: each holds at least 2 of its 4 hours
    assert four.partial_candles == 2 and four.report.gaps == 0
    assert four.source == "resampled from 1h (imported:ETHUSDT-1h.parquet)"
    rows = four.candles.set_index(four.candles["open_time"].dt.hour + 24 * (four.candles["open_time"].dt.day - 1))
    full = rows.loc[0]
    assert (full["open"], full["high"], full["low"], full["close"], full["volume"]) == (100.0, 106.0, 99.0, 104.0, 46.0)
    inner = rows.loc[4]  # hours 4, 6, 7
    assert (inner["open"], inner["high"], inner["low"], inner["close"], inner["volume"]) == (104.0, 110.0, 103.0, 108.0, 47.0)
    end = rows.loc[28]  # hours 28, 29: the close is hour 29's, the last present one
    assert (end["open"], end["high"], end["low"], end["close"], end["volume"]) == (128.0, 132.0, 127.0, 130.0, 77.0)


def test_a_bucket_with_under_half_its_bars_is_a_gap_and_an_unfinished_last_bucket_is_left_out():
    hours = [h for h in range(24) if h not in (5, 6, 7)] + [24, 25]  # bucket 4..7 keeps 1 of 4; data end at 25
    rows = [{"open_time": pd.Timestamp(1704067200 + 3600 * h, unit="s", tz="UTC"), "open": 100.0 + h,
             "high": 103.0 + h, "low": 99.0 + h, "close": 101.0 + h, "volume": 10.0 + h} for h in hours]  # fmt: skip
    candles = pd.DataFrame(rows)
    four = resample_candles(candles, "1h", "4h")
    assert [ts.hour for ts in four.candles["open_time"]] == [0, 8, 12, 16, 20]  # 4..7: a gap; 24..27: unfinished
    assert (four.partial, four.dropped, four.unfinished) == (0, 1, True)
    two = resample_candles(candles, "1h", "2h")  # 1 of 2 bars is half: built; 4..5 is, 6..7 has none
    assert [ts.hour for ts in two.candles["open_time"]] == [0, 2, 4, *range(8, 24, 2), 0]
    assert (two.partial, two.dropped, two.unfinished) == (1, 0, False)
    strict = resample_candles(candles, "1h", "4h", min_share=1.0)  # every bar required: the old rule
    assert (len(strict.candles), strict.partial, strict.dropped) == (5, 0, 1)
    daily = resample_candles(candles.iloc[:-2], "1h", "1d")  # 21 of 24 hours, ending at 23:00: finished
    assert (len(daily.candles), daily.partial, daily.unfinished) == (1, 1, False)
    assert daily.candles["close"].iloc[0] == 124.0
    with pytest.raises(ValueError, match=r"min_share must be in \(0, 1\]"):
        resample_candles(candles, "1h", "4h", min_share=0)


def _hours_file(tmp_path: Path, hours: list[int]) -> Path:
    rows = [f"{1704067200 + 3600 * h},{100 + h},{103 + h},{99 + h},{101 + h},{10 + h}" for h in hours]
    path = tmp_path / "ETHUSDT-1h.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    return path


def test_resample_candles_rejects_a_timeframe_that_is_not_a_multiple():
    candles = load_dataset("BTCUSDT", "1h").candles.head(10)
    with pytest.raises(ValueError, match="cannot resample 1h candles to 1h"):
        resample_candles(candles, "1h", "1h")
