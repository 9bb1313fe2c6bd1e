"""The app's pure parts: display check and headless fallback, form validation, the predictions reducer,
frame statistics, and the shell's frame step (with a fake runtime, no Dear PyGui)."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_app import app, form, gui_test_probe, remote_cli
from desktop_app import messages as m
from desktop_app.panels.run import LossPoint
from desktop_app.series import epoch_ticks, loss_segments, reduce_predictions, rolling_window
from desktop_app.shell import FrameStats, Shell, percentile

REPO_ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------- display check


def test_no_display_variables() -> None:
    assert app.display_problem({}, "linux") == "no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    assert app.display_problem({"DISPLAY": "  "}, "linux") is not None


def test_windows_and_macos_always_have_a_display() -> None:
    assert app.display_problem({}, "win32") is None
    assert app.display_problem({}, "darwin") is None


def test_wayland_counts_as_a_display() -> None:
    assert app.display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None


def test_stale_x_display_is_refused() -> None:
    problem = app.display_problem({"DISPLAY": ":987"}, "linux")  # no X server listens there
    assert problem == "cannot reach the X display ':987'"
    assert app.display_problem({"DISPLAY": "127.0.0.1:59000"}, "linux") is not None  # nothing on TCP 65000


def test_tcp_x_display_is_reachable() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        if port < 6000:
            pytest.skip("the ephemeral port is below the X range")
        assert app.display_problem({"DISPLAY": f"127.0.0.1:{port - 6000}"}, "linux") is None


def test_local_x_socket_is_reachable() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("abstract Unix sockets are Linux-only")
    number = 4242
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(f"\0/tmp/.X11-unix/X{number}")  # what an X server listens on (abstract namespace)
        listener.listen(1)
        assert app.display_problem({"DISPLAY": f":{number}"}, "linux") is None
        assert app.display_problem({"DISPLAY": f"unix:{number}.0"}, "linux") is None


def test_no_display_prints_one_line_and_trains_headless(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    calls = []
    monkeypatch.setattr(app, "run_headless", lambda: calls.append(True) or 0)
    assert app.run(argparse.Namespace(connect=None, command=None)) == 0
    assert calls == [True]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "no display" in err[0] and "candlecast serve" in err[0] and "candlecast train" in err[0]


def test_the_no_display_main_job_trains_for_real_and_prints_the_summary(candlecast_home: Path) -> None:
    """`candlecast` with no display, run as scripts/run.sh runs it (the console script), really trains: here a tiny
    job set by the training defaults of config.json, the ones the app's form starts from."""
    from trainer.report import summary_rows

    tiny = {"epochs": 1, "cv_folds": 1, "lookback": 8, "batch_size": 1024}
    (candlecast_home / "config").mkdir()
    (candlecast_home / "config" / "config.json").write_text(json.dumps({"schema_version": 2, "training": tiny}))
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "candlecast")], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("candlecast: no display (neither DISPLAY nor WAYLAND_DISPLAY is set), so no window")
    (job,) = (candlecast_home / "data" / "jobs").iterdir()
    config = json.loads((job / "config.json").read_text())
    assert {k: config[k] for k in tiny} == tiny and (config["symbol"], config["timeframe"]) == ("BTCUSDT", "1h")
    metrics = json.loads((job / "metrics.json").read_text())
    assert [f["epochs_run"] for f in metrics["folds"]] == [1] and metrics["pooled"]["n"] > 1000
    header, rows = summary_rows(metrics)
    lines = proc.stdout.splitlines()
    assert header[:2] == ["metric", "model"] and any(line.split() == header for line in lines), proc.stdout
    assert all(any(line.startswith(row[0]) for line in lines) for row in rows), proc.stdout
    assert f"Artifacts in {job}" in proc.stdout


