"""Read one candle file of any supported kind into a raw, column-normalised table; validation is the importer's job.

The format is detected from the bytes, not the file name: gzip/zip containers are opened first, then an Arrow
IPC (``ARROW1``) or parquet (``PAR1``) magic, a JSON opening bracket, or else delimited text (its delimiter,
decimal mark, banner lines and header row found from its first lines). What the container shows
(``formats.Shape``) chooses the format: the formats and how each is recognised and read are the entries of
``trainer.data.formats.FORMATS``, and one reader per container does what the chosen entry says.

The reader only parses: it returns ``RawCandles`` whose ``frame`` has the columns ``time`` (as written: epoch
numbers, text, or datetime64), ``open``, ``high``, ``low``, ``close``, ``volume`` (numbers or text as written)
and, when the file has one, ``symbol``; rows stay in file order. Raises ``CandleImportError`` (one line naming
the file and what is missing) for unreadable or empty files and files without a time or price column.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from trainer.data import formats
from trainer.data.candles import CandleError
from trainer.data.formats import FormatSpec, Shape, normalise

#: Cells that mean "no value" in the files we read (CryptoDataDownload writes NULL, Yahoo null).
NA_VALUES = ["NULL", "null", "Null", "NaN", "nan", "NA", "N/A", "None", "none", "-", ""]

#: Normalised header names (lower case, runs of other characters → one space) per candle field, best first.
TIME_NAMES = (
    "open time", "open time ms", "opentime", "unix", "unix timestamp", "timestamp", "timestamp ms", "time",
    "ts", "t", "datetime", "date time", "date", "time open", "open date", "start", "start time", "time period start",
)  # fmt: skip
PRICE_NAMES = {
    "open": ("open", "o", "open price", "opening price"),
    "high": ("high", "h", "high price"),
    "low": ("low", "l", "low price"),
    "close": ("close", "c", "close price", "closing price", "last"),
}
VOLUME_NAMES = ("volume", "vol", "v", "base volume", "volume base")
SYMBOL_NAMES = ("symbol", "pair", "ticker", "market", "instrument")
#: Words that mark a volume column as quote-currency volume (we want the base asset's volume).
QUOTE_VOLUME_WORDS = ("quote", "currency", "usd", "usdt", "usdc", "busd", "fdusd", "dai", "tusd", "eur", "gbp", "try")
#: Quote assets recognised in file names such as ``BTC_USDT-1h.feather`` or ``btcusd_1-min_data.csv``.
QUOTE_ASSETS = ("USDT", "USDC", "BUSD", "FDUSD", "TUSD", "DAI", "USD", "EUR", "GBP", "JPY", "TRY", "BTC", "ETH", "BNB")
#: Quote assets that are fiat or stablecoins: a name pair ending in one of these is the likelier symbol.
FIAT_QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "TUSD", "DAI", "USD", "EUR", "GBP", "JPY", "TRY")
_JOINED_SYMBOL = re.compile(r"^(?P<base>[A-Za-z0-9]{2,10}?)(?P<quote>" + "|".join(QUOTE_ASSETS) + r")$", re.IGNORECASE)
_NAME_TIMEFRAME = re.compile(r"(?<![A-Za-z0-9])(?P<n>\d{1,2})[-_]?(?P<unit>m|min|minute|h|hour|d|day)s?(?![A-Za-z0-9])")
_NAME_CANDLE_TYPE = re.compile(r"-(?P<kind>futures|mark|index|premiumIndex|funding_rate)$")
_BANNER_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?(?:\s*(?:Z|UTC|[+-]\d{2}:?\d{2}))?)")
_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
#: A number with a fraction, written with a decimal comma (``10,5``: European spreadsheets) or a decimal point.
_DECIMAL_COMMA = re.compile(r"^\s*[-+]?\d*,\d+([eE][-+]?\d+)?\s*$")
_DECIMAL_POINT = re.compile(r"^\s*[-+]?\d*\.\d+([eE][-+]?\d+)?\s*$")
_HEAD_LINES = 25


class CandleImportError(CandleError):
    """A file that cannot be imported. The message is one line: the file, the rows (if any) and the rule, worded
    for any caller. ``field``: the import input that the message asks for (``"symbol"``), or None; each caller
    names it its own way (the CLI as ``--symbol``, the API as the request's ``symbol`` field)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def with_option(self) -> str:
        """The message for a command line: the input it asks for named as the option (``... with --symbol``)."""
        return f"{self} with --{self.field}" if self.field else str(self)


@dataclass
class RawCandles:
    """One parsed file, before any cleaning.

    ``frame``: columns ``time``, ``open``, ``high``, ``low``, ``close``, ``volume`` (+ ``symbol`` if the file has
    one) in file order, values as written. ``first_line``: 1-based line of the first data row for text files
    (row i is on line ``first_line + i``), else None. ``symbol_from_name``/``timeframe_from_name``: hints parsed
    from the file name. ``created_at``: the creation time a banner states (UTC), if any. ``top_row_forming``: why
    the top row can be a candle still forming (its format's ``FormatSpec.top_row_forming``), or None.
    """

    format: str
    frame: pd.DataFrame
    first_line: int | None = None
    symbol_from_name: str | None = None
    timeframe_from_name: str | None = None
    candle_type: str | None = None
    created_at: pd.Timestamp | None = None
    notes: list[str] = field(default_factory=list)
    top_row_forming: str | None = None


@dataclass
class _Sniff:
    """What the first bytes of a file say: container, kind and (for text) the first lines."""

    path: Path
    name: str  # the file name the data carries (a zip member's own name)
    compression: str | None  # "gzip", "zip" or None
    kind: str  # "arrow", "parquet", "json" or "text"
    head: list[str]


def _refuse(path: Path, message: str) -> CandleImportError:
    return CandleImportError(f"{path}: {message}")


def _zip_member(archive: zipfile.ZipFile) -> zipfile.ZipInfo | None:
    """The one file in ``archive`` (Binance's monthly downloads hold exactly one CSV), or None."""
    files = [m for m in archive.infolist() if not m.is_dir()]
    return files[0] if len(files) == 1 else None


def _sniff(path: Path) -> _Sniff:
    try:
        with open(path, "rb") as handle:
            magic = handle.read(8)
    except OSError as exc:
        raise _refuse(path, f"cannot read the file ({exc.strerror or exc})") from None
    if not magic:
        raise _refuse(path, "the file is empty")
    name, compression = path.name, None
    try:
        if magic[:2] == b"\x1f\x8b":
            compression = "gzip"
            name = re.sub(r"\.(gz|gzip)$", "", name, flags=re.IGNORECASE)
            with gzip.open(path, "rb") as handle:
                start = handle.read(64 * 1024)
        elif magic[:4] == b"PK\x03\x04":
            compression = "zip"
            with zipfile.ZipFile(path) as archive:
                member = _zip_member(archive)
                if member is None:
                    files = sum(not m.is_dir() for m in archive.infolist())
                    raise _refuse(path, f"a zip archive must hold exactly one candle file (it holds {files})")
                name = Path(member.filename).name
                with archive.open(member) as handle:
                    start = handle.read(64 * 1024)
        else:
            with open(path, "rb") as handle:
                start = handle.read(64 * 1024)
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise _refuse(path, f"cannot read the {compression} container ({exc})") from None
    if not start.strip():
        raise _refuse(path, "the file is empty")
    if start[:6] == b"ARROW1":
        return _Sniff(path, name, compression, "arrow", [])
    if start[:4] == b"PAR1":
        return _Sniff(path, name, compression, "parquet", [])
    if b"\x00" in start[:4096]:
        raise _refuse(path, "not a candle file (binary content that is neither Arrow/feather, parquet, gzip nor zip)")
    text = start.decode("utf-8-sig", errors="replace")
    if text.lstrip()[:1] in ("[", "{"):
        return _Sniff(path, name, compression, "json", [])
    lines = text.splitlines()
    if len(start) == 64 * 1024 and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut in the middle
    head = [line for line in lines[:_HEAD_LINES] if line.strip()]
    return _Sniff(path, name, compression, "text", head)


def _name_hints(name: str) -> tuple[str | None, str | None, str | None]:
    """Return (symbol, timeframe, candle type) that a file name such as ``BTC_USDT_USDT-1h-futures.feather`` gives."""
    stem = re.sub(r"(\.(csv|txt|json|jsongz|gz|feather|parquet|arrow|zip|head|excerpt))+$", "", name, flags=re.IGNORECASE)
    candle_type = None
    if match := _NAME_CANDLE_TYPE.search(stem):
        candle_type = match["kind"]
        stem = stem[: match.start()]
    timeframe = None
    if match := _NAME_TIMEFRAME.search(stem):
        unit = {"min": "m", "minute": "m", "hour": "h", "day": "d"}.get(match["unit"], match["unit"])
        timeframe = f"{int(match['n'])}{unit}"
    return _name_symbol(stem), timeframe, candle_type


def _name_symbol(stem: str) -> str | None:
    """The likeliest ``BASEQUOTE`` in a file name: a token such as ``BTCUSDT``/``btcusd`` or a pair of tokens such as
    ``BTC_USDT``. Ranked by: a fiat/stablecoin quote, an upper-case base (``binance_BTC`` is a vendor and a coin),
    then the rightmost.
    """
    tokens = [t for t in re.split(r"[^A-Za-z0-9]+", stem) if t]
    candidates = []
    for position, token in enumerate(tokens):
        if (match := _JOINED_SYMBOL.match(token)) and not match["base"].isdigit():
            candidates.append((match["base"], match["quote"].upper(), position))
        if position and token.upper() in QUOTE_ASSETS and re.fullmatch(r"[A-Za-z0-9]{2,10}", tokens[position - 1]):
            if not tokens[position - 1].isdigit():
                candidates.append((tokens[position - 1], token.upper(), position))
    candidates = [c for c in candidates if c[0].upper() != c[1]]  # BTC_USDT_USDT: the settle currency repeated
    if not candidates:
        return None
    base, quote, _ = max(candidates, key=lambda c: (c[1] in FIAT_QUOTES, c[0].isupper(), c[2]))
    return (base + quote).upper()


def _is_number(cell: str, decimal: str = ".") -> bool:
    return bool(_NUMBER.match(cell.replace(decimal, ".") if decimal != "." else cell))


def _split(line: str, delimiter: str) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter))


