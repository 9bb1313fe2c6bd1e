"""The worker contract, on a real subprocess (`python -m trainer.worker --job-dir DIR`) and the real bundled candles.

Events only on stdout (one JSON object per line), exactly one terminal event as the last line, exit codes
0 completed / 1 failed / 3 stopped, stop on a `{"cmd": "stop"}` line and on stdin EOF.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.data.importer import import_file
from trainer.data.store import load_dataset
from trainer.events import TERMINAL_EVENTS, EventType
from trainer.features import build_samples

REPO_ROOT = Path(__file__).resolve().parent.parent
@pytest.fixture(autouse=True)
def real_slice(candlecast_home: Path, tmp_path: Path) -> int:
    """Import the last 4,000 real bundled candles as this test's BTCUSDT-1h dataset (the store wins over the
    bundled file), so each worker trains on a small slice of real data; returns the row count."""
    frame = load_dataset("BTCUSDT", "1h").candles.iloc[-4000:].rename(columns={"open_time": "date"})
    path = tmp_path / "BTC_USDT-1h.feather"
    frame.reset_index(drop=True).to_feather(path)
    return len(import_file(path).candles)


#: A job that finishes in seconds (one fold, one epoch, an 8-bar window).
TINY = {"epochs": 1, "cv_folds": 1, "lookback": 8, "batch_size": 1024}
#: A job long enough to be stopped while it trains.
LONG = {"epochs": 200, "cv_folds": 5, "lookback": 8, "batch_size": 64}


def start_worker(job_dir: Path, config: dict | str | None) -> subprocess.Popen:
    """Start the real worker on ``job_dir`` (writing ``config`` as its config.json); stderr goes to a file."""
    job_dir.mkdir(parents=True, exist_ok=True)
    if config is not None:
        text = config if isinstance(config, str) else json.dumps(config)
        (job_dir / "config.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    with open(job_dir.parent / f"{job_dir.name}.stderr", "w") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "trainer.worker", "--job-dir", str(job_dir)],
            cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )


def read_events(proc: subprocess.Popen, until: str | None = None) -> list[dict]:
    """Parse stdout lines as events (each must be JSON) until an event of type ``until`` or EOF."""
    events = []
    for line in proc.stdout:
        event = json.loads(line)  # anything else on stdout breaks the contract
        events.append(event)
        if event["type"] == until:
            break
    return events


def finish(proc: subprocess.Popen, events: list[dict], job_dir: Path) -> tuple[list[dict], int, str]:
    """Read the remaining events with stdin still open (EOF would stop the job), then reap the process."""
    events += read_events(proc)
    if not proc.stdin.closed:
        proc.stdin.close()
    code = proc.wait(timeout=60)
    proc.stdout.close()
    return events, code, (job_dir.parent / f"{job_dir.name}.stderr").read_text()


def assert_one_terminal_last(events: list[dict], job_id: str) -> dict:
    terminal = [e for e in events if EventType(e["type"]) in TERMINAL_EVENTS]
    assert len(terminal) == 1 and events[-1] is terminal[0], [e["type"] for e in events]
    assert all(e["job_id"] == job_id and isinstance(e["timestamp"], float) and "seq" not in e for e in events)
    return terminal[0]


def test_completed_job_end_to_end(tmp_path: Path, real_slice: int) -> None:
    job_dir = tmp_path / "job-done"
    proc = start_worker(job_dir, TINY)
    events, code, err = finish(proc, [], job_dir)
    terminal = assert_one_terminal_last(events, "job-done")
    assert code == 0, err
    started = events[0]
    assert started["origin"] == "worker" and started["pid"] == proc.pid
    assert started["rows"] == real_slice == 4000 and started["device"] == "cpu"
    assert (started["symbol"], started["timeframe"], started["epoch"], started["fold"]) == ("BTCUSDT", "1h", 0, 0)
    types = [e["type"] for e in events]
    assert types == ["training.started", "training.epoch", "training.fold_completed", "training.completed"]
    epoch = events[1]
    assert (epoch["fold"], epoch["folds"], epoch["epoch"], epoch["epochs"], epoch["fraction"]) == (1, 1, 1, 1, 1.0)
    assert epoch["train_loss"] > 0 and epoch["samples_per_s"] > 0
    metrics = json.loads((job_dir / "metrics.json").read_text())
    assert terminal["metrics"] == metrics and terminal["duration_s"] > 0
    # The compact verdicts: the same headlines and verdict words as metrics.json's full tests.
    full = metrics["pooled"]["verdicts"]
    assert terminal["verdicts"]["headline"]["direction"]["text"] == full["headline"]["direction"]["text"]
    assert terminal["verdicts"]["headline"]["distribution"]["outcome"] in ("beats_all", "beats_some", "no_skill", "beats_none")
    assert terminal["verdicts"]["tests"]["garch"]["crps"]["verdict"] == full["tests"]["garch"]["crps"]["verdict"]
    assert metrics["pooled"]["n"] == metrics["folds"][0]["test"]["n"] > 500
    for name in ("dir", "model", "metrics", "predictions", "report", "config", "log"):
        assert name in terminal["artifacts"]
    for name in ("config", "model", "metrics", "predictions", "report"):
        assert Path(terminal["artifacts"][name]).is_file(), name
    assert json.loads((job_dir / "config.json").read_text())["lookback"] == 8
    assert "worker pid" in err  # logs go to stderr


def test_a_resampled_job_says_at_its_start_how_many_candles_samples_and_partial_candles_it_uses(tmp_path: Path) -> None:
    """4h from real 1h candles with outage hours: the worker's training.started (and its log) carry the candles,
    the samples and how many 4h candles are partial."""
    hours = load_dataset("BTCUSDT", "1h").candles.iloc[-4000:].reset_index(drop=True)
    hours = hours.drop(index=[1001, 2002, 2003]).rename(columns={"open_time": "date"})  # two 4h buckets lose bars
    path = tmp_path / "ETH_USDT-1h.feather"
    hours.reset_index(drop=True).to_feather(path)
    import_file(path, symbol="ETHUSDT", timeframe="1h")
    expected = load_dataset("ETHUSDT", "4h")
    samples = build_samples(expected.candles, "4h", TINY["lookback"], 1)
    job_dir = tmp_path / "job-4h"
    proc = start_worker(job_dir, {**TINY, "symbol": "ETHUSDT", "timeframe": "4h"})
    events, code, err = finish(proc, [], job_dir)
    assert code == 0, err
    started = events[0]
    assert started["type"] == "training.started" and started["origin"] == "worker"
    assert started["rows"] == len(expected.candles) and expected.report.gaps == 0
    assert started["partial_candles"] == expected.partial_candles == 2
    assert started["samples"] == len(samples.positions) > 900
    assert f"ETHUSDT 4h, {started['rows']} candles (2 partial), {started['samples']} samples" in err


def test_epoch_fraction_grows_to_one_when_early_stopping_ends_folds(tmp_path: Path) -> None:
    """The GUI's progress bar follows `fraction`: it never goes back, and a fold that early stopping ends
    before `epochs` counts as whole, so the last epoch of the last fold reports exactly 1.0."""
    job_dir = tmp_path / "job-early"
    proc = start_worker(job_dir, {"epochs": 30, "cv_folds": 2, "lookback": 8, "batch_size": 256})
    events, code, err = finish(proc, [], job_dir)
    assert code == 0, err
    epochs = [e for e in events if e["type"] == "training.epoch"]
    fractions = [e["fraction"] for e in epochs]
    assert fractions == sorted(fractions) and 0 < fractions[0] and fractions[-1] == 1.0
    assert epochs[-1]["eta_s"] == 0.0 and all(e["eta_s"] >= 0 for e in epochs)
    folds = events[-1]["metrics"]["folds"]
    runs = [fold["epochs_run"] for fold in folds]
    assert max(runs) < 30, runs  # early stopping ended both folds
    # Fold 1's last epoch reports its whole share of the work (its training samples × epochs), skipped
    # epochs included; fold 2 starts from there.
    first_fold_end = [e["fraction"] for e in epochs if e["fold"] == 1][-1]
    train = [fold["train"]["n"] for fold in folds]
    assert first_fold_end == pytest.approx(train[0] / sum(train))
    assert first_fold_end < next(e["fraction"] for e in epochs if e["fold"] == 2)


def test_stop_command_ends_with_training_stopped(tmp_path: Path) -> None:
    job_dir = tmp_path / "job-stop"
    proc = start_worker(job_dir, LONG)
    events = read_events(proc, until="training.epoch")
    assert events[-1]["type"] == "training.epoch"
    # The worker lowers its own priority (os.nice(5)) so that the GUI stays responsive while it trains.
    parent = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, proc.pid) == min(parent + 5, 19) > parent
    proc.stdin.write("not json\n")  # ignored, logged
    proc.stdin.write(json.dumps({"cmd": "stop"}) + "\n")
    proc.stdin.flush()
    events, code, err = finish(proc, events, job_dir)
    terminal = assert_one_terminal_last(events, "job-stop")
    assert code == 3 and terminal["type"] == "training.stopped" and terminal["reason"] == "stop requested", err
    assert "not JSON" in err and f"(niceness {min(parent + 5, 19)})" in err
    assert not (tmp_path / "job-stop" / "metrics.json").exists()


def test_stdin_eof_stops_the_worker(tmp_path: Path) -> None:
    job_dir = tmp_path / "job-eof"
    proc = start_worker(job_dir, LONG)
    events = read_events(proc, until="training.epoch")
    proc.stdin.close()  # the parent died
    events, code, _ = finish(proc, events, job_dir)
    terminal = assert_one_terminal_last(events, "job-eof")
    assert code == 3 and terminal["type"] == "training.stopped" and "stdin closed" in terminal["reason"]


@pytest.mark.parametrize(
    "config, needle",
    [
        ({"epochs": 1, "learning_rat": 0.1}, "learning_rat"),
        ({"epochs": 0}, "epochs"),
        ('{"epochs": 1,', "EOF"),
        (None, "config.json: cannot read it"),
        ("\udcff", "cannot read it"),
    ],
    ids=["unknown-field", "out-of-range", "broken-json", "missing-file", "not-utf8"],
)
def test_bad_config_fails_in_stage_config(tmp_path: Path, config, needle: str) -> None:
    job_dir = tmp_path / "job-bad"
    proc = start_worker(job_dir, config)
    events, code, _ = finish(proc, [], job_dir)
    terminal = assert_one_terminal_last(events, "job-bad")
    assert code == 1 and terminal["type"] == "training.failed" and terminal["stage"] == "config"
    assert needle in terminal["error"] and terminal["exit_code"] == code  # the status it then exits with
    assert terminal["error_type"] == "ConfigError" and "\n" not in terminal["error"]
    assert terminal["error_type"] and terminal["traceback_tail"]


def test_missing_dataset_fails_in_stage_data(tmp_path: Path) -> None:
    job_dir = tmp_path / "job-nodata"
    proc = start_worker(job_dir, {**TINY, "symbol": "ETHUSDT"})
    events, code, err = finish(proc, [], job_dir)
    terminal = assert_one_terminal_last(events, "job-nodata")
    assert code == 1 and terminal["stage"] == "data" and terminal["error_type"] == "CandleError"
    assert "ETHUSDT-1h" in terminal["error"] and "candlecast import" in terminal["error"]
    # An expected data problem is one sentence for the user; the traceback is only in the log.
    assert terminal["traceback_tail"] == "" and "Traceback (most recent call last)" in err
