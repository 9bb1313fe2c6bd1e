"""The pieces of the ``candlecast`` command line that every layer shares: the user-mistake exception, the
one-line argparse parser and the training options derived from ``TrainingConfig``.

Light on purpose (argparse and pydantic only), and in the lowest layer, so the trainer's and the server's
subcommands raise ``UserError`` without importing the ``desktop_app`` CLI above them.
"""

from __future__ import annotations

import argparse
from typing import NoReturn, get_args

from pydantic import ValidationError

from trainer.config import TrainingConfig, error_message


class UserError(Exception):
    """A mistake the user can fix; the ``candlecast`` entry point prints its one-line message and exits 2."""


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (plus where to find help), not the whole usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """One ``--option`` per ``TrainingConfig`` field (``cv_folds`` → ``--cv-folds``), default None = the schema's."""
    for name, info in TrainingConfig.model_fields.items():
        flag = "--" + name.replace("_", "-")
        # argparse %-formats help strings: a literal % in a description ("the last 20 % of candles") is escaped.
        about = (info.description or "").replace("%", "%%")
        annotation = info.annotation
        optional = [a for a in get_args(annotation) if a is not type(None)]
        if len(optional) == 1 and type(None) in get_args(annotation):  # ``int | None``: an int when given
            annotation = optional[0]
        choices = get_args(annotation) or None
        if annotation is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=about)
        elif choices and all(isinstance(c, str) for c in choices):
            parser.add_argument(flag, dest=name, choices=choices, default=None, help=f"{about} (default {info.default})")
        else:
            kind = {int: int, float: float}.get(annotation, str)
            parser.add_argument(flag, dest=name, type=kind, default=None, help=f"{about} (default {info.default})")


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """``--job-dir DIR`` or ``--spare``: the arguments of ``candlecast worker`` / ``python -m trainer.worker``."""
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--job-dir", metavar="DIR", help="the job folder holding config.json")
    target.add_argument("--spare", action="store_true", help="load everything, then wait on stdin for a job")


def training_config_from_args(args: argparse.Namespace) -> TrainingConfig:
    """Build the validated ``TrainingConfig`` from the parsed training options; raises ``UserError``."""
    given = {name: getattr(args, name) for name in TrainingConfig.model_fields if getattr(args, name, None) is not None}
    try:
        return TrainingConfig(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "request"
        raise UserError(f"--{field.replace('_', '-')}: {error_message(first)}") from None
