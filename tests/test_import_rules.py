"""The importer's resolution rules and refusals (trainer.data.importer's module doc), one by one, plus a property test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SHARED_DATA
from trainer.data.importer import MIN_ROWS, CandleImportError, import_file
from trainer.paths import datasets_dir

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
    assert "\n" not in message and message.startswith(path.name + ":")
    assert list(datasets_dir().iterdir()) == []
    return message


# --- refusals: one line, nothing written ---------------------------------------------------------------------------


def test_refuses_missing_empty_binary_and_header_only_files(tmp_path):
    assert "no such file" in refused(tmp_path / "nothing.csv")
    (tmp_path / "folder").mkdir()
    assert refused(tmp_path / "folder") == "folder: a directory, not a file"
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
    assert message.startswith("passwd: not a candle table: none of its 1 column(s) is named like a time, price")
    assert "root" not in message and "daemon" not in message


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
    message = refused(write(tmp_path / "BTCUSDT-1h.csv", hourly(MIN_ROWS - 1)))
    assert f"only {MIN_ROWS - 1} usable row(s) of {MIN_ROWS - 1}; one training window needs at least {MIN_ROWS}" in message
    assert import_file(write(tmp_path / "BTCUSDT-1h.csv", hourly(MIN_ROWS))).report["rows_kept"] == MIN_ROWS


def test_refuses_a_file_without_a_symbol_unless_one_is_given(tmp_path):
    path = write(tmp_path / "candles.csv", hourly(3))
    assert refused(path, min_rows=2) == "candles.csv: no symbol in the file or its name; give the symbol (e.g. BTCUSDT)"
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
    assert "for 5-fold walk-forward CV" in note and "use 2 CV folds or fewer" in note
    enough = import_file(write(tmp_path / "BTCUSDT-1h.csv", hourly(1000)), save=False).report["notes"]
    assert not [n for n in enough if "samples" in n]
    tiny = import_file(write(tmp_path / "BTCUSDT-1h.csv", hourly(MIN_ROWS)), save=False).report["notes"]
    assert [n for n in tiny if n.startswith("too few for training with the defaults: no usable samples")]
