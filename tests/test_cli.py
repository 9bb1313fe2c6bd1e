"""The ``candlecast`` entry itself: version, and one-line errors for bad options (no usage block, no traceback)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from trainer import __version__


def candlecast(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "desktop_app.cli", *args], capture_output=True, text=True, timeout=60)


def test_version() -> None:
    done = candlecast("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"candlecast {__version__}"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["train", "--timeframe", "7m"], "argument --timeframe: invalid choice: '7m'"),
        (["train", "--lookback", "abc"], "argument --lookback: invalid int value: 'abc'"),
        (["train", "--cv-folds", "0"], "--cv-folds: must be at least 1"),
        (["train", "--symbol", "BTC/???"], "not an exchange symbol"),
        (["serve", "--port", "99999"], "port 99999 is outside 0..65535"),
        (["serve", "--port", "-1"], "port -1 is outside 0..65535"),
        (["bogus"], "invalid choice: 'bogus'"),
        (["compare", "a"], "compare takes 2 to 4 job ids, got 1"),
        (["compare", "a", "b", "c", "d", "e"], "compare takes 2 to 4 job ids, got 5"),
    ],
)
def test_a_bad_option_is_one_line_and_exit_2(args: list[str], says: str) -> None:
    done = candlecast(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and says in done.stderr, done.stderr


def test_every_subcommand_prints_its_help() -> None:
    """Help strings come from the schema's descriptions; a literal % there once crashed ``train --help``."""
    import argparse

    from desktop_app.cli import COMMANDS, build_parser

    parser = build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(COMMANDS)
    for name, command in sub.choices.items():
        assert command.format_help().startswith(f"usage: candlecast {name}"), name
    assert "--refit-every REFIT_EVERY" in sub.choices["train"].format_help()


def test_an_optional_int_option_is_an_int() -> None:
    from desktop_app.cli import build_parser

    args = build_parser().parse_args(["train", "--refit-every", "720"])
    assert args.refit_every == 720


@pytest.mark.parametrize("command", [["jobs"], ["compare", "a", "b"], ["predict", "a"]])
def test_no_server_there_is_one_line_saying_how_to_start_one(command: list[str]) -> None:
    import socket

    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{free.getsockname()[1]}"
    done = candlecast(*command, "--server", url)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"candlecast: error: cannot reach the server (connection refused or closed) at {url}; is it "
                           "running? (start it with `candlecast serve` or open the app; --server URL names another)\n")
