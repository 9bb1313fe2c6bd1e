"""The datasets a job can train on: the bundled BTCUSDT 1 h candles and (later) the local dataset store."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from trainer.data.candles import CandleError, ValidationReport, validate_candles
from trainer.paths import resource_path

BUNDLED = {("BTCUSDT", "1h"): resource_path("trainer", "data", "bundled", "BTCUSDT-1h.feather")}


@dataclass
class Dataset:
    """A validated candle table (see ``trainer.data.candles``) with where it came from."""

    dataset_id: str
    symbol: str
    timeframe: str
    candles: pd.DataFrame
    source: str
    report: ValidationReport


def load_dataset(symbol: str, timeframe: str, dataset: str | None = None) -> Dataset:
    """Load and validate the candles a job trains on: the dataset ``dataset`` if given, else the stored or
    bundled one for ``symbol`` + ``timeframe``.

    Raises ``CandleError`` when none exists (naming the command that imports one) or the candles are invalid.
    """
    dataset_id = dataset or f"{symbol}-{timeframe}"
    path = BUNDLED.get((symbol, timeframe))
    if path is None or dataset_id != f"{symbol}-{timeframe}":
        raise CandleError(
            f"no dataset {dataset_id!r}: import one with `candlecast import FILE --symbol {symbol} --timeframe {timeframe}`"
        )
    raw = pd.read_feather(path).rename(columns={"date": "open_time"})
    candles, report = validate_candles(raw, timeframe, source=path.name)
    return Dataset(dataset_id, symbol, timeframe, candles, f"bundled:{path.name}", report)

