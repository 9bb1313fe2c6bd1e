"""Which candle file serves a job's symbol and timeframe: the one resolution rule, for the worker
(``trainer.data.store.load_dataset`` reads and resamples what it names) and for the server (which answers 404 from
it before a job starts, without reading any candles).

Light on purpose (standard library, ``trainer.config`` and the catalog only; never pandas): the server imports it.

The rule, in order: the timeframe's own file, stored (imported) before bundled; else, for each lower timeframe
that divides it, nearest first, that timeframe's file (stored before bundled), to be resampled. A ``bundled:`` id
names the bundled file of the timeframe itself, never resampled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainer.config import TIMEFRAME_SECONDS
from trainer.data.catalog import bundled_entry, stored_paths


@dataclass(frozen=True)
class CandleSource:
    """One candle file: ``timeframe`` is the file's own (lower than the job's when it is to be resampled),
    ``stored`` whether it is an imported dataset (parquet) rather than bundled (feather), ``label`` how reports
    name it (``"imported:BTCUSDT-1h.parquet"``, ``"bundled:BTCUSDT-1h.feather"``)."""

    symbol: str
    timeframe: str
    path: Path
    stored: bool

    @property
    def label(self) -> str:
        return f"{'imported' if self.stored else 'bundled'}:{self.path.name}"


def own_source(symbol: str, timeframe: str, bundled_only: bool = False) -> CandleSource | None:
    """The file of ``symbol`` + ``timeframe`` itself: the stored one (unless ``bundled_only``), else the bundled
    one; None when neither exists."""
    if not bundled_only:
        stored = stored_paths(f"{symbol}-{timeframe}")["candles"]
        if stored.is_file():
            return CandleSource(symbol, timeframe, stored, stored=True)
    bundled = bundled_entry(symbol, timeframe)
    return CandleSource(symbol, timeframe, Path(bundled["path"]), stored=False) if bundled is not None else None


def candle_sources(symbol: str, timeframe: str, bundled_only: bool = False) -> list[CandleSource]:
    """The files that may serve ``symbol`` + ``timeframe``, in the order to try them (rule in the module doc): the
    timeframe's own file alone when it exists, else one file per lower timeframe that divides it, nearest first
    (resampling one may still yield no candle: the caller then tries the next). Empty when nothing can serve it.
    ``timeframe`` must be a key of ``TIMEFRAME_SECONDS`` (``KeyError`` otherwise)."""
    own = own_source(symbol, timeframe, bundled_only)
    if own is not None or bundled_only:
        return [own] if own is not None else []
    want = TIMEFRAME_SECONDS[timeframe]
    lower = sorted((tf for tf, s in TIMEFRAME_SECONDS.items() if s < want and want % s == 0),
                   key=TIMEFRAME_SECONDS.__getitem__, reverse=True)  # fmt: skip
    return [source for tf in lower if (source := own_source(symbol, tf)) is not None]
