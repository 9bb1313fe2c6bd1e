"""Every supported file format, from the real samples in ../shared/data and our own fixtures, with exact results."""

from __future__ import annotations

import gzip
import json
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from conftest import SHARED_DATA
from trainer.data import formats
from trainer.data.importer import import_file
from trainer.data.readers import read_candles

FIXTURES = Path(__file__).parent / "fixtures" / "formats"
SAMPLES = SHARED_DATA / "formats"
OHLCV = SHARED_DATA / "ohlcv"


def clean(path: Path, **kwargs):
    """Import without writing the store, accepting short samples (the row minimum has its own test)."""
    return import_file(path, min_rows=2, save=False, **kwargs)


def t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def no_drops(report: dict) -> bool:
    return sum(report["dropped"].values()) == 0


def test_binance_spot_sample_without_header_in_ms():
    result = clean(SAMPLES / "binance_spot_klines_ms_BTCUSDT-5m-2024-12.head.csv")
    r = result.report
    assert (r["format"], result.symbol, result.timeframe) == ("binance-klines", "BTCUSDT", "5m")
    assert (r["rows_read"], r["rows_kept"], r["units"]) == (5, 5, {"ms": 5})
    assert r["range"] == {"start": "2024-12-01T00:00:00+00:00", "end": "2024-12-01T00:20:00+00:00"}
    first = result.candles.iloc[0]
    assert (first["open"], first["high"], first["low"], first["close"], first["volume"]) == (
        96407.99, 96524.0, 96350.13, 96508.29, 35.87706
    )
    assert list(result.candles.columns) == ["open_time", "open", "high", "low", "close", "volume"]
    assert str(result.candles["open_time"].dtype) == "datetime64[ns, UTC]"


def test_binance_futures_sample_with_header():
    result = clean(SAMPLES / "binance_futures_um_klines_BTCUSDT-1m-2024-01.head.csv")
    r = result.report
    assert (r["format"], result.symbol, result.timeframe, r["rows_kept"]) == ("binance-klines", "BTCUSDT", "1m", 5)
    assert result.candles["open_time"].iloc[-1] == t("2024-01-01 00:04")
    assert result.candles["volume"].iloc[0] == 289.641


def test_binance_spot_months_across_the_microsecond_switch():
    """Dec 2024 (ms) and Jan 2025 (µs) concatenated: the unit is decided per row."""
    result = clean(FIXTURES / "binance_spot_klines_BTCUSDT-1h-2024-12_2025-01.csv")
    r = result.report
    assert r["units"] == {"ms": 3, "us": 3}
    assert list(result.candles["open_time"]) == list(pd.date_range("2024-12-31 21:00", periods=6, freq="h", tz="UTC"))
    assert r["gaps"]["count"] == 0 and no_drops(r)


def test_binance_zip_as_downloaded_from_data_binance_vision(tmp_path):
    archive = tmp_path / "BTCUSDT-1h-2025-01.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(FIXTURES / "binance_spot_klines_BTCUSDT-1h-2024-12_2025-01.csv", "BTCUSDT-1h-2025-01.csv")
    result = clean(archive)
    assert (result.report["format"], result.symbol, result.report["rows_kept"]) == ("binance-klines", "BTCUSDT", 6)


def test_cryptodatadownload_sample_newest_first_with_forming_top_row():
    result = clean(SAMPLES / "cryptodatadownload_Binance_BTCUSDT_1h.head.csv")
    r = result.report
    assert (r["format"], result.symbol, r["symbol_from"], r["order"]) == ("cryptodatadownload", "BTCUSDT", "file", "newest first")
    assert (r["rows_read"], r["rows_kept"], r["dropped"]["still_forming"]) == (5, 4, 1)
    assert r["still_forming"]["open_time"] == "2020-12-30T00:00:00+00:00"
    assert r["range"] == {"start": "2020-12-29T20:00:00+00:00", "end": "2020-12-29T23:00:00+00:00"}
    assert result.candles["open_time"].is_monotonic_increasing
    assert result.candles["volume"].iloc[-1] == 3514.18197  # "Volume BTC", the base asset, not "Volume USDT"


