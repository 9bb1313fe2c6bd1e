"""The importer's cleaning rules (``trainer.data.importer``'s module doc), one named step each.

``importer.clean_candles`` runs them in order. Each step takes the working table and returns it without the
rows it drops, with what it counted for the import report; a step that has something to say appends one line to
``notes`` (the report's ``notes``). The working table has the columns ``row`` (0-based data row in the file, file
order), ``open_time`` (datetime64[ns, UTC]), ``open``, ``high``, ``low``, ``close`` and ``volume`` (float64).
Steps that refuse a file raise ``CandleImportError`` with one line naming the file.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from trainer.config import TIMEFRAME_SECONDS, TrainingConfig, normalize_symbol
from trainer.data.candles import (
    CANDLE_COLUMNS, PRICE_COLUMNS, CandleError, repeated_times, segment_ids, validate_candles,
)  # fmt: skip
from trainer.data.readers import CandleImportError, RawCandles
from trainer.features import DataError, build_samples
from trainer.splits import shortfall, walk_forward

#: Epoch unit by magnitude: (name, values below this bound, nanoseconds per unit).
_UNITS = (("s", 1e11, 10**9), ("ms", 1e14, 10**6), ("us", 1e17, 10**3), ("ns", np.inf, 1))
_ZONE = r"(?:Z|UTC|GMT|[+-]\d{2}:?\d{2})\s*$"
_OLD_CDD_FORMAT = "%Y-%m-%d %I-%p"  # CryptoDataDownload before 2020: "2020-04-14 11-AM"
_SECOND_NS = 10**9
#: Candle types that are no prices (freqtrade's futures downloads name them in the file name).
NOT_PRICES = ("funding_rate", "premiumIndex")


def iso(stamp: pd.Timestamp) -> str:
    """A time as the report writes it (ISO 8601 with its zone)."""
    return stamp.isoformat()


def where(frame: pd.DataFrame, mask: np.ndarray, first_line: int | None, limit: int = 5) -> str:
    """Name the file rows under ``mask`` ("lines 161, 164" for text files, else "rows 3, 9"), at most ``limit``."""
    rows = frame.loc[mask, "row"].to_numpy()
    shown = rows[:limit] + (first_line if first_line is not None else 1)
    label = "line" if first_line is not None else "row"
    text = f"{label}{'s' if len(rows) > 1 else ''} " + ", ".join(map(str, shown))
    return text + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


# ---------------------------------------------------------------- what the file is


def check_candle_type(raw: RawCandles, path: Path, notes: list[str]) -> None:
    """Refuse candle types that are no prices (``funding_rate``, ``premiumIndex``, from the file name); any other
    named type (``futures``, ``mark``, ``index``) is imported with a note. Counts nothing."""
    if raw.candle_type in NOT_PRICES:
        raise CandleImportError(f"{path}: {raw.candle_type} candles are not prices; import the trade candles")
    if raw.candle_type:
        notes.append(f"{raw.candle_type} candles (from the file name)")


def resolve_symbol(raw: RawCandles, symbol: str | None, path: Path, notes: list[str]) -> tuple[str, str]:
    """Return (symbol, where it came from: ``given``, ``file`` or ``file name``): the report's ``symbol`` and
    ``symbol_from``. A given symbol wins over the file's (with a note). Refuses a file whose symbol column names
    more than one symbol, an unreadable given symbol, and a file with no symbol when none is given
    (``field="symbol"``)."""
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
            raise CandleImportError(f"{path}: mixed symbols in one file: {listed}; split it per symbol")
        in_file = list(normalised)
    if symbol:
        try:
            chosen = normalize_symbol(symbol)
        except ValueError as exc:
            raise CandleImportError(f"{path}: the given symbol is {exc}") from None
        if in_file and in_file[0] != chosen:
            notes.append(f"symbol {chosen} as given (the file says {in_file[0]})")
        return chosen, "given"
    if in_file:
        return in_file[0], "file"
    if raw.symbol_from_name:
        return normalize_symbol(raw.symbol_from_name), "file name"
    raise CandleImportError(
        f"{path}: no symbol in the file or its name; give the symbol (e.g. BTCUSDT)", field="symbol"
    )


# ---------------------------------------------------------------- rule 1: times and numbers


def epoch_ns(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Epoch numbers → (int64 ns since 1970 UTC, index into ``_UNITS`` per row); unreadable rows give 0 and -1.

    The unit is decided per row from the magnitude: ``|t| < 1e11`` s, ``< 1e14`` ms, ``< 1e17`` µs, else ns.
    Integers convert exactly; floats are rounded to the millisecond. Values past datetime64[ns] (year 2262)
    are unreadable.
    """
    array = values.to_numpy()
    magnitude = np.abs(array.astype("float64"))
    unit = np.full(len(array), -1, dtype=np.int8)
    finite = np.isfinite(magnitude)
    for index, (_, bound, _) in reversed(list(enumerate(_UNITS))):
        unit[finite & (magnitude < bound)] = index
    factor = np.array([ns for _, _, ns in _UNITS], dtype=np.int64)[np.maximum(unit, 0)]
    unit[magnitude * factor >= 2**63 - 10**12] = -1
    if np.issubdtype(array.dtype, np.integer):
        ns = array.astype(np.int64) * factor
    else:
        ms = np.round(np.where(finite, array, 0.0) * (factor / 10**6))
        ns = ms.astype(np.int64) * 10**6
    ns[unit < 0] = 0
    return ns, unit


