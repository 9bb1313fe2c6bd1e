"""Using what was trained (issue 13), against a real server, real workers and the real predictor process:
forecasts equal the fold's predictions.csv on shared bars and exist for bars after the training end, every
refusal, the jobs list with key figures and pages, the CLI, an identical CPU rerun, the comparison of two jobs
and the changed-data refusal."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.server_fixtures import REPO_ROOT, TINY_JOB, assert_problem
from trainer.data.store import load_dataset

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: Candles of the job's dataset (a prefix of the bundled BTCUSDT 1h), and a later slice after it.
TRAIN_ROWS = 2000
LATER_ROWS = 400


def write_candles(frame: pd.DataFrame, path: Path) -> Path:
    """A plain candle CSV (open time in Unix ms) that ``POST /datasets/import`` and ``--data`` read."""
    out = frame.assign(open_time=(frame["open_time"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1))
    out[["open_time", "open", "high", "low", "close", "volume"]].to_csv(path, index=False)
    return path


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = frame[["open_time", "open", "high", "low", "close", "volume"]].copy()
    out["open_time"] = out["open_time"].map(lambda t: t.isoformat())
    return out.to_dict("records")


def cli(server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "desktop_app.cli", *args, "--server", server.url],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
    )


def finished(server, job_id: str) -> dict[str, Any]:
    return server.wait_status(job_id, {"completed", "failed", "stopped", "cancelled"})


def fold_predictions(job_dir: Path) -> pd.DataFrame:
    table = pd.read_csv(job_dir / "predictions.csv")
    return table[table["fold"] == table["fold"].max()]


def test_predict_compare_and_rerun_a_real_job(live_server, candlecast_home: Path, tmp_path: Path) -> None:
    bundled = load_dataset("BTCUSDT", "1h", "bundled:BTCUSDT-1h").candles
    server = live_server(warm_worker=False)
    body = {"path": str(write_candles(bundled.iloc[:TRAIN_ROWS], tmp_path / "first.csv")), "symbol": "BTCUSDT",
            "timeframe": "1h"}
    assert server.post("/datasets/import", body).status_code == 201

    job_id = server.post("/start_training", {**TINY_JOB, "cv_folds": 2}).json()["job_id"]
    failed_id = server.post("/start_training", {**TINY_JOB, "timeframe": "1d", "lookback": 4096}).json()["job_id"]
    job = finished(server, job_id)
    assert job["status"] == "completed", job["error"]
    job_dir = Path(job["artifacts"]["dir"])
    provenance = job["metrics"]["provenance"]
    assert provenance["dataset"]["rows"] == TRAIN_ROWS and len(provenance["dataset"]["sha256"]) == 64
    assert provenance["dataset"]["last_open_time"].startswith(bundled["open_time"].iloc[TRAIN_ROWS - 1].isoformat()[:19])
    assert set(provenance["versions"]) == {"candlecast", "python", "torch", "numpy"}
    assert provenance["device"] == "cpu" and provenance["seed"] == 42

    # Forecasts of the last fold's model for the bars it scored equal its predictions.csv rows (one code path).
    scored = fold_predictions(job_dir)
    resp = server.post(f"/jobs/{job_id}/predict", {"last": 50, "fold": 2})
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert result["training_end"] == provenance["dataset"]["last_open_time"] and len(result["forecasts"]) == 50
    merged = scored.merge(pd.DataFrame(result["forecasts"]), on="timestamp", suffixes=("_csv", ""))
    assert len(merged) >= 40  # the last bars have no label, so predictions.csv stops before them
    for column in ("p_up", "p_up_raw", "mu", "sigma", "nu"):
        np.testing.assert_allclose(merged[column], merged[f"{column}_csv"], rtol=1e-9, atol=0)
    # What fell back in that fold is said, as its metrics.json gates record it (one sentence per fallback).
    gates = job["metrics"]["folds"][1]["gates"]
    said = " ".join(result["fallbacks"])
    assert ("the base rate" in said) == (gates["direction"] is not None and not gates["direction"]["stack"])
    assert ("unconditional fit" in said) == (not gates["distribution"]["network"]), (said, gates)
    latest = result["forecasts"][-1]
    assert latest["open_time"].startswith(bundled["open_time"].iloc[TRAIN_ROWS - 1].isoformat()[:19])
    lo, hi = latest["price_intervals"]["95"]
    lo80, hi80 = latest["price_intervals"]["80"]
    assert lo < lo80 < latest["close"] < hi80 < hi and 0 < latest["p_up"] < 1

    # A later slice of real candles (inline) gives forecasts for bars after the training end.
    later = bundled.iloc[TRAIN_ROWS - 100:TRAIN_ROWS + LATER_ROWS]
    resp = server.post(f"/jobs/{job_id}/predict", {"candles": records(later), "last": 3})
    assert resp.status_code == 200, resp.text
    times = [f["timestamp"] for f in resp.json()["forecasts"]]
    assert times == [t.timestamp() for t in later["open_time"].iloc[-3:]]
    assert min(times) > pd.Timestamp(result["training_end"]).timestamp()
    as_ms = [{**r, "open_time": int(pd.Timestamp(r["open_time"]).timestamp() * 1000)} for r in records(later)]
    same = server.post(f"/jobs/{job_id}/predict", {"candles": as_ms, "last": 3})  # Unix ms open times too
    assert same.status_code == 200 and same.json()["forecasts"] == resp.json()["forecasts"], same.text

    # Every refusal: one clear 4xx, nothing changed.
    assert finished(server, failed_id)["status"] == "failed"
    refusals = [
        (f"/jobs/{failed_id}/predict", {}, 409, "failed"),
        ("/jobs/nope/predict", {}, 404, "nope"),
        (f"/jobs/{job_id}/predict", {"dataset": "ETHUSDT-1h"}, 422, "ETHUSDT"),
        (f"/jobs/{job_id}/predict", {"candles": records(later), "symbol": "ETHUSDT"}, 422, "ETHUSDT"),
        (f"/jobs/{job_id}/predict", {"candles": records(later.iloc[::4])}, 422, "14400 s apart"),
        (f"/jobs/{job_id}/predict", {"candles": records(later.iloc[-20:])}, 422, "need"),
        (f"/jobs/{job_id}/predict", {"candles": records(later.drop(later.index[-5]))}, 422, "gap"),
        (f"/jobs/{job_id}/predict", {"candles": records(bundled.iloc[:TRAIN_ROWS - 10])}, 422, "training end"),
        (f"/jobs/{job_id}/predict", {"dataset": "BTCUSDT-1h", "candles": records(later)}, 422, "one of"),
        (f"/jobs/{job_id}/predict", {"last": 0}, 422, "last"),
        (f"/jobs/{job_id}/predict", {"fold": 3}, 422, "folds 1..2"),
        (f"/jobs/{job_id}/predict", {"fold": True}, 422, "fold"),  # strict like /start_training
        (f"/jobs/{job_id}/predict", {"last": "2"}, 422, "last"),
        (f"/jobs/{job_id}/rerun", {"allow_changed_data": "true"}, 422, "allow_changed_data"),
    ]
    for path, request, status, words in refusals:
        problem = assert_problem(server.post(path, request), status)
        assert words in problem["detail"] + json.dumps(problem.get("errors")), (path, request, problem)
    model = job_dir / "model.pt"
    saved = model.read_bytes()
    model.unlink()
    assert "missing" in assert_problem(server.post(f"/jobs/{job_id}/predict", {}), 409)["detail"]
    model.write_bytes(b"not a model")
    assert "cannot be used" in assert_problem(server.post(f"/jobs/{job_id}/predict", {}), 409)["detail"]
    model.write_bytes(saved)

    # The CLI gives the same forecast, from the job's dataset or a file; by default from the deployable model.
    done = cli(server, "predict", job_id, "--json", "--fold", "2")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["forecasts"][-1] == latest
    final = server.post(f"/jobs/{job_id}/predict", {}).json()["forecasts"][-1]
    done = cli(server, "predict", job_id, "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["forecasts"][-1] == final
    assert final["open_time"] == latest["open_time"] and 0 < final["p_up"] < 1
    later_file = write_candles(later, tmp_path / "later.csv")
    done = cli(server, "predict", job_id, "--data", str(later_file), "--last", "2")
    assert done.returncode == 0, done.stderr
    assert later["open_time"].iloc[-1].isoformat()[:19] in done.stdout and "later.csv" in done.stdout
    done = cli(server, "predict", failed_id)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "409" in done.stderr

    # The jobs list: key figures, config, filters and pages.
    listing = server.get("/jobs", params={"include": "metrics,config", "limit": 1}).json()
    assert listing["total"] == 2 and listing["count"] == 1 and listing["jobs"][0]["job_id"] == failed_id
    assert listing["jobs"][0]["error"] and listing["jobs"][0]["config"]["timeframe"] == "1d"
    page = server.get("/jobs", params={"include": "metrics", "limit": 1, "offset": 1}).json()
    figures = page["jobs"][0]["metrics"]
    assert page["jobs"][0]["job_id"] == job_id and page["jobs"][0]["config"] is None
    assert figures["direction"] and figures["best_conditional"] in ("logit_ar1", "logit_ar3", "gbm")
    pooled = job["metrics"]["pooled"]
    assert figures["crps_skill_garch"] == pytest.approx(1 - pooled["model"]["crps"] / pooled["baselines"]["garch"]["crps"])
    assert [j["job_id"] for j in server.get("/jobs", params={"timeframe": "1d"}).json()["jobs"]] == [failed_id]
    assert_problem(server.get("/jobs", params={"include": "everything"}), 422)
    done = cli(server, "jobs")
    assert done.returncode == 0 and job_id in done.stdout and "CRPS skill vs GARCH-t" in done.stdout
    env = {k: v for k, v in os.environ.items() if k not in ("CANDLECAST_URL", "CANDLECAST_PORT")}
    found = subprocess.run([sys.executable, "-m", "desktop_app.cli", "jobs"], capture_output=True, text=True,
                           cwd=REPO_ROOT, timeout=120, env=env)  # no --server: the one serving this data folder
    assert found.returncode == 0 and job_id in found.stdout, found.stderr

    # A rerun on CPU reproduces the predictions bit for bit.
    done = cli(server, "rerun", job_id, "--json")
    assert done.returncode == 0, done.stderr
    rerun = json.loads(done.stdout)
    assert rerun["rerun_of"] == job_id and rerun["dataset_changed"] is False
    again = finished(server, rerun["job_id"])
    assert again["status"] == "completed", again["error"]
    assert (Path(again["artifacts"]["dir"]) / "predictions.csv").read_bytes() == (job_dir / "predictions.csv").read_bytes()
    assert again["metrics"]["provenance"]["dataset"] == provenance["dataset"]

    # Compare: identical config and predictions, so no difference and a DM test on every shared bar.
    comparison = server.get("/compare", params={"jobs": f"{job_id},{again['job_id']}"}).json()
    assert comparison["differences"] == {} and comparison["jobs"] == [job_id, again["job_id"]]
    pair = comparison["pairs"][0]
    assert pair["n"] == len(pd.read_csv(job_dir / "predictions.csv"))
    assert pair["tests"]["log_loss"]["verdict"] == "no_difference" and pair["tests"]["log_loss"]["diff"] == 0
    assert comparison["reliability"][job_id] == job["metrics"]["pooled"]["model"]["reliability"]
    assert_problem(server.get("/compare", params={"jobs": f"{job_id},{failed_id}"}), 409)
    assert_problem(server.get("/compare", params={"jobs": job_id}), 422)
    assert assert_problem(server.get("/compare", params={"jobs": f"{job_id},{job_id}"}), 422)["detail"] == \
        f"job {job_id} is named twice"
    done = cli(server, "compare", job_id, again["job_id"])
    assert done.returncode == 0, done.stderr
    assert "same config" in done.stdout and f"on {pair['n']} shared test bars: log loss no significant difference" in done.stdout
    crps = next(line for line in done.stdout.splitlines() if line.startswith("CRPS  "))
    assert crps.split()[1:] == [f"{comparison['metrics'][job_id]['crps']:.5g}"] * 2  # a tie: no best marked
    done = cli(server, "compare", job_id, failed_id)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and failed_id in done.stderr, done.stderr

    # Once the dataset has changed, a rerun says so and refuses unless allowed.
    body = {"path": str(write_candles(bundled.iloc[TRAIN_ROWS:TRAIN_ROWS + 100], tmp_path / "more.csv")),
            "symbol": "BTCUSDT", "timeframe": "1h"}
    assert server.post("/datasets/import", body).status_code == 201
    problem = assert_problem(server.post(f"/jobs/{job_id}/rerun", {}), 409)
    assert f"{TRAIN_ROWS} candles" in problem["detail"] and f"{TRAIN_ROWS + 100} up to" in problem["detail"]
    done = cli(server, "rerun", job_id)
    assert done.returncode == 1 and "changed" in done.stderr
    resp = server.post(f"/jobs/{job_id}/rerun", {"allow_changed_data": True})
    assert resp.status_code == 202 and resp.json()["dataset_changed"] is True
    server.post(f"/jobs/{resp.json()['job_id']}/stop")
    with open(job_dir / "predictions.csv") as handle:  # the source job's artifacts are untouched
        assert sum(1 for _ in csv.reader(handle)) == len(pd.read_csv(job_dir / "predictions.csv")) + 1


def test_a_job_trained_by_candlecast_train_is_a_completed_job_of_the_server(
    live_server, candlecast_home: Path, tmp_path: Path
) -> None:
    """`candlecast train` in the data folder while the server runs: the next GET /jobs lists the job as completed,
    and predict, rerun and `candlecast jobs` use it (ECE printed without a sign, skills with one). A folder still
    training or left half-written, or one whose metrics cannot be read, is not listed."""
    server = live_server(warm_worker=False)
    jobs_dir = candlecast_home / "data" / "jobs"
    half = jobs_dir / "cli-20240101-120000-abcdef"  # a killed run: results not all written
    half.mkdir(parents=True)
    (half / "config.json").write_text(json.dumps({**TINY_JOB}))
    broken = jobs_dir / "cli-20240101-120001-abcdef"
    broken.mkdir()
    for name in ("config.json", "model.pt", "metrics.json", "predictions.csv", "report.html"):
        (broken / name).write_text("{not json")
    assert server.get("/jobs").json()["total"] == 0

    train = subprocess.run(
        [sys.executable, "-m", "desktop_app.cli", "train", "--epochs", "1", "--cv-folds", "2", "--lookback", "8",
         "--batch-size", "1024", "--device", "cpu"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=600,
    )
    assert train.returncode == 0, train.stderr
    (job_dir,) = [p for p in jobs_dir.iterdir() if p not in (half, broken)]
    job_id = job_dir.name
    assert f"Job id {job_id}:" in train.stdout

    job = server.job(job_id)  # looked up by its id before any list: found as well
    listing = server.get("/jobs", params={"include": "metrics,config"}).json()
    assert listing["total"] == 1 and [j["job_id"] for j in listing["jobs"]] == [job_id]
    summary = listing["jobs"][0]
    metrics = json.loads((job_dir / "metrics.json").read_text())
    assert summary["status"] == "completed" and summary["config"] == json.loads((job_dir / "config.json").read_text())
    assert summary["duration_s"] == metrics["duration_s"] and summary["model"] == "mlp student_t"
    assert summary["metrics"]["ece"] == metrics["pooled"]["model"]["ece"]
    assert job["status"] == "completed" and job["metrics"] == metrics and job["artifacts"]["model"] == str(job_dir / "model.pt")
    assert job["created_at"] <= job["started_at"] <= job["finished_at"] and job["progress"]["fraction"] == 1.0
    assert server.get("/jobs", params={"status": "completed"}).json()["total"] == 1

    # Forecasts from its model, a rerun of its config on the same data, and the CLI's table.
    resp = server.post(f"/jobs/{job_id}/predict", {"last": 2})
    assert resp.status_code == 200 and len(resp.json()["forecasts"]) == 2, resp.text
    rerun = server.post(f"/jobs/{job_id}/rerun", {})
    assert rerun.status_code == 202 and rerun.json()["dataset_changed"] is False, rerun.text
    assert server.job(rerun.json()["job_id"])["config"] == job["config"]
    server.post(f"/jobs/{rerun.json()['job_id']}/stop")
    done = cli(server, "jobs")
    assert done.returncode == 0, done.stderr
    (row,) = [line for line in done.stdout.splitlines() if line.startswith(job_id)]
    figures = summary["metrics"]
    assert f" {figures['ece']:.4f} " in row and f"+{figures['ece']:.4f}" not in row  # ECE >= 0: no sign
    assert f"{figures['log_loss_skill_conditional']:+.4f}" in row  # a skill takes either sign: shown

    # predict --data with too few candles speaks of forecasting, and names the file as the user gave it.
    (tmp_path / "data").mkdir()
    write_candles(load_dataset("BTCUSDT", "1h").candles.iloc[-2:], tmp_path / "data" / "two.csv")
    done = subprocess.run(
        [sys.executable, "-m", "desktop_app.cli", "predict", job_id, "--data", "data/two.csv", "--server", server.url],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert f"{tmp_path / 'data' / 'two.csv'}: only " in done.stderr and "training" not in done.stderr, done.stderr
    assert "the latest 1 forecast(s) need" in done.stderr, done.stderr