def _delimiter(head: list[str]) -> str:
    """The delimiter that splits the last sampled lines into the same number (≥ 5) of fields; of several, the one
    that splits the most of all the first lines (the header too) into that number, then the one with most fields.
    (A semicolon file with decimal commas, ``date;open;...`` over ``2020-09-20;10,5;...``, splits its rows on
    commas into as many fields as on semicolons; only semicolons split its header so.)"""
    sample = head[-min(len(head), 5) :]
    best, best_key = ",", (0, 0)
    for delimiter in (",", ";", "\t", "|"):
        counts = {len(_split(line, delimiter)) for line in sample}
        if len(counts) == 1 and (fields := counts.pop()) >= 5:
            key = (sum(len(_split(line, delimiter)) == fields for line in head), fields)
            if key > best_key:
                best, best_key = delimiter, key
    return best


def _decimal(head: list[str], delimiter: str) -> str:
    """The decimal mark of the numbers in the last sampled lines: ``","`` when the delimiter is not a comma and
    fractions are written ``10,5`` (none ``10.5``), else ``"."``."""
    if delimiter == ",":
        return "."
    cells = [cell for line in head[-min(len(head), 5) :] for cell in _split(line, delimiter)]
    comma = any(_DECIMAL_COMMA.match(cell) for cell in cells)
    return "," if comma and not any(_DECIMAL_POINT.match(cell) for cell in cells) else "."


