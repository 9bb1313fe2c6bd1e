"""``candlecast train``: run one training job in this process, show a progress bar, print the results.

Options are the ``TrainingConfig`` fields (``--cv-folds 3 --epochs 5 --seed 7``) plus ``--data FILE`` (import
that candle file into its dataset, symbol + timeframe, and train on that dataset: a file whose candles join ones
already stored trains on all of them, and a line on stderr says so), ``--out DIR`` (write the artifacts into DIR itself; default: a new
job folder under ``paths.jobs_dir()``) and ``--json`` (print the metrics JSON instead of the summary table).
The progress bar (tqdm, on stderr) shows fold, epoch, loss and ETA; when stderr is not a terminal it prints plain
lines instead. The summary starts with the headline verdicts and what was trained. The log goes to ``worker.log``
in the job folder. Bad options or data raise ``UserError`` (one line, exit 2); a failure while training prints one line
naming the stage and the log, and exits 1; Ctrl-C prints one line saying what was kept and exits 130.

A job folder that this command created (no ``--out``) is removed again when the job ends without results, so
failed runs leave no clutter under the user data dir; the log of a failure while training (not the user's
options or data) is kept as ``<log dir>/<job folder name>.log`` and named in the error. ``--out DIR`` is the
user's: nothing in it is removed, and ``DIR/worker.log`` is named in every error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import secrets
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from trainer import paths
from trainer.cli_common import UserError, training_config_from_args
from trainer.config import TrainingConfig
from trainer.events import EventType

#: Stages whose failure is the user's input (options or data), reported as a ``UserError`` (exit 2).
USER_STAGES = ("config", "data")
#: The job's log file in its folder (``trainer.train.ARTIFACTS["log"]``, not imported here: torch is slow).
LOG_NAME = "worker.log"


def start_line(event: dict[str, Any]) -> str:
    """What the job trains on and how much of it, from the worker's ``training.started`` event."""
    partial = f" ({event['partial_candles']} partial)" if event["partial_candles"] else ""
    return (f"training {event['symbol']} {event['timeframe']} on {event['device']}: {event['rows']} candles"
            f"{partial}, {event['samples']} samples")