def test_the_app_uses_the_server_already_running_on_its_data_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    from embedded_server.serve import start_server
    from embedded_server.settings import AppSettings

    monkeypatch.setenv("CANDLECAST_PORT", "0")  # if it started its own server, never on the user's port 8000
    running = start_server("127.0.0.1", 0, settings=AppSettings(max_concurrent_jobs=0))  # e.g. `candlecast serve`
    window = app.App(None)
    try:
        url, note, _ = window._start_server()
        assert url == running.url and window.server is None  # connected, like --connect; starts no second server
        assert note == "(the server already running on this data folder)"
    finally:
        if window.server is not None:
            window.server.shutdown(timeout=30)
        running.shutdown(timeout=30)


def test_headless_run_uses_the_default_training_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    from trainer import train_cli

    seen = []
    monkeypatch.setattr(train_cli, "run", lambda args: seen.append(args) or 0)
    assert app.run_headless() == 0
    args = seen[0]
    assert args.command == "train" and args.data is None and args.epochs is None  # schema defaults


# ---------------------------------------------------------------- form


def test_form_fields_follow_the_schema() -> None:
    assert [f.name for f in form.FIELDS[:3]] == ["symbol", "timeframe", "forecast_horizon"]
    cv = form.BY_NAME["cv_folds"]
    assert (cv.minimum, cv.maximum, cv.default, cv.advanced) == (1, 20, 5, False)
    assert form.BY_NAME["learning_rate"].exclusive_min and form.BY_NAME["learning_rate"].advanced
    assert form.BY_NAME["calibration_method"].choices == ("abs", "mle", "crps", "isotonic", "platt", "temperature", "none")


def test_form_validate() -> None:
    body, errors = form.validate({**form.defaults(), "symbol": " btc/usdt ", "seed": "7", "dataset": ""})
    assert errors == {} and body["symbol"] == "BTCUSDT" and body["seed"] == 7 and "dataset" not in body
    body, errors = form.validate({**form.defaults(), "cv_folds": 21, "learning_rate": "fast"})
    assert body is None and set(errors) == {"cv_folds", "learning_rate"}
    # What the inputs hold as one types (text): a message for what is there, never a silent default.
    assert form.validate({**form.defaults(), "batch_size": "abc"})[1] == {"batch_size": "'abc' is not a whole number"}
    assert form.validate({**form.defaults(), "batch_size": "1.5"})[1] == {"batch_size": "'1.5' is not a whole number"}
    assert form.validate({**form.defaults(), "learning_rate": "x"})[1] == {"learning_rate": "'x' is not a number"}
    assert form.validate({**form.defaults(), "batch_size": " 256 "})[0]["batch_size"] == 256


def test_form_defaults_drop_bad_remembered_values() -> None:
    values = form.defaults({"epochs": 3, "cv_folds": 99, "not_a_field": 1})
    assert values["epochs"] == 3 and values["cv_folds"] == 5 and "not_a_field" not in values


def test_problem_fields_maps_locations() -> None:
    assert form.problem_fields([("body.cv_folds", "too big"), (["body", "seed"], "bad"), ("header.X", "no")]) == {
        "cv_folds": "too big",
        "seed": "bad",
        "request": "no",
    }


def test_candlecast_jobs_cuts_a_long_reason_at_a_word_with_an_ellipsis() -> None:
    killed = ("the worker was killed by signal 9 (SIGKILL) without a final event: often the system ran out of "
              "memory (check `dmesg`)")
    job = {"job_id": "j1", "status": "failed", "symbol": "BTCUSDT", "timeframe": "1h", "horizon": 1, "model": "mlp",
           "metrics": None, "duration_s": None, "error": killed, "stop_reason": None}
    listing = {"jobs": [job, {**job, "job_id": "j2", "error": "stopped on request"}], "count": 2, "total": 2,
               "offset": 0}
    listing["jobs"][1]["metrics"] = {"direction": "no_skill", "distribution": "beats_all"}
    lines = remote_cli.jobs_table(listing).splitlines()
    assert ["no skill", "beats all"] == [c.strip() for c in lines[2].split("  ") if "skill" in c or "beats" in c]
    why = lines[1].rstrip().split("  ")[-1].strip()
    assert why == "the worker was killed by signal 9 (SIGKILL) without a final event: often the …", why
    assert len(why) <= remote_cli.WHY_WIDTH and lines[2].rstrip().endswith("  stopped on request")


