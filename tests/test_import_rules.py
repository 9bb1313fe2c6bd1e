"""The importer's resolution rules and refusals (trainer.data.importer's module doc), one by one, plus a property test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SHARED_DATA
from trainer.data import formats
from trainer.config import TrainingConfig
from trainer.data import import_rules as rules
from trainer.data.importer import MIN_ROWS, CandleImportError, import_file
from trainer.data.readers import RawCandles
from trainer.features import build_samples
from trainer.paths import datasets_dir
from trainer.sample_window import WARMUP

FIXTURES = Path(__file__).parent / "fixtures" / "formats"
HEADER = "timestamp,open,high,low,close,volume\n"


def write(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text(header + "\n".join(rows) + "\n")
    return path


def hourly(n: int, start: int = 1704067200, step: int = 3600) -> list[str]:
    """``n`` valid candles ``step`` seconds apart from ``start`` (epoch seconds), as CSV rows."""
    return [f"{start + step * i},{100 + i},{102 + i},{99 + i},{101 + i},{10 + i}" for i in range(n)]


def refused(path: Path, **kwargs) -> str:
    """Import ``path``, expect a refusal, check nothing was written and the message is one line; return it."""
    with pytest.raises(CandleImportError) as info:
        import_file(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}:")  # the path as given, not only its name
    assert list(datasets_dir().iterdir()) == []
    return message


# --- refusals: one line, nothing written ---------------------------------------------------------------------------


def test_refuses_missing_empty_binary_and_header_only_files(tmp_path):
    assert "no such file" in refused(tmp_path / "nothing.csv")
    (tmp_path / "folder").mkdir()
    assert refused(tmp_path / "folder") == f"{tmp_path / 'folder'}: a directory, not a file"
    assert "the file is empty" in refused(write(tmp_path / "BTCUSDT-1h.csv", [], header=""))
    garbage = tmp_path / "BTCUSDT.bin"
    garbage.write_bytes(bytes(range(256)) * 8)
    assert "not a candle file" in refused(garbage)
    assert "no data rows" in refused(write(tmp_path / "BTCUSDT-header.csv", [], header=HEADER.strip()))


def test_refuses_a_text_file_that_is_no_table_without_echoing_its_content(tmp_path):
    secret = "root:x:0:0:root:/root:/bin/bash"
    path = tmp_path / "passwd"
    path.write_text(f"{secret}\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    message = refused(path)
    assert message.startswith(f"{path}: not a candle table: none of its 1 column(s) is named like a time, price")
    rest = message[len(str(path)):]  # the temp path may hold "root"
    assert "root" not in rest and "daemon" not in rest


def test_refuses_unreadable_times_and_says_why_no_row_is_usable(tmp_path):
    """Slash dates (day or month first?) were a pandas traceback and a 500 (fresh-user trial)."""
    rows = [f"{day}/09/2020,10,11,9,10.5,100" for day in (20, 21, 22)]
    message = refused(write(tmp_path / "BTCUSDT-1d.csv", rows, header="date,open,high,low,close,volume\n"))
    assert message.endswith(": no readable time in the time column (e.g. '20/09/2020'); write times as ISO 8601 "
                            "(2020-09-20 or 2020-09-20T13:00:00Z) or as epoch seconds or milliseconds (dates with "
                            "slashes are not read: files differ in whether the day or the month comes first)"), message
    bad = ["1704067200,x,102,99,101,10", "1704070800,-1,102,99,101,10"]
    message = refused(write(tmp_path / "BTCUSDT-1h.csv", bad))
    assert message.endswith("none of the 2 row(s) is a usable candle (dropped 1 row(s) with missing or unreadable "
                            "values (line 2); dropped 1 impossible candle(s): a price at or below 0: 1 candle (line 3))")


def test_refuses_files_without_time_or_price_columns():
    assert "no time column (columns: open, high, low, close, volume)" in refused(FIXTURES / "no_time_column.csv")
    assert "no open/high/low/close price column" in refused(FIXTURES / "no_price_columns.csv")


def test_refuses_mixed_symbols(tmp_path):
    text = (FIXTURES / "cryptodatadownload_Binance_ETHUSDT_1h.csv").read_text().replace(
        "1614574800,2021-03-01 05:00:00,ETH/USDT", "1614574800,2021-03-01 05:00:00,BTC/USDT"
    )
    path = tmp_path / "cdd.csv"
    path.write_text(text)
    assert "mixed symbols in one file: ETHUSDT (12 rows), BTCUSDT (2 rows)" in refused(path)


def test_refuses_fewer_rows_than_one_training_window(tmp_path):
    lookback, horizon = TrainingConfig().lookback, TrainingConfig().forecast_horizon
    assert MIN_ROWS == WARMUP + lookback + horizon  # the features' warm-up counts, not only lookback + horizon
    message = refused(write(tmp_path / "BTCUSDT-1h.csv", hourly(MIN_ROWS - 1)))
    assert message.endswith(
        f": only {MIN_ROWS - 1} usable row(s) of {MIN_ROWS - 1}; one training window with the default lookback and "
        f"horizon needs {MIN_ROWS} consecutive bars (feature warm-up {WARMUP} + lookback {lookback} + horizon {horizon})"
    )
    imported = import_file(write(tmp_path / "BTCUSDT-1h.csv", hourly(MIN_ROWS)))
    assert imported.report["rows_kept"] == MIN_ROWS
    samples = build_samples(imported.candles, "1h", lookback, horizon)  # the least accepted file trains one sample
    assert len(samples.positions) == 1


def test_refuses_rows_enough_but_no_gap_free_training_window(tmp_path):
    """Enough rows in all, but a gap leaves no run of MIN_ROWS consecutive bars: no default job could train."""
    rows = hourly(60) + hourly(61, start=1704067200 + 3600 * 70)
    message = refused(write(tmp_path / "DUPUSDT-1h.csv", rows))
    assert message.endswith(
        f"121 usable row(s) of 121, but gaps leave at most 61 in a row; one training window with the default lookback "
        f"and horizon needs {MIN_ROWS} consecutive bars (feature warm-up {WARMUP} + lookback 64 + horizon 1)"
    )


def test_refuses_a_file_without_a_symbol_unless_one_is_given(tmp_path):
    path = write(tmp_path / "candles.csv", hourly(3))
    assert refused(path, min_rows=2) == f"{path}: no symbol in the file or its name; give the symbol (e.g. BTCUSDT)"
    with pytest.raises(CandleImportError) as info:
        import_file(path, min_rows=2)
    assert info.value.field == "symbol"  # each caller names the input its own way (CLI option, API field)
    assert import_file(path, symbol="eth-usdt", min_rows=2, save=False).dataset_id == "ETHUSDT-1h"


def test_refuses_a_timeframe_that_disagrees_with_the_spacing(tmp_path):
    path = write(tmp_path / "BTCUSDT.csv", hourly(5))
    assert "the candles are 1h apart but the timeframe given is 4h" in refused(path, timeframe="4h", min_rows=2)
    assert "unknown timeframe '7m'" in refused(path, timeframe="7m", min_rows=2)
    assert import_file(path, timeframe="1h", min_rows=2, save=False).timeframe == "1h"


def test_refuses_unknown_spacing_and_bars_off_the_grid(tmp_path):
    assert "most often 420 s apart, which is no known timeframe" in refused(
        write(tmp_path / "BTCUSDT.csv", hourly(5, step=420)), min_rows=2
    )
    rows = hourly(6)
    rows.insert(3, "1704076200,1,2,0.5,1.5,3")  # 02:30, between two 1h bars
    assert "bars closer than one 1h apart at 2024-01-01 02:30" in refused(write(tmp_path / "BTCUSDT.csv", rows), min_rows=2)


def test_refuses_funding_rate_files_and_files_with_no_usable_row(tmp_path):
    assert "funding_rate candles are not prices" in refused(write(tmp_path / "BTC_USDT_USDT-8h-funding_rate.csv", hourly(3)))
    nulls = write(tmp_path / "BTCUSDT.csv", ["1704067200,NULL,NULL,NULL,NULL,NULL", "1704070800,0,0,0,0,0"])
    assert "none of the 2 row(s) is a usable candle" in refused(nulls)


# --- rules that keep going -------------------------------------------------------------------------------------------


def test_impossible_candles_are_dropped_and_counted_by_reason(tmp_path):
    rows = hourly(12)
    rows[1] = "1704070800,-1,2,0.5,1.5,3"  # non-positive price
    rows[2] = "1704074400,1,2,3,1.5,3"  # high below low
    rows[3] = "1704078000,2.5,2,1,1.5,3"  # open above high
    rows[4] = "1704081600,1.5,2,1,0.5,3"  # close below low
    rows[5] = "1704085200,1,2,0.5,1.5,-3"  # negative volume
    rows[6] = "1704088800,1,inf,0.5,1.5,3"  # non-finite
    report = import_file(write(tmp_path / "BTCUSDT.csv", rows), min_rows=2, save=False).report
    assert report["dropped"]["impossible"] == 6 and report["rows_kept"] == 6
    assert report["impossible_detail"] == {
        "non_finite": 1, "non_positive_price": 1, "high_below_low": 1, "open_outside_range": 1,
        "close_outside_range": 1, "negative_volume": 1,
    }  # fmt: skip
    assert report["gaps"] == {"count": 1, "missing_bars": 6, "longest": {
        "missing_bars": 6, "after": "2024-01-01T00:00:00+00:00", "before": "2024-01-01T07:00:00+00:00"}}  # fmt: skip


def test_still_forming_newest_candle_is_judged_from_the_given_import_moment(tmp_path):
    path = write(tmp_path / "BTCUSDT.csv", hourly(6))  # last candle opens 2024-01-01 05:00
    inside = import_file(path, min_rows=2, save=False, now=pd.Timestamp("2024-01-01 05:59:59", tz="UTC")).report
    assert inside["dropped"]["still_forming"] == 1 and inside["rows_kept"] == 5
    assert inside["still_forming"]["open_time"] == "2024-01-01T05:00:00+00:00"
    closed = import_file(path, min_rows=2, save=False, now=pd.Timestamp("2024-01-01 06:00", tz="UTC")).report
    assert closed["still_forming"] is None and closed["rows_kept"] == 6
    default_clock = import_file(path, min_rows=2, save=False).report  # 2024 candles are long closed
    assert default_clock["still_forming"] is None


def test_given_symbol_overrides_the_file_and_says_so():
    result = import_file(FIXTURES / "cryptodatadownload_Gemini_BTCUSD_1h.csv", symbol="BTC/USDT", min_rows=2, save=False)
    assert (result.dataset_id, result.report["symbol_from"]) == ("BTCUSDT-1h", "given")
    assert "symbol BTCUSDT as given (the file says BTCUSD)" in result.report["notes"]


def test_name_timeframe_that_disagrees_with_the_spacing_is_a_note(tmp_path):
    result = import_file(write(tmp_path / "BTCUSDT-5m-2024-01.csv", hourly(3, step=60)), min_rows=2, save=False)
    assert result.timeframe == "1m"
    assert "the file name says 5m but the candles are 1m apart; used 1m" in result.report["notes"]


def test_report_counts_add_up_on_every_fixture():
    for path in sorted(FIXTURES.glob("*")) + sorted((SHARED_DATA / "formats").glob("*.*")):
        if path.name.startswith("no_") or path.suffix == ".md":
            continue
        report = import_file(path, min_rows=2, save=False).report
        assert report["rows_read"] == report["rows_kept"] + sum(report["dropped"].values()), path.name
        assert sum(report["units"].values()) <= report["rows_read"], path.name


# --- property: shuffled, duplicated, partly dropped clean series come back exactly -------------------------------------

UNIT_FACTORS = {"s": 1, "ms": 1000, "us": 1_000_000}


@st.composite
def messy_series(draw):
    n = draw(st.integers(12, 60))
    step = draw(st.sampled_from([60, 3600, 86400]))
    start = draw(st.integers(1_500_000_000, 1_700_000_000)) // step * step
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    close = np.round(1000 * np.exp(np.cumsum(rng.normal(0, 0.01, n))), 2)
    open_ = np.concatenate([[1000.0], close[:-1]])
    spread = np.round(np.abs(rng.normal(0, 2, n)) + 0.01, 2)
    clean = pd.DataFrame({
        "open_time": pd.to_datetime(start + step * np.arange(n), unit="s", utc=True).as_unit("ns"),
        "open": open_, "high": np.maximum(open_, close) + spread, "low": np.minimum(open_, close) - spread,
        "close": close, "volume": np.round(rng.uniform(1, 100, n), 3),
    })  # fmt: skip
    dropped = draw(st.sets(st.integers(0, n - 1), max_size=n // 4))
    identical = draw(st.lists(st.integers(0, n - 1), max_size=5))
    conflicting = draw(st.lists(st.integers(0, n - 1), max_size=5, unique=True))
    units = draw(st.lists(st.sampled_from(list(UNIT_FACTORS)), min_size=n, max_size=n))
    return clean, step, sorted(dropped), identical, conflicting, units, seed


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=messy_series())
def test_import_recovers_a_clean_series_from_a_messy_file(tmp_path, case):
    clean, step, dropped, identical, conflicting, units, seed = case
    keep = clean.drop(index=dropped)
    rows = keep.assign(unit=[units[i] for i in keep.index])
    # Identical copies, and conflicting copies of a kept row with less volume (a snapshot while it was forming).
    copies = rows.loc[[i for i in identical if i in rows.index]]
    snapshots = rows.loc[[i for i in conflicting if i in rows.index]].copy()
    snapshots["volume"] = snapshots["volume"] / 2
    snapshots["close"] = snapshots["open"]
    messy = pd.concat([rows, copies, snapshots]).sample(frac=1.0, random_state=seed % 2**31)
    epoch = messy["open_time"].astype("int64") // 10**9 * messy["unit"].map(UNIT_FACTORS)
    path = tmp_path / "BTCUSDT-messy.csv"
    messy.assign(timestamp=epoch)[["timestamp", "open", "high", "low", "close", "volume"]].to_csv(path, index=False)

    result = import_file(path, min_rows=2, save=False)
    pd.testing.assert_frame_equal(result.candles, keep.reset_index(drop=True))
    report = result.report
    expected_timeframe = {60: "1m", 3600: "1h", 86400: "1d"}[step]
    assert result.timeframe == expected_timeframe
    assert report["dropped"]["duplicate_identical"] == len(copies)
    assert report["dropped"]["duplicate_conflicting"] == len(snapshots)
    assert report["rows_read"] == len(messy) and report["rows_kept"] == len(keep)
    gap_after = np.diff(keep.index.to_numpy()) - 1
    assert report["gaps"]["count"] == int((gap_after > 0).sum())
    assert report["gaps"]["missing_bars"] == int(gap_after.sum())
    assert sum(report["units"].values()) == len(messy)


def test_too_few_rows_for_the_default_training_run_are_imported_with_a_note(tmp_path):
    few = import_file(write(tmp_path / "BTCUSDT-1h.csv", hourly(300)), save=False).report["notes"]
    (note,) = [n for n in few if "Too few samples" in n]
    assert note.startswith("300 candles give ") and "with the default lookback 64 and horizon 1. " in note
    assert "for 5-fold walk-forward CV" in note and "use at most 2 CV folds" in note
    enough = import_file(write(tmp_path / "BTCUSDT-1h.csv", hourly(1000)), save=False).report["notes"]
    assert not [n for n in enough if "samples" in n]
    tiny = import_file(write(tmp_path / "BTCUSDT-1h.csv", hourly(MIN_ROWS)), save=False).report["notes"]
    assert [n for n in tiny if n.startswith(f"{MIN_ROWS} candles give 1 samples") and "use 1 CV fold" not in n]


# --- each rule as its own step (trainer.data.import_rules), on small tables --------------------------------------------


def table(bars: list[tuple], times: list[str] | None = None, rows: list[int] | None = None) -> pd.DataFrame:
    """A working table from (open, high, low, close, volume) tuples, hourly from 2024-01-01 unless ``times``."""
    times = times or [f"2024-01-01 {h:02d}:00" for h in range(len(bars))]
    frame = pd.DataFrame(bars, columns=["open", "high", "low", "close", "volume"], dtype="float64")
    frame.insert(0, "open_time", pd.to_datetime(times, utc=True).as_unit("ns"))
    frame.insert(0, "row", rows if rows is not None else list(range(len(bars))))
    return frame


def raw_candles(frame: pd.DataFrame | None = None, **kwargs) -> RawCandles:
    frame = frame if frame is not None else pd.DataFrame({"time": [], "open": [], "high": [], "low": [], "close": [], "volume": []})
    return RawCandles(kwargs.pop("format", "generic-csv"), frame, **kwargs)


BAR = (100.0, 102.0, 99.0, 101.0, 10.0)


def test_step_check_candle_type_refuses_non_prices_and_notes_the_others():
    for kind in ("funding_rate", "premiumIndex"):
        with pytest.raises(CandleImportError, match=f"f.csv: {kind} candles are not prices"):
            rules.check_candle_type(raw_candles(candle_type=kind), Path("f.csv"), [])
    notes: list[str] = []
    rules.check_candle_type(raw_candles(candle_type="mark"), Path("f.csv"), notes)
    rules.check_candle_type(raw_candles(), Path("f.csv"), notes)
    assert notes == ["mark candles (from the file name)"]


def test_step_resolve_symbol_from_the_file_its_name_or_the_caller():
    in_file = raw_candles(pd.DataFrame({"symbol": ["BTC/USDT", "BTCUSDT", None]}), symbol_from_name="ETHUSDT")
    notes: list[str] = []
    assert rules.resolve_symbol(in_file, None, Path("f.csv"), notes) == ("BTCUSDT", "file")
    assert rules.resolve_symbol(raw_candles(symbol_from_name="ethusdt"), None, Path("f.csv"), notes) == ("ETHUSDT", "file name")
    assert rules.resolve_symbol(in_file, "sol-usdt", Path("f.csv"), notes) == ("SOLUSDT", "given")
    assert notes == ["symbol SOLUSDT as given (the file says BTCUSDT)"]
    with pytest.raises(CandleImportError, match="mixed symbols in one file: BTCUSDT \\(2 rows\\), ETHUSDT \\(1 rows\\)"):
        rules.resolve_symbol(raw_candles(pd.DataFrame({"symbol": ["BTCUSDT", "ETHUSDT", "BTCUSDT"]})), None, Path("f.csv"), [])


def test_step_times_to_utc_decides_the_unit_per_row_and_reads_text():
    second = 1704067200
    raw = pd.Series([second, second * 1000 + 1, second * 10**6 + 2, second * 10**9 + 3], dtype="int64")
    notes: list[str] = []
    times, units = rules.times_to_utc(raw, notes)
    base = pd.Timestamp("2024-01-01", tz="UTC")
    assert list(times) == [base, base + pd.Timedelta(1, "ms"), base + pd.Timedelta(2, "us"), base + pd.Timedelta(3, "ns")]
    assert units == {"s": 1, "ms": 1, "us": 1, "ns": 1} and notes == []
    beyond, units = rules.times_to_utc(pd.Series([1e19, np.nan]), notes)
    assert beyond.isna().all() and units == {}  # past datetime64[ns] (year 2262) or missing: unreadable, no unit
    floats, units = rules.times_to_utc(pd.Series([second + 0.0004, second + 0.0006]), notes)
    assert list(floats) == [base, base + pd.Timedelta(1, "ms")] and units == {"s": 2}  # rounded to the millisecond
    text, units = rules.times_to_utc(pd.Series(["2024-01-01T01:00:00Z", "2024-01-01 02:00", "2020-04-14 11-AM", "soon"]), notes)
    assert list(text[:3]) == [base + pd.Timedelta(1, "h"), base + pd.Timedelta(2, "h"), pd.Timestamp("2020-04-14 11:00", tz="UTC")]
    assert pd.isna(text[3]) and units == {"text": 1, "text-naive": 2}
    assert notes == ["2 time(s) written without a time zone; read as UTC"]
    naive, units = rules.times_to_utc(pd.Series(pd.to_datetime(["2024-01-01"])), notes)
    assert naive[0] == base and units == {"datetime-naive": 1} and notes[-1] == "the time column has no time zone; read as UTC"


def test_step_working_table_numbers_written_as_text():
    raw = raw_candles(pd.DataFrame({"time": [1704067200, 1704070800], "open": [" 1.5", "x"], "high": ["2", "2"],
                                    "low": ["1", "1"], "close": ["1.5", "1.5"], "volume": [3, 4]}))  # fmt: skip
    frame, units = rules.working_table(raw, [])
    assert list(frame.columns) == ["row", "open_time", "open", "high", "low", "close", "volume"]
    assert frame["open"].iloc[0] == 1.5 and np.isnan(frame["open"].iloc[1]) and units == {"s": 2}
    assert all(str(frame[c].dtype) == "float64" for c in ("open", "high", "low", "close", "volume"))


def test_step_drop_null_counts_and_names_the_lines():
    frame = table([BAR, (np.nan, *BAR[1:]), BAR, (*BAR[:4], np.nan)])
    notes: list[str] = []
    kept, count = rules.drop_null(frame, 2, notes)
    assert count == 2 and list(kept["row"]) == [0, 2]
    assert notes == ["dropped 2 row(s) with missing or unreadable values (lines 3, 5)"]
    assert rules.drop_null(kept, None, notes)[1] == 0 and len(notes) == 1


def test_step_drop_impossible_counts_each_row_under_its_first_reason():
    frame = table([BAR, (-1.0, 2.0, 3.0, 1.0, 1.0), (1.0, 2.0, 3.0, 1.0, -1.0), (1.0, 2.0, 0.5, 2.5, 1.0)])
    notes: list[str] = []
    kept, count, detail = rules.drop_impossible(frame, None, notes)
    assert count == 3 and list(kept["row"]) == [0]
    assert detail == {"non_finite": 0, "non_positive_price": 1, "high_below_low": 1, "open_outside_range": 0,
                      "close_outside_range": 1, "negative_volume": 0}  # fmt: skip
    assert notes == ["dropped 3 impossible candle(s): a price at or below 0: 1 candle; high below low: 1 candle; close "
                     "outside the bar's low–high range: 1 candle (rows 2, 3, 4)"]


def test_step_drop_duplicates_keeps_identical_once_and_the_largest_volume():
    times = ["2024-01-01 01:00", "2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 00:00", "2024-01-01 02:00",
             "2024-01-01 02:00"]  # fmt: skip
    bars = [BAR, BAR, (100.0, 102.0, 99.0, 100.5, 4.0), BAR, (*BAR[:4], 7.0), (100.0, 102.0, 99.0, 100.0, 7.0)]
    notes: list[str] = []
    kept, identical, conflicting = rules.drop_duplicates(table(bars, times), 2, notes)
    assert (identical, conflicting) == (1, 2)
    assert list(kept["row"]) == [3, 0, 5] and list(kept.index) == [0, 1, 2]  # 00:00 last copy; 01:00 volume 10; 02:00 the later row
    assert notes == ["2 row(s) repeated an open time with other values; kept the one with the largest volume (lines 4, 6)"]


def test_step_file_order_from_the_file_rows():
    assert rules.file_order(table([BAR] * 3, rows=[0, 1, 2])) == "oldest first"
    assert rules.file_order(table([BAR] * 3, rows=[2, 1, 0])) == "newest first"
    assert rules.file_order(table([BAR] * 3, rows=[1, 0, 2])) == "unsorted"
    assert rules.file_order(table([BAR], rows=[0])) == "oldest first"


def test_step_infer_timeframe_takes_the_most_common_spacing():
    times = pd.Series(pd.to_datetime(["2024-01-01 00:00", "2024-01-01 00:15", "2024-01-01 00:30", "2024-01-01 02:00"], utc=True))
    notes: list[str] = []
    assert rules.infer_timeframe(times, None, raw_candles(timeframe_from_name="1h"), Path("f.csv"), notes) == "15m"
    assert notes == ["the file name says 1h but the candles are 15m apart; used 15m"]
    with pytest.raises(CandleImportError) as coarser:
        rules.infer_timeframe(times, "1h", raw_candles(), Path("f.csv"), [])
    assert coarser.value.with_option() == ("f.csv: the candles are 15m apart but the timeframe given is 1h (a job "
                                           "asking for 1h resamples the 15m dataset); give the timeframe 15m with "
                                           "--timeframe")
    with pytest.raises(CandleImportError) as finer:  # a fresh-user trial was told to resample days into hours
        rules.infer_timeframe(times, "5m", raw_candles(), Path("f.csv"), [])
    assert str(finer.value).endswith("given is 5m (5m candles cannot be built from 15m ones); give the timeframe 15m")


def test_step_drop_still_forming_judges_the_newest_candle():
    frame = table([BAR, BAR], rows=[1, 0])  # newest is the file's top row, as CryptoDataDownload writes it
    (cdd_format,) = [spec for spec in formats.FORMATS if spec.name == "cryptodatadownload"]
    cdd = raw_candles(format="cryptodatadownload", top_row_forming=cdd_format.top_row_forming)
    kept, forming = rules.drop_still_forming(frame, cdd, "1h", pd.Timestamp("2030-01-01"), [])
    assert len(kept) == 1 and forming["open_time"] == "2024-01-01T01:00:00+00:00"
    assert forming["reason"].startswith("CryptoDataDownload's top row")
    notes: list[str] = []
    banner = raw_candles(format="cryptodatadownload", top_row_forming="open on top",
                         created_at=pd.Timestamp("2024-01-01 02:00", tz="UTC"))
    kept, forming = rules.drop_still_forming(frame, banner, "1h", pd.Timestamp("2030-01-01"), notes)
    assert len(kept) == 2 and forming is None
    assert notes == ["kept the top row: the banner's creation time 2024-01-01T02:00:00+00:00 is after its close"]
    assert rules.drop_still_forming(frame, raw_candles(), "1h", pd.Timestamp("2030-01-01"), [])[1] is None  # other formats
    kept, forming = rules.drop_still_forming(frame, raw_candles(), "1h", pd.Timestamp("2024-01-01 01:59"), [])  # naive: UTC
    assert len(kept) == 1 and forming["reason"] == "the candle had not closed at the import time 2024-01-01T01:59:00+00:00"


def test_step_validated_counts_gaps_and_enough_bars_refuses_too_few_rows():
    frame = table([BAR] * 4, ["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 04:00", "2024-01-01 05:00"])
    candles, gaps = rules.validated(frame, "1h", Path("f.csv"))
    assert list(candles.columns) == ["open_time", "open", "high", "low", "close", "volume"]
    assert gaps == {"count": 1, "missing_bars": 2, "longest": {
        "missing_bars": 2, "after": "2024-01-01T01:00:00+00:00", "before": "2024-01-01T04:00:00+00:00"}}  # fmt: skip
    rules.enough_bars(candles, "1h", Path("f.csv"), "4 rows", 2, "why")
    with pytest.raises(CandleImportError, match="f.csv: only 4 of 9; five are needed"):
        rules.enough_bars(candles, "1h", Path("f.csv"), "4 of 9", 5, "five are needed")
    with pytest.raises(CandleImportError, match="f.csv: 4 of 9, but gaps leave at most 2 in a row; three are needed"):
        rules.enough_bars(candles, "1h", Path("f.csv"), "4 of 9", 3, "three are needed")


def test_step_zero_volume_flat_counts_runs_of_consecutive_bars():
    flat = (5.0, 5.0, 5.0, 5.0, 0.0)
    hours = [0, 1, 2, 3, 5, 6]
    candles = table([flat, flat, BAR, flat, flat, flat], [f"2024-01-01 {h:02d}:00" for h in hours]).drop(columns="row")
    notes: list[str] = []
    out = rules.zero_volume_flat(candles, "1h", notes)
    assert out == {"rows": 5, "runs": 3, "longest": {"bars": 2, "first": "2024-01-01T00:00:00+00:00", "last": "2024-01-01T01:00:00+00:00"}}
    assert notes == ["5 zero-volume flat candle(s) in 3 run(s) kept and flagged (outage or no-trade fill; longest 2 bar(s) "
                     "from 2024-01-01T00:00:00+00:00)"]  # fmt: skip
    assert rules.zero_volume_flat(candles.iloc[2:3], "1h", notes) == {"rows": 0, "runs": 0, "longest": None}


def test_step_training_shortfall_says_what_the_defaults_need():
    hours = pd.date_range("2024-01-01", periods=MIN_ROWS - 1, freq="h", tz="UTC").as_unit("ns")
    candles = table([BAR] * (MIN_ROWS - 1), [str(t) for t in hours]).drop(columns="row")
    notes: list[str] = []
    reason = rules.training_shortfall(candles, "1h", notes)
    assert reason.startswith(f"too few for training with the defaults: no usable samples: one needs {MIN_ROWS} "
                             "consecutive bars") and notes == [reason]
    hours = pd.date_range("2024-01-01", periods=1000, freq="h", tz="UTC").as_unit("ns")
    many = table([BAR] * 1000, [str(t) for t in hours]).drop(columns="row")
    assert rules.training_shortfall(many, "1h", notes) is None and len(notes) == 1