def test_cryptodatadownload_every_quirk():
    """Banner, newest first, ms/s/float-s mixed, NULL, conflicting and identical duplicates, high < low, flat fill, gap."""
    result = clean(FIXTURES / "cryptodatadownload_Binance_ETHUSDT_1h.csv")
    r = result.report
    assert result.dataset_id == "ETHUSDT-1h"
    assert r["rows_read"] == 14 and r["rows_kept"] == 9
    assert r["dropped"] == {"null": 1, "impossible": 1, "duplicate_identical": 1, "duplicate_conflicting": 1, "still_forming": 1}
    assert r["impossible_detail"]["high_below_low"] == 1
    assert r["units"] == {"ms": 3, "s": 11}
    hours = [ts.hour for ts in result.candles["open_time"]]
    assert hours == [0, 3, 4, 5, 6, 8, 9, 10, 11]
    # the conflicting 06:00 rows: the one with the larger volume (the finished candle) is kept
    six = result.candles.set_index("open_time").loc[t("2021-03-01 06:00")]
    assert (six["close"], six["volume"]) == (1541.0, 19120.6)
    assert r["gaps"] == {
        "count": 2, "missing_bars": 3,
        "longest": {"missing_bars": 2, "after": "2021-03-01T00:00:00+00:00", "before": "2021-03-01T03:00:00+00:00"},
    }  # fmt: skip
    assert r["zero_volume_flat"] == {
        "rows": 2, "runs": 1, "longest": {"bars": 2, "first": "2021-03-01T03:00:00+00:00", "last": "2021-03-01T04:00:00+00:00"},
    }  # fmt: skip
    assert any("line 8" in note for note in r["notes"])  # the NULL close is on line 8 of the file


def test_cryptodatadownload_created_on_banner_keeps_a_closed_top_row():
    """`Unix Timestamp,...,Volume` header; the banner time (13:05) is after the top row's close (13:00)."""
    result = clean(FIXTURES / "cryptodatadownload_Gemini_BTCUSD_1h.csv")
    r = result.report
    assert (result.symbol, r["rows_kept"], r["still_forming"], r["units"]) == ("BTCUSD", 6, None, {"ms": 2, "s": 4})
    assert result.candles["open_time"].iloc[-1] == t("2021-03-01 12:00")


def test_cryptodatadownload_without_banner_drops_the_top_row(tmp_path):
    lines = (FIXTURES / "cryptodatadownload_Gemini_BTCUSD_1h.csv").read_text().splitlines()[1:]
    path = tmp_path / "Gemini_BTCUSD_1h.csv"
    path.write_text("\n".join(lines) + "\n")
    result = clean(path)
    assert result.report["format"] == "cryptodatadownload"
    assert (result.report["rows_kept"], result.report["dropped"]["still_forming"]) == (5, 1)
    assert result.candles["open_time"].iloc[-1] == t("2021-03-01 11:00")


def test_freqtrade_json_sample():
    result = clean(SAMPLES / "freqtrade_BTC_USDT-1h.excerpt.json")
    assert (result.report["format"], result.symbol, result.timeframe, result.report["rows_kept"]) == (
        "freqtrade-json", "BTCUSDT", "1h", 5
    )  # fmt: skip
    assert result.candles["close"].tolist() == [19565.47, 19605.75, 19680.95, 19419.74, 19354.31]


def test_freqtrade_jsongz_sample():
    result = clean(SAMPLES / "freqtrade_BTC_USDT-1d.json.gz")
    r = result.report
    assert (r["format"], result.timeframe, r["rows_kept"]) == ("freqtrade-jsongz", "1d", 217)
    assert r["range"] == {"start": "2022-01-01T00:00:00+00:00", "end": "2022-08-05T00:00:00+00:00"}


def test_freqtrade_feather_sample_and_the_same_as_parquet(tmp_path):
    feather = clean(SAMPLES / "freqtrade_BTC_USDT-1d.feather")
    assert (feather.report["format"], feather.symbol, feather.report["rows_kept"]) == ("freqtrade-feather", "BTCUSDT", 488)
    assert feather.report["range"] == {"start": "2024-10-01T00:00:00+00:00", "end": "2026-01-31T00:00:00+00:00"}
    parquet_path = tmp_path / "BTC_USDT-1d.parquet"
    pd.read_feather(SAMPLES / "freqtrade_BTC_USDT-1d.feather").to_parquet(parquet_path)
    parquet = clean(parquet_path)
    assert parquet.report["format"] == "freqtrade-parquet"
    pd.testing.assert_frame_equal(parquet.candles, feather.candles)