def test_candlecast_compare_marks_the_best_and_says_which_pairs_share_no_bars() -> None:
    figures = lambda crps, skill: {"crps_skill_garch": skill, "direction": "beats_all"}  # noqa: E731
    result = {
        "jobs": ["a", "b", "c"], "differences": {"epochs": [20, 5, 20], "symbol": ["BTCUSDT", "BTCUSDT", "ETHUSDT"]},
        "key_figures": {"a": figures(0.0031, 0.0082), "b": figures(0.0032, -0.0012), "c": None},
        "metrics": {"a": {"crps": 0.0031234, "roc_auc": 0.52}, "b": {"crps": 0.0031201, "roc_auc": 0.51}, "c": {}},
        "pairs": [
            {"a": "a", "b": "b", "n": 900, "tests": {
                "log_loss": {"t": -2.5, "p": 0.0124, "verdict": "better"},
                "brier": {"t": None, "p": None, "verdict": "no_difference"}}},
            {"a": "a", "b": "c", "n": 0, "tests": {}},
        ],
    }
    lines = remote_cli.compare_table(result).splitlines()
    row = lambda label: next(line for line in lines if line.startswith(label + "  ")).split()  # noqa: E731
    assert row("epochs")[-3:] == ["20", "5", "20"] and row("symbol")[-1] == '"ETHUSDT"'
    assert row("CRPS")[-3:] == ["0.0031234", "0.0031201*", "-"]  # lowest is best, 5 significant digits
    assert row("ROC AUC")[-3:] == ["0.52*", "0.51", "-"]
    assert row("CRPS skill vs GARCH-t")[-3:] == ["+0.0082*", "-0.0012", "-"]
    assert "  a vs b on 900 shared test bars: log loss better (t = -2.50, p = 0.012); brier no significant " \
           "difference (identical losses)" in lines
    assert ("  a vs c: no test bars in common (their test periods do not overlap, or the symbol, timeframe or horizon "
            "differ): no test") in lines
    # Tested on different bars: their counts, a note, and no best (as the GUI's Compare window).
    result["key_figures"] = {"a": {**figures(0, 0.0082), "n": 900}, "b": {**figures(0, -0.0012), "n": 950}, "c": None}
    lines = remote_cli.compare_table(result).splitlines()
    assert row("Test bars")[-3:] == ["900", "950", "-"] and row("CRPS")[-3:] == ["0.0031234", "0.0031201", "-"]
    assert any(line.startswith("Tested on different bars: the rows are not comparable bar for bar") for line in lines)


def test_a_dialog_names_the_field_the_server_asks_for_as_its_own() -> None:
    asks = m.Problem(422, "Unprocessable Content", "/x/candles.csv: no symbol in the file or its name; give the symbol "
                     "(e.g. BTCUSDT) in the request's symbol field", errors=(("body.symbol", "…"),))
    assert asks.in_form({"symbol": "Symbol"}) == ("/x/candles.csv: no symbol in the file or its name; give the symbol "
                                                  "(e.g. BTCUSDT) in the Symbol field above")
    assert asks.in_form({"timeframe": "Timeframe"}) == asks.plain()  # a field the dialog lacks keeps the API's words
    plain = m.Problem(422, "Unprocessable Content", "/x/notes.csv: no time column")
    assert plain.in_form({"symbol": "Symbol"}) == "/x/notes.csv: no time column"


# ---------------------------------------------------------------- predictions → plot series


def test_loss_plot_draws_one_line_per_fold() -> None:
    points = [LossPoint(1, 1, 2.0, 2.1), LossPoint(1, 2, 1.5, 1.6), LossPoint(2, 1, 2.2, 2.3), LossPoint(2, 2, 1.4, 1.5)]
    assert loss_segments(points) == [(1, [1.0, 2.0], [2.0, 1.5], [2.1, 1.6]), (2, [3.0, 4.0], [2.2, 1.4], [2.3, 1.5])]
    assert loss_segments([]) == []


