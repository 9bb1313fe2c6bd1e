"""Import one real-world candle file into the local dataset store, cleaning it by explicit rules.

``import_file(path)`` reads any format ``trainer.data.readers`` knows, turns it into the canonical candle table
(``trainer.data.candles``), stores it (``trainer.data.store``: parquet + metadata JSON, merged with what is
already stored for the same symbol and timeframe) and returns an ``ImportResult`` whose ``report`` says what
was read, kept, dropped and why.

Resolution rules, applied in this order; every dropped row is counted under exactly one reason
(``rows_read == rows_kept + sum(dropped.values())``):

1. **Times, per row.** An epoch number's unit is decided for each row from its magnitude, so a file that mixes
   units (Binance spot switched from ms to µs on 2025-01-01; CryptoDataDownload mixes s and ms) reads right:
   ``|t| < 1e11`` seconds, ``< 1e14`` milliseconds, ``< 1e17`` microseconds, else nanoseconds. Integer text
   converts exactly; float text is rounded to the millisecond. Date text is ISO 8601 (CryptoDataDownload's old
   ``2020-04-14 11-AM`` also); text without a zone, and zone-less datetime columns, are read as UTC and the
   report says so. ``units`` counts the rows per unit.
2. **null** — a row with a missing or unreadable time, open, high, low, close or volume (``NULL``, ``null``,
   ``NaN``, empty) is dropped. Its bar becomes a gap; no price is ever invented.
3. **impossible** — non-finite prices, a price ≤ 0, high < low, open or close outside [low, high], or a
   negative volume: the row is dropped (``impossible_detail`` counts each reason; first matching reason wins).
4. **duplicates** — rows equal in all six fields are kept once (``duplicate_identical``). Rows sharing an open
   time with different values (``duplicate_conflicting``): the row with the **largest volume** is kept, because
   a snapshot taken while the candle was still forming has traded less than the finished candle; on equal
   volume, the row further down the file.
5. **timeframe** — the most common spacing between consecutive open times; it must be a known timeframe and
   equal ``timeframe`` when one is given (a file named ``-5m`` whose spacing is 1m is imported as 1m, with a
   note).
6. **still forming** — only the newest candle can still be forming, and it is dropped when the file itself or
   the import moment shows it: (a) a CryptoDataDownload file writes the candle that was open when the file was
   made as its top row — that row is dropped unless the banner's ``Created on`` time is at or after its close;
   (b) in any file, a newest candle whose interval contains the import moment ``now`` (open ≤ now < close)
   cannot be complete yet. ``now`` is a parameter (default: the clock), so tests never depend on the clock.
7. **gaps** are counted (count, missing bars, the longest with its dates), never filled; training drops any
   window that crosses one. Bars closer together than the timeframe refuse the file.
8. **zero-volume flat candles** (open = high = low = close, volume 0) are how exchanges and data vendors fill
   outages and trade-less minutes. They are real rows of the file and are kept, but counted and flagged in the
   report (``zero_volume_flat``: rows, runs, the longest run with its dates).
9. **merge** — importing a symbol/timeframe that is already stored merges by open time; on a conflict the
   newly imported file wins (``merge``: added, replaced, unchanged).
10. **enough for training** — when the file's candles are too few for a training run with the defaults (lookback,
   horizon, walk-forward folds of ``TrainingConfig``), a note says how many samples they give, how many the
   default split needs, and what to change (``trainer.splits.shortfall``). The file is still imported.

Refusals raise ``CandleImportError`` with one line (file, rows, rule) and write nothing: unreadable or empty
files, no time or price column, mixed symbols in one file, no symbol (give ``symbol``), unknown or mismatched
timeframe, bars closer than the timeframe, and fewer usable rows than one training window needs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from trainer.config import TIMEFRAME_SECONDS, TrainingConfig, normalize_symbol
from trainer.data import store
from trainer.data.candles import CANDLE_COLUMNS, PRICE_COLUMNS, CandleError, repeated_times, validate_candles
from trainer.data.readers import CandleImportError, RawCandles, read_candles
from trainer.features import DataError, build_samples
from trainer.splits import shortfall, walk_forward

__all__ = ["CandleImportError", "ImportResult", "MIN_ROWS", "import_file", "clean_candles"]

#: Fewest usable rows a dataset needs: one sample of the default training window (lookback + horizon bars).
MIN_ROWS = TrainingConfig.model_fields["lookback"].default + TrainingConfig.model_fields["forecast_horizon"].default

#: Epoch unit by magnitude: (name, values below this bound, nanoseconds per unit).
_UNITS = (("s", 1e11, 10**9), ("ms", 1e14, 10**6), ("us", 1e17, 10**3), ("ns", np.inf, 1))
_ZONE = r"(?:Z|UTC|GMT|[+-]\d{2}:?\d{2})\s*$"
_OLD_CDD_FORMAT = "%Y-%m-%d %I-%p"  # CryptoDataDownload before 2020: "2020-04-14 11-AM"
_SECOND_NS = 10**9


@dataclass
class ImportResult:
    """One import: the dataset it went into and what happened.

    ``dataset_id`` is ``"<SYMBOL>-<timeframe>"``; ``candles`` is the clean table from this file (the canonical
    candle table); ``report`` is JSON-safe (keys in the module doc and ``import_cli``); ``dataset`` is the stored
    dataset's catalog entry (``trainer.data.catalog``) or None when ``save`` was false.
    """

    dataset_id: str
    symbol: str
    timeframe: str
    candles: pd.DataFrame
    report: dict
    dataset: dict | None = None


def _iso(stamp: pd.Timestamp) -> str:
    return stamp.isoformat()


def _epoch_ns(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Epoch numbers → (int64 ns since 1970 UTC, unit index per row); NaN rows give ns 0 and unit -1."""
    array = values.to_numpy()
    magnitude = np.abs(array.astype("float64"))
    unit = np.full(len(array), -1, dtype=np.int8)
    finite = np.isfinite(magnitude)
    for index, (_, bound, _) in reversed(list(enumerate(_UNITS))):
        unit[finite & (magnitude < bound)] = index
    factor = np.array([ns for _, _, ns in _UNITS], dtype=np.int64)[np.maximum(unit, 0)]
    unit[magnitude * factor >= 2**63 - 10**12] = -1  # past datetime64[ns]'s range (year 2262): unreadable
    if np.issubdtype(array.dtype, np.integer):
        ns = array.astype(np.int64) * factor  # exact
    else:
        ms = np.round(np.where(finite, array, 0.0) * (factor / 10**6))  # float epochs: rounded to the millisecond
        ns = ms.astype(np.int64) * 10**6
    ns[unit < 0] = 0
    return ns, unit