def times_to_utc(raw: pd.Series, notes: list[str]) -> tuple[pd.Series, dict[str, int]]:
    """Rule 1 for the time column: epoch numbers (unit per row, ``epoch_ns``), ISO 8601 text (and
    CryptoDataDownload's old ``2020-04-14 11-AM``) or datetime64 → datetime64[ns, UTC], NaT where unreadable.

    Zone-less text and zone-less datetime columns are read as UTC, with a note. Returns the times and the
    report's ``units``: rows per unit (``s``, ``ms``, ``us``, ``ns``, ``text``, ``text-naive``, ``datetime``,
    ``datetime-naive``), unreadable rows under none.
    """
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
    ns, unit = epoch_ns(numbers)
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
        result[text_rows] = parsed.dt.as_unit("ns").array  # zoned: an all-NaT numpy array would read as zone-less
    return result, dict(units)


def working_table(raw: RawCandles, notes: list[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """Rule 1: the parsed file as the working table (module doc): times by ``times_to_utc``, prices and volume
    as float64 (text that is no number becomes NaN, for rule 2). Returns (table, the report's ``units``)."""
    frame = pd.DataFrame({"row": np.arange(len(raw.frame))})
    frame["open_time"], units = times_to_utc(raw.frame["time"], notes)
    for column in PRICE_COLUMNS + ("volume",):
        values = raw.frame[column].reset_index(drop=True)
        if not pd.api.types.is_numeric_dtype(values.dtype):
            values = pd.to_numeric(values.astype("str").str.strip(), errors="coerce")
        frame[column] = values.astype("float64")
    return frame, units


# ---------------------------------------------------------------- rules 2-4: rows that are dropped


def drop_null(frame: pd.DataFrame, first_line: int | None, notes: list[str]) -> tuple[pd.DataFrame, int]:
    """Rule 2: drop rows with a missing or unreadable time, open, high, low, close or volume (their bars become
    gaps; no price is invented). Returns (rows kept, the report's ``dropped.null``); the note names the lines."""
    null = frame["open_time"].isna().to_numpy() | frame[list(CANDLE_COLUMNS[1:])].isna().any(axis=1).to_numpy()
    if not null.any():
        return frame, 0
    count = int(null.sum())
    notes.append(f"dropped {count} row(s) with missing or unreadable values ({where(frame, null, first_line)})")
    return frame[~null], count


#: Rule 3's reasons in a note's words.
IMPOSSIBLE_WORDS = {
    "non_finite": "a price or the volume is not a finite number",
    "non_positive_price": "a price at or below 0",
    "high_below_low": "high below low",
    "open_outside_range": "open outside the bar's low–high range",
    "close_outside_range": "close outside the bar's low–high range",
    "negative_volume": "negative volume",
}


def impossible_rows(frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, int]]:
    """Rule 3's test: (mask of impossible rows, rows per reason), each row under its first matching reason of
    ``non_finite``, ``non_positive_price``, ``high_below_low``, ``open_outside_range``, ``close_outside_range``,
    ``negative_volume`` (every reason is a key, 0 when none)."""
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


def drop_impossible(
    frame: pd.DataFrame, first_line: int | None, notes: list[str]
) -> tuple[pd.DataFrame, int, dict[str, int]]:
    """Rule 3: drop candles that cannot be (``impossible_rows``). Returns (rows kept, the report's
    ``dropped.impossible``, its ``impossible_detail``); the note gives the reasons and the lines."""
    impossible, detail = impossible_rows(frame)
    if not impossible.any():
        return frame, 0, detail
    count = int(impossible.sum())
    reasons = "; ".join(f"{IMPOSSIBLE_WORDS[k]}: {n} candle{'s' if n > 1 else ''}" for k, n in detail.items() if n)
    notes.append(f"dropped {count} impossible candle(s): {reasons} ({where(frame, impossible, first_line)})")
    return frame[~impossible], count, detail


def drop_duplicates(
    frame: pd.DataFrame, first_line: int | None, notes: list[str]
) -> tuple[pd.DataFrame, int, int]:
    """Rule 4: sort by open time (stable), keep rows equal in all six fields once, and of rows sharing an open
    time with other values keep the one with the largest volume (a snapshot taken while the candle formed has
    traded less), on equal volume the one further down the file. Returns (rows kept with a fresh index, the
    report's ``dropped.duplicate_identical``, ``dropped.duplicate_conflicting``)."""
    if not frame["open_time"].is_monotonic_increasing:
        frame = frame.sort_values("open_time", kind="stable")
    identical_count = conflicting_count = 0
    # Looked for only among rows whose open time repeats (hashing every column of a big clean file costs seconds).
    repeated = repeated_times(frame["open_time"])
    if repeated.any():
        identical = np.zeros(len(frame), dtype=bool)
        identical[repeated] = frame[repeated].duplicated(subset=list(CANDLE_COLUMNS), keep="last").to_numpy()
        identical_count = int(identical.sum())
        frame = frame[~identical]
        frame = frame.sort_values(["open_time", "volume", "row"], kind="stable")
        conflicting = frame.duplicated(subset="open_time", keep="last").to_numpy()
        if conflicting.any():
            conflicting_count = int(conflicting.sum())
            notes.append(
                f"{conflicting_count} row(s) repeated an open time with other values; kept the one with "
                f"the largest volume ({where(frame, conflicting, first_line)})"
            )
        frame = frame[~conflicting]
    return frame.reset_index(drop=True), identical_count, conflicting_count


def file_order(frame: pd.DataFrame) -> str:
    """The report's ``order``: how the file's rows ran, from the time-ordered table's file rows: ``oldest first``,
    ``newest first`` (CryptoDataDownload) or ``unsorted`` (a single row is ``oldest first``)."""
    if len(frame) < 2:
        return "oldest first"
    steps = np.diff(frame["row"].to_numpy())
    if (steps < 0).all():
        return "newest first"
    return "oldest first" if (steps > 0).all() else "unsorted"


# ---------------------------------------------------------------- rules 5-6: the timeframe and the newest candle


def infer_timeframe(
    open_time: pd.Series, timeframe: str | None, raw: RawCandles, path: Path, notes: list[str]
) -> str:
    """Rule 5: the report's ``timeframe`` is the most common spacing between consecutive open times (≥ 2 rows).

    Refuses an unknown ``timeframe``, a spacing that is no known timeframe, and a given ``timeframe`` that
    differs from the spacing; a file name's timeframe that differs is a note.
    """
    if timeframe is not None and timeframe not in TIMEFRAME_SECONDS:
        raise CandleImportError(f"{path}: unknown timeframe {timeframe!r} (expected one of {', '.join(TIMEFRAME_SECONDS)})")
    seconds = np.diff(open_time.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view("int64")) // _SECOND_NS
    values, counts = np.unique(seconds[seconds > 0], return_counts=True)
    spacing = int(values[np.argmax(counts)])
    names = {s: name for name, s in TIMEFRAME_SECONDS.items()}
    if spacing not in names:
        raise CandleImportError(
            f"{path}: the bars are most often {spacing} s apart, which is no known timeframe "
            f"({', '.join(TIMEFRAME_SECONDS)})"
        )
    inferred = names[spacing]
    if timeframe is not None and timeframe != inferred:
        why = (f"a job asking for {timeframe} resamples the {inferred} dataset"
               if TIMEFRAME_SECONDS[timeframe] > TIMEFRAME_SECONDS[inferred]
               else f"{timeframe} candles cannot be built from {inferred} ones")
        raise CandleImportError(
            f"{path}: the candles are {inferred} apart but the timeframe given is {timeframe} ({why}); give the "
            f"timeframe {inferred}", field="timeframe")
    if raw.timeframe_from_name and raw.timeframe_from_name != inferred:
        notes.append(f"the file name says {raw.timeframe_from_name} but the candles are {inferred} apart; used {inferred}")
    return inferred


def utc_now(now: pd.Timestamp | None) -> pd.Timestamp:
    """The import moment in UTC: ``now`` (zone-less is UTC), or the clock when None."""
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    return now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")


def drop_still_forming(
    frame: pd.DataFrame, raw: RawCandles, timeframe: str, now: pd.Timestamp | None, notes: list[str]
) -> tuple[pd.DataFrame, dict | None]:
    """Rule 6: drop the newest candle (the table's last row) when it can still be forming: the file's top row
    in a format that writes the open candle there (``raw.top_row_forming``: CryptoDataDownload) unless the
    banner's ``Created on`` is at or after its close, or a candle whose interval holds the import moment ``now``
    (``utc_now``). Returns (rows kept, the report's ``still_forming``: None, or its ``open_time`` and
    ``reason``); ``dropped.still_forming`` is 1 when it is not None."""
    newest = frame.iloc[-1]
    close_time = newest["open_time"] + pd.Timedelta(seconds=TIMEFRAME_SECONDS[timeframe])
    reason = None
    if raw.top_row_forming and newest["row"] == 0:
        if raw.created_at is None or raw.created_at < close_time:
            reason = raw.top_row_forming
        else:
            notes.append(f"kept the top row: the banner's creation time {iso(raw.created_at)} is after its close")
    now = utc_now(now)
    if reason is None and newest["open_time"] <= now < close_time:
        reason = f"the candle had not closed at the import time {iso(now)}"
    if reason is None:
        return frame, None
    notes.append(f"dropped the still-forming candle {iso(newest['open_time'])}: {reason}")
    return frame.iloc[:-1], {"open_time": iso(newest["open_time"]), "reason": reason}


# ---------------------------------------------------------------- rules 7-8 and 10: what the kept candles are


def validated(frame: pd.DataFrame, timeframe: str, path: Path) -> tuple[pd.DataFrame, dict]:
    """Rule 7: the canonical candle table (``candles.validate_candles``: open_time datetime64[ns, UTC]) and the
    report's ``gaps`` (``count``, ``missing_bars``, ``longest``), counted, never filled. Refuses bars closer than
    the timeframe."""
    try:
        candles, validation = validate_candles(frame.loc[:, list(CANDLE_COLUMNS)], timeframe, source=str(path))
    except CandleError as exc:
        raise CandleImportError(str(exc)) from None
    candles["open_time"] = candles["open_time"].dt.as_unit("ns")
    gaps = {"count": validation.gaps, "missing_bars": validation.missing_bars, "longest": validation.longest_gap}
    return candles, gaps


def enough_bars(candles: pd.DataFrame, timeframe: str, path: Path, rows: str, min_rows: int, need: str) -> None:
    """Rule 10's refusal: ``candles`` (the dataset the import makes, or the file's candles for a caller that stores
    nothing) hold fewer than ``min_rows`` rows, or gaps leave no run of ``min_rows`` consecutive bars. ``rows``
    says in words which rows were counted (``"5 usable row(s) of 5"``), ``need`` why that many."""
    if len(candles) < min_rows:
        raise CandleImportError(f"{path}: only {rows}; {need}")
    longest_run = int(np.bincount(segment_ids(candles["open_time"], timeframe)).max())
    if longest_run < min_rows:
        raise CandleImportError(f"{path}: {rows}, but gaps leave at most {longest_run} in a row; {need}")


def zero_volume_flat(candles: pd.DataFrame, timeframe: str, notes: list[str]) -> dict:
    """Rule 8: zero-volume flat candles (open = high = low = close, volume 0) are kept but counted: the report's
    ``zero_volume_flat`` (``rows``, ``runs`` of consecutive bars, the ``longest`` run's ``bars``, ``first``,
    ``last``; None when there is none), with a note when there are any."""
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
    out["longest"] = {"bars": int(lengths[longest]), "first": iso(members.iloc[0]), "last": iso(members.iloc[-1])}
    notes.append(
        f"{out['rows']} zero-volume flat candle(s) in {out['runs']} run(s) kept and flagged (outage or no-trade "
        f"fill; longest {out['longest']['bars']} bar(s) from {out['longest']['first']})"
    )
    return out


def training_shortfall(candles: pd.DataFrame, timeframe: str, notes: list[str]) -> str | None:
    """Rule 10: why a training run with the default settings (lookback, horizon, walk-forward folds of
    ``TrainingConfig``) could not use ``candles``, or None if it could. The reason is also a note (the file is
    still imported); it counts nothing."""
    defaults = {name: info.default for name, info in TrainingConfig.model_fields.items()}
    lookback, horizon = defaults["lookback"], defaults["forecast_horizon"]
    try:
        samples = build_samples(candles, timeframe, lookback, horizon)
    except DataError as exc:  # not even one window: the error says what the data would need
        notes.append(reason := f"too few for training with the defaults: {exc}")
        return reason
    try:
        walk_forward(samples.positions, horizon, defaults["cv_folds"], defaults["use_cv"])
    except DataError:
        notes.append(reason := (
            f"{len(candles):,} candles give {len(samples.positions):,} samples with the default lookback "
            f"{lookback} and horizon {horizon}. "
            + shortfall(samples.positions, horizon, defaults["cv_folds"], defaults["use_cv"])
        ))
        return reason
    return None
