"""``candlecast predict | jobs | compare | rerun``: what a user asks a running Candlecast server about trained jobs, over its
REST API (``desktop_app.api_client``), exactly as ``curl`` would. The server is ``--server URL`` (default:
``CANDLECAST_URL``, else ``http://127.0.0.1:$CANDLECAST_PORT``, else the server running on this data folder, as
its ``server.json`` says, else port 8000); ``CANDLECAST_TOKEN`` is sent as the bearer token. A refusal is the server's one-line problem on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

from desktop_app.job_columns import OUTCOME_TEXT, ended_because
from trainer.cli_common import UserError
from trainer.key_figures import COMPARE_ROWS, KEY_FIGURES, SIGNED_FIGURES, best_index, unequal_test_bars


def add_server_option(parser: argparse.ArgumentParser) -> None:
    """``--server URL`` of every remote subcommand."""
    parser.add_argument("--server", metavar="URL", default=None,
                        help="the running server (default CANDLECAST_URL, else 127.0.0.1:CANDLECAST_PORT, else the "
                             "server running on this data folder, else 127.0.0.1:8000)")


def add_arguments(sub: Any) -> None:
    """The ``predict``, ``jobs``, ``compare`` and ``rerun`` subparsers on ``sub`` (argparse subparsers)."""
    predict = sub.add_parser("predict", help="forecast the latest closed candles with a trained job's model")
    predict.add_argument("job", metavar="JOB", help="job id")
    source = predict.add_mutually_exclusive_group()
    source.add_argument("--data", metavar="FILE", help="candles from this file (default: the job's dataset)")
    source.add_argument("--dataset", metavar="ID", help="candles of this dataset id (see candlecast datasets)")
    predict.add_argument("--last", metavar="N", type=int, default=1, help="forecast the latest N candles (default 1)")
    predict.add_argument("--fold", metavar="K", type=int,
                         help="use walk-forward fold K's model (default: the model refitted on all the job's data)")
    predict.add_argument("--json", action="store_true", help="print the answer as JSON")
    add_server_option(predict)

    jobs = sub.add_parser("jobs", help="list the server's jobs with their key figures")
    jobs.add_argument("--status", default=None, help="only jobs with this status")
    jobs.add_argument("--symbol", default=None, help="only jobs of this symbol")
    jobs.add_argument("--timeframe", default=None, help="only jobs of this timeframe")
    jobs.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    jobs.add_argument("--offset", type=int, default=0, help="skip this many (the next page)")
    jobs.add_argument("--json", action="store_true", help="print the list as JSON (with each job's config)")
    add_server_option(jobs)

    compare = sub.add_parser("compare", help="2 to 4 completed jobs side by side, with a test of each pair's p_up")
    compare.add_argument("jobs", metavar="JOB", nargs="+", help="job ids (2 to 4)")
    compare.add_argument("--json", action="store_true", help="print the answer as JSON")
    add_server_option(compare)

    rerun = sub.add_parser("rerun", help="start a new job with a job's config on the same dataset")
    rerun.add_argument("job", metavar="JOB", help="job id")
    rerun.add_argument("--allow-changed-data", action="store_true", help="rerun even if the dataset changed since")
    rerun.add_argument("--json", action="store_true", help="print the answer as JSON")
    add_server_option(rerun)


def server_url(given: str | None) -> str:
    """The server's base URL (module doc)."""
    if given:
        return given.rstrip("/")
    if os.environ.get("CANDLECAST_URL"):
        return os.environ["CANDLECAST_URL"].rstrip("/")
    if os.environ.get("CANDLECAST_PORT"):
        return f"http://127.0.0.1:{os.environ['CANDLECAST_PORT']}"
    from embedded_server.folder_lock import read_holder
    from trainer import paths

    # e.g. `candlecast serve --port 0` on the same data folder (a crashed server's stale URL fails to connect, and
    # the error names it)
    holder = read_holder(paths.data_dir())
    return holder.url.rstrip("/") if holder.url else "http://127.0.0.1:8000"


