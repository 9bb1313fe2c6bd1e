"""What a job ran on, recorded so a later rerun or forecast can tell whether it is "the same": the dataset's
fingerprint, the software versions, the device and the seed (``provenance.json`` in the job folder, and
``metrics.json``'s ``provenance``).

The fingerprint is the SHA-256 of the candle table in a fixed binary layout: for each row, in time order, the
open time as int64 Unix milliseconds followed by open, high, low, close and volume as float64, all little-endian.
Two tables with the same fingerprint hold the same candles bit for bit, whatever file or format they came from.
"""

from __future__ import annotations

import hashlib
import platform
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainer import __version__
from trainer.atomic import atomic_write_json
from trainer.config import TrainingConfig
from trainer.paths import PROVENANCE_FILE

PRICE_COLUMNS = ("open", "high", "low", "close", "volume")


def _iso(value: pd.Timestamp) -> str:
    return value.isoformat().replace("+00:00", "Z")


def dataset_fingerprint(candles: pd.DataFrame) -> dict[str, Any]:
    """``{sha256, rows, first_open_time, last_open_time}`` of a validated candle table (module doc for the
    layout; times are ISO-8601 UTC). Raises ``ValueError`` for an empty table."""
    if candles.empty:
        raise ValueError("no candles to fingerprint")
    open_ms = (candles["open_time"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    table = np.empty((len(candles), 1 + len(PRICE_COLUMNS)), dtype="<f8")
    table[:, 1:] = candles[list(PRICE_COLUMNS)].to_numpy(np.float64)
    table[:, 0] = 0.0
    raw = table.view("<i8")
    raw[:, 0] = open_ms.to_numpy(np.int64)
    return {
        "sha256": hashlib.sha256(raw.tobytes()).hexdigest(),
        "rows": len(candles),
        "first_open_time": _iso(candles["open_time"].iloc[0]),
        "last_open_time": _iso(candles["open_time"].iloc[-1]),
    }


def job_provenance(config: TrainingConfig, candles: pd.DataFrame, device: str) -> dict[str, Any]:
    """The provenance of a job training ``config`` on ``candles`` on ``device`` (``"cpu"``, ``"cuda"``…):
    ``{dataset: {id, sha256, rows, first_open_time, last_open_time}, versions: {candlecast, python, torch,
    numpy}, device, seed}``."""
    import torch  # worker-side: only the job that trains records it

    return {
        "dataset": {"id": config.dataset or f"{config.symbol}-{config.timeframe}", **dataset_fingerprint(candles)},
        "versions": {
            "candlecast": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "device": device,
        "seed": config.seed,
    }


def write_provenance(job_dir: Path, provenance: dict[str, Any]) -> None:
    """Write ``provenance.json`` into ``job_dir`` atomically."""
    job_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(job_dir / PROVENANCE_FILE, provenance)