def test_epoch_ticks_are_whole_numbers() -> None:
    assert epoch_ticks(3) == (("1", 1.0), ("2", 2.0), ("3", 3.0))
    assert [v for _, v in epoch_ticks(100)] == [10.0 * k for k in range(1, 11)]
    assert [v for _, v in epoch_ticks(23)] == [2.0 * k for k in range(1, 12)]
    assert epoch_ticks(0) == (("1", 1.0),)
    for last in (1, 7, 40, 399, 5000):
        ticks = epoch_ticks(last)
        assert 1 <= len(ticks) <= 12 and all(v == int(v) and label == str(int(v)) for label, v in ticks)


def test_reduce_predictions() -> None:
    rows = [{"timestamp": 3600.0 * i, "fold": 1, "y": (1 if i % 2 else -1) * 0.01, "p_up": 0.5 + 0.001 * i}
            for i in range(100)]
    rows.append({"timestamp": None, "fold": 1, "y": 0.1, "p_up": 0.5})  # skipped
    series = reduce_predictions(reversed(rows))
    assert series["window"] == (10.0,)
    assert series["time"][:3] == (9 * 3600.0, 10 * 3600.0, 11 * 3600.0)  # sorted, from the first full window
    assert series["outcome"][:4] == (1.0, 0.0, 1.0, 0.0)
    assert series["up_rate"][0] == pytest.approx(0.5)
    assert series["p_up_mean"][0] == pytest.approx(sum(0.5 + 0.001 * i for i in range(10)) / 10)
    assert series["p_up_mean"][-1] == pytest.approx(sum(0.5 + 0.001 * i for i in range(90, 100)) / 10)
    assert {len(v) for k, v in series.items() if k != "window"} == {91}


def test_reduce_thins_long_series_after_the_means() -> None:
    rows = [{"timestamp": float(i), "fold": 1, "y": 1.0, "p_up": 0.6} for i in range(10_000)]
    series = reduce_predictions(rows, max_points=1000)
    assert len(series["time"]) <= 1000 and series["time"][0] == 167.0 and series["time"][1] == 177.0
    assert rolling_window(10_000) == 168 and series["up_rate"][-1] == 1.0
    assert reduce_predictions([]) == {}


# ---------------------------------------------------------------- frame statistics and the shell


def test_percentile_nearest_rank() -> None:
    values = sorted(float(i) for i in range(1, 101))
    assert percentile(values, 0.99) == 99.0 and percentile(values, 0.5) == 50.0
    assert percentile([7.0], 0.99) == 7.0


def test_frame_stats_skip_warmup_and_split_streaming() -> None:
    stats = FrameStats(warmup=2)
    for i, streaming in enumerate([False, False, False, True, True]):
        stats.record(0.010 * (i + 1), streaming)
    summary = FrameStats.summary(*stats.snapshot())
    assert summary["frames"] == 5 and summary["all"]["count"] == 3
    assert summary["streaming"] == {"count": 2, "p50_ms": 40.0, "p99_ms": 50.0, "max_ms": 50.0}


def test_shell_drains_messages_and_renders_only_on_change() -> None:
    performed: list[m.Effect] = []
    clock = iter(float(t) for t in range(1000))
    shell = Shell(lambda effects: performed.extend(effects), clock=lambda: next(clock))
    renders = []

    class View:
        def render(self, state, prev) -> None:
            renders.append((state, prev))

    shell.views.append(View())
    shell.step()
    assert m.ListJobs() in performed and m.CheckHealth() in performed and len(renders) == 1
    shell.step()
    assert len(renders) == 1  # nothing changed: no render
    shell.post(m.HealthAnswered(5.0, 1e9, health={"version": "x"}))
    shell.dispatch(m.StartClicked, config={"epochs": 1}, key="k")
    shell.step()
    assert len(renders) == 2 and renders[1][0].conn.rest_ok and renders[1][0].run.phase.value == "pending"
    assert m.PostStart({"epochs": 1}, "k", 1) in performed