def test_freqtrade_futures_file_name():
    result = clean(FIXTURES / "BTC_USDT_USDT-1h-futures.json")
    assert (result.dataset_id, result.report["rows_kept"]) == ("BTCUSDT-1h", 4)
    assert "futures candles (from the file name)" in result.report["notes"]


def test_kaggle_bitstamp_sample_float_seconds_and_flat_minutes():
    result = clean(SAMPLES / "kaggle_bitstamp_btcusd_1-min_data.head.csv")
    r = result.report
    assert (r["format"], result.symbol, result.timeframe, r["units"]) == ("kaggle-bitstamp", "BTCUSD", "1m", {"s": 5})
    assert r["range"]["start"] == "2012-01-01T10:01:00+00:00"
    assert r["zero_volume_flat"]["rows"] == 5 and r["rows_kept"] == 5  # kept, flagged


def test_kaggle_bitstamp_older_version_with_nan_minutes():
    result = clean(FIXTURES / "kaggle_bitstamp_btcusd_1-min_data_2014.csv")
    r = result.report
    assert (r["rows_read"], r["rows_kept"], r["dropped"]["null"]) == (10, 7, 3)
    assert r["gaps"]["count"] == 2 and r["gaps"]["missing_bars"] == 3
    assert r["zero_volume_flat"]["rows"] == 2 and r["zero_volume_flat"]["runs"] == 2
    assert result.candles["volume"].iloc[-1] == 2.75  # Volume_(BTC), not Volume_(Currency)


def test_yahoo_finance_sample_with_null_rows_and_no_zone():
    result = clean(SAMPLES / "yahoo_finance_BTC-USD.csv")
    r = result.report
    assert (r["format"], result.symbol, result.timeframe) == ("yahoo-finance", "BTCUSD", "1d")
    assert (r["rows_read"], r["rows_kept"], r["dropped"]["null"]) == (366, 363, 3)
    assert r["units"] == {"text-naive": 366}
    assert r["gaps"] == {
        "count": 2, "missing_bars": 3,
        "longest": {"missing_bars": 2, "after": "2020-10-11T00:00:00+00:00", "before": "2020-10-14T00:00:00+00:00"},
    }  # fmt: skip
    assert any("read as UTC" in note for note in r["notes"])
    assert any("lines 161, 164, 165" in note for note in r["notes"])


def test_pandas_csv_with_an_empty_first_header_cell():
    result = clean(FIXTURES / "pandas_to_csv_BTCUSDT_4h.csv")
    assert (result.report["format"], result.dataset_id, result.report["rows_kept"]) == ("pandas-csv", "BTCUSDT-4h", 6)
    assert result.candles["open_time"].iloc[1] == t("2024-01-01 04:00")


def test_pandas_csv_with_an_integer_index_and_a_date_column(tmp_path):
    path = tmp_path / "ETHUSDT_1h.csv"
    frame = pd.DataFrame({
        "date": pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC"),
        "open": [1.0, 2.0, 3.0, 4.0], "high": [2.5, 3.5, 4.5, 5.5], "low": [0.5, 1.5, 2.5, 3.5],
        "close": [2.0, 3.0, 4.0, 5.0], "volume": [10.0, 11.0, 12.0, 13.0],
    })  # fmt: skip
    frame.to_csv(path)
    result = clean(path)
    assert (result.report["format"], result.dataset_id, result.report["rows_kept"]) == ("pandas-csv", "ETHUSDT-1h", 4)
    assert result.candles["close"].tolist() == [2.0, 3.0, 4.0, 5.0]


def test_generic_csv_iso_strings_with_and_without_zone():
    result = clean(FIXTURES / "generic_iso_ETH-USD_1d.csv")
    r = result.report
    assert (r["format"], result.dataset_id) == ("generic-csv", "ETHUSD-1d")
    assert r["units"] == {"text": 3, "text-naive": 2}
    assert list(result.candles["open_time"]) == list(pd.date_range("2024-03-01", periods=5, freq="D", tz="UTC"))
    assert "2 time(s) written without a time zone; read as UTC" in r["notes"]


def test_generic_json_records_with_epoch_seconds():
    result = clean(FIXTURES / "generic_records_SOL_USDT-15m.json")
    assert (result.report["format"], result.dataset_id, result.report["units"]) == ("generic-json", "SOLUSDT-15m", {"s": 4, "ms": 1})
    assert list(result.candles["open_time"]) == list(pd.date_range("2024-01-01", periods=5, freq="15min", tz="UTC"))


