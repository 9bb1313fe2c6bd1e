"""`candlecast train` as a user runs it: the real console script in a subprocess, on the real bundled candles."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from desktop_app.cli import build_parser
from trainer.cli_common import UserError
from trainer import train_cli
from trainer.data.importer import import_file
from trainer.data.store import load_dataset
from trainer.features import build_samples
from trainer.scoreboard import BASELINE_NAMES, SUMMARY_ROWS

REPO_ROOT = Path(__file__).resolve().parent.parent
CANDLECAST = REPO_ROOT / ".venv" / "bin" / "candlecast"
TINY = ["--epochs", "1", "--cv-folds", "1", "--lookback", "8", "--batch-size", "1024"]


def candlecast(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CANDLECAST), *args], check=False, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "COLUMNS": "120"},
    )


def job_folders(home: Path) -> list[Path]:
    """The job folders `candlecast train` left under the user data dir."""
    jobs = home / "data" / "jobs"
    return sorted(jobs.iterdir()) if jobs.is_dir() else []


def error_line(stderr: str) -> str:
    """The one `candlecast: ...` line of a failed run (the cleared progress bar shares no line with it)."""
    (line,) = [line for line in stderr.splitlines() if line.startswith("candlecast:")]
    return line


@pytest.fixture
def store_slice(candlecast_home: Path, tmp_path: Path) -> None:
    """Import the last 4,000 real candles as this test's BTCUSDT-1h dataset (the store wins over the bundled
    file), so a job trains on a small slice of real data."""
    frame = load_dataset("BTCUSDT", "1h").candles.iloc[-4000:].rename(columns={"open_time": "date"})
    path = tmp_path / "slice" / "BTC_USDT-1h.feather"
    path.parent.mkdir()
    frame.reset_index(drop=True).to_feather(path)
    import_file(path)


def test_json_metrics_and_artifacts_in_out_dir(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = candlecast("train", *TINY, "--seed", "7", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)  # stdout is the JSON and nothing else
    assert set(metrics) == {"pooled", "folds", "network", "device", "duration_s", "provenance"}
    assert tuple(metrics["pooled"]["baselines"]) == BASELINE_NAMES  # every registered baseline, in order
    assert metrics == json.loads((out / "metrics.json").read_text())
    assert json.loads((out / "config.json").read_text())["seed"] == 7
    for name in ("model.pt", "predictions.csv", "report.html", "worker.log"):
        assert (out / name).is_file(), name
    assert "fold 1" in (out / "worker.log").read_text()
    assert "fold 1/1 epoch 1/1" in proc.stderr  # the progress, as plain lines: stderr is a pipe here
    assert "\r" not in proc.stderr and proc.stderr.splitlines()[-1] == "done 100%", proc.stderr[-300:]


def test_summary_table_in_a_new_job_folder(candlecast_home: Path) -> None:
    proc = candlecast("train", *TINY, "--distribution", "laplace")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    # First the two headline verdicts, then what was trained and on which bars (issue 11; issue 9 item 10).
    assert lines[0].startswith("Direction (p_up): ") and lines[1].startswith("Distribution: "), lines[:2]
    assert re.search(r"beats (all \d+|\d+ of \d+) baselines|no significant skill; beats none", lines[0]), lines[0]
    assert lines[3].startswith("Trained: BTCUSDT 1h, horizon 1 bar, laplace distribution, "), lines[3]
    assert lines[4].startswith("Tested: ") and " bars in 1 walk-forward fold(s)" in lines[4], lines[4]
    header = lines.index(next(line for line in lines if line.startswith("metric ")))
    assert lines[header].split() == ["metric", "model", *BASELINE_NAMES, "better"]
    # The default `abs` leaves the stack's p_up as it is: said so, not an "ECE before calibration" equal to the ECE.
    assert lines[header - 1].endswith("; calibration left p_up as it was (ECE the same before)"), lines[header - 1]
    rows = {line.split("  ")[0].strip(): line.split() for line in lines[header + 2 :] if line.strip()}
    assert {"CRPS", "NLL", "ECE", "accuracy", "ROC AUC", "CRPS skill vs", "Brier skill vs"} <= set(rows)
    better = {row.label: row.better_text for row in SUMMARY_ROWS}
    for label, words in better.items():  # the `better` column says "lower", "higher" or "near X" on every row
        assert " ".join(rows[label][-len(words.split()):]) == words and words.split()[0] in ("lower", "higher", "near")
    assert "vs GARCH-t" in proc.stdout and "majority rate" in proc.stdout
    (job_dir,) = (candlecast_home / "data" / "jobs").iterdir()
    assert job_dir.name.startswith("cli-") and str(job_dir) in proc.stdout
    assert (job_dir / "metrics.json").is_file() and (job_dir / "worker.log").stat().st_size > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs", "0"], "--epochs: must be at least 1"),
        (["--symbol", "??"], "--symbol:"),
        (["--dataset", "ETHUSDT-1h", "--symbol", "ETHUSDT"], "no dataset"),
        (["--device", "cuda"], "CUDA"),
    ],
    ids=["out-of-range", "bad-symbol", "missing-dataset", "no-cuda"],
)
def test_bad_options_and_data_are_one_line_errors(args: list[str], message: str, candlecast_home: Path) -> None:
    import torch

    if args == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    proc = candlecast("train", *args, "--epochs" if "--epochs" not in args else "--seed", "1")
    assert proc.returncode == 2, proc.stderr
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("candlecast: error:")]
    assert len(error_lines) == 1 and message in error_lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert job_folders(candlecast_home) == []  # no leftover folder holding only a worker.log


def test_data_file_is_imported_then_trained_on(tmp_path: Path, candlecast_home: Path) -> None:
    """`--data FILE`: a freqtrade feather slice of the real candles is imported into the store and trained on."""
    bundled = load_dataset("BTCUSDT", "1h").candles
    frame = bundled.iloc[-3000:].rename(columns={"open_time": "date"})
    path = tmp_path / "BTC_USDT-1h.feather"
    frame.reset_index(drop=True).to_feather(path)
    proc = candlecast("train", *TINY, "--data", str(path), "--json", "--out", str(tmp_path / "job"))
    assert proc.returncode == 0, proc.stderr
    config = json.loads((tmp_path / "job" / "config.json").read_text())
    assert (config["symbol"], config["timeframe"], config["dataset"]) == ("BTCUSDT", "1h", "BTCUSDT-1h")
    predictions = pd.read_csv(tmp_path / "job" / "predictions.csv")
    assert predictions["timestamp"].min() >= frame["date"].iloc[0].timestamp()
    assert f"--data {path}: imported as dataset BTCUSDT-1h (3,000 candles); training on it" in proc.stderr

    # A file whose candles join the stored ones trains on the whole dataset, and says so (a fresh-user trial
    # expected the file's rows alone).
    earlier = tmp_path / "earlier" / "BTC_USDT-1h.feather"
    earlier.parent.mkdir()
    bundled.iloc[-3100:-2900].rename(columns={"open_time": "date"}).reset_index(drop=True).to_feather(earlier)
    proc = candlecast("train", *TINY, "--data", str(earlier), "--json", "--out", str(tmp_path / "again"))
    assert proc.returncode == 0, proc.stderr
    assert (f"--data {earlier}: merged into the stored dataset BTCUSDT-1h (100 new candle(s), 0 replaced); "
            "training on all its 3,100 candles") in proc.stderr
    assert "training BTCUSDT 1h on cpu: 3100 candles" in proc.stderr

    # A file from further back merges with a hole between it and the stored candles: the line says so.
    older = tmp_path / "older" / "BTC_USDT-1h.feather"
    older.parent.mkdir()
    bundled.iloc[-3600:-3400].rename(columns={"open_time": "date"}).reset_index(drop=True).to_feather(older)
    proc = candlecast("train", *TINY, "--data", str(older), "--json", "--out", str(tmp_path / "older-job"))
    assert proc.returncode == 0, proc.stderr
    after = bundled["open_time"].iloc[-3401].isoformat()
    assert (f"training on all its 3,300 candles; the merge left 1 gap(s) between the stored candles and the file's "
            f"(300 missing bars; the longest 300 after {after}); the dataset now has 1 gap(s), 300 missing bars in "
            "all — no training sample crosses a gap\n") in proc.stderr


def test_unreadable_data_file_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "candles.csv"
    path.write_text("")
    proc = candlecast("train", *TINY, "--data", str(path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("candlecast: error:") == 1 and f"error: --data {path}: the file is empty" in proc.stderr


def test_a_data_file_without_a_symbol_asks_for_the_symbol_option(tmp_path: Path) -> None:
    """The importer asks for the symbol; ``candlecast train`` names it as its own option, as ``import`` does."""
    path = tmp_path / "candles.csv"
    rows = "".join(f"{1704067200 + 3600 * i},{100 + i},{102 + i},{99 + i},{101 + i},{10 + i}\n" for i in range(100))
    path.write_text("timestamp,open,high,low,close,volume\n" + rows)
    proc = candlecast("train", *TINY, "--data", str(path))
    assert proc.returncode == 2 and error_line(proc.stderr) == (
        f"candlecast: error: --data {path}: no symbol in the file or its name; give the symbol (e.g. BTCUSDT) "
        "with --symbol"
    )


@pytest.mark.parametrize(
    "rows, options, message",
    [
        (200, [], "fold 1: test block has 18 samples (need 20)"),
        (300, [*TINY, "--forecast-horizon", "400"], "needs 432 consecutive bars (feature warm-up 24 + lookback 8 + horizon 400)"),
    ],
    ids=["too-short-for-five-folds", "horizon-longer-than-the-data"],
)
def test_too_short_data_file_is_a_one_line_error(
    tmp_path: Path, candlecast_home: Path, rows: int, options: list[str], message: str
) -> None:
    """Real candles that import fine but are too few for the folds (200 bars, a 64-bar window, five folds) or
    for the horizon: one line, exit 2, and the job folder the command made is gone again."""
    frame = load_dataset("BTCUSDT", "1h").candles.iloc[-rows:].rename(columns={"open_time": "date"})
    path = tmp_path / "BTC_USDT-1h.feather"
    frame.reset_index(drop=True).to_feather(path)
    proc = candlecast("train", "--data", str(path), *options)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    line = error_line(proc.stderr)
    assert line.startswith("candlecast: error:") and message in line, line
    if not options:
        assert "the data give 112 samples" in line  # the numbers, and what to change:
        assert "use a shorter lookback or horizon, or import more candles" in line
    assert job_folders(candlecast_home) == []
    assert not (candlecast_home / "logs").is_dir() or list((candlecast_home / "logs").iterdir()) == []


def test_the_start_says_what_the_job_trains_on_and_how_many_candles_and_samples(tmp_path: Path) -> None:
    """4h resampled from real 1h candles with outage hours: a line of its own names the candles, how many are partial
    and the samples the job uses."""
    hours = load_dataset("BTCUSDT", "1h").candles.iloc[-4000:].reset_index(drop=True)
    path = tmp_path / "ETH_USDT-1h.feather"
    hours.drop(index=[1001, 2002, 2003]).rename(columns={"open_time": "date"}).reset_index(drop=True).to_feather(path)
    import_file(path, symbol="ETHUSDT", timeframe="1h")
    dataset = load_dataset("ETHUSDT", "4h")
    samples = len(build_samples(dataset.candles, "4h", 8, 1).positions)
    proc = candlecast("train", *TINY, "--symbol", "ETHUSDT", "--timeframe", "4h")
    assert proc.returncode == 0, proc.stderr
    expected = f"training ETHUSDT 4h on cpu: {len(dataset.candles)} candles (2 partial), {samples} samples\n"
    assert expected in proc.stderr.replace("\r", "\n")


def test_failure_with_out_keeps_the_users_folder_and_names_the_log(tmp_path: Path) -> None:
    """`--out DIR` is the user's: nothing in it is removed, its worker.log holds the traceback, the line names it."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file")
    proc = candlecast("train", *TINY, "--dataset", "ETHUSDT-1h", "--symbol", "ETHUSDT", "--out", str(out))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    line = error_line(proc.stderr)
    assert "no dataset" in line and line.endswith(f"(details in {out / 'worker.log'})"), line
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "worker.log"]
    assert (out / "notes.txt").read_text() == "the user's own file"
    assert "Traceback" in (out / "worker.log").read_text()