class ProgressBar:
    """A tqdm bar over the job's fraction done, fed with the job's events (``emit``)."""

    def __init__(self) -> None:
        self.bar = tqdm(
            total=100, file=sys.stderr, unit="%", mininterval=0.5, dynamic_ncols=True,
            bar_format="{desc} {percentage:3.0f}%|{bar}| [{elapsed}{postfix}]",
        )
        self.bar.set_description_str("loading data")

    def emit(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == EventType.TRAINING_STARTED.value:
            # A line of its own (the bar's description is soon replaced): what the job trains on, how much of it.
            self.bar.write(start_line(event), file=sys.stderr)
            self.bar.set_description_str(f"training on {event['device']}")
        elif kind == EventType.TRAINING_EPOCH.value:
            self.bar.set_description_str(
                f"fold {event['fold']}/{event['folds']} epoch {event['epoch']}/{event['epochs']}"
            )
            self.bar.set_postfix_str(
                f"loss {event['train_loss']:.4f} val {event['val_loss']:.4f} ETA {event['eta_s']:.0f}s", refresh=False
            )
            self.bar.update(100 * event["fraction"] - self.bar.n)
        elif kind == EventType.TRAINING_FOLD_COMPLETED.value:
            self.bar.set_description_str(f"fold {event['fold']} evaluated")

    def finish(self) -> None:
        """The job completed: show 100 % (the fraction of the last epoch event can stop short of it)."""
        self.bar.set_description_str("done")
        self.bar.update(100 - self.bar.n)

    def close(self, keep: bool = True) -> None:
        """Close the bar; ``keep=False`` clears it, so that a failure's one line stands alone."""
        self.bar.leave = keep
        self.bar.close()


class ProgressLines:
    """Plain progress for a stderr that is not a terminal (a log file, a pipe): one line per event, no ``\\r``
    redraws, the same words as the bar (``fold 2/5 epoch 3/20``, ``done 100%``)."""

    def __init__(self) -> None:
        self._say("loading data")

    @staticmethod
    def _say(text: str) -> None:
        # One write per line: print() writes the text and its newline separately, and a Ctrl-C between the two
        # would glue the next message onto this line.
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def emit(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == EventType.TRAINING_STARTED.value:
            self._say(start_line(event))
        elif kind == EventType.TRAINING_EPOCH.value:
            self._say(
                f"fold {event['fold']}/{event['folds']} epoch {event['epoch']}/{event['epochs']} "
                f"{100 * event['fraction']:3.0f}% loss {event['train_loss']:.4f} val {event['val_loss']:.4f} "
                f"ETA {event['eta_s']:.0f}s"
            )
        elif kind == EventType.TRAINING_FOLD_COMPLETED.value:
            self._say(f"fold {event['fold']} evaluated")

    def finish(self) -> None:
        self._say("done 100%")

    def close(self, keep: bool = True) -> None:
        """Nothing to clear: every line is already final."""


def progress_display() -> ProgressBar | ProgressLines:
    """A redrawn bar on a terminal; plain lines when stderr is a file or a pipe."""
    return ProgressBar() if sys.stderr.isatty() else ProgressLines()


class JobFolder:
    """The folder a ``candlecast train`` job writes into: ``--out DIR`` (the user's) or a new one under
    ``paths.jobs_dir()`` named ``cli-<UTC time>-<random>`` (``paths.CLI_JOB_PATTERN``; ``owned``: this command
    created it). A server of the same data folder lists a completed one as a job with that id."""

    def __init__(self, out: str | None) -> None:
        self.owned = not out
        if out:
            self.path = Path(out).expanduser()
        else:
            name = f"cli-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"
            self.path = paths.jobs_dir() / name
        self.completed = False  # set once the job has written all its artifacts
        self._before: dict[str, tuple[int, int]] = {}

    def create(self) -> None:
        """Make the folder and note the files already in it; raises ``UserError`` if it cannot be made."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"--out {self.path}: cannot create the folder ({exc.strerror})") from None
        self._before = self._files()

    def _files(self) -> dict[str, tuple[int, int]]:
        """``name -> (inode, mtime ns)`` of the plain files in the folder (an atomic write gives a new inode)."""
        return {
            entry.name: (entry.stat().st_ino, entry.stat().st_mtime_ns) for entry in self.path.iterdir() if entry.is_file()
        }

    def written(self) -> list[str]:
        """Names of the results this job wrote into the folder (sorted): not its records, the log and the
        provenance written once the data are loaded (``trainer.provenance``), which stay with a stopped job."""
        now = self._files() if self.path.is_dir() else {}
        records = (LOG_NAME, paths.PROVENANCE_FILE)
        return sorted(n for n, key in now.items() if n not in records and self._before.get(n) != key)

    def discard(self, keep_log: bool = False) -> Path | None:
        """Remove an owned folder (a ``--out`` folder is left alone, log included); ``keep_log``: first move
        its log to ``paths.log_dir()/<folder name>.log``. Returns where the job's log is now, or None."""
        log_path = self.path / LOG_NAME
        if not self.owned:
            return log_path if log_path.is_file() else None
        kept = None
        if keep_log and log_path.is_file():
            kept = Path(shutil.move(log_path, paths.log_dir() / f"{self.path.name}.log"))
        shutil.rmtree(self.path, ignore_errors=True)
        return kept


def _import_data(args: argparse.Namespace, config: TrainingConfig) -> TrainingConfig:
    """Import ``--data FILE`` into the dataset store, point ``config`` at the resulting dataset and say on stderr
    which dataset that is and how many candles it holds (more than the file's when it merged with stored ones)."""
    try:
        importer = importlib.import_module("trainer.data.importer")
    except ModuleNotFoundError:
        raise UserError("--data: importing candle files is not available in this build") from None
    try:
        dataset = importer.import_file(Path(args.data), symbol=args.symbol, timeframe=args.timeframe)
    except importer.CandleImportError as exc:
        raise UserError(f"--data {exc.with_option()}") from None  # its message starts with the path as given
    except (OSError, ValueError) as exc:
        raise UserError(f"--data {args.data}: {exc}") from None
    merge = dataset.report["merge"]
    if merge["existing_rows"]:
        said = (f"merged into the stored dataset {dataset.dataset_id} ({merge['added']:,} new candle(s), "
                f"{merge['replaced']:,} replaced); training on all its {merge['rows_after']:,} candles")
        if gaps := importer.between_gaps_note(dataset.report["dataset_gaps"]):
            said += f"; {gaps}"
    else:
        said = f"imported as dataset {dataset.dataset_id} ({merge['rows_after']:,} candles); training on it"
    print(f"--data {args.data}: {said}", file=sys.stderr)
    update = {"symbol": dataset.symbol, "timeframe": dataset.timeframe, "dataset": dataset.dataset_id}
    return TrainingConfig(**{**config.model_dump(), **update})


def run(args: argparse.Namespace) -> int:
    """Carry out ``candlecast train``; returns the exit code (0 done, 1 failed while training, 130 Ctrl-C)."""
    folder = JobFolder(getattr(args, "out", None))
    try:
        return _train(args, folder)
    except KeyboardInterrupt:
        print(f"candlecast: {_interrupted(folder)}", file=sys.stderr)
        return 130
    except BaseException:
        if not folder.completed:
            folder.discard()  # a bug outside the job's stages: its traceback is on the console
        raise


def _interrupted(folder: JobFolder) -> str:
    """Clean up after Ctrl-C and return the one line saying truly what is left."""
    if folder.completed:
        return f"stopped by Ctrl-C; the results are complete in {folder.path}"
    written = folder.written()
    if folder.owned:
        folder.discard()
        return "stopped by Ctrl-C; " + ("removed the unfinished results" if written else "no results written")
    log_path = folder.path / LOG_NAME
    where = f" (log: {log_path})" if log_path.is_file() else ""
    if not written:
        return f"stopped by Ctrl-C; no results written{where}"
    return f"stopped by Ctrl-C while writing the results: only {', '.join(written)} written to {folder.path}{where}"


def _train(args: argparse.Namespace, folder: JobFolder) -> int:
    config = training_config_from_args(args)
    if getattr(args, "data", None):
        config = _import_data(args, config)
    folder.create()
    job_dir = folder.path

    # Worker-side imports only now: torch loads in a second or two and `--help`/bad options stay fast.
    from trainer.train import JobError, run_job

    log_path = job_dir / LOG_NAME
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    progress = progress_display()
    failure: JobError | None = None
    try:
        result = run_job(config, job_dir, progress.emit)
        progress.finish()
        folder.completed = True
    except JobError as exc:
        # The traceback goes to the log only; the console gets one line.
        logging.getLogger(__name__).error("job failed in stage %s", exc.stage, exc_info=exc.error)
        failure = exc
    finally:
        progress.close(keep=folder.completed)
        root.removeHandler(handler)
        root.setLevel(previous_level)
        handler.close()

    if failure is not None:
        user_error = failure.stage in USER_STAGES
        # A user mistake's message says it all; a failure while training keeps its log for a bug report.
        kept_log = folder.discard(keep_log=not user_error)
        note = f" (details in {kept_log})" if kept_log is not None else ""
        if user_error:
            raise UserError(f"{failure.error}{note}")
        print(
            f"candlecast: training failed in stage {failure.stage}: {type(failure.error).__name__}: "
            f"{failure.error}{note}",
            file=sys.stderr,
        )
        return 1

    if args.json:
        print(json.dumps(result.metrics, indent=2, allow_nan=False))
    else:
        from trainer.report import summary_text

        print(summary_text(result.metrics, config))
        print(f"\nArtifacts in {job_dir} (report: {result.artifacts['report']})")
        if folder.owned:
            print(f"Job id {job_dir.name}: a server of this data folder (the app, or candlecast serve) lists it "
                  "(candlecast jobs, predict, rerun, the app's Jobs tab)")
    return 0