def _fmt(value: Any, signed: bool = False, digits: int = 4) -> str:
    """A table cell: ``-`` for None; a float with ``digits`` decimals below 10, else 2, with a sign if ``signed``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:{'+' if signed else ''}.{digits if abs(value) < 10 else 2}f}"
    return str(value)


def _significant(value: Any, signed: bool = False) -> str:
    """A comparison cell: floats to 5 significant digits (losses such as CRPS are about 0.003, and two jobs
    differ in the fourth digit), ``-`` for None."""
    if isinstance(value, float):
        return f"{value:{'+' if signed else ''}.5g}"
    return "-" if value is None else str(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def predict_table(result: dict[str, Any]) -> str:
    """The forecasts of a ``PredictResult`` as a text table."""
    header = ["open time", "close", "p_up", "p_up raw", "mu", "sigma", "80% price interval", "horizon end"]
    rows = [
        [f["open_time"], f"{f['close']:.2f}", f"{f['p_up']:.4f}", f"{f['p_up_raw']:.4f}", f"{f['mu']:+.6f}",
         f"{f['sigma']:.6f}", "{:.2f} .. {:.2f}".format(*f["price_intervals"]["80"]), f["horizon_end"]]
        for f in result["forecasts"]
    ]
    head = (f"job {result['job_id']}: {result['symbol']} {result['timeframe']}, horizon {result['horizon']} bar(s), "
            f"{result['distribution']}; candles from {result['source']}; trained up to {result['training_end']}")
    notes = "".join(f"\nnote: {sentence}" for sentence in result.get("fallbacks", []))
    return head + notes + "\n" + _table(header, rows)


#: Characters of the "why it ended" column: a longer reason is cut at a word, with an ellipsis (``GET /jobs/ID``
#: has it whole).
WHY_WIDTH = 80


def jobs_table(listing: dict[str, Any]) -> str:
    """A ``GET /jobs?include=metrics`` page as a text table."""
    keys = ["direction", "distribution", "crps_skill_garch", "log_loss_skill_conditional", "ece"]
    header = ["job", "status", "symbol", "tf", "h", "model", *(KEY_FIGURES[k] for k in keys), "duration s",
              "why it ended"]
    rows = []
    for job in listing["jobs"]:
        figures = job.get("metrics") or {}
        rows.append([
            job["job_id"], job["status"], job["symbol"], job["timeframe"], _fmt(job.get("horizon")),
            _fmt(job.get("model")),
            *(OUTCOME_TEXT.get(figures.get(k), "-") if k in ("direction", "distribution")
              else _fmt(figures.get(k), k in SIGNED_FIGURES) for k in keys),
            "-" if job.get("duration_s") is None else f"{job['duration_s']:.1f}",
            textwrap.shorten(ended_because(job) or "", WHY_WIDTH, placeholder=" …"),
        ])
    footer = f"{listing['count']} of {listing['total']} job(s) from offset {listing['offset']}"
    return _table(header, rows) + "\n" + footer


def _pair_sentence(pair: dict[str, Any]) -> str:
    """One pair of ``GET /compare``'s ``pairs`` in words: how job a's p_up compares with b's on each score."""
    if not pair["tests"]:
        return (f"{pair['a']} vs {pair['b']}: no test bars in common (their test periods do not overlap, or the "
                f"symbol, timeframe or horizon differ): no test")
    words = {"better": "better", "worse": "worse", "no_difference": "no significant difference"}
    parts = []
    for score, test in pair["tests"].items():
        detail = "identical losses" if test["t"] is None else f"t = {test['t']:+.2f}, p = {test['p']:.3f}"
        parts.append(f"{score.replace('_', ' ')} {words[test['verdict']]} ({detail})")
    return f"{pair['a']} vs {pair['b']} on {pair['n']} shared test bars: " + "; ".join(parts)


def compare_table(result: dict[str, Any]) -> str:
    """A ``GET /compare`` answer as text: the config keys that differ, the key figures and pooled metrics (the
    best of a row marked ``*``, unless the jobs were tested on different bars: then their counts and a note, as
    the GUI's Compare window), then the Diebold–Mariano test of each pair's p_up."""
    ids = result["jobs"]
    lines = []
    if result["differences"]:
        rows = [[key, *(json.dumps(v) for v in values)] for key, values in result["differences"].items()]
        lines += [_table(["config that differs", *ids], rows), ""]
    else:
        lines += ["same config", ""]
    test_bars = unequal_test_bars(result["key_figures"], ids)
    rows = [] if test_bars is None else [[KEY_FIGURES["n"], *(_significant(n) for n in test_bars)]]
    for where, key, label, sense in COMPARE_ROWS:
        values = [(result[where].get(i) or {}).get(key) for i in ids]
        best = best_index(values, sense) if test_bars is None else None
        rows.append([label, *(_significant(v, key in SIGNED_FIGURES) + ("*" if j == best else "")
                              for j, v in enumerate(values))])
    lines += [_table(["pooled test blocks", *ids], rows), ""]
    if test_bars is not None:  # a lower loss over other bars says nothing of which job forecasts better
        lines += ["Tested on different bars: the rows are not comparable bar for bar, so no best is marked; the "
                  "tests below compare each pair on the bars both scored.", ""]
    lines.append("p_up, pair by pair (Diebold–Mariano, HAC errors, 5 % level; 'better' is the first job's lower loss):")
    lines += [f"  {_pair_sentence(pair)}" for pair in result["pairs"]]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Carry out ``predict``, ``jobs``, ``compare`` or ``rerun`` against the server; 0 on success, 1 when the server refuses."""
    from desktop_app.api_client import ApiClient, ApiError  # requests only for these commands (a fast --help)

    client = ApiClient(server_url(args.server), token=os.environ.get("CANDLECAST_TOKEN"))
    try:
        if args.command == "predict":
            body: dict[str, Any] = {"last": args.last}
            if args.fold is not None:
                body["fold"] = args.fold
            if args.data:
                body["path"] = str(Path(args.data).expanduser().resolve())
            if args.dataset:
                body["dataset"] = args.dataset
            result = client.predict(args.job, body)
            print(json.dumps(result, indent=2) if args.json else predict_table(result))
        elif args.command == "jobs":
            include = "metrics,config" if args.json else "metrics"
            result = client.job_list(include=include, limit=args.limit, offset=args.offset, status=args.status,
                                     symbol=args.symbol, timeframe=args.timeframe)
            print(json.dumps(result, indent=2) if args.json else jobs_table(result))
        elif args.command == "compare":
            if not 2 <= len(args.jobs) <= 4:
                raise UserError(f"compare takes 2 to 4 job ids, got {len(args.jobs)}")
            result = client.compare(tuple(args.jobs))
            print(json.dumps(result, indent=2) if args.json else compare_table(result))
        else:
            result = client.rerun(args.job, args.allow_changed_data)
            print(json.dumps(result, indent=2) if args.json else result["message"])
    except ApiError as exc:
        if exc.problem.status is None:
            raise UserError(f"{exc.problem.line()} at {client.base_url}; is it running? (start it with `candlecast "
                            "serve` or open the app; --server URL names another)") from None
        print(f"candlecast: error: {exc.problem.line()}", file=sys.stderr)
        return 1
    return 0
