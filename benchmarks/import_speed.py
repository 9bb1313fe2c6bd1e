"""How fast ``candlecast import`` reads a big file: a 1,000,000-row Binance 1 m klines CSV (headerless, 12 columns,
ms times, the spot layout), generated in a temp dir, imported into a temp ``CANDLECAST_HOME``.

Run: ``.venv/bin/python benchmarks/import_speed.py [--rows N]``. Prints the file size, the seconds of the whole
import (detect, parse, clean, validate, write parquet + metadata) and rows per second. Figures go in
``docs/benchmarks.md`` ("Import").
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def write_klines(path: Path, rows: int, seed: int = 0) -> None:
    """Write ``rows`` consecutive 1 m Binance spot klines (a random walk from 42,000) to ``path``."""
    rng = np.random.default_rng(seed)
    open_ms = 1704067200000 + 60_000 * np.arange(rows, dtype=np.int64)
    close = 42_000.0 * np.exp(np.cumsum(rng.normal(0, 5e-4, rows)))
    open_ = np.concatenate([[42_000.0], close[:-1]])
    spread = np.abs(rng.normal(0, 3e-4, rows)) * close
    volume = rng.gamma(2.0, 15.0, rows)
    frame = pd.DataFrame({
        "open_time": open_ms,
        "open": open_.round(2), "high": (np.maximum(open_, close) + spread).round(2),
        "low": (np.minimum(open_, close) - spread).round(2), "close": close.round(2), "volume": volume.round(5),
        "close_time": open_ms + 59_999, "quote_volume": (volume * close).round(8),
        "count": rng.integers(100, 5000, rows), "taker_buy_volume": (volume / 2).round(5),
        "taker_buy_quote_volume": (volume * close / 2).round(8), "ignore": 0,
    })  # fmt: skip
    frame.to_csv(path, header=False, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="candlecast-bench-") as folder:
        os.environ["CANDLECAST_HOME"] = str(Path(folder) / "home")
        from trainer.data.importer import import_file

        path = Path(folder) / "BTCUSDT-1m-2024-01.csv"
        write_klines(path, args.rows)
        start = time.perf_counter()
        result = import_file(path)
        seconds = time.perf_counter() - start
        assert result.report["rows_kept"] == args.rows, result.report
        size = path.stat().st_size / 2**20
        print(f"import of {args.rows:,} Binance 1m klines ({size:.0f} MiB CSV) into {result.dataset_id}: "
              f"{seconds:.2f} s, {args.rows / seconds:,.0f} rows/s")  # fmt: skip


if __name__ == "__main__":
    main()
