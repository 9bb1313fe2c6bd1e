"""The ``candlecast`` command: opens the app, or runs one subcommand (train, import, datasets, serve, worker).

Only argument parsing lives here; each subcommand's ``run(args) -> int`` is imported when it is used, so
``candlecast --help`` stays fast and the GUI/server process never imports torch. A user mistake is one line
on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import sys
from typing import NoReturn, get_args

from pydantic import ValidationError

from trainer import __version__
from trainer.config import TrainingConfig
from trainer.paths import FolderError

#: subcommand -> module whose ``run(args) -> int`` carries it out.
COMMANDS = {
    "train": "trainer.train_cli",
    "worker": "trainer.worker",
    "import": "trainer.data.import_cli",
    "datasets": "trainer.data.import_cli",
    "serve": "embedded_server.serve",
}


class UserError(Exception):
    """A mistake the user can fix; ``main`` prints its one-line message and exits 2."""


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (plus where to find help), not the whole usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _port(text: str) -> int:
    """argparse type of ``--port``: an int in 0..65535 (0 = any free port)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is outside 0..65535")
    return port


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    """One ``--option`` per ``TrainingConfig`` field (``cv_folds`` → ``--cv-folds``), default None = the schema's."""
    for name, info in TrainingConfig.model_fields.items():
        flag = "--" + name.replace("_", "-")
        choices = get_args(info.annotation) or None
        if info.annotation is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=info.description)
        elif choices and all(isinstance(c, str) for c in choices):
            parser.add_argument(flag, dest=name, choices=choices, default=None, help=f"{info.description} (default {info.default})")
        else:
            kind = {int: int, float: float}.get(info.annotation, str)
            parser.add_argument(flag, dest=name, type=kind, default=None, help=f"{info.description} (default {info.default})")


def training_config_from_args(args: argparse.Namespace) -> TrainingConfig:
    """Build the validated ``TrainingConfig`` from the parsed training options; raises ``UserError``."""
    given = {name: getattr(args, name) for name in TrainingConfig.model_fields if getattr(args, name, None) is not None}
    try:
        return TrainingConfig(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "request"
        raise UserError(f"--{field.replace('_', '-')}: {first['msg']}") from None


def build_parser() -> argparse.ArgumentParser:
    """The whole ``candlecast`` argument parser."""
    parser = _Parser(prog="candlecast", description="Train calibrated up/down forecasters on crypto candles.")
    parser.add_argument("--version", action="version", version=f"candlecast {__version__}")
    parser.add_argument("--connect", metavar="URL", help="open the app on an already running server, e.g. http://127.0.0.1:8000")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = sub.add_parser("train", help="train one job in this process and print its metrics")
    _add_training_options(train)
    train.add_argument("--data", metavar="FILE", help="train on this candle file (imported on the fly)")
    train.add_argument("--out", metavar="DIR", help="write the artifacts into DIR (default: a new job folder)")
    train.add_argument("--json", action="store_true", help="print the metrics JSON instead of the summary table")

    worker = sub.add_parser("worker", help="run one job's worker (used by the server)")
    worker.add_argument("--job-dir", required=True, metavar="DIR", help="the job folder holding config.json")

    imp = sub.add_parser("import", help="import a candle file into the local dataset store")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--symbol", help="exchange symbol, if the file does not name it")
    imp.add_argument("--timeframe", help="expected timeframe, checked against the file's spacing")
    imp.add_argument("--json", action="store_true", help="print the import report as JSON")

    datasets = sub.add_parser("datasets", help="list the stored datasets")
    datasets.add_argument("--json", action="store_true", help="print the list as JSON")

    serve = sub.add_parser("serve", help="run the local REST/WebSocket server in the foreground")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=None, help="port (default: CANDLECAST_PORT, else config, else 8000; 0 = any free)")
    token = serve.add_mutually_exclusive_group()
    token.add_argument(
        "--token",
        default=None,
        help="bearer token, required to bind a non-loopback address (other users see it in ps: prefer "
        "CANDLECAST_TOKEN or --token-file); 8-256 letters, digits, - . _ ~",
    )
    token.add_argument("--token-file", metavar="FILE", default=None, help="read the bearer token from FILE")
    serve.add_argument("--get", metavar="PATH", help="answer one GET request in-process and exit (0 on 200)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``candlecast`` console script and of the frozen executable."""
    multiprocessing.freeze_support()  # first: a frozen child process must not parse our arguments
    args = build_parser().parse_args(argv)
    module = COMMANDS.get(args.command, "desktop_app.app")
    try:
        if module == "embedded_server.serve":  # the app migrates by itself, to show what happened in its window
            from desktop_app.config_migration import migrate_at_start
            from trainer.paths import config_dir

            migrate_at_start(config_dir() / "config.json")  # an old flat config.json becomes the current format
        return int(importlib.import_module(module).run(args) or 0)
    except (UserError, FolderError) as exc:  # FolderError: e.g. a read-only CANDLECAST_HOME
        print(f"candlecast: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # Under `python -m desktop_app.cli` this file is `__main__`; run the importable copy so that the
    # `desktop_app.cli.UserError` the subcommands raise is the class its main() catches (exit 2, one line).
    from desktop_app.cli import main as _main

    sys.exit(_main())
