"""Import one real-world candle file into the local dataset store, cleaning it by explicit rules.

``import_file(path)`` reads any format ``trainer.data.readers`` knows, turns it into the canonical candle table
(``trainer.data.candles``), stores it (``trainer.data.store``: parquet + metadata JSON, merged with what is
already stored for the same symbol and timeframe) and returns an ``ImportResult`` whose ``report`` says what
was read, kept, dropped and why.

Resolution rules, applied in this order, each a named step of ``trainer.data.import_rules``; every dropped row is
counted under exactly one reason (``rows_read == rows_kept + sum(dropped.values())``):

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
   newly imported file wins (``merge``: added, replaced, unchanged). The merge is computed before anything is
   written, so rule 10 judges the dataset the import makes. ``dataset_gaps`` gives the merged dataset's gaps
   (count, missing bars, the longest) and ``between``, those with a stored candle on one side and one of the
   file's on the other, which a note names. An import that creates the dataset reports in ``shadowed`` (and a
   note) what served its id until then — the bundled candles or a resample of a lower timeframe — since jobs
   asking for that symbol and timeframe now train on the stored dataset (``trainer.data.sources``).
10. **enough for training** — judged on the dataset after the merge (the file's candles alone for a new
   dataset), so a file of a few new candles appends to a stored dataset: a dataset without a gap-free run of
   the bars one sample needs with the default lookback and horizon (feature warm-up + lookback + horizon,
   ``trainer.sample_window``) is refused, since no default job could train on it. When the dataset is too
   small for a training run with the defaults (lookback, horizon, walk-forward folds of ``TrainingConfig``), a
   note says how many samples it gives, how many the default split needs, and what to change
   (``trainer.splits.shortfall``); it is still imported.

Refusals raise ``CandleImportError`` with one line (file, rows, rule) and write nothing: unreadable or empty
files, no time or price column, mixed symbols in one file, no symbol (give ``symbol``), unknown or mismatched
timeframe, bars closer than the timeframe, fewer than 2 usable rows (no spacing to read the timeframe from), and
a dataset (after the merge) with fewer consecutive rows than one training window needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from trainer.data import import_rules as rules
from trainer.data import store
from trainer.data.readers import CandleImportError, RawCandles, read_candles
from trainer.sample_window import default_bars_needed

__all__ = ["CandleImportError", "ImportResult", "MIN_ROWS", "import_file", "clean_candles"]

#: Fewest usable rows a dataset needs, and why: one sample of the default training window (feature warm-up +
#: lookback + horizon bars, ``trainer.sample_window``).
MIN_ROWS, TRAINING_NEED = default_bars_needed()


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


def clean_candles(
    raw: RawCandles, path: Path, symbol: str | None = None, timeframe: str | None = None,
    *, now: pd.Timestamp | None = None, min_rows: int | None = MIN_ROWS, need: str = TRAINING_NEED,
) -> tuple[pd.DataFrame, str, str, dict]:  # fmt: skip
    """Apply the module's rules 1-8 to a parsed file, one ``import_rules`` step each, in the module doc's order:
    return (candle table, symbol, timeframe, report dict). ``min_rows``: fewest consecutive usable rows of the
    file, and ``need`` what needs that many, in the refusal (default: one training window); None leaves that to
    the caller (``import_file`` judges the merged dataset).

    Writes nothing. Raises ``CandleImportError`` for every refusal listed in the module doc.
    """
    notes = list(raw.notes)
    rows_read = len(raw.frame)
    rules.check_candle_type(raw, path, notes)
    chosen_symbol, symbol_from = rules.resolve_symbol(raw, symbol, path, notes)
    frame, units = rules.working_table(raw, notes)
    frame, null = rules.drop_null(frame, raw.first_line, notes)
    frame, impossible, impossible_detail = rules.drop_impossible(frame, raw.first_line, notes)
    if frame.empty:
        times = raw.frame["time"].dropna()
        if len(times) and units == {}:
            raise CandleImportError(
                f"{path}: no readable time in the time column (e.g. {str(times.iloc[0]).strip()!r}); write times as "
                "ISO 8601 (2020-09-20 or 2020-09-20T13:00:00Z) or as epoch seconds or milliseconds (dates with "
                "slashes are not read: files differ in whether the day or the month comes first)")
        dropped = [note for note in notes if note.startswith("dropped")]
        raise CandleImportError(f"{path}: none of the {rows_read} row(s) is a usable candle ({'; '.join(dropped)})")
    frame, identical, conflicting = rules.drop_duplicates(frame, raw.first_line, notes)
    order = rules.file_order(frame)
    if len(frame) < 2:  # the timeframe is read from the spacing of the candles
        why = need if min_rows is not None else "an import needs 2 or more, to read the timeframe from their spacing"
        raise CandleImportError(f"{path}: only {len(frame)} usable row(s) of {rows_read}; {why}")
    chosen_timeframe = rules.infer_timeframe(frame["open_time"], timeframe, raw, path, notes)
    frame, still_forming = rules.drop_still_forming(frame, raw, chosen_timeframe, now, notes)
    candles, gaps = rules.validated(frame, chosen_timeframe, path)
    if min_rows is not None:
        rows = f"{len(candles)} usable row(s) of {rows_read}"
        rules.enough_bars(candles, chosen_timeframe, path, rows, min_rows, need)
    dropped = {"null": null, "impossible": impossible, "duplicate_identical": identical,
               "duplicate_conflicting": conflicting, "still_forming": int(still_forming is not None)}  # fmt: skip
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
        "range": {"start": rules.iso(candles["open_time"].iloc[0]), "end": rules.iso(candles["open_time"].iloc[-1])},
        "gaps": gaps,
        "zero_volume_flat": rules.zero_volume_flat(candles, chosen_timeframe, notes),
        "still_forming": still_forming,
        "notes": notes,
        "merge": None,
        "dataset_gaps": None,
        "shadowed": None,
    }
    return candles, chosen_symbol, chosen_timeframe, report


def import_file(
    path: str | Path, symbol: str | None = None, timeframe: str | None = None,
    *, now: pd.Timestamp | None = None, min_rows: int = MIN_ROWS, save: bool = True,
) -> ImportResult:  # fmt: skip
    """Import the candle file ``path`` (any supported format, detected from its content) into the dataset store.

    ``symbol``/``timeframe``: the caller's, checked against the file (the symbol overrides the file's with a
    note; a timeframe that disagrees with the spacing refuses the file). ``now``: the import moment for the
    still-forming rule (default: the clock). ``min_rows``: fewest consecutive rows of the dataset once the file
    is merged in (rule 10). ``save=False`` cleans, judges the would-be merge and reports without writing
    (``report["merge"]`` stays None). Returns an ``ImportResult``; raises ``CandleImportError`` (one line,
    nothing written).
    """
    path = Path(path)
    raw = read_candles(path)
    candles, chosen_symbol, chosen_timeframe, report = clean_candles(
        raw, path, symbol, timeframe, now=now, min_rows=None
    )
    dataset_id = f"{chosen_symbol}-{chosen_timeframe}"
    merged = store.merge_import(chosen_symbol, chosen_timeframe, candles, str(path))
    rows = f"{len(candles)} usable row(s) of {report['rows_read']}"
    if existing := merged.merge["existing_rows"]:
        rows += f", {len(merged.candles)} with the {existing} stored in {dataset_id}"
    rules.enough_bars(merged.candles, chosen_timeframe, path, rows, min_rows, TRAINING_NEED)
    rules.training_shortfall(merged.candles, chosen_timeframe, report["notes"])
    entry = None
    if save:
        report["merge"] = merged.merge
        if existing:
            gaps = merged.gaps
            report["dataset_gaps"] = {"count": gaps.gaps, "missing_bars": gaps.missing_bars,
                                      "longest": gaps.longest_gap, "between": merged.between}  # fmt: skip
            if note := between_gaps_note(report["dataset_gaps"]):
                report["notes"].append(note)
        elif (before := store.served_before(chosen_symbol, chosen_timeframe)) is not None:
            report["notes"].append(before.pop("note"))
            report["shadowed"] = before
        entry = store.save_import(chosen_symbol, chosen_timeframe, merged, report)
    return ImportResult(dataset_id, chosen_symbol, chosen_timeframe, candles, report, entry)


def between_gaps_note(dataset_gaps: dict) -> str | None:
    """The sentence saying that a merge left gap(s) between the stored candles and the file's, with the merged
    dataset's gaps in all, from the report's ``dataset_gaps``; None when the merge left no such gap."""
    between = dataset_gaps["between"]
    if not between:
        return None
    longest = max(between, key=lambda gap: gap["missing_bars"])
    missing = sum(gap["missing_bars"] for gap in between)
    return (f"the merge left {len(between)} gap(s) between the stored candles and the file's ({missing:,} missing "
            f"bars; the longest {longest['missing_bars']:,} after {longest['after']}); the dataset now has "
            f"{dataset_gaps['count']} gap(s), {dataset_gaps['missing_bars']:,} missing bars in all — no training "
            "sample crosses a gap")
