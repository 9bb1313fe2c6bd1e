"""The datasets a job can train on: the local dataset store (imported files), the bundled candles, and
timeframes resampled from a lower one.

``load_dataset`` resolves ``"<SYMBOL>-<timeframe>"`` in this order: the store, then the bundled data, then a
resample of the nearest lower timeframe that divides it (store first, then bundled), e.g. 4h from 1h or 1h
from 5m. ``"bundled:<id>"`` names the bundled data alone. That rule is ``trainer.data.sources``' (the server
checks a job's dataset with it too).

Resampling is the standard OHLCV aggregation over buckets aligned to the Unix epoch (so 1d buckets start at
00:00 UTC, as exchanges do): open of the first lower bar present, high max, low min, close of the last lower bar
present, volume sum. A bucket becomes a candle when it holds at least ``MIN_SUB_BAR_SHARE`` (half) of its lower
bars (12 of 24 hours for 1d from 1h, 2 of 4 for 4h from 1h); a *partial* candle (some lower bars missing) is
counted in the dataset's report, and a bucket with fewer lower bars is left out: a gap of the higher timeframe,
which no sample bridges. The last bucket is left out too when the data end inside it (a candle still in
progress: its missing bars are the future, not an outage). Missing lower bars in exchange data are almost always
outages (no trades), so a partial candle holds every trade of its period: the 1d candles resampled from the
bundled 1h ones equal Binance's own daily candles on every overlapping day, partial ones included
(``tests/test_import_store.py``). What a partial candle means for returns: when its last lower bars are
missing its close is the last present close, so the log return *into* it covers a little less time and the one
*out of* it a little more (their sum, and every multi-bar return across them, is exact); its volume is that of
the bars present; its open, when the first lower bars are missing, is the first present open.

``merge_import`` merges a freshly imported table with the stored one (the new file wins on conflicting open
times) without writing, so the importer can judge the merged dataset first; ``save_import`` then writes the
parquet, the import report and, last, the metadata JSON, each atomically (``trainer.atomic``); the store layout
is in ``trainer.data.catalog``.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from trainer.atomic import atomic_write, atomic_write_json
from trainer.config import TIMEFRAME_SECONDS
from trainer.data.candles import CANDLE_COLUMNS, CandleError, ValidationReport, validate_candles
from trainer.data.catalog import BUNDLED_PREFIX, find_dataset, parse_dataset_id, stored_paths
from trainer.data.readers import CandleImportError
from trainer.data.sources import CandleSource, candle_sources

#: Least share of its lower bars a bucket needs to become a resampled candle (module doc).
MIN_SUB_BAR_SHARE = 0.5
#: How many past imports the metadata remembers.
IMPORT_HISTORY = 20


@dataclass
class Dataset:
    """A validated candle table (see ``trainer.data.candles``) with where it came from; ``partial_candles``: how
    many of its candles a resample built from only some of their lower bars (0 when not resampled); ``base``: the
    file that served it (of a lower timeframe when resampled)."""

    dataset_id: str
    symbol: str
    timeframe: str
    candles: pd.DataFrame
    source: str
    report: ValidationReport
    partial_candles: int = 0
    base: CandleSource | None = None


def _read_parquet(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    frame["open_time"] = frame["open_time"].dt.as_unit("ns")
    return frame


def _read_stored(dataset_id: str) -> pd.DataFrame | None:
    path = stored_paths(dataset_id)["candles"]
    return _read_parquet(path) if path.is_file() else None


def _read(source: CandleSource) -> pd.DataFrame:
    """The raw candle table of ``source`` (stored parquet or bundled feather), ``open_time`` a column."""
    if source.stored:
        return _read_parquet(source.path)
    return pd.read_feather(source.path).rename(columns={"date": "open_time"})


class Resampled(NamedTuple):
    """``resample_candles``' result: the candle table, how many of its candles are partial (built from fewer than
    all their lower bars), how many non-empty buckets were left out for too few lower bars, and whether the last
    bucket was left out as unfinished (the data end inside it)."""

    candles: pd.DataFrame
    partial: int
    dropped: int
    unfinished: bool


def resample_candles(
    candles: pd.DataFrame, source_timeframe: str, timeframe: str, min_share: float = MIN_SUB_BAR_SHARE
) -> Resampled:
    """Aggregate a clean candle table to the higher ``timeframe`` (rule in the module doc).

    A bucket of k lower bars becomes a candle when it holds at least ``ceil(min_share * k)`` of them (at least
    one); ``min_share`` is in (0, 1]. The last bucket is left out when the data end inside it. ``timeframe``'s
    length must be a whole multiple of ``source_timeframe``'s (raises ``ValueError`` otherwise, and for a
    ``min_share`` outside (0, 1]).
    """
    low, high = TIMEFRAME_SECONDS[source_timeframe], TIMEFRAME_SECONDS[timeframe]
    if high <= low or high % low:
        raise ValueError(f"cannot resample {source_timeframe} candles to {timeframe}")
    if not 0 < min_share <= 1:
        raise ValueError(f"min_share must be in (0, 1], not {min_share}")
    per_bucket = high // low
    needed = max(1, math.ceil(min_share * per_bucket - 1e-9))  # 1e-9: float error (0.7 * 10 > 7) adds no bar
    bucket = candles["open_time"].dt.floor(f"{high}s")
    grouped = candles.assign(bucket=bucket).groupby("bucket", sort=True)
    table = grouped.agg(
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        volume=("volume", "sum"),
        bars=("open", "size"),
        last_time=("open_time", "last"),
    )
    enough = (table["bars"] >= needed).to_numpy()
    # The table's last bucket, when the data end inside it, is a candle still in progress: left out.
    unfinished = np.zeros(len(table), dtype=bool)
    if len(table):
        unfinished[-1] = table["last_time"].iloc[-1] + pd.Timedelta(seconds=low) < table.index[-1] + pd.Timedelta(seconds=high)
    kept = enough & ~unfinished
    out = table.loc[kept, ["open", "high", "low", "close", "volume"]].rename_axis("open_time").reset_index()
    return Resampled(
        candles=out.loc[:, list(CANDLE_COLUMNS)],
        partial=int((kept & (table["bars"] < per_bucket).to_numpy()).sum()),
        dropped=int((~enough & ~unfinished).sum()),
        unfinished=bool(unfinished.any()),
    )


def load_dataset(symbol: str, timeframe: str, dataset: str | None = None) -> Dataset:
    """Load and validate the candles a job trains on: the dataset ``dataset`` if given, else the stored, bundled or
    resampled one for ``symbol`` + ``timeframe`` (resolution order: ``trainer.data.sources.candle_sources``).

    Raises ``CandleError`` when none exists (naming the command that imports one), when ``dataset`` is not a
    dataset id or names another symbol/timeframe than the job, or when the candles are invalid.
    """
    dataset_id = dataset or f"{symbol}-{timeframe}"
    try:
        id_symbol, id_timeframe, bundled_only = parse_dataset_id(dataset_id)
    except ValueError as exc:
        raise CandleError(str(exc)) from None
    if (id_symbol, id_timeframe) != (symbol, timeframe):
        raise CandleError(f"dataset {dataset_id!r} holds {id_symbol} {id_timeframe} candles, not {symbol} {timeframe}")
    found = None
    notes = []
    partial = 0
    for base in candle_sources(symbol, timeframe, bundled_only):  # the resolution rule: ``trainer.data.sources``
        if base.timeframe == timeframe:
            found = _read(base), base.label, base
            break
        source_timeframe = base.timeframe
        clean, _ = validate_candles(_read(base), source_timeframe, source=base.label)
        resampled = resample_candles(clean, source_timeframe, timeframe)
        if resampled.candles.empty:
            continue
        found = resampled.candles, f"resampled from {source_timeframe} ({base.label})", base
        partial = resampled.partial
        per_bucket = TIMEFRAME_SECONDS[timeframe] // TIMEFRAME_SECONDS[source_timeframe]
        notes.append(
            f"resampled from {source_timeframe}: {partial} partial {timeframe} candle(s) built from fewer than "
            f"{per_bucket} {source_timeframe} bars; {resampled.dropped} {timeframe} bucket(s) with under "
            f"{MIN_SUB_BAR_SHARE:.0%} of their bars left out as gaps"
            + (f"; the unfinished last {timeframe} candle left out" if resampled.unfinished else "")
        )
        break
    if found is None:
        raise CandleError(
            f"no dataset {dataset_id!r}: import one with `candlecast import FILE --symbol {symbol} --timeframe {timeframe}`"
        )
    raw, source, base = found
    candles, report = validate_candles(raw, timeframe, source=source)
    report.notes.extend(notes)
    return Dataset(dataset_id, symbol, timeframe, candles, source, report, partial, base)


def served_before(symbol: str, timeframe: str) -> dict | None:
    """What served ``<symbol>-<timeframe>`` while no dataset of that id is stored: ``{source, rows, note}``, the
    ``Dataset.source`` and candle count the bundled file or a resample gave, and the sentence an import that now
    stores the id (and so shadows them, by ``load_dataset``'s order) reports; None when nothing served it, or the id is
    stored already. Reads, and resamples, the candles that served it."""
    dataset_id = f"{symbol}-{timeframe}"
    if stored_paths(dataset_id)["candles"].is_file():
        return None
    try:
        served = load_dataset(symbol, timeframe)
    except CandleError:
        return None
    base = served.base
    origin = "stored" if base.stored else "bundled"
    if base.timeframe == timeframe:
        what = "the bundled candles"
        after = f" (they stay reachable as dataset {BUNDLED_PREFIX}{dataset_id})"
    else:
        what = f"resampled from the {origin} {base.timeframe} candles"
        after = ""
    note = (f"{dataset_id} was until now {what} ({len(served.candles):,} candles); jobs asking for {symbol} "
            f"{timeframe} now train on the stored dataset{after}")
    return {"source": served.source, "rows": len(served.candles), "note": note}


def _catalog_entry(dataset_id: str, symbol: str, timeframe: str, candles: pd.DataFrame, gaps: ValidationReport,
                   flat_rows: int, imports: list[dict], updated_at: str) -> dict:  # fmt: skip
    return {
        "id": dataset_id,
        "symbol": symbol,
        "timeframe": timeframe,
        "rows": len(candles),
        "start": candles["open_time"].iloc[0].isoformat(),
        "end": candles["open_time"].iloc[-1].isoformat(),
        "source": "imported",
        "path": str(stored_paths(dataset_id)["candles"]),
        "gaps": {"count": gaps.gaps, "missing_bars": gaps.missing_bars},
        "zero_volume_flat": flat_rows,
        "updated_at": updated_at,
        "imports": imports[-IMPORT_HISTORY:],
    }


class Merged(NamedTuple):
    """``merge_import``'s result: the dataset's candle table once the import is merged in (validated), its gaps,
    the merge summary ``{existing_rows, added, replaced, unchanged, rows_after}`` and ``between``: the gaps of the
    merged table with a stored candle on one side and one of the file's on the other, as ``{missing_bars, after,
    before}`` (ISO-8601 open times of the bars either side), oldest first (empty for a new dataset)."""

    candles: pd.DataFrame
    gaps: ValidationReport
    merge: dict
    between: list[dict]


def _gaps_between(merged: pd.DataFrame, candles: pd.DataFrame, timeframe: str) -> list[dict]:
    """The gaps of the sorted table ``merged`` whose two sides differ in origin: one bar from ``candles`` (the file),
    the other from the stored table (``Merged.between``)."""
    times = merged["open_time"]
    step = pd.Timedelta(seconds=TIMEFRAME_SECONDS[timeframe])
    from_file = times.isin(candles["open_time"]).to_numpy()
    gap = (times.diff().iloc[1:] > step).to_numpy() & (from_file[1:] != from_file[:-1])
    return [
        {"missing_bars": int(round((times.iloc[i + 1] - times.iloc[i]) / step)) - 1,
         "after": times.iloc[i].isoformat(), "before": times.iloc[i + 1].isoformat()}
        for i in np.flatnonzero(gap)
    ]  # fmt: skip


def merge_import(symbol: str, timeframe: str, candles: pd.DataFrame, source: str) -> Merged:
    """The stored ``<symbol>-<timeframe>`` with the clean table ``candles`` merged in, without writing anything
    (``source``: the file as the user named it, for a refusal). On an open time present in both, the new row wins.

    Raises ``CandleImportError`` when the merged table is not a valid candle table (e.g. the new bars are off the
    stored bars' grid).
    """
    dataset_id = f"{symbol}-{timeframe}"
    existing = _read_stored(dataset_id)
    merge = {"existing_rows": 0, "added": len(candles), "replaced": 0, "unchanged": 0, "rows_after": len(candles)}
    merged = candles
    if existing is not None:
        joined = existing.merge(candles, on="open_time", how="inner", suffixes=("_old", ""))
        same = np.ones(len(joined), dtype=bool)
        for column in CANDLE_COLUMNS[1:]:
            same &= (joined[f"{column}_old"] == joined[column]).to_numpy()
        merged = pd.concat([existing[~existing["open_time"].isin(candles["open_time"])], candles], ignore_index=True)
        merge.update(existing_rows=len(existing), added=len(candles) - len(joined), replaced=int((~same).sum()),
                     unchanged=int(same.sum()))  # fmt: skip
    try:
        merged, gaps = validate_candles(merged, timeframe, source=dataset_id)
    except CandleError as exc:
        raise CandleImportError(f"{source}: does not merge with the stored {exc}") from None
    merge["rows_after"] = len(merged)
    between = _gaps_between(merged, candles, timeframe) if existing is not None else []
    return Merged(merged, gaps, merge, between)


def save_import(symbol: str, timeframe: str, merged: Merged, report: dict) -> dict:
    """Write the ``merge_import`` result ``merged`` as the stored ``<symbol>-<timeframe>``, with the import
    ``report`` (its ``merge`` set to ``merged.merge``); returns the dataset's catalog entry."""
    dataset_id = f"{symbol}-{timeframe}"
    paths = stored_paths(dataset_id)
    candles = merged.candles
    flat = int(((candles["volume"] == 0) & (candles["high"] == candles["low"])).sum())  # high = low: open, close too
    updated_at = pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")
    previous = (find_dataset(dataset_id) or {}).get("imports", [])
    file_name = report["file"].replace("\\", "/").rsplit("/", 1)[-1]
    imports = previous + [{"file": file_name, "format": report["format"], "imported_at": updated_at,
                           "rows_kept": report["rows_kept"], "added": merged.merge["added"],
                           "replaced": merged.merge["replaced"]}]  # fmt: skip
    entry = _catalog_entry(dataset_id, symbol, timeframe, candles, merged.gaps, flat, imports, updated_at)
    buffer = io.BytesIO()
    candles.to_parquet(buffer, index=False)
    atomic_write(paths["candles"], lambda handle: handle.write(buffer.getvalue()))
    atomic_write_json(paths["report"], report | {"merge": merged.merge})
    atomic_write_json(paths["metadata"], entry)  # last: the catalog sees a dataset only once its candles are written
    return entry
