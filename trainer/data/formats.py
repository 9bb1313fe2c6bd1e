"""The candle file formats the importer knows, one declarative entry each (``FORMATS``), and how one is chosen.

``trainer.data.readers`` opens a file's container (text, JSON, Arrow IPC/feather or parquet), looks at its shape
(``Shape``: whether it names its columns, the names, the fields per row, a text banner) and takes the first entry
of ``FORMATS`` for that container one of whose ``Sign``\\ s holds. The entry then says how its columns are read:
by name (any header naming a time column and open/high/low/close/volume, matched by ``readers``' name lists), or
by position (``positions``), plus what every file of the format adds (notes, a still-forming top row). Times are
never the format's business: the importer decides the unit of every epoch number from its magnitude (rule 1 of
``trainer.data.importer``); ``about`` only says how a format writes them. Symbol and timeframe hints come from the
file name for every format. A new format is one entry here, placed before the entries it must win over.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The 12 columns of Binance's klines (data.binance.vision CSVs and the REST API's arrays), in order.
BINANCE_KLINE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
    "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)  # fmt: skip
#: The six candle fields in the order positional formats write them.
OHLCV = ("time", "open", "high", "low", "close", "volume")
CONTAINERS = ("text", "json", "arrow", "parquet")


def normalise(name: object) -> str:
    """A column name for matching: lower case, each run of other characters one space (``Volume_(BTC)`` →
    ``volume btc``)."""
    return re.sub(r"[^a-z0-9]+", " ", str(name).lower()).strip()


@dataclass(frozen=True)
class Shape:
    """What a file shows before its format is chosen.

    ``header``: whether it names its columns (a header row, JSON records, an Arrow/parquet schema); ``cells``:
    the names as written (empty without a header); ``widths``: the fields per row (text: the most common count;
    JSON arrays: every length among the first 100); ``banner``: the lines above a text table, lower case.
    """

    header: bool
    cells: tuple[str, ...] = ()
    widths: frozenset[int] = frozenset()
    banner: str = ""


@dataclass(frozen=True)
class Sign:
    """One way a file shows its format; every condition given must hold.

    ``header``: the file names its columns (True) or not; ``width``: every row has exactly this many fields;
    ``starts``: the normalised names begin with these; ``starts_as_written``: the names as written begin with
    these; ``has``: these normalised names are all among them; ``banner``: the banner contains this (lower case).
    """

    header: bool = True
    width: int | None = None
    starts: tuple[str, ...] = ()
    starts_as_written: tuple[str, ...] = ()
    has: frozenset[str] = frozenset()
    banner: str | None = None

    def holds(self, shape: Shape) -> bool:
        """Whether ``shape`` shows this sign."""
        names = [normalise(cell) for cell in shape.cells]
        return (
            shape.header == self.header
            and (self.width is None or shape.widths == {self.width})
            and names[: len(self.starts)] == list(self.starts)
            and list(shape.cells[: len(self.starts_as_written)]) == list(self.starts_as_written)
            and self.has <= set(names)
            and (self.banner is None or self.banner in shape.banner)
        )  # fmt: skip


@dataclass(frozen=True)
class FormatSpec:
    """One file format.

    ``name``: the import report's ``format``; ``container``: one of ``CONTAINERS``; ``about``: where such files
    come from and how they write times (documentation); ``signs``: any one recognises the format (the default:
    any file of the container that names its columns); ``positions``: the leading columns' names when they are
    read by position (the rest are ignored, and so is a header row); None reads columns by their names.
    ``gzip_name``: the report's ``format`` when the file is gzip-compressed; ``notes``: report notes every file
    of the format gets; ``top_row_forming``: why the file's top row can be the candle that was still open when it
    was written (the importer's still-forming rule), or None.
    """

    name: str
    container: str
    about: str
    signs: tuple[Sign, ...] = (Sign(),)
    positions: tuple[str, ...] | None = None
    gzip_name: str | None = None
    notes: tuple[str, ...] = ()
    top_row_forming: str | None = None


#: Every format, per container in the order they are tried (the first whose sign holds wins).
FORMATS: tuple[FormatSpec, ...] = (
    FormatSpec(
        "binance-klines", "text",
        "Binance public data (data.binance.vision): 12 columns, spot without a header, USD-M futures with the "
        "open_time,...,ignore header; epoch ms (spot µs from 2025-01-01)",
        signs=(Sign(header=False, width=12), Sign(starts=tuple(normalise(c) for c in BINANCE_KLINE_COLUMNS))),
        positions=BINANCE_KLINE_COLUMNS[:6],
    ),
    FormatSpec(
        "cryptodatadownload", "text",
        "CryptoDataDownload: a URL or 'Created on' banner, unix,date,symbol,... or 'Unix Timestamp' header, rows "
        "newest first; epoch s and ms mixed (old files: '2020-04-14 11-AM' dates)",
        signs=(Sign(banner="cryptodatadownload"), Sign(banner="created on"), Sign(has=frozenset({"unix", "symbol"})),
               Sign(has=frozenset({"unix timestamp"}))),  # fmt: skip
        top_row_forming="CryptoDataDownload's top row is the candle that was open when the file was made",
    ),
    FormatSpec(
        "yahoo-finance", "text",
        "Yahoo Finance download: Date,Open,High,Low,Close,Adj Close,Volume; dates without a zone (UTC days)",
        signs=(Sign(has=frozenset({"adj close"})),),
        notes=("Yahoo Finance volume is in the quote currency (USD)",),
    ),
    FormatSpec(
        "kaggle-bitstamp", "text",
        "Kaggle's Bitstamp minutes: Timestamp,Open,High,Low,Close,Volume... (Volume_(BTC), Weighted_Price); epoch "
        "s written as floats",
        signs=(Sign(starts=("timestamp", "open", "high", "low", "close"), starts_as_written=("Timestamp",)),),
    ),
    FormatSpec(
        "pandas-csv", "text", "DataFrame.to_csv: an empty or 'Unnamed: 0' first header cell (the index)",
        signs=(Sign(starts=("",)), Sign(starts=("unnamed 0",))),
    ),
    FormatSpec("generic-csv", "text", "any delimited text whose header names a time column and open/high/low/close/volume"),
    FormatSpec(
        "headerless-csv", "text", "delimited text without a header: time, open, high, low, close, volume, ...",
        signs=(Sign(header=False),), positions=OHLCV,
        notes=("no header: columns read as time, open, high, low, close, volume",),
    ),
    FormatSpec(
        "freqtrade-json", "json", "freqtrade's json/jsongz: an array of [open_time_ms, open, high, low, close, volume]",
        signs=(Sign(header=False, width=6),), positions=OHLCV, gzip_name="freqtrade-jsongz",
    ),
    FormatSpec(
        "kline-array-json", "json", "Binance REST klines: arrays of the 12 kline fields (epoch ms)",
        signs=(Sign(header=False),), positions=BINANCE_KLINE_COLUMNS[:6],
    ),
    FormatSpec("generic-json", "json", "JSON records, columns, split, lines, or a wrapper object holding one of those"),
    FormatSpec(
        "freqtrade-feather", "arrow", "freqtrade's feather: date (datetime64 UTC),open,high,low,close,volume",
        signs=(Sign(starts=("date", "open", "high", "low", "close", "volume")),),
    ),
    FormatSpec(
        "freqtrade-parquet", "parquet", "freqtrade's parquet: date (datetime64 UTC),open,high,low,close,volume",
        signs=(Sign(starts=("date", "open", "high", "low", "close", "volume")),),
    ),
    FormatSpec("feather", "arrow", "any Arrow IPC table, read by column name"),
    FormatSpec("parquet", "parquet", "any parquet table, read by column name"),
)


def choose(container: str, shape: Shape) -> FormatSpec:
    """The first entry of ``FORMATS`` for ``container`` one of whose signs ``shape`` shows.

    Raises ``LookupError`` when none does: each container has catch-all entries (for text and JSON one with a
    header and one without), so only a broken ``FORMATS`` raises.
    """
    for spec in FORMATS:
        if spec.container == container and any(sign.holds(shape) for sign in spec.signs):
            return spec
    raise LookupError(f"no {container} format fits {shape}")
