"""Sweeps (issue 14): the space is checked against the TrainingConfig schema before anything runs; a real local
sweep runs its trials as jobs tagged with the sweep, measures its objective on an inner walk-forward, scores the
best trial once on the final test period, resumes after a server restart, stops on request; the CLI."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from server_fixtures import (
    REPO_ROOT,
    WORKER_TIMEOUT,
    LiveServer,
    assert_problem,
    receive_until,
    start_live_server,
    write_settings,
)
from embedded_server.sweeps import RAY_HINT
from trainer.splits import _before, final_period_start, job_folds
from trainer.sweep_space import SweepRequest

#: Trials small enough for tests: one epoch, two inner folds (two pruning steps), a short window.
TINY = {"epochs": 1, "cv_folds": 2, "lookback": 8, "batch_size": 512}
SPACE = {
    "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
    "distribution": {"choices": ["gaussian", "laplace"]},
}
SWEEP_TIMEOUT = 15 * WORKER_TIMEOUT


# ---- the space ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"lookbak": {"choices": [8]}}, "space.lookbak: not a training option"),
        ({"lookback": {"low": 64, "high": 8}}, "space.lookback: empty range: low (64) must be below high (8)"),
        ({"distribution": {"choices": ["gaussian", "cauchy"]}}, "space.distribution: 'cauchy' is refused"),
        ({"lookback": {"choices": [1]}}, "space.lookback: 1 is refused"),
        ({"distribution": {"low": 1, "high": 2}}, "a range needs a numeric field"),
        ({"lookback": {"low": 8.0, "high": 64.0}}, "lookback is an integer field"),
        ({"learning_rate": {"low": 0.0, "high": 0.1, "log": True}}, "a log range needs low > 0"),
        ({"final_holdout": {"choices": ["off"]}}, "set by the sweep itself"),
        ({"lookback": {"choices": []}}, "at least 1 item"),
        # a malformed entry names the entry and the two shapes, never the classes behind them
        ({"lookback": [8, 16]}, "space.lookback: expected {choices: [...]} or {low, high, log?, step?}, got a list [8, 16]"),
        ({"lookback": {"choices": 8}}, "space.lookback.choices: must be a list (expected {choices"),
        ({"lookback": {"choices": [[8]]}}, "space.lookback.choices[0]: a choice is a string, a number or true/false"),
        ({"lookback": {"low": 8}}, "space.lookback.high: required"),
    ],
)
def test_a_bad_space_is_refused_naming_the_field(space: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        SweepRequest(space=space)


def test_grid_needs_a_finite_grid_and_base_is_checked() -> None:
    with pytest.raises(ValidationError, match="a grid needs choices or a step"):
        SweepRequest(space={"learning_rate": {"low": 1e-4, "high": 1e-2}}, sampler="grid")
    grid = SweepRequest(space={"lookback": {"low": 8, "high": 32, "step": 8}}, sampler="grid")
    assert grid.space["lookback"].step == 8
    with pytest.raises(ValidationError, match="base.epochs"):
        SweepRequest(space=SPACE, base={"epochs": 0})
    with pytest.raises(ValidationError, match="base.final_holdout"):
        SweepRequest(space=SPACE, base={"final_holdout": "final"})


def test_trial_config_layers_defaults_base_and_params() -> None:
    request = SweepRequest(space={"symbol": {"choices": ["ETHUSDT"]}}, base={"epochs": 3, "dataset": "BTCUSDT-1h"})
    config = request.trial_config({"symbol": "ETHUSDT"}, {"epochs": 9, "lookback": 16}, "inner")
    assert (config.epochs, config.lookback, config.symbol, config.dataset) == (3, 16, "ETHUSDT", None)
    assert config.final_holdout == "inner"


# ---- the inner walk-forward never reaches the final period --------------------------------------------------------


@pytest.mark.parametrize("horizon", [1, 6])
def test_inner_folds_end_before_the_final_period_and_final_tests_on_it(horizon: int) -> None:
    n_bars = 3000
    positions = np.arange(40, n_bars - horizon, dtype=np.int64)
    start = final_period_start(n_bars)
    inner = job_folds(positions, n_bars, horizon, 3, True, "inner")
    assert len(inner) == 3
    for fold in inner:
        for block in fold.blocks().values():
            assert block.max() + horizon < start  # no label of any inner block reaches the final period
    (final,) = job_folds(positions, n_bars, horizon, 3, True, "final")
    assert final.test.min() >= start and final.test.max() == positions.max()
    assert final.calibration.max() + horizon < final.test.min()
    # every lookback/horizon of a sweep on one dataset holds out the very same bars
    assert final_period_start(n_bars) == n_bars - 600
    assert len(_before(positions, start, horizon)) < len(positions)


# ---- API: refused before anything runs ----------------------------------------------------------------------------


def test_bad_sweeps_and_unknown_ids(client: Any) -> None:
    body = assert_problem(client.post("/sweeps", json={"space": {"lookbak": {"choices": [8]}}}), 422)
    assert "space.lookbak" in body["errors"][0]["msg"]
    assert_problem(client.post("/sweeps", json={"space": {"lookback": {"low": 9, "high": 9}}}), 422)
    assert_problem(client.post("/sweeps", json={"space": SPACE, "trials": 0}), 422)
    assert_problem(client.post("/sweeps", json={"space": SPACE, "surprise": 1}), 422)
    unknown_pruner = assert_problem(client.post("/sweeps", json={"space": SPACE, "pruner": "hyperband"}), 422)
    assert unknown_pruner["errors"][0]["loc"] == ["body", "pruner"] and "'median'" in unknown_pruner["errors"][0]["msg"]
    for pruner, above in (("threshold", None), ("median", 0.5)):  # prune_above with threshold, and only then
        body = {"space": SPACE, "pruner": pruner, "prune_above": above}
        refused = assert_problem(client.post("/sweeps", json=body), 422)
        assert "prune_above: give it with pruner 'threshold'" in refused["errors"][0]["msg"]
    unknown_symbol = {"space": {"symbol": {"choices": ["BTCUSDT", "NOPEUSDT"]}}}
    missing = assert_problem(client.post("/sweeps", json=unknown_symbol), 404)
    assert "NOPEUSDT" in missing["detail"]
    assert_problem(client.get("/sweeps/sw-20260101-000000-abcdef"), 404)
    assert_problem(client.post("/sweeps/sw-20260101-000000-abcdef/stop"), 404)
    assert client.get("/sweeps").get_json() == {"sweeps": [], "count": 0}
    assert client.get("/jobs").get_json()["count"] == 0  # nothing ran


# ---- a real local sweep -------------------------------------------------------------------------------------------


def _wait_sweep(server: LiveServer, sweep_id: str, until: Any, timeout: float = SWEEP_TIMEOUT) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sweep = server.get(f"/sweeps/{sweep_id}").json()
        if until(sweep):
            return sweep
        time.sleep(0.5)
    raise AssertionError(f"sweep {sweep_id} never got there: {server.get(f'/sweeps/{sweep_id}').json()}")


def _replay(server: LiveServer, last: str) -> list[dict[str, Any]]:
    """Every event since the server's first (WebSocket ``?since=0``) up to the first of type ``last``; asserts their
    seq has no hole (events are never pruned in a test)."""
    ws = server.ws("?since=0")
    try:
        messages = receive_until(ws, lambda m: m.get("type") == last)
    finally:
        ws.close()
    events = [m for m in messages if "seq" in m and m.get("type") not in ("hello", "ping", "pong")]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    return events


@pytest.mark.slow
def test_local_sweep_resumes_after_restart_and_scores_the_best_once(candlecast_home: Path) -> None:
    write_settings(candlecast_home, warm_worker=False)
    with _served(candlecast_home) as server:
        body = {"space": SPACE, "base": TINY, "trials": 4, "seed": 3}
        sweep_id = server.post("/sweeps", body).json()["sweep_id"]
        _wait_sweep(server, sweep_id, lambda s: s["done"] >= 2)
        assert server.stop() == 0  # mid-sweep: the running trial's job ends stopped, the sweep stays running
    with _served(candlecast_home) as server:
        _check_resumed_sweep(server, sweep_id)


@pytest.mark.slow
def test_a_pruned_trial_ends_its_job_stopped_with_the_reason(live_server: Any) -> None:
    """``ThresholdPruner`` below any log loss prunes the only trial at its first fold, for sure (three folds of
    five epochs: the stop lands long before the job could complete)."""
    server = live_server(warm_worker=False)
    body = {"space": {"distribution": {"choices": ["gaussian"]}}, "base": {**TINY, "epochs": 5, "cv_folds": 3},
            "trials": 1, "pruner": "threshold", "prune_above": 1e-6}
    sweep_id = server.post("/sweeps", body).json()["sweep_id"]
    sweep = _wait_sweep(server, sweep_id, lambda s: s["status"] != "running")

    assert (sweep["status"], sweep["error"]) == ("failed", "no trial completed (see the trials' jobs for why)")
    assert (sweep["request"]["pruner"], sweep["request"]["prune_above"], sweep["best"]) == ("threshold", 1e-6, None)
    (trial,) = sweep["trials"]
    assert (trial["state"], trial["value"], list(trial["intermediate"])) == ("pruned", None, ["1"])
    job = server.job(trial["job_id"])
    assert (job["status"], job["sweep_id"], job["trial"]) == ("stopped", sweep_id, 0)
    events = server.get(f"/jobs/{job['job_id']}/events?since=0").json()["events"]
    folds = [e for e in events if e["type"] == "training.fold_completed"]
    assert folds[0]["metrics"]["model"]["log_loss"] == trial["intermediate"]["1"] > 1e-6
    (stopped,) = [e for e in events if e["type"] == "training.stopped"]
    assert stopped["reason"].startswith(f"pruned by the sweep: fold 1's log_loss {trial['intermediate']['1']:.5g} "
                                        "is above prune_above 1e-06"), stopped
    assert server.job(job["job_id"])["stop_reason"] == stopped["reason"]  # the job says why, not only its event
    assert not any(e["type"] == "training.completed" for e in events)
    sweep_events = [e for e in _replay(server, "sweep.failed") if e["type"].startswith("sweep.")]
    assert [e["type"] for e in sweep_events] == ["sweep.started", "sweep.trial_completed", "sweep.failed"]
    told = sweep_events[1]
    assert (told["state"], told["trial"], told["job_id"]) == ("pruned", 0, job["job_id"])


@contextlib.contextmanager
def _served(home: Path) -> Iterator[LiveServer]:
    """A real server on ``home``, stopped at the end whatever happens."""
    server = start_live_server(home)
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.stop()


def _check_resumed_sweep(server: LiveServer, sweep_id: str) -> None:
    sweep = _wait_sweep(server, sweep_id, lambda s: s["status"] != "running")

    assert sweep["status"] == "completed", sweep
    trials = sweep["trials"]
    assert len(trials) == sweep["total"] == 4 and sweep["done"] == 4
    assert {t["state"] for t in trials} <= {"complete", "pruned", "failed"}
    for trial in trials:
        job = server.job(trial["job_id"])
        assert (job["sweep_id"], job["trial"]) == (sweep_id, trial["number"])
        assert job["config"]["final_holdout"] == "inner"
        assert Path(job["artifacts"]["dir"]).is_dir()
        if trial["state"] == "complete":
            assert job["status"] == "completed" and trial["value"] == job["metrics"]["pooled"]["model"]["log_loss"]
            assert set(trial["intermediate"]) == {"1", "2"}  # one value per inner fold, reported to the pruner
        elif trial["state"] == "pruned":
            assert job["status"] == "stopped"
        else:  # the trial the restart cut short (its job queued, starting or running then)
            assert job["status"] in ("cancelled", "stopped", "interrupted")
    final = sweep["final"]
    best = min((t for t in trials if t["state"] == "complete"), key=lambda t: t["value"])
    assert (final["best_trial"], final["best_value"]) == (best["number"], best["value"])
    assert (sweep["best"]["trial"], sweep["best"]["value"]) == (best["number"], best["value"])
    final_job = server.job(final["final_job_id"])
    assert (final_job["sweep_id"], final_job["trial"]) == (sweep_id, None)
    listed = server.get(f"/jobs?sweep={sweep_id}&limit=2").json()  # GET /jobs filters a sweep's jobs
    assert listed["total"] == len(trials) + 1 and listed["count"] == 2
    assert {j["sweep_id"] for j in listed["jobs"]} == {sweep_id}
    assert server.get("/jobs?sweep=no-such-sweep").json()["total"] == 0
    assert final_job["config"]["final_holdout"] == "final"
    assert final["final_value"] == final_job["metrics"]["pooled"]["model"]["log_loss"] != final["best_value"]
    assert final["verdicts"]["headline"]["direction"]["text"]
    # the final job tests on the last 20 % of the candles; no trial's inner folds reached them
    final_start = final_job["metrics"]["folds"][0]["test"]["start"]
    for trial in trials:
        folds = server.job(trial["job_id"])["metrics"]
        for fold in (folds or {}).get("folds", []):
            assert fold["test"]["end"] < final_start

    events = _replay(server, "sweep.completed")
    sweep_events = [e for e in events if e["type"].startswith("sweep.")]
    assert [e["resumed"] for e in sweep_events if e["type"] == "sweep.started"] == [False, True]
    assert sum(e["type"] == "sweep.trial_completed" for e in sweep_events) == 4
    assert all(e["sweep_id"] == sweep_id for e in sweep_events)


@pytest.mark.slow
def test_stop_a_running_sweep_and_idempotent_start(live_server: Any) -> None:
    server = live_server(warm_worker=False)
    body = {"space": SPACE, "base": {**TINY, "epochs": 1000}, "trials": 3}
    first = server.post("/sweeps", body, headers={"Idempotency-Key": "k-1"})
    again = server.post("/sweeps", body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 202
    assert first.json()["sweep_id"] == again.json()["sweep_id"]
    assert first.headers["Location"] == f"/sweeps/{first.json()['sweep_id']}"
    sweep_id = first.json()["sweep_id"]
    sweep = _wait_sweep(server, sweep_id, lambda s: s["trials"] and s["trials"][0]["job_id"])
    job_id = sweep["trials"][0]["job_id"]
    server.wait_status(job_id, {"running"})
    stop = server.post(f"/sweeps/{sweep_id}/stop")
    assert stop.status_code == 202 and stop.json() == {"status": "stopping", "sweep_id": sweep_id}
    sweep = _wait_sweep(server, sweep_id, lambda s: s["status"] != "running")
    assert sweep["status"] == "stopped" and len(sweep["trials"]) == 1
    assert server.job(job_id)["status"] == "stopped"
    assert_problem(server.post(f"/sweeps/{sweep_id}/stop"), 409)
    listed = server.get("/sweeps").json()
    assert listed["count"] == 1 and listed["sweeps"][0]["status"] == "stopped"
    events = _replay(server, "sweep.stopped")
    assert events[-1]["reason"] == "stopped on request" and events[-1]["job_id"] is None
    # Stopped on purpose, not failed: the job ends stopped, the trial in Optuna's state for that, pruned.
    ended = [e for e in events if e["type"] == "sweep.trial_completed"]
    assert [(e["job_id"], e["state"]) for e in ended] == [(job_id, "pruned")]
    assert sweep["trials"][0]["state"] == "pruned" and sweep["done"] == 1
    (why,) = [e["reason"] for e in events if e["type"] == "training.stopped" and e["job_id"] == job_id]
    assert why.startswith("the sweep was stopped: stopped on request"), why


# ---- the CLI ------------------------------------------------------------------------------------------------------


def _cli(home: Path, *args: str, timeout: float = SWEEP_TIMEOUT) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CANDLECAST_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "desktop_app.cli", "sweep", *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=env, timeout=timeout)


def test_cli_refuses_a_bad_space_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "space.yaml"
    bad.write_text("space:\n  lookback: {low: 64, high: 8}\n", encoding="utf-8")
    done = _cli(tmp_path, "--space", str(bad), "--trials", "2")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"candlecast: error: {bad}: space.lookback: empty range: low (64) must be "
                                        "below high (8)"]
    assert not (tmp_path / "data" / "jobs").exists()  # nothing ran
    missing = _cli(tmp_path, "--space", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "cannot read it" in missing.stderr and "Traceback" not in missing.stderr
    # A YAML list where a dimension belongs: the file as the user named it (relative), the entry, what is expected.
    (tmp_path / "spaces").mkdir()
    (tmp_path / "spaces" / "bad.yaml").write_text("space:\n  lookback: [8, 16]\n", encoding="utf-8")
    env = dict(os.environ, CANDLECAST_HOME=str(tmp_path), PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run([sys.executable, "-m", "desktop_app.cli", "sweep", "--space", "spaces/bad.yaml"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 2 and done.stderr.splitlines() == [
        "candlecast: error: spaces/bad.yaml: space.lookback: expected {choices: [...]} or {low, high, log?, step?}, "
        "got a list [8, 16]"]
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"space": SPACE}), encoding="utf-8")
    alone = _cli(tmp_path, "--space", str(good), "--pruner", "threshold")
    assert alone.returncode == 2 and alone.stderr.splitlines() == [
        "candlecast: error: --pruner/--prune-above: prune_above: give it with pruner 'threshold' (and only then)"]
    zero = _cli(tmp_path, "--space", str(good), "--trials", "0")  # a flag's fault names the flag, not the file
    assert zero.returncode == 2 and zero.stderr.startswith("candlecast: error: --trials: trials: "), zero.stderr
    unknown = _cli(tmp_path, "--space", str(good), "--pruner", "hyperband")
    assert unknown.returncode == 2 and "--pruner: invalid choice: 'hyperband'" in unknown.stderr
    assert not (tmp_path / "data" / "jobs").exists()


def test_cli_pruner_flags_go_into_the_request(tmp_path: Path) -> None:
    import argparse

    from desktop_app.sweep_cli import add_sweep_arguments, read_request

    space = tmp_path / "space.json"
    space.write_text(json.dumps({"space": SPACE, "pruner": "none"}), encoding="utf-8")
    parser = argparse.ArgumentParser()
    add_sweep_arguments(parser)
    request = read_request(parser.parse_args(["--space", str(space), "--pruner", "threshold", "--prune-above", "0.7"]))
    assert (request.pruner, request.prune_above) == ("threshold", 0.7)
    assert read_request(parser.parse_args(["--space", str(space)])).pruner == "none"  # the file's, without the flag


@pytest.mark.slow
def test_cli_runs_a_sweep_and_reports_both_scores(tmp_path: Path) -> None:
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"space": {"distribution": {"choices": ["gaussian"]}}, "base": TINY}), encoding="utf-8")
    done = _cli(tmp_path, "--space", str(space), "--trials", "1")
    assert done.returncode == 0, done.stderr
    assert "log_loss on the inner walk-forward (what the search saw)" in done.stdout
    assert "log_loss on the final untouched test period (scored once" in done.stdout
    assert "Direction (p_up)" in done.stdout and "1/1" in done.stderr


def test_the_documented_sweep_objects_are_the_models() -> None:
    from embedded_server import sweep_schemas
    from test_docs import section, table_rows, top_level_keys

    text = " ".join(section("### Sweeps").split())
    for name, model in (("`SweepSummary`", sweep_schemas.SweepSummary), ("`Sweep`", sweep_schemas.Sweep),
                        ("a `Trial`", sweep_schemas.Trial), ("`SweepImportance`", sweep_schemas.SweepImportance)):
        found = re.search(re.escape(name) + r" is `(\{.*?\})`", text)
        assert found and top_level_keys(found.group(1)) == set(model.model_fields), name
    rows = {row[0].strip("`") for row in table_rows(section("### Sweeps"))}
    assert rows == set(SweepRequest.model_fields)


def test_the_packaged_app_answers_a_ray_address_with_what_to_install(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    body = assert_problem(client.post("/sweeps", json={"space": SPACE, "ray_address": "127.0.0.1:6390"}), 422)
    assert body["detail"] == RAY_HINT == (
        "Ray is not installed here: pip install 'candlecast[cluster]' (the packaged app runs local sweeps only)"
    )
    assert body["errors"][0]["loc"] == ["body", "ray_address"]
    assert client.get("/sweeps").get_json()["count"] == 0
