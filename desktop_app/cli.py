"""The ``candlecast`` command: opens the app, or runs one subcommand (train, import, datasets, serve, worker,
predict, jobs, compare, rerun, predictor, sweep).

Only argument parsing lives here; each subcommand's ``run(args) -> int`` is imported when it is used, so
``candlecast --help`` stays fast and the GUI/server process never imports torch. A user mistake is one line
on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import sys

from desktop_app import remote_cli
from trainer import __version__
from trainer.cli_common import OneLineParser, UserError, add_training_options, add_worker_arguments
from trainer.data.import_cli import add_import_arguments
from trainer.paths import FolderError

#: subcommand -> module whose ``run(args) -> int`` carries it out.
COMMANDS = {
    "train": "trainer.train_cli",
    "worker": "trainer.worker",
    "import": "trainer.data.import_cli",
    "datasets": "trainer.data.import_cli",
    "serve": "embedded_server.serve",
    "predictor": "trainer.predictor",
    "predict": "desktop_app.remote_cli",
    "jobs": "desktop_app.remote_cli",
    "compare": "desktop_app.remote_cli",
    "rerun": "desktop_app.remote_cli",
    "sweep": "desktop_app.sweep_cli",
}


def _port(text: str) -> int:
    """argparse type of ``--port``: an int in 0..65535 (0 = any free port)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is outside 0..65535")
    return port


def build_parser() -> argparse.ArgumentParser:
    """The whole ``candlecast`` argument parser."""
    parser = OneLineParser(prog="candlecast", description="Train calibrated up/down forecasters on crypto candles.")
    parser.add_argument("--version", action="version", version=f"candlecast {__version__}")
    parser.add_argument("--connect", metavar="URL", help="open the app on an already running server, e.g. http://127.0.0.1:8000")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)

    train = sub.add_parser("train", help="train one job in this process and print its metrics")
    add_training_options(train)
    train.add_argument("--data", metavar="FILE", help="train on this candle file (imported on the fly)")
    train.add_argument("--out", metavar="DIR", help="write the artifacts into DIR (default: a new job folder)")
    train.add_argument("--json", action="store_true", help="print the metrics JSON instead of the summary table")

    add_worker_arguments(sub.add_parser("worker", help="run one job's worker (used by the server)"))

    add_import_arguments(sub.add_parser("import", help="import a candle file into the local dataset store"))

    remote_cli.add_arguments(sub)
    sub.add_parser("predictor", help="answer the server's forecast requests on stdin (used by the server)")

    datasets = sub.add_parser("datasets", help="list the stored datasets")
    datasets.add_argument("--json", action="store_true", help="print the list as JSON")

    from desktop_app.sweep_cli import add_sweep_arguments

    add_sweep_arguments(sub.add_parser("sweep", help="search training options with Optuna; trials run as jobs"))

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
    sys.exit(main())