def _candle_name(name: str) -> bool:
    """Whether ``name`` is named like a column of a candle table (time, price, volume or symbol)."""
    n = normalise(name)
    return (
        n in TIME_NAMES or n in SYMBOL_NAMES or n in VOLUME_NAMES or n.startswith(("volume", "vol "))
        or any(n in names for names in PRICE_NAMES.values())
    )  # fmt: skip


def _not_candles(path: Path, columns: int) -> CandleImportError:
    """The refusal of a table none of whose columns looks like a candle column. It names no column: such a "header"
    is most likely just the first line of some other file (``/etc/passwd``), and a refusal never echoes content."""
    return _refuse(path, f"not a candle table: none of its {columns} column(s) is named like a time, price or volume "
                         "column (expected a header such as open_time,open,high,low,close,volume)")  # fmt: skip


def _wanted(name: str) -> bool:
    """Whether column ``name`` can matter to ``_map_columns``; the others are never converted (big files read faster)."""
    n = normalise(name)
    return _candle_name(name) or n in ("", "unnamed 0", "index")


def _unique_names(cells: list[str]) -> list[str]:
    """Header cells made unique the way pandas does (``x``, ``x.1``); an empty cell is ``Unnamed: i``."""
    seen: Counter[str] = Counter()
    names = []
    for index, cell in enumerate(cells):
        name = cell.strip() or f"Unnamed: {index}"
        names.append(name if not seen[name] else f"{name}.{seen[name]}")
        seen[name] += 1
    return names