def _to_utc(raw: pd.Series, notes: list[str]) -> tuple[pd.Series, dict[str, int]]:
    """Convert a raw time column (epoch numbers, text or datetime64) into datetime64[ns, UTC]; NaT where unreadable."""
    units: Counter[str] = Counter()
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        units["datetime"] = int(raw.notna().sum())
        return raw.dt.tz_convert("UTC").dt.as_unit("ns").reset_index(drop=True), dict(units)
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        units["datetime-naive"] = int(raw.notna().sum())
        notes.append("the time column has no time zone; read as UTC")
        return raw.dt.tz_localize("UTC").dt.as_unit("ns").reset_index(drop=True), dict(units)
    raw = raw.reset_index(drop=True)
    numbers = raw if pd.api.types.is_numeric_dtype(raw.dtype) else pd.to_numeric(raw, errors="coerce")
    ns, unit = _epoch_ns(numbers)
    result = pd.Series(pd.to_datetime(ns, unit="ns", utc=True), dtype="datetime64[ns, UTC]")
    result[unit < 0] = pd.NaT
    for index, (name, _, _) in enumerate(_UNITS):
        if count := int((unit == index).sum()):
            units[name] = count
    text_rows = (unit < 0) & raw.notna().to_numpy()
    if text_rows.any():
        text = raw[text_rows].astype("str").str.strip()
        parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
        if parsed.isna().any():
            old = pd.to_datetime(text, utc=True, format=_OLD_CDD_FORMAT, errors="coerce")
            parsed = parsed.fillna(old)
        readable = parsed.notna()
        zoned = text.str.contains(_ZONE, regex=True)
        if count := int((readable & zoned).sum()):
            units["text"] = count
        if count := int((readable & ~zoned).sum()):
            units["text-naive"] = count
            notes.append(f"{count} time(s) written without a time zone; read as UTC")
        result[text_rows] = parsed.dt.as_unit("ns").to_numpy()
    return result, dict(units)