def test_gzip_csv_and_headerless_semicolon_csv(tmp_path):
    gz = tmp_path / "BTCUSDT-1h.csv.gz"
    with open(FIXTURES / "binance_spot_klines_BTCUSDT-1h-2024-12_2025-01.csv", "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert clean(gz).report["rows_kept"] == 6
    semi = tmp_path / "export.csv"
    semi.write_text("1704067200;1.0;2.0;0.5;1.5;3\n1704070800;1.5;2.0;1.0;1.8;4\n1704074400;1.8;2.2;1.7;2.0;5\n")
    result = clean(semi, symbol="btc/usdt")
    assert (result.report["format"], result.dataset_id, result.report["rows_kept"]) == ("headerless-csv", "BTCUSDT-1h", 3)


DECIMAL_COMMA_NOTE = "numbers written with a decimal comma (';'-separated; 10,5 read as 10.5)"


def test_semicolon_csv_with_decimal_commas(tmp_path):
    """A European spreadsheet's export: ``;`` between fields, ``,`` in the numbers (it was split on the commas and
    refused as 'not a candle table'); with a header and without one."""
    rows = ["2020-09-20;10,5;11,2;9,8;10,1;100,0", "2020-09-21;10,1;10,9;9,5;10,7;120,5",
            "2020-09-22;10,7;12;10,6;11,9;98"]  # whole numbers too (12, 98)
    named = tmp_path / "BTCUSDT-1d.csv"
    named.write_text("date;open;high;low;close;volume\n" + "\n".join(rows) + "\n")
    result = clean(named)
    r = result.report
    assert (r["format"], result.dataset_id, r["rows_kept"]) == ("generic-csv", "BTCUSDT-1d", 3) and no_drops(r)
    assert DECIMAL_COMMA_NOTE in r["notes"]
    assert result.candles[["open", "high", "low", "close", "volume"]].values.tolist() == [
        [10.5, 11.2, 9.8, 10.1, 100.0], [10.1, 10.9, 9.5, 10.7, 120.5], [10.7, 12.0, 10.6, 11.9, 98.0]]
    assert list(result.candles["open_time"]) == list(pd.date_range("2020-09-20", periods=3, freq="D", tz="UTC"))
    headerless = tmp_path / "export.csv"
    headerless.write_text("\n".join(rows) + "\n")
    result = clean(headerless, symbol="BTCUSDT")
    assert (result.report["format"], result.report["rows_kept"]) == ("headerless-csv", 3)
    assert result.candles["volume"].tolist() == [100.0, 120.5, 98.0]

    dots = tmp_path / "ETHUSDT-1d.csv"  # a semicolon file with decimal points is read as before, with no note
    dots.write_text("date;open;high;low;close;volume\n" + "\n".join(row.replace(",", ".") for row in rows) + "\n")
    result = clean(dots)
    assert result.candles["close"].tolist() == [10.1, 10.7, 11.9] and DECIMAL_COMMA_NOTE not in result.report["notes"]


@pytest.mark.parametrize("damage", ["n/v", None], ids=["a-cell-that-is-no-number", "a-row-cut-short"])
def test_decimal_commas_are_read_past_a_damaged_row(tmp_path, damage):
    """A cell that is no number leaves pyarrow's column as text, and a row cut short makes pyarrow give up for
    pandas, which reads every cell as text: either way the decimal commas are read and the bad row is dropped. (The
    damage is below the first lines, from which the delimiter and decimal mark are read.)"""
    lines = [f"{1704067200 + 3600 * h};{100 + h},25;{102 + h},5;{99 + h},75;{101 + h},0;{10 + h},5" for h in range(40)]
    lines[30] = lines[30].rsplit(";", 1)[0] + (f";{damage}" if damage else "")
    path = tmp_path / "BTCUSDT-1h.csv"
    path.write_text("timestamp;open;high;low;close;volume\n" + "\n".join(lines) + "\n")
    result = clean(path)
    r = result.report
    assert (r["rows_read"], r["rows_kept"], r["dropped"]["null"]) == (40, 39, 1) and DECIMAL_COMMA_NOTE in r["notes"]
    assert "dropped 1 row(s) with missing or unreadable values (line 32)" in r["notes"]
    first = result.candles[["open", "high", "low", "close", "volume"]].iloc[0].tolist()
    assert first == [100.25, 102.5, 99.75, 101.0, 10.5]
    assert result.candles["volume"].tolist() == [10.5 + h for h in range(40) if h != 30]


@pytest.mark.parametrize(
    ("name", "rows", "start", "end", "gaps", "missing", "flat"),
    [
        ("binance_BTC_USDT-1h_2017-08-17_2024-04-21.feather", 58419, "2017-08-17 04:00", "2024-04-21 14:00", 28, 128, 4),
        ("binance_BTC_USDT-1h_2017-08-17_2024-04-21.derived.csv.gz", 58419, "2017-08-17 04:00", "2024-04-21 14:00", 28, 128, 4),
        ("binance_BTC_USDT-1d_2020-09-20_2025-09-18.feather", 1825, "2020-09-20", "2025-09-18", 0, 0, 0),
        ("binance_BTC_USDT-15m_2023-01-01_2023-12-31.feather", 34994, "2023-01-01 00:00", "2023-12-31 13:30", 1, 5, 5),
    ],
)
def test_real_series_import_with_the_counts_of_their_readme(name, rows, start, end, gaps, missing, flat):
    result = import_file(OHLCV / name, save=False)
    r = result.report
    assert result.symbol == "BTCUSDT" and no_drops(r)
    assert (r["rows_read"], r["rows_kept"]) == (rows, rows)
    assert (result.candles["open_time"].iloc[0], result.candles["open_time"].iloc[-1]) == (t(start), t(end))
    assert (r["gaps"]["count"], r["gaps"]["missing_bars"], r["zero_volume_flat"]["rows"]) == (gaps, missing, flat)


def test_real_15m_outage_flat_run_then_hole():
    """README: flat zero-volume candles 11:30–12:30 on 2023-03-24, then 5 missing candles up to 14:00."""
    r = import_file(OHLCV / "binance_BTC_USDT-15m_2023-01-01_2023-12-31.feather", save=False).report
    assert r["zero_volume_flat"]["longest"] == {"bars": 5, "first": "2023-03-24T11:30:00+00:00", "last": "2023-03-24T12:30:00+00:00"}
    assert r["gaps"]["longest"] == {"missing_bars": 5, "after": "2023-03-24T12:30:00+00:00", "before": "2023-03-24T14:00:00+00:00"}


def test_first_bundled_candle_matches_the_readme():
    r = import_file(OHLCV / "binance_BTC_USDT-1h_2017-08-17_2024-04-21.derived.csv.gz", save=False)
    first = r.candles.iloc[0]
    assert (first["open"], first["high"], first["low"], first["close"], first["volume"]) == (4261.48, 4313.62, 4261.32, 4308.83, 47.181009)
    assert r.report["gaps"]["longest"]["missing_bars"] == 33
    assert r.report["gaps"]["longest"]["after"] == "2018-02-08T00:00:00+00:00"


# --- the format table (trainer.data.formats.FORMATS): every entry read for real, and a new format is one entry -------


def _written(tmp_path: Path, name: str) -> Path:
    """A file of a format no sample above has, written the way its tools write it."""
    frame = pd.DataFrame({
        "date": pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC"), "open": [1.0, 2.0, 3.0, 4.0],
        "high": [2.5, 3.5, 4.5, 5.5], "low": [0.5, 1.5, 2.5, 3.5], "close": [2.0, 3.0, 4.0, 5.0], "volume": [10.0, 11.0, 12.0, 13.0],
    })  # fmt: skip
    seconds = [1704067200 + 3600 * i for i in range(4)]
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.to_parquet(path) if name.startswith("BTC_USDT") else frame.rename(columns={"date": "time"}).to_parquet(path)
    elif name.endswith(".feather"):
        frame.rename(columns={"date": "time"}).to_feather(path)
    elif name.endswith(".json"):  # Binance REST klines: the 12 fields, numbers as strings
        rows = [[s * 1000, *map(str, r), s * 1000 + 3_599_999, "1", 2, "3", "4", "0"]
                for s, r in zip(seconds, frame[["open", "high", "low", "close", "volume"]].to_numpy())]  # fmt: skip
        path.write_text(json.dumps(rows))
    else:  # headerless CSV
        prices = frame[["open", "high", "low", "close", "volume"]].to_numpy()
        path.write_text("".join(f"{s},{','.join(map(str, r))}\n" for s, r in zip(seconds, prices)))
    return path


def test_every_format_entry_reads_a_real_or_written_file(tmp_path):
    samples = {
        "binance-klines": SAMPLES / "binance_spot_klines_ms_BTCUSDT-5m-2024-12.head.csv",
        "cryptodatadownload": SAMPLES / "cryptodatadownload_Binance_BTCUSDT_1h.head.csv",
        "yahoo-finance": SAMPLES / "yahoo_finance_BTC-USD.csv",
        "kaggle-bitstamp": SAMPLES / "kaggle_bitstamp_btcusd_1-min_data.head.csv",
        "pandas-csv": FIXTURES / "pandas_to_csv_BTCUSDT_4h.csv",
        "generic-csv": FIXTURES / "generic_iso_ETH-USD_1d.csv",
        "headerless-csv": _written(tmp_path, "BTCUSDT-1h.csv"),
        "freqtrade-json": SAMPLES / "freqtrade_BTC_USDT-1h.excerpt.json",
        "kline-array-json": _written(tmp_path, "BTCUSDT-1h.json"),
        "generic-json": FIXTURES / "generic_records_SOL_USDT-15m.json",
        "freqtrade-feather": SAMPLES / "freqtrade_BTC_USDT-1d.feather",
        "freqtrade-parquet": _written(tmp_path, "BTC_USDT-1h.parquet"),
        "feather": _written(tmp_path, "ETH_USDT-1h.feather"),
        "parquet": _written(tmp_path, "ETH_USDT-1h.parquet"),
    }
    assert [spec.name for spec in formats.FORMATS] == list(samples)  # a new entry needs its file here
    for name, path in samples.items():
        assert clean(path).report["format"] == name, path.name
    kline = clean(samples["kline-array-json"])
    assert (kline.dataset_id, kline.report["units"], kline.candles["close"].tolist()) == ("BTCUSDT-1h", {"ms": 4}, [2.0, 3.0, 4.0, 5.0])
    assert clean(samples["headerless-csv"]).report["notes"][0] == "no header: columns read as time, open, high, low, close, volume"


def test_each_container_ends_with_entries_that_take_any_file():
    assert formats.choose("text", formats.Shape(True, ("when", "o", "h", "l", "c", "v"))).name == "generic-csv"
    assert formats.choose("text", formats.Shape(False, widths=frozenset({7}))).name == "headerless-csv"
    assert formats.choose("json", formats.Shape(False, widths=frozenset({6, 12}))).name == "kline-array-json"
    assert formats.choose("json", formats.Shape(True, ("t",))).name == "generic-json"
    assert formats.choose("arrow", formats.Shape(True, ("date", "open"))).name == "feather"
    with pytest.raises(LookupError):
        formats.choose("xml", formats.Shape(True))


def test_a_new_format_is_one_entry(tmp_path, monkeypatch):
    """An exporter that writes volume and time after the prices, without a header, and says so in a banner."""
    entry = formats.FormatSpec(
        "example-export", "text", "a banner line 'example export', then open,high,low,close,volume,time (epoch s)",
        signs=(formats.Sign(header=False, banner="example export"),),
        positions=("open", "high", "low", "close", "volume", "time"), notes=("volume in base units",),
    )  # fmt: skip
    monkeypatch.setattr(formats, "FORMATS", (entry, *formats.FORMATS))
    path = tmp_path / "ETHUSDT-1h.csv"
    path.write_text("example export\n" + "".join(f"{o},{o + 1},{o - 1},{o},{o * 10},{1704067200 + 3600 * i}\n"
                                                  for i, o in enumerate([5.0, 6.0, 7.0])))  # fmt: skip
    result = clean(path)
    assert (result.report["format"], result.dataset_id, result.report["rows_kept"]) == ("example-export", "ETHUSDT-1h", 3)
    assert result.candles["volume"].tolist() == [50.0, 60.0, 70.0]
    assert "volume in base units" in result.report["notes"]
    plain = tmp_path / "BTCUSDT-1h.csv"
    plain.write_text(path.read_text().split("\n", 1)[1])
    assert read_candles(plain).format == "headerless-csv"  # without the banner the entry does not claim the file