def _read_delimited(
    sniff: _Sniff, skip: int, delimiter: str, names: list[str], usecols: list[str], decimal: str = "."
) -> pd.DataFrame:
    """Read the columns ``usecols`` of the rows after the first ``skip`` lines, the columns being called ``names``;
    ``decimal``: the numbers' decimal mark (``","``: ``10,5`` is read as 10.5).

    pyarrow's CSV reader first (multi-threaded; unused columns are never converted), pandas' C engine when
    pyarrow cannot (ragged rows, a column whose type changes far down the file): it reads more and says which
    line fails.
    """
    try:
        if sniff.compression == "zip":
            with zipfile.ZipFile(sniff.path) as archive, archive.open(_zip_member(archive)) as source:
                table = _arrow_csv(source, skip, delimiter, names, usecols, decimal)
        else:
            with pa.input_stream(str(sniff.path), compression=sniff.compression) as source:
                table = _arrow_csv(source, skip, delimiter, names, usecols, decimal)
        return _decimal_points(table.to_pandas(), decimal)
    except (pa.ArrowException, OSError):
        pass
    try:
        # No names here: given names, pandas would quietly turn the surplus fields of a long row into an index.
        table = pd.read_csv(
            sniff.path, sep=delimiter, skiprows=skip, header=None, na_values=NA_VALUES, keep_default_na=False,
            compression=sniff.compression, engine="c", skip_blank_lines=True, dtype=object,
        )  # fmt: skip
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise _refuse(sniff.path, f"cannot parse the table ({detail})") from None
    if len(table.columns) != len(names):
        raise _refuse(sniff.path, f"rows have {len(table.columns)} fields but the header has {len(names)}")
    table.columns = names
    return _decimal_points(table[usecols], decimal)


def _decimal_points(table: pd.DataFrame, decimal: str) -> pd.DataFrame:
    """``table`` with the decimal mark ``decimal`` of its text columns written as a point, so the importer reads
    ``10,5`` as 10.5: pandas reads every cell as text, and pyarrow leaves a column as text when one of its cells is
    no number (``n/v``; the importer drops that row as unreadable)."""
    if decimal == ".":
        return table
    for column in table.columns:
        if pd.api.types.infer_dtype(table[column], skipna=True) == "string":
            table[column] = table[column].str.replace(decimal, ".", regex=False)
    return table