def test_bar_reaches_100_percent_when_early_stopping_ends_folds(store_slice: None, candlecast_home: Path) -> None:
    """Early stopping ends the folds well before 30 epochs; the bar still ends at 100 %."""
    proc = candlecast("train", "--epochs", "30", "--cv-folds", "2", "--lookback", "8", "--batch-size", "256", "--json")
    assert proc.returncode == 0, proc.stderr
    epochs_run = [fold["epochs_run"] for fold in json.loads(proc.stdout)["folds"]]
    assert len(epochs_run) == 2 and max(epochs_run) < 30, epochs_run  # early stopping did end the folds
    final = proc.stderr.replace("\r", "\n").splitlines()[-1]  # tqdm's last render
    assert final.startswith("done 100%"), proc.stderr[-500:]
    (job_dir,) = job_folders(candlecast_home)
    assert (job_dir / "metrics.json").is_file()


def _start_and_interrupt(args: list[str]) -> subprocess.CompletedProcess:
    """Start `candlecast train ARGS`, press Ctrl-C (SIGINT) once its first fold is training, wait for the end."""
    proc = subprocess.Popen(
        [str(CANDLECAST), "train", *args], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "120"},
        # As in a terminal: a suite started in the background (`cmd &` in a script) ignores SIGINT, and a child
        # inherits that, so Ctrl-C would never arrive.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    seen = b""
    deadline = time.monotonic() + 120  # a guard against hanging, not a speed check
    while b" samples\n" not in seen:  # the start line: "training BTCUSDT 1h on cpu: … candles, … samples"
        assert time.monotonic() < deadline and proc.poll() is None, seen.decode()
        if select.select([proc.stderr], [], [], 1.0)[0]:
            seen += os.read(proc.stderr.fileno(), 65536)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout.decode(), (seen + stderr).decode())