def _where(frame: pd.DataFrame, mask: np.ndarray, first_line: int | None, limit: int = 5) -> str:
    """Name the file rows under ``mask`` ("lines 161, 164" for text files, else "rows 3, 9"), at most ``limit``."""
    rows = frame.loc[mask, "row"].to_numpy()
    shown = rows[:limit] + (first_line if first_line is not None else 1)
    label = "line" if first_line is not None else "row"
    text = f"{label}{'s' if len(rows) > 1 else ''} " + ", ".join(map(str, shown))
    return text + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def _resolve_symbol(raw: RawCandles, symbol: str | None, path: Path, notes: list[str]) -> tuple[str, str]:
    """Return (symbol, where it came from); refuse mixed or missing symbols."""
    in_file: list[str] = []
    if "symbol" in raw.frame.columns:
        counts = raw.frame["symbol"].dropna().astype("str").value_counts()
        normalised: Counter[str] = Counter()
        for value, count in counts.items():
            try:
                normalised[normalize_symbol(value)] += int(count)
            except ValueError:
                normalised[value] += int(count)
        if len(normalised) > 1:
            listed = ", ".join(f"{name} ({count} rows)" for name, count in normalised.most_common(5))
            raise CandleImportError(f"{path.name}: mixed symbols in one file: {listed}; split it per symbol")
        in_file = list(normalised)
    if symbol:
        try:
            chosen = normalize_symbol(symbol)
        except ValueError as exc:
            raise CandleImportError(f"{path.name}: the given symbol is {exc}") from None
        if in_file and in_file[0] != chosen:
            notes.append(f"symbol {chosen} as given (the file says {in_file[0]})")
        return chosen, "given"
    if in_file:
        return in_file[0], "file"
    if raw.symbol_from_name:
        return normalize_symbol(raw.symbol_from_name), "file name"
    raise CandleImportError(
        f"{path.name}: no symbol in the file or its name; give the symbol (e.g. BTCUSDT)", field="symbol"
    )


def _infer_timeframe(open_time: pd.Series, timeframe: str | None, raw: RawCandles, path: Path, notes: list[str]) -> str:
    """The timeframe the spacing shows (the most common gap between consecutive bars); checked against ``timeframe``."""
    if timeframe is not None and timeframe not in TIMEFRAME_SECONDS:
        raise CandleImportError(f"{path.name}: unknown timeframe {timeframe!r} (expected one of {', '.join(TIMEFRAME_SECONDS)})")
    seconds = np.diff(open_time.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view("int64")) // _SECOND_NS
    values, counts = np.unique(seconds[seconds > 0], return_counts=True)
    spacing = int(values[np.argmax(counts)])
    names = {s: name for name, s in TIMEFRAME_SECONDS.items()}
    if spacing not in names:
        raise CandleImportError(
            f"{path.name}: the bars are most often {spacing} s apart, which is no known timeframe "
            f"({', '.join(TIMEFRAME_SECONDS)})"
        )
    inferred = names[spacing]
    if timeframe is not None and timeframe != inferred:
        raise CandleImportError(
            f"{path.name}: the candles are {inferred} apart but the timeframe given is {timeframe}; import it without "
            f"a timeframe (a {timeframe} dataset is resampled from it when a job asks for one)"
        )
    if raw.timeframe_from_name and raw.timeframe_from_name != inferred:
        notes.append(f"the file name says {raw.timeframe_from_name} but the candles are {inferred} apart; used {inferred}")
    return inferred