def _arrow_csv(source, skip: int, delimiter: str, names: list[str], usecols: list[str], decimal: str) -> pa.Table:
    return pa_csv.read_csv(
        source,
        read_options=pa_csv.ReadOptions(skip_rows=skip, column_names=names),
        parse_options=pa_csv.ParseOptions(delimiter=delimiter),
        convert_options=pa_csv.ConvertOptions(
            include_columns=usecols, null_values=NA_VALUES, strings_can_be_null=True, quoted_strings_can_be_null=True,
            decimal_point=decimal,
        ),
    )


def _pick_volume(columns: dict[str, str], base: str | None) -> str | None:
    """The base-asset volume column among ``columns`` (normalised name → original), or None."""
    for name in VOLUME_NAMES:
        if name in columns:
            return columns[name]
    candidates = [n for n in columns if n.startswith("volume") or n.startswith("vol ")]
    if base:
        for name in candidates:
            if name.split()[-1] == base.lower():
                return columns[name]
    plain = [n for n in candidates if not any(word in n.split() for word in QUOTE_VOLUME_WORDS)]
    return columns[plain[0]] if plain else None


def _base_asset(frame: pd.DataFrame, symbol_column: str | None) -> str | None:
    """The base asset of a ``BASE/QUOTE`` symbol column (e.g. ``BTC`` of ``BTC/USDT``), if it says."""
    if symbol_column is None:
        return None
    values = frame[symbol_column].dropna()
    if values.empty:
        return None
    parts = re.split(r"[/\-_:]", str(values.iloc[0]))
    return parts[0] if len(parts) > 1 else None