#: Long enough (small batches, many epochs) that Ctrl-C lands while the first fold trains.
LONG = ["--epochs", "200", "--cv-folds", "5", "--lookback", "8", "--batch-size", "16"]


@pytest.mark.parametrize("with_out", [False, True], ids=["new-job-folder", "out-dir"])
def test_ctrl_c_is_one_line_exit_130_and_no_results(
    store_slice: None, candlecast_home: Path, tmp_path: Path, with_out: bool
) -> None:
    out = tmp_path / "run"
    proc = _start_and_interrupt([*LONG, *(["--out", str(out)] if with_out else [])])
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    line = error_line(proc.stderr)
    if with_out:
        assert line == f"candlecast: stopped by Ctrl-C; no results written (log: {out / 'worker.log'})"
        # no result, no temp file: the log, and the record of the candles it was trained on
        assert sorted(p.name for p in out.iterdir()) == ["provenance.json", "worker.log"]
    else:
        assert line == "candlecast: stopped by Ctrl-C; no results written"
        assert job_folders(candlecast_home) == []


def _train_in_process(*options: str) -> int:
    return train_cli.run(build_parser().parse_args(["train", *TINY, *options]))


def test_ctrl_c_while_writing_results_says_which_were_written(
    store_slice: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Ctrl-C after model.pt, metrics.json and predictions.csv but before the report: the line names what was
    written, every written file is whole (atomic writes leave no temp file) and the user's file stays."""
    import trainer.report

    def interrupted(*_args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer.report, "write_report", interrupted)
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert _train_in_process("--out", str(out)) == 130
    line = error_line(capsys.readouterr().err)
    written = "config.json, metrics.json, model.pt, predictions.csv"
    assert line == (
        f"candlecast: stopped by Ctrl-C while writing the results: only {written} written to {out} "
        f"(log: {out / 'worker.log'})"
    )
    names = sorted(p.name for p in out.iterdir())
    assert names == ["config.json", "metrics.json", "model.pt", "notes.txt", "predictions.csv", "provenance.json",
                     "worker.log"]
    assert json.loads((out / "metrics.json").read_text())["pooled"]["n"] > 0


def test_failure_while_training_keeps_only_the_log(
    store_slice: None, candlecast_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A failure that is not the user's input (here: the report cannot be written) in a job folder the command
    made: exit 1, one line naming the stage and the log, which moved to the log dir; the folder is gone."""
    import trainer.report

    def disk_full(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(trainer.report, "write_report", disk_full)
    assert _train_in_process() == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (log,) = (candlecast_home / "logs").glob("cli-*.log")
    assert error_line(err) == (
        f"candlecast: training failed in stage artifacts: OSError: [Errno 28] No space left on device "
        f"(details in {log})"
    )
    assert "Traceback" in log.read_text() and job_folders(candlecast_home) == []


def test_bad_data_in_process_removes_the_new_job_folder(candlecast_home: Path) -> None:
    with pytest.raises(UserError, match=r"no dataset .*ETHUSDT-1h") as info:
        _train_in_process("--symbol", "ETHUSDT")
    assert "details in" not in str(info.value)
    assert job_folders(candlecast_home) == []
