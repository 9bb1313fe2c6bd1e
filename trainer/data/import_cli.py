"""``candlecast import FILE [--symbol S] [--timeframe TF] [--json]`` and ``candlecast datasets [--json]``.

``import`` cleans and stores one candle file (rules in ``trainer.data.importer``) and prints its import report.
With ``--json`` it prints exactly one JSON object on stdout::

    {"dataset": {"id", "symbol", "timeframe", "rows", "start", "end", "source", "path", "gaps": {"count",
                 "missing_bars"}, "zero_volume_flat", "updated_at", "imports": [...]},
     "report":  {"file", "format", "symbol", "symbol_from", "timeframe", "rows_read", "rows_kept",
                 "dropped": {"null", "impossible", "duplicate_identical", "duplicate_conflicting", "still_forming"},
                 "impossible_detail": {"non_finite", "non_positive_price", "high_below_low", "open_outside_range",
                                       "close_outside_range", "negative_volume"},
                 "units": {"s"|"ms"|"us"|"ns"|"datetime"|"datetime-naive"|"text"|"text-naive": rows},
                 "order": "oldest first"|"newest first"|"unsorted", "range": {"start", "end"},
                 "gaps": {"count", "missing_bars", "longest": {"missing_bars", "after", "before"}|null},
                 "zero_volume_flat": {"rows", "runs", "longest": {"bars", "first", "last"}|null},
                 "still_forming": {"open_time", "reason"}|null, "notes": [str],
                 "merge": {"existing_rows", "added", "replaced", "unchanged", "rows_after"},
                 "dataset_gaps": {"count", "missing_bars", "longest": {...}|null,
                                  "between": [{"missing_bars", "after", "before"}]}|null,
                 "shadowed": {"source", "rows"}|null}}

(``dataset_gaps``: the dataset's gaps after merging into stored candles, ``between`` those the merge left between
the stored candles and the file's; ``shadowed``: what served the id before this import created it.)

(``dataset`` is the catalog entry of ``trainer.data.catalog``; times are ISO-8601 UTC.) A refused file prints one
line ``candlecast: error: FILE: rule`` on stderr, writes nothing and exits 2 — with or without ``--json``.

``datasets`` lists the bundled and stored datasets; ``--json`` prints ``{"datasets": [catalog entry, ...]}``, the
body of ``GET /datasets``.
"""

from __future__ import annotations

import argparse
import json
import sys

from trainer.cli_common import OneLineParser
from trainer.data.catalog import list_datasets

_REASONS = {
    "null": "null or unreadable",
    "impossible": "impossible candle",
    "duplicate_identical": "identical duplicate",
    "duplicate_conflicting": "conflicting duplicate",
    "still_forming": "still forming",
}

_SYMBOL_FROM = {"file": "from the file's symbol column", "file name": "from the file name", "given": "as given"}


def _fail(message: str) -> int:
    print(f"candlecast: error: {message}", file=sys.stderr)
    return 2


def format_report(dataset: dict, report: dict) -> str:
    """The import report as the few lines ``candlecast import`` prints."""
    lines = [f"imported {report['file']} ({report['format']}) into {dataset['id']}"]
    lines += [f"  {label:<10} {text}" for label, text in report_rows(dataset, report)]
    return "\n".join(lines)


def report_rows(dataset: dict, report: dict) -> list[tuple[str, str]]:
    """The import report as ``(label, text)`` rows: what ``format_report`` prints under its first line, and the
    table the desktop app's Import data… dialog shows."""
    dropped = ", ".join(f"{_REASONS[k]} {n}" for k, n in report["dropped"].items() if n) or "none"
    units = ", ".join(f"{unit} {n}" for unit, n in report["units"].items())
    merge = report["merge"] or {}
    rows = [
        ("symbol", f"{report['symbol']} ({_SYMBOL_FROM[report['symbol_from']]})"),
        ("timeframe", f"{report['timeframe']} (from the bar spacing)"),
        ("rows", f"read {report['rows_read']}, kept {report['rows_kept']}; dropped: {dropped}"),
        ("range", f"{report['range']['start']} → {report['range']['end']} ({report['order']} in the file)"),
        ("times", units),
        ("gaps", f"{_gap_text(report['gaps'])} — kept as gaps, never filled"),
        ("flat fill", f"{report['zero_volume_flat']['rows']} zero-volume flat candle(s), kept and flagged"),
    ]
    if merge:
        rows.append((
            "stored",
            f"{dataset['path']}: {merge['rows_after']} rows (had {merge['existing_rows']} stored; added "
            f"{merge['added']}, replaced {merge['replaced']}, unchanged {merge['unchanged']})",
        ))
    if report.get("dataset_gaps"):
        rows.append(("gaps after", f"{_gap_text(report['dataset_gaps'])} in the merged dataset"))
    rows += [("note", note) for note in report["notes"]]
    return rows


def _gap_text(gaps: dict) -> str:
    """``{count, missing_bars, longest}`` as ``3 (12 missing bars; longest 8 after …)``."""
    text = f"{gaps['count']} ({gaps['missing_bars']} missing bars"
    if gaps["longest"]:
        text += f"; longest {gaps['longest']['missing_bars']} after {gaps['longest']['after']}"
    return text + ")"


def _import(args: argparse.Namespace) -> int:
    from trainer.data.candles import CandleError
    from trainer.data.importer import CandleImportError, import_file  # pandas: only when importing

    try:
        result = import_file(args.file, symbol=args.symbol, timeframe=args.timeframe)
    except CandleImportError as exc:
        return _fail(exc.with_option())  # the input the importer asks for, named as this command's option
    except CandleError as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps({"dataset": result.dataset, "report": result.report}, allow_nan=False))
    else:
        print(format_report(result.dataset, result.report))
    return 0


def _datasets(args: argparse.Namespace) -> int:
    entries = list_datasets()
    if args.json:
        print(json.dumps({"datasets": entries}))
        return 0
    print(f"{'id':<24} {'rows':>8}  {'start':<25} {'end':<25} {'source':<9} path")
    for e in entries:
        print(f"{e['id']:<24} {e['rows']:>8}  {e['start']:<25} {e['end']:<25} {e['source']:<9} {e['path']}")
    return 0


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``candlecast import`` (shared by the ``candlecast`` parser and this module's ``main``)."""
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("--symbol", help="exchange symbol, if the file does not name it")
    parser.add_argument("--timeframe", help="expected timeframe, checked against the file's spacing")
    parser.add_argument("--json", action="store_true", help="print the import report as JSON")


def run(args: argparse.Namespace) -> int:
    """Carry out ``candlecast import`` or ``candlecast datasets`` (by ``args.command``); return the exit code."""
    return _import(args) if args.command == "import" else _datasets(args)


def main(argv: list[str] | None = None) -> int:
    """``python -m trainer.data.import_cli FILE [--symbol S] [--timeframe TF] [--json]``: ``candlecast import``
    without the app's command line (the server runs imports this way, in a process of their own)."""
    parser = OneLineParser(prog="candlecast import", description="Import a candle file into the dataset store.")
    add_import_arguments(parser)
    args = parser.parse_args(argv)
    args.command = "import"
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
