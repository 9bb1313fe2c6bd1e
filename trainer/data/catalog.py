"""What datasets exist: the bundled ones and those in the local store, read from their small metadata JSON files.

Light on purpose (standard library and ``trainer.paths`` only, never pandas or numpy): the server answers
``GET /datasets`` from here without loading any candles.

Store layout (``paths.datasets_dir()``), one dataset per ``<SYMBOL>-<timeframe>``:
``<id>.parquet`` (the candle table), ``<id>.json`` (the metadata below, written last) and
``<id>.import-report.json`` (the report of the latest import).

A catalog entry (one dict per dataset): ``id`` (``"BTCUSDT-1h"``; bundled ones ``"bundled:BTCUSDT-1h"``),
``symbol``, ``timeframe``, ``rows`` (int), ``start``/``end`` (ISO-8601 UTC open times of the first/last candle),
``source`` (``"imported"`` or ``"bundled"``), ``path`` (the candle file); stored datasets also carry ``gaps``
(``{count, missing_bars}``), ``zero_volume_flat`` (rows), ``updated_at`` and ``imports`` (the latest imported files).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from trainer.config import DATASET_ID_PATTERN
from trainer.paths import datasets_dir, resource_path

log = logging.getLogger(__name__)

#: Datasets shipped inside the app; tests check these facts against the file itself.
BUNDLED_DATASETS: tuple[dict, ...] = (
    {
        "id": "bundled:BTCUSDT-1h",
        "symbol": "BTCUSDT",
        "timeframe": "1h",
        "rows": 58419,
        "start": "2017-08-17T04:00:00+00:00",
        "end": "2024-04-21T14:00:00+00:00",
        "source": "bundled",
        "file": "BTCUSDT-1h.feather",
    },
)
BUNDLED_PREFIX = "bundled:"
_ID = re.compile(DATASET_ID_PATTERN)


def parse_dataset_id(dataset_id: str) -> tuple[str, str, bool]:
    """Split ``"BTCUSDT-1h"`` / ``"bundled:BTCUSDT-1h"`` into (symbol, timeframe, bundled).

    Raises ``ValueError`` for anything else (which also keeps ids from naming paths outside the store).
    """
    match = _ID.fullmatch(dataset_id)
    if not match:
        raise ValueError(f"not a dataset id: {dataset_id!r} (expected SYMBOL-timeframe, e.g. BTCUSDT-1h)")
    prefix, symbol, timeframe = match.groups()
    return symbol, timeframe, prefix is not None


def stored_paths(dataset_id: str) -> dict[str, Path]:
    """The files of the stored dataset ``dataset_id``: ``candles`` (parquet), ``metadata`` and ``report`` (JSON)."""
    parse_dataset_id(dataset_id)
    folder = datasets_dir()
    return {
        "candles": folder / f"{dataset_id}.parquet",
        "metadata": folder / f"{dataset_id}.json",
        "report": folder / f"{dataset_id}.import-report.json",
    }


def bundled_entry(symbol: str, timeframe: str) -> dict | None:
    """The catalog entry of the bundled dataset for ``symbol`` + ``timeframe``, or None."""
    for entry in BUNDLED_DATASETS:
        if entry["symbol"] == symbol and entry["timeframe"] == timeframe:
            path = resource_path("trainer", "data", "bundled", entry["file"])
            return {k: v for k, v in entry.items() if k != "file"} | {"path": str(path)}
    return None


def _read_metadata(path: Path) -> dict | None:
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        parse_dataset_id(entry["id"])
        return entry
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("skipping unreadable dataset metadata %s: %s", path, exc)
        return None


def find_dataset(dataset_id: str) -> dict | None:
    """The catalog entry of ``dataset_id`` (stored or ``bundled:``), or None when there is none or the id is invalid."""
    try:
        symbol, timeframe, bundled = parse_dataset_id(dataset_id)
    except ValueError:
        return None
    if bundled:
        return bundled_entry(symbol, timeframe)
    metadata = stored_paths(dataset_id)["metadata"]
    return _read_metadata(metadata) if metadata.is_file() else None


def list_datasets() -> list[dict]:
    """Every dataset a job can train on: the bundled ones first, then the stored ones sorted by id."""
    entries = [bundled_entry(e["symbol"], e["timeframe"]) for e in BUNDLED_DATASETS]
    for parquet in sorted(datasets_dir().glob("*.parquet")):
        metadata = parquet.with_suffix(".json")
        if metadata.is_file() and (entry := _read_metadata(metadata)) is not None:
            entries.append(entry)
    return entries
