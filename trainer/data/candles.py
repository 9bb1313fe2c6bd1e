"""The one candle table every part of the trainer uses, and its validation (MODEL.md, "Data → samples").

A candle table is a ``pandas.DataFrame`` with columns ``open_time`` (datetime64, UTC, the candle's open),
``open``, ``high``, ``low``, ``close`` and ``volume`` (float64), sorted ascending with unique open times.
Gaps are kept as they are (never filled); ``segment_ids`` tells which bars are contiguous so that no
window or label ever crosses a gap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trainer.config import TIMEFRAME_SECONDS

CANDLE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")


class CandleError(ValueError):
    """Candles that cannot be trained on; the message is one line naming the source, rows and rule."""


@dataclass
class ValidationReport:
    """What ``validate_candles`` found and changed. Counts are rows; gaps are in bars of the timeframe."""

    rows_in: int
    rows_out: int
    was_sorted: bool
    duplicates_identical: int = 0
    duplicates_conflicting: int = 0
    gaps: int = 0
    missing_bars: int = 0
    longest_gap: dict | None = None
    notes: list[str] = field(default_factory=list)


def _describe_rows(frame: pd.DataFrame, mask: np.ndarray, limit: int = 5) -> str:
    times = frame.loc[mask, "open_time"].head(limit)
    shown = ", ".join(t.strftime("%Y-%m-%d %H:%M") for t in times)
    extra = int(mask.sum()) - len(times)
    return shown + (f" and {extra} more" if extra > 0 else "")


def validate_candles(frame: pd.DataFrame, timeframe: str, source: str = "candles") -> tuple[pd.DataFrame, ValidationReport]:
    """Return the clean candle table of ``frame`` and a report of what was done.

    Rules: rows are sorted by ``open_time``; a timestamp present twice with identical values is dropped, with
    conflicting values the *last* row in input order is kept (counted in the report); gaps are counted, never
    filled. Raises ``CandleError`` (message names ``source`` and the offending rows) for: no rows, missing
    columns, unparseable or missing times, non-finite or non-positive prices, negative or non-finite volume,
    high below low, open or close outside [low, high], or bars closer together than ``timeframe``.
    """
    missing = [c for c in CANDLE_COLUMNS if c not in frame.columns]
    if missing:
        raise CandleError(f"{source}: missing column(s) {', '.join(missing)}")
    if len(frame) == 0:
        raise CandleError(f"{source}: no candles (the table is empty)")
    step = pd.Timedelta(seconds=TIMEFRAME_SECONDS[timeframe])
    out = frame.loc[:, list(CANDLE_COLUMNS)].copy()
    out["open_time"] = pd.to_datetime(out["open_time"], utc=True, errors="coerce")
    if out["open_time"].isna().any():
        bad = np.flatnonzero(out["open_time"].isna().to_numpy())[:5]
        raise CandleError(f"{source}: missing or unreadable open time in row(s) {', '.join(map(str, bad))}")
    for column in PRICE_COLUMNS + ("volume",):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")

    prices = out[list(PRICE_COLUMNS)].to_numpy()
    bad_price = ~np.isfinite(prices).all(axis=1) | (prices <= 0).any(axis=1)
    if bad_price.any():
        raise CandleError(
            f"{source}: {int(bad_price.sum())} row(s) with non-finite or non-positive prices at "
            f"{_describe_rows(out, bad_price)}"
        )
    volume = out["volume"].to_numpy()
    bad_volume = ~np.isfinite(volume) | (volume < 0)
    if bad_volume.any():
        raise CandleError(
            f"{source}: {int(bad_volume.sum())} row(s) with missing or negative volume at {_describe_rows(out, bad_volume)}"
        )
    bad_range = (out["high"] < out["low"]).to_numpy()
    if bad_range.any():
        raise CandleError(f"{source}: {int(bad_range.sum())} row(s) with high below low at {_describe_rows(out, bad_range)}")
    outside = ((out["open"] < out["low"]) | (out["open"] > out["high"]) | (out["close"] < out["low"]) | (out["close"] > out["high"])).to_numpy()
    if outside.any():
        raise CandleError(
            f"{source}: {int(outside.sum())} row(s) with open or close outside [low, high] at {_describe_rows(out, outside)}"
        )

    report = ValidationReport(rows_in=len(frame), rows_out=0, was_sorted=bool(out["open_time"].is_monotonic_increasing))
    if not report.was_sorted:
        out = out.sort_values("open_time", kind="stable")
    # Full-row comparisons only among rows whose open time repeats: hashing every float column of a
    # million-row table costs seconds, and clean tables have no repeats at all.
    repeated = repeated_times(out["open_time"])
    if repeated.any():
        identical = np.zeros(len(out), dtype=bool)
        identical[repeated] = out[repeated].duplicated(keep="first").to_numpy()
        report.duplicates_identical = int(identical.sum())
        out = out[~identical]
        conflicting = out.duplicated(subset="open_time", keep="last")
        report.duplicates_conflicting = int(conflicting.sum())
        out = out[~conflicting.to_numpy()]
    out = out.reset_index(drop=True)
    if report.duplicates_conflicting:
        report.notes.append(
            f"{report.duplicates_conflicting} timestamp(s) had conflicting rows; kept the last one in the input"
        )

    diffs = out["open_time"].diff().iloc[1:]
    too_close = (diffs < step).to_numpy()
    if too_close.any():
        mask = np.concatenate([[False], too_close])
        raise CandleError(
            f"{source}: bars closer than one {timeframe} apart at {_describe_rows(out, mask)} "
            f"(is the timeframe right?)"
        )
    gap_mask = (diffs > step).to_numpy()
    report.gaps = int(gap_mask.sum())
    if report.gaps:
        missing_bars = (diffs[gap_mask] / step).round().astype("int64") - 1
        report.missing_bars = int(missing_bars.sum())
        longest = int(np.argmax(missing_bars.to_numpy()))
        position = np.flatnonzero(gap_mask)[longest] + 1
        report.longest_gap = {
            "missing_bars": int(missing_bars.iloc[longest]),
            "after": out["open_time"].iloc[position - 1].isoformat(),
            "before": out["open_time"].iloc[position].isoformat(),
        }
    report.rows_out = len(out)
    return out, report


def repeated_times(open_time: pd.Series) -> np.ndarray:
    """Bool array, shape (n,): True for every bar whose open time also occurs on a neighbour of the *sorted* column
    (equivalent to ``duplicated(keep=False)`` once sorted, and far cheaper than hashing)."""
    ns = open_time.astype("int64").to_numpy()
    same = ns[1:] == ns[:-1]
    repeated = np.zeros(len(ns), dtype=bool)
    repeated[1:] |= same
    repeated[:-1] |= same
    return repeated


def segment_ids(open_time: pd.Series, timeframe: str) -> np.ndarray:
    """Return an int64 array, shape (n,), numbering runs of consecutive bars: it increases after every gap.

    Two bars may share a sample (window or label) only when their segment ids are equal.
    """
    step = pd.Timedelta(seconds=TIMEFRAME_SECONDS[timeframe])
    breaks = (open_time.diff() != step).to_numpy().copy()
    breaks[0] = True
    return np.cumsum(breaks).astype(np.int64) - 1