def test_gui_test_probe_only_when_asked_and_at_most_once_per_interval(tmp_path, monkeypatch) -> None:
    """The hook ``tests/gui_harness.py`` reads: absent without CANDLECAST_GUI_PROBE; with it, a snapshot per
    PROBE_INTERVAL_S of frames (on the disk thread, here run at once) and a closing one, each a whole JSON file."""
    written: list[dict] = []
    stats = FrameStats(warmup=0)
    stats.record(0.004, False)

    def taken(dpg, shell, server, closing=False) -> dict:
        return {"dpg": dpg, "closing": closing, "frame_stats": stats.snapshot()}

    def disk(job) -> None:
        job()
        written.append(json.loads(path.read_text()))

    monkeypatch.setattr(gui_test_probe, "snapshot", taken)
    monkeypatch.delenv(gui_test_probe.PROBE_ENV, raising=False)
    assert gui_test_probe.Probe.from_env("dpg", None, None, disk) is None
    path = tmp_path / "probe.json"
    monkeypatch.setenv(gui_test_probe.PROBE_ENV, str(path))
    probe = gui_test_probe.Probe.from_env("dpg", None, None, disk)
    interval = gui_test_probe.PROBE_INTERVAL_S
    for started in (10.0, 10.0 + interval / 2, 10.0 + interval, 10.0 + interval * 1.5):
        probe.frame(started)
    probe.close()
    assert [w["closing"] for w in written] == [False, False, True]
    assert written[0]["frame_stats"] == FrameStats.summary(*stats.snapshot())  # summarised on the way out


# ---------------------------------------------------------------- what the views say (pure helpers)


def test_progress_after_the_run_ended_says_how_and_where() -> None:
    from desktop_app.panels.run import Phase, Progress, Run
    from desktop_app.views.training_view import progress_fraction, progress_text

    where = Progress(fold=1, folds=5, epoch=14, epochs=20, fraction=0.05, eta_s=68.0)
    assert progress_text(Run(phase=Phase.RUNNING, progress=where)) == "Fold 1/5 · Epoch 14/20 · 5% · ETA 1:08"
    # After the last fold the ETA (which counts only the folds' training) says 0; the bar says what runs instead.
    last = Progress(fold=5, folds=5, epoch=20, epochs=20, fraction=1.0, eta_s=0.0)
    assert progress_text(Run(phase=Phase.RUNNING, progress=last, folds_done=4)).endswith("ETA 0:00")
    finishing = progress_text(Run(phase=Phase.RUNNING, progress=last, folds_done=5))
    assert finishing == ("All 5 folds done · pooled scores and verdicts, fitting the final model on all data, "
                         "writing the report…")
    stopped = Run(phase=Phase.IDLE, progress=where, ended="stopped")
    assert progress_text(stopped) == "Stopped at fold 1/5 · epoch 14/20 (5% done)"  # no ETA: nothing is coming
    assert progress_text(Run(phase=Phase.IDLE, ended="cancelled")) == "Cancelled before the first epoch"
    assert progress_text(Run(phase=Phase.FAILED, progress=where, ended="failed")).startswith("Failed at fold 1/5")
    done = Run(phase=Phase.IDLE, progress=where, ended="completed")
    assert progress_text(done) == "Completed · 5 folds" and progress_fraction(done) == 1.0
    assert progress_fraction(stopped) == 0.05


def test_long_log_lines_wrap_into_indented_continuations() -> None:
    from desktop_app.views.dialogs import WRAP_INDENT, wrap_lines

    long = "2024-05-01 12:00:03 ERROR " + "x" * 30 + " because " + "word " * 20
    text = wrap_lines(["short", "", long], 40)
    rows = text.split("\n")
    assert rows[:2] == ["short", ""] and all(len(row) <= 40 for row in rows)
    assert all(row.startswith(WRAP_INDENT) for row in rows[3:]) and len(rows) > 4
    assert "".join(row.strip() for row in rows[2:]).replace(" ", "") == long.replace(" ", "")  # nothing lost


# ---------------------------------------------------------------- start-up files and their warnings