def _drop_impossible(frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, int]]:
    """Return (mask of impossible rows, count per reason, each row under its first reason)."""
    o, h, low, c, v = (frame[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    prices = np.column_stack([o, h, low, c])
    reasons = {
        "non_finite": ~np.isfinite(prices).all(axis=1) | ~np.isfinite(v),
        "non_positive_price": (prices <= 0).any(axis=1),
        "high_below_low": h < low,
        "open_outside_range": (o < low) | (o > h),
        "close_outside_range": (c < low) | (c > h),
        "negative_volume": v < 0,
    }
    taken = np.zeros(len(frame), dtype=bool)
    detail = {}
    for name, mask in reasons.items():
        mine = mask & ~taken
        detail[name] = int(mine.sum())
        taken |= mine
    return taken, detail


def _flat_runs(candles: pd.DataFrame, timeframe: str) -> dict:
    """Count zero-volume flat candles and their runs of consecutive bars; the longest run with its dates."""
    flat = (
        (candles["volume"] == 0)
        & (candles["open"] == candles["high"])
        & (candles["high"] == candles["low"])
        & (candles["low"] == candles["close"])
    ).to_numpy()
    out = {"rows": int(flat.sum()), "runs": 0, "longest": None}
    if not flat.any():
        return out
    step = pd.Timedelta(seconds=TIMEFRAME_SECONDS[timeframe])
    times = candles["open_time"]
    consecutive = np.concatenate([[False], (times.diff().iloc[1:] == step).to_numpy()])
    starts = flat & ~(np.concatenate([[False], flat[:-1]]) & consecutive)
    run_id = np.cumsum(starts)[flat]
    out["runs"] = int(starts.sum())
    lengths = np.bincount(run_id)
    longest = int(np.argmax(lengths))
    members = times[flat][run_id == longest]
    out["longest"] = {"bars": int(lengths[longest]), "first": _iso(members.iloc[0]), "last": _iso(members.iloc[-1])}
    return out


def clean_candles(
    raw: RawCandles, path: Path, symbol: str | None = None, timeframe: str | None = None,
    *, now: pd.Timestamp | None = None, min_rows: int = MIN_ROWS,
) -> tuple[pd.DataFrame, str, str, dict]:  # fmt: skip
    """Apply the module's rules to a parsed file: return (candle table, symbol, timeframe, report dict).

    Writes nothing. Raises ``CandleImportError`` for every refusal listed in the module doc.
    """
    notes = list(raw.notes)
    rows_read = len(raw.frame)
    if raw.candle_type in ("funding_rate", "premiumIndex"):
        raise CandleImportError(f"{path.name}: {raw.candle_type} candles are not prices; import the trade candles")
    if raw.candle_type:
        notes.append(f"{raw.candle_type} candles (from the file name)")
    chosen_symbol, symbol_from = _resolve_symbol(raw, symbol, path, notes)

    frame = pd.DataFrame({"row": np.arange(rows_read)})
    frame["open_time"], units = _to_utc(raw.frame["time"], notes)
    for column in PRICE_COLUMNS + ("volume",):
        values = raw.frame[column].reset_index(drop=True)
        if not pd.api.types.is_numeric_dtype(values.dtype):
            values = pd.to_numeric(values.astype("str").str.strip(), errors="coerce")
        frame[column] = values.astype("float64")
    dropped = {"null": 0, "impossible": 0, "duplicate_identical": 0, "duplicate_conflicting": 0, "still_forming": 0}

    null = frame["open_time"].isna().to_numpy() | frame[list(CANDLE_COLUMNS[1:])].isna().any(axis=1).to_numpy()
    if null.any():
        dropped["null"] = int(null.sum())
        notes.append(f"dropped {dropped['null']} row(s) with missing or unreadable values ({_where(frame, null, raw.first_line)})")
        frame = frame[~null]
    impossible, impossible_detail = _drop_impossible(frame)
    if impossible.any():
        dropped["impossible"] = int(impossible.sum())
        reasons = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in impossible_detail.items() if n)
        notes.append(f"dropped {dropped['impossible']} impossible candle(s): {reasons} ({_where(frame, impossible, raw.first_line)})")
        frame = frame[~impossible]
    if frame.empty:
        raise CandleImportError(f"{path.name}: none of the {rows_read} row(s) is a usable candle")

    if not frame["open_time"].is_monotonic_increasing:
        frame = frame.sort_values("open_time", kind="stable")
    # Duplicates are looked for only among rows whose open time repeats (hashing every column of a big
    # clean file would cost seconds for nothing).
    repeated = repeated_times(frame["open_time"])
    if repeated.any():
        identical = np.zeros(len(frame), dtype=bool)
        identical[repeated] = frame[repeated].duplicated(subset=list(CANDLE_COLUMNS), keep="last").to_numpy()
        dropped["duplicate_identical"] = int(identical.sum())
        frame = frame[~identical]
        # Largest volume wins; on equal volume the row further down the file (higher "row").
        frame = frame.sort_values(["open_time", "volume", "row"], kind="stable")
        conflicting = frame.duplicated(subset="open_time", keep="last").to_numpy()
        if conflicting.any():
            dropped["duplicate_conflicting"] = int(conflicting.sum())
            notes.append(
                f"{dropped['duplicate_conflicting']} row(s) repeated an open time with other values; kept the one with "
                f"the largest volume ({_where(frame, conflicting, raw.first_line)})"
            )
        frame = frame[~conflicting]
    frame = frame.reset_index(drop=True)
    order = "oldest first"
    if len(frame) > 1:
        rows_in_time_order = frame["row"].to_numpy()
        if (np.diff(rows_in_time_order) < 0).all():
            order = "newest first"
        elif not (np.diff(rows_in_time_order) > 0).all():
            order = "unsorted"
    if len(frame) < 2:
        raise CandleImportError(
            f"{path.name}: only {len(frame)} usable row(s) of {rows_read}; training needs at least {min_rows}"
        )
    chosen_timeframe = _infer_timeframe(frame["open_time"], timeframe, raw, path, notes)
    step = pd.Timedelta(seconds=TIMEFRAME_SECONDS[chosen_timeframe])

    still_forming = None
    newest = frame.iloc[-1]
    close_time = newest["open_time"] + step
    if raw.format == "cryptodatadownload" and newest["row"] == 0:
        if raw.created_at is None or raw.created_at < close_time:
            still_forming = "CryptoDataDownload's top row is the candle that was open when the file was made"
        else:
            notes.append(f"kept the top row: the banner's creation time {_iso(raw.created_at)} is after its close")
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    if still_forming is None and newest["open_time"] <= now < close_time:
        still_forming = f"the candle had not closed at the import time {_iso(now)}"
    if still_forming:
        dropped["still_forming"] = 1
        notes.append(f"dropped the still-forming candle {_iso(newest['open_time'])}: {still_forming}")
        frame = frame.iloc[:-1]

    try:
        candles, validation = validate_candles(frame.loc[:, list(CANDLE_COLUMNS)], chosen_timeframe, source=path.name)
    except CandleError as exc:
        raise CandleImportError(str(exc)) from None
    if len(candles) < min_rows:
        raise CandleImportError(
            f"{path.name}: only {len(candles)} usable row(s) of {rows_read}; one training window needs at least "
            f"{min_rows} (lookback {min_rows - 1} + horizon 1)"
        )
    candles["open_time"] = candles["open_time"].dt.as_unit("ns")
    report = {
        "file": str(path.resolve()),
        "format": raw.format,
        "symbol": chosen_symbol,
        "symbol_from": symbol_from,
        "timeframe": chosen_timeframe,
        "rows_read": rows_read,
        "rows_kept": len(candles),
        "dropped": dropped,
        "impossible_detail": impossible_detail,
        "units": units,
        "order": order,
        "range": {"start": _iso(candles["open_time"].iloc[0]), "end": _iso(candles["open_time"].iloc[-1])},
        "gaps": {"count": validation.gaps, "missing_bars": validation.missing_bars, "longest": validation.longest_gap},
        "zero_volume_flat": _flat_runs(candles, chosen_timeframe),
        "still_forming": None if not still_forming else {"open_time": _iso(newest["open_time"]), "reason": still_forming},
        "notes": notes,
        "merge": None,
    }
    flat = report["zero_volume_flat"]
    if flat["rows"]:
        notes.append(
            f"{flat['rows']} zero-volume flat candle(s) in {flat['runs']} run(s) kept and flagged (outage or no-trade "
            f"fill; longest {flat['longest']['bars']} bar(s) from {flat['longest']['first']})"
        )
    enough = _training_shortfall(candles, chosen_timeframe)
    if enough:
        notes.append(enough)
    return candles, chosen_symbol, chosen_timeframe, report


def _training_shortfall(candles: pd.DataFrame, timeframe: str) -> str | None:
    """Why a training run with the default settings could not use ``candles`` (rule 10), or None if it could."""
    defaults = {name: info.default for name, info in TrainingConfig.model_fields.items()}
    lookback, horizon = defaults["lookback"], defaults["forecast_horizon"]
    try:
        samples = build_samples(candles, timeframe, lookback, horizon)
        walk_forward(samples.positions, horizon, defaults["cv_folds"], defaults["use_cv"])
    except DataError as exc:
        if "samples" not in locals():  # not even one window: the error says what the data would need
            return f"too few for training with the defaults: {exc}"
        return (f"{len(candles):,} candles give {len(samples.positions):,} samples with the default lookback "
                f"{lookback} and horizon {horizon}. "
                + shortfall(samples.positions, horizon, defaults["cv_folds"], defaults["use_cv"]))
    return None


def import_file(
    path: str | Path, symbol: str | None = None, timeframe: str | None = None,
    *, now: pd.Timestamp | None = None, min_rows: int = MIN_ROWS, save: bool = True,
) -> ImportResult:  # fmt: skip
    """Import the candle file ``path`` (any supported format, detected from its content) into the dataset store.

    ``symbol``/``timeframe``: the caller's, checked against the file (the symbol overrides the file's with a
    note; a timeframe that disagrees with the spacing refuses the file). ``now``: the import moment for the
    still-forming rule (default: the clock). ``min_rows``: fewest usable rows. ``save=False`` cleans and reports
    without writing. Returns an ``ImportResult``; raises ``CandleImportError`` (one line, nothing written).
    """
    path = Path(path)
    raw = read_candles(path)
    candles, chosen_symbol, chosen_timeframe, report = clean_candles(
        raw, path, symbol, timeframe, now=now, min_rows=min_rows
    )
    dataset_id = f"{chosen_symbol}-{chosen_timeframe}"
    entry = None
    if save:
        report["merge"], entry = store.save_import(chosen_symbol, chosen_timeframe, candles, report)
    return ImportResult(dataset_id, chosen_symbol, chosen_timeframe, candles, report, entry)