def _map_columns(frame: pd.DataFrame, path: Path, header: list[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Pick the time, price, volume and symbol columns of a named table; return the raw frame and notes.

    ``header``: every column name of the file, for messages (``frame`` may hold only the columns worth reading).
    """
    every = [str(c) for c in (header if header is not None else frame.columns)]
    if not any(_candle_name(c) for c in every):
        raise _not_candles(path, len(every))
    shown = ", ".join(every)  # a candle table's header: naming its columns says what is missing
    columns: dict[str, str] = {}
    for column in frame.columns:
        columns.setdefault(normalise(column), column)
    notes: list[str] = []
    time_column = next((columns[n] for n in TIME_NAMES if n in columns), None)
    if time_column is None:
        unnamed = next((c for c in frame.columns if normalise(c) in ("", "unnamed 0", "index")), None)
        if unnamed is not None and not pd.api.types.is_integer_dtype(frame[unnamed]):
            time_column = unnamed
            notes.append("times read from the unnamed first column (a pandas index)")
    if time_column is None:
        raise _refuse(path, f"no time column (columns: {shown}); expected one named "
                            "open_time, timestamp, unix, time or date")  # fmt: skip
    prices = {key: next((columns[n] for n in names if n in columns), None) for key, names in PRICE_NAMES.items()}
    missing = [key for key, column in prices.items() if column is None]
    if missing:
        raise _refuse(path, f"no {'/'.join(missing)} price column (columns: {shown})")
    symbol_column = next((columns[n] for n in SYMBOL_NAMES if n in columns), None)
    volume_column = _pick_volume(columns, _base_asset(frame, symbol_column))
    if volume_column is None:
        raise _refuse(path, f"no base-asset volume column (columns: {shown})")
    if normalise(volume_column) not in VOLUME_NAMES:
        notes.append(f"volume from the column {volume_column!r}")
    out = pd.DataFrame({"time": frame[time_column]})
    for key, column in prices.items():
        out[key] = frame[column]
    out["volume"] = frame[volume_column]
    if symbol_column is not None:
        out["symbol"] = frame[symbol_column]
    return out, notes


def _text_shape(sniff: _Sniff) -> tuple[Shape, int, str, str]:
    """Return (shape, banner lines to skip, delimiter, decimal mark) of a delimited text file, from its first
    lines."""
    head = sniff.head
    delimiter = _delimiter(head)
    decimal = _decimal(head, delimiter)
    fields = [len(_split(line, delimiter)) for line in head]
    width = Counter(fields[1:] or fields).most_common(1)[0][0]
    skip = 0
    while skip < min(3, len(head) - 1) and fields[skip] < width:
        skip += 1  # banner lines (a URL or "Created on ...") have fewer fields than the table
    first = _split(head[skip], delimiter)
    header = sum(_is_number(cell, decimal) for cell in first) < 4  # a candle row has at least 4 numeric prices
    banner = " ".join(head[:skip]).lower()
    return Shape(header, tuple(first) if header else (), frozenset({width}), banner), skip, delimiter, decimal


def _raw(spec: FormatSpec, sniff: _Sniff, table: pd.DataFrame, header: list[str] | None = None, **found) -> RawCandles:
    """What every format ends with: the candle columns of ``table`` picked by name (``_map_columns``; ``header``:
    the file's every column name), the format's name (its ``gzip_name`` when gzip-compressed) and notes.

    ``found``: what the container told (``first_line``, ``created_at``, ``notes``, which come first).
    """
    frame, mapped = _map_columns(table, sniff.path, header)
    name = spec.gzip_name if spec.gzip_name and sniff.compression == "gzip" else spec.name
    notes = found.pop("notes", []) + mapped + list(spec.notes)
    return RawCandles(name, frame, notes=notes, top_row_forming=spec.top_row_forming, **found)


def _read_text(sniff: _Sniff) -> RawCandles:
    shape, skip, delimiter, decimal = _text_shape(sniff)
    spec = formats.choose("text", shape)
    notes: list[str] = []
    if decimal != ".":
        notes.append(f"numbers written with a decimal comma ({delimiter!r}-separated; 10,5 read as 10.5)")
    created_at = None
    if skip:
        banner = " ".join(sniff.head[:skip])
        if match := _BANNER_TIME.search(banner):
            stamp = pd.to_datetime(match[1].replace("UTC", "").strip(), utc=True, errors="coerce")
            created_at = None if pd.isna(stamp) else stamp
        notes.append(f"skipped {skip} banner line(s): {banner.strip()[:80]!r}")
    width = len(_split(sniff.head[skip], delimiter))
    if not shape.header and width < 6:
        raise _refuse(sniff.path, f"no header and {width} columns; a headerless file needs time, open, high, low, close, volume")
    header = None
    if spec.positions:  # the leading columns by position; a header row, if any, is skipped
        names = list(spec.positions) + [f"extra {i}" for i in range(len(spec.positions), width)]
        table = _read_delimited(sniff, skip + int(shape.header), delimiter, names, list(spec.positions), decimal)
    else:
        header = _unique_names(list(shape.cells))
        wanted = [n for n in header if _wanted(n)]
        if not wanted:
            raise _not_candles(sniff.path, len(header))
        table = _read_delimited(sniff, skip + 1, delimiter, header, wanted, decimal)
    if table.empty:
        raise _refuse(sniff.path, "no data rows (only a header)")
    first_line = skip + (2 if shape.header else 1)
    return _raw(spec, sniff, table, header, first_line=first_line, created_at=created_at, notes=notes)


def _json_table(data: object, path: Path) -> tuple[FormatSpec, pd.DataFrame]:
    """Decoded JSON → (its format, its table): named columns from records, ``columns``/``split`` orients or a
    wrapper object; arrays of at least six items by the format's ``positions``."""
    if isinstance(data, dict):
        if {"columns", "data"} <= data.keys():  # pandas orient="split"
            table = pd.DataFrame(data["data"], columns=data["columns"])
        else:
            lists = [value for value in data.values() if isinstance(value, list)]
            if len(lists) == 1 and len(data) <= 3 and lists[0] and isinstance(lists[0][0], (list, dict)):
                return _json_table(lists[0], path)  # a wrapper such as {"symbol": ..., "data": [...]}
            if not data or not all(isinstance(value, (list, dict)) for value in data.values()):
                raise _refuse(path, "JSON object without a list of candles")
            table = pd.DataFrame(data)  # orient="columns" or a dict of lists
    elif not isinstance(data, list) or not data:
        raise _refuse(path, "no candles in the JSON (expected a non-empty array)")
    elif all(isinstance(row, dict) for row in data[:100]):
        table = pd.DataFrame.from_records(data)
    elif all(isinstance(row, list) and len(row) >= 6 for row in data[:100]):
        spec = formats.choose("json", Shape(False, widths=frozenset(len(row) for row in data[:100])))
        columns = len(spec.positions)
        return spec, pd.DataFrame([row[:columns] for row in data], columns=list(spec.positions))
    else:
        raise _refuse(path, "JSON array whose items are neither [time, open, high, low, close, volume] arrays nor objects")
    return formats.choose("json", _named(table)), table


def _named(table: pd.DataFrame) -> Shape:
    """The shape of a table that names its columns (JSON records, Arrow, parquet)."""
    return Shape(True, tuple(str(c) for c in table.columns), frozenset({len(table.columns)}))


def _read_json(sniff: _Sniff) -> RawCandles:
    try:
        if sniff.compression == "zip":
            with zipfile.ZipFile(sniff.path) as archive:
                raw = archive.read(_zip_member(archive))
        elif sniff.compression == "gzip":
            with gzip.open(sniff.path, "rb") as handle:
                raw = handle.read()
        else:
            raw = sniff.path.read_bytes()
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            data = pd.read_json(io.BytesIO(raw), lines=True).to_dict("records")  # JSON lines
    except (OSError, ValueError) as exc:
        raise _refuse(sniff.path, f"not valid JSON ({str(exc).splitlines()[0]})") from None
    try:
        spec, table = _json_table(data, sniff.path)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, CandleImportError):
            raise
        raise _refuse(sniff.path, f"cannot read the JSON as a table ({str(exc).splitlines()[0]})") from None
    return _raw(spec, sniff, table)


def _read_table(sniff: _Sniff) -> RawCandles:
    """An Arrow IPC (feather) or parquet table."""
    try:
        if sniff.kind == "arrow":
            table = pd.read_feather(sniff.path if sniff.compression is None else io.BytesIO(_decompressed(sniff)))
        else:
            table = pd.read_parquet(sniff.path if sniff.compression is None else io.BytesIO(_decompressed(sniff)))
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for damaged files
        raise _refuse(sniff.path, f"cannot read the {sniff.kind} table ({str(exc).splitlines()[0]})") from None
    if isinstance(table.index, pd.DatetimeIndex):
        table = table.reset_index()
    spec = formats.choose(sniff.kind, _named(table))
    if table.empty:
        raise _refuse(sniff.path, "no data rows (an empty table)")
    return _raw(spec, sniff, table)


def _decompressed(sniff: _Sniff) -> bytes:
    if sniff.compression == "gzip":
        with gzip.open(sniff.path, "rb") as handle:
            return handle.read()
    with zipfile.ZipFile(sniff.path) as archive:
        return archive.read(_zip_member(archive))


#: The reader of each container ``_sniff`` tells apart (``formats.CONTAINERS``).
_READERS = {"text": _read_text, "json": _read_json, "arrow": _read_table, "parquet": _read_table}

def read_candles(path: str | Path) -> RawCandles:
    """Detect the format of ``path`` from its content and parse it into a ``RawCandles`` (see the module doc).

    Raises ``CandleImportError`` for a missing, unreadable, empty or unrecognised file, or one without a time,
    open/high/low/close or volume column.
    """
    path = Path(path)
    if not path.is_file():
        reason = "no such file" if not path.exists() else "a directory, not a file" if path.is_dir() else "not a file"
        raise _refuse(path, reason)
    sniff = _sniff(path)
    raw = _READERS[sniff.kind](sniff)
    raw.symbol_from_name, raw.timeframe_from_name, raw.candle_type = _name_hints(sniff.name)
    if raw.frame.empty:
        raise _refuse(path, "no data rows")
    return raw