def test_startup_shows_what_the_settings_migration_did(candlecast_home) -> None:
    import json

    from trainer import paths

    config = paths.config_dir() / "config.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"tf": "4h", "colour": "blue", "layout": {"width": 1500}}))
    (config.parent / "dpg.ini").write_bytes(b"\x00garbage")
    files = app.prepare_files()
    assert len(files.warnings) == 3, files.warnings  # migration summary, its warning, then the corrupt ini
    summary, unknown, ini = files.warnings
    assert summary.startswith(f"Migrated the old settings file {config}") and "tf -> training.timeframe" in summary
    assert "backup config.json.bak." in summary
    assert unknown == "Settings migration: unknown key 'colour' kept under \"unknown\""
    assert "dpg.ini" in ini and files.ini is None
    assert files.layout.viewport.width == 1500  # the old window size, moved into layout.json first
    assert app.prepare_files().warnings == ()  # migrated once: nothing more to say


def test_a_job_log_comes_with_its_file_path() -> None:
    from desktop_app.api_client import ApiClient
    from desktop_app.runtime import Runtime
    from embedded_server.serve import start_server
    from embedded_server.settings import AppSettings

    server = start_server("127.0.0.1", 0, settings=AppSettings(max_concurrent_jobs=0))  # the job stays queued
    runtime = Runtime(ApiClient(server.url), lambda message: None, lambda config: None)
    try:
        job_id = runtime.client.start_training({"epochs": 1}, "key-log")["job_id"]
        folder = runtime.client.job(job_id)["artifacts"]["dir"]
        loaded = runtime.outcome(m.LoadLogTail(job_id, with_path=True))
        assert loaded.problem is None and loaded.path == f"{folder}/worker.log"
        assert runtime.outcome(m.LoadLogTail(job_id)).path is None  # asked only until the dialog knows it
    finally:
        runtime.shutdown()
        server.shutdown(timeout=30)


def test_the_next_bar_says_how_much_later_than_the_training_its_candle_is() -> None:
    """A fresh-user trial got a forecast four months past the job's training end with no word about it."""
    from desktop_app.views.results_view import next_bar_text

    forecast = {"p_up": 0.53, "p_up_raw": 0.53, "close": 100.0, "price_intervals": {"80": [95.0, 105.0]},
                "open_time": "2026-01-31T00:00:00+00:00", "horizon_end": "2026-02-01T00:00:00+00:00",
                "training_end": "2025-09-18T00:00:00+00:00"}
    lines = next_bar_text(forecast).splitlines()
    assert lines[-1] == ("The model trained on candles up to 2025-09-18 00:00 UTC, 135 days earlier; a new job with "
                         "its settings learns from the newer ones")
    hours = next_bar_text({**forecast, "training_end": "2026-01-30T19:00:00+00:00"}).splitlines()
    assert hours[-1].startswith("The model trained on candles up to 2026-01-30 19:00 UTC, 5 hours earlier")
    assert len(next_bar_text({**forecast, "training_end": forecast["open_time"]}).splitlines()) == 3


def test_predict_and_the_next_bar_say_what_fell_back() -> None:
    """A fresh-user trial got a constant p_up/mu/sigma from a fold whose gates had closed, with no word about it."""
    from desktop_app.views.results_view import next_bar_text

    bar = {"open_time": "2026-01-31T00:00:00+00:00", "close": 100.0, "p_up": 0.5265, "p_up_raw": 0.5265,
           "mu": 0.0017, "sigma": 0.023, "price_intervals": {"80": [95.0, 105.0]},
           "horizon_end": "2026-02-01T00:00:00+00:00"}
    sentence = "p_up is the base rate 0.5265: the stack's gate was closed (its evidence showed no direction signal)"
    result = {"job_id": "j", "symbol": "BTCUSDT", "timeframe": "1d", "horizon": 1, "distribution": "student_t",
              "source": "BTCUSDT-1d", "training_end": bar["open_time"], "fallbacks": [sentence], "forecasts": [bar]}
    assert remote_cli.predict_table(result).splitlines()[1] == f"note: {sentence}"
    assert next_bar_text({**bar, "training_end": bar["open_time"], "fallbacks": [sentence]}).endswith(f"\nNote: {sentence}")
    assert "note" not in remote_cli.predict_table({**result, "fallbacks": []})
