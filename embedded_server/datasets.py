"""Datasets for the API: the catalog (``trainer.data.catalog``, light: no pandas) and imports, which run
``candlecast import FILE --json`` as a subprocess so pandas never loads into the server process.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from embedded_server.problems import Problem
from embedded_server.schemas import ImportedDataset, ImportRequest
from trainer.config import TrainingConfig
from trainer.data import catalog
from trainer.data.sources import candle_sources
from trainer.sample_window import bars_needed, bars_needed_words

log = logging.getLogger(__name__)

#: Longest an import may take (a multi-year 1 m file is a few million rows).
IMPORT_TIMEOUT_S = 900
#: ``candlecast``'s exit status for a user mistake (``trainer.cli_common.UserError``).
USER_ERROR_EXIT = 2


def list_datasets() -> list[dict[str, Any]]:
    """Every dataset a job can train on (bundled first), as the catalog describes it."""
    return catalog.list_datasets()


def dataset_problem(config: TrainingConfig) -> Problem | None:
    """Why ``config`` cannot find candles, or None: 422 for a malformed ``dataset`` or one that holds another symbol
    or timeframe than the job's, 404 when no candles resolve (an unknown ``dataset`` id included).

    The candles resolve as ``trainer.data.store.load_dataset`` resolves them (``trainer.data.sources``): the stored
    or bundled ``SYMBOL-timeframe``, or a lower timeframe that divides it (resampled); ``bundled:`` ids use the
    bundled data alone.
    """
    if config.dataset is None:
        if candle_sources(config.symbol, config.timeframe):
            return None
        return Problem(
            404,
            f"no dataset {config.dataset_id!r}: import one with `candlecast import FILE --symbol {config.symbol}"
            f" --timeframe {config.timeframe}` or POST /datasets/import",
        )
    try:
        symbol, timeframe, bundled_only = catalog.parse_dataset_id(config.dataset)
    except ValueError as exc:
        return Problem(422, str(exc), errors=[{"loc": ["body", "dataset"], "msg": str(exc)}])
    if not candle_sources(symbol, timeframe, bundled_only):  # checked first: an unknown id holds no candles at all
        return Problem(
            404, f"no dataset {config.dataset!r}: GET /datasets lists those there are, POST /datasets/import adds one"
        )
    if (symbol, timeframe) != (config.symbol, config.timeframe):
        msg = f"dataset {config.dataset!r} holds {symbol} {timeframe} candles, not {config.symbol} {config.timeframe}"
        return Problem(422, msg, errors=[{"loc": ["body", "dataset"], "msg": msg}])
    return None


def window_problem(config: TrainingConfig) -> Problem | None:
    """A 422 when ``config``'s candles (resolved as ``dataset_problem`` found them) are too few for even one sample
    of its lookback and horizon (``trainer.sample_window.bars_needed``), or None; on ``body.lookback``.

    Cheap on purpose: it reads the dataset's stored row count (its catalog metadata), never the candles, so it is
    a necessary condition only: gaps, and the samples the walk-forward folds need (``trainer.splits``, numpy: not
    in the server process), are the worker's to judge. Resampled sources are left to the worker too.
    """
    symbol, timeframe, bundled_only = (
        catalog.parse_dataset_id(config.dataset) if config.dataset else (config.symbol, config.timeframe, False)
    )
    sources = candle_sources(symbol, timeframe, bundled_only)
    if not sources or sources[0].timeframe != timeframe:
        return None
    dataset_id = f"{'' if sources[0].stored else 'bundled:'}{symbol}-{timeframe}"
    rows = (catalog.find_dataset(dataset_id) or {}).get("rows")
    need = bars_needed(config.lookback, config.forecast_horizon)
    if not isinstance(rows, int) or rows >= need:
        return None
    msg = (f"dataset {dataset_id!r} has {rows:,} bars; lookback {config.lookback} and horizon "
           f"{config.forecast_horizon} need {bars_needed_words(config.lookback, config.forecast_horizon)}")
    return Problem(422, msg, errors=[{"loc": ["body", "lookback"], "msg": msg}])


def import_command(path: Path, symbol: str | None, timeframe: str | None) -> list[str]:
    """argv of ``candlecast import PATH --json [--symbol S] [--timeframe T]`` (the app itself when frozen)."""
    # Frozen: the app is its own importer (``candlecast import``); from source, the trainer's own entry point.
    base = [sys.executable, "import"] if getattr(sys, "frozen", False) else [sys.executable, "-m", "trainer.data.import_cli"]
    argv = [*base, str(path), "--json"]
    if symbol:
        argv += ["--symbol", symbol]
    if timeframe:
        argv += ["--timeframe", timeframe]
    return argv


def import_dataset(request: ImportRequest) -> ImportedDataset:
    """Import ``request.path``; returns the importer's JSON (the dataset and its import report).

    Raises ``Problem``: 422 for a path that is not an absolute path to a file or a file the importer refuses
    (its one-line reason as ``detail``, which names the file and the rule, never the file's content), 500 when
    the importer itself breaks or prints something else than an ``ImportedDataset`` (details in ``backend.log``).
    """
    path = Path(request.path).expanduser()
    if not path.is_absolute() or not path.is_file():
        if not path.is_absolute():
            msg = "not an absolute path to a file"
        elif path.is_dir():
            msg = "a directory, not a file: give the path of one candle file"
        else:
            msg = "no such file" if not path.exists() else "not a regular file"
        raise Problem(422, f"path {request.path!r}: {msg}", errors=[{"loc": ["body", "path"], "msg": msg}])
    argv = import_command(path, request.symbol, request.timeframe)
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=IMPORT_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise Problem(
            422, f"importing {path} took longer than {IMPORT_TIMEOUT_S} s; import it with the CLI"
        ) from None
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    if done.returncode == USER_ERROR_EXIT:
        reason = lines[-1].removeprefix("candlecast: error: ") if lines else f"{path} was refused"
        raise _refusal(reason)
    if done.returncode != 0:
        log.error("import of %s exited with %d: %s", path, done.returncode, "\n".join(lines[-20:]))
        raise Problem(500, f"the importer failed on {path} (exit {done.returncode}); details in backend.log")
    try:
        return ImportedDataset.model_validate_json(done.stdout)
    except ValidationError as exc:
        log.error("import of %s printed no dataset JSON (%s): %.500s", path, exc, done.stdout)
        raise Problem(500, f"the importer printed no dataset JSON for {path}; details in backend.log") from None


#: How ``candlecast import`` names the input a refusal asks for (``... with --symbol``; ``trainer.data.import_cli``).
_CLI_OPTION_HINT = re.compile(r" with --(?P<field>symbol|timeframe)$")


def _refusal(reason: str) -> Problem:
    """The 422 of an import the importer refused; a request field it asks for is named as that field (the
    importer's CLI names it as its option), and is the error's ``loc``."""
    if match := _CLI_OPTION_HINT.search(reason):
        field = match["field"]
        reason = reason[: match.start()] + f" in the request's {field} field"
        return Problem(422, reason, errors=[{"loc": ["body", field], "msg": reason}])
    return Problem(422, reason, errors=[{"loc": ["body", "path"], "msg": reason}])
