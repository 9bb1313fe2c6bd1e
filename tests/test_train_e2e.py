"""The job runner on slices of the real bundled candles: metric ranges, artifacts, determinism, bad inputs."""

from __future__ import annotations

import io
import json
import re
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from trainer.config import TrainingConfig
from trainer.data.store import load_dataset
from trainer.events import EventType
from trainer.model import TrainingStopped
from trainer.train import JobError, predict_from_checkpoint, run_job

TINY = {"epochs": 2, "cv_folds": 2, "lookback": 8, "batch_size": 256}
METRIC_KEYS = {
    "n", "crps", "nll", "pit_hist", "pit_ks", "coverage_50", "coverage_80", "coverage_95", "brier",
    "brier_reliability", "brier_resolution", "brier_uncertainty", "log_loss", "ece", "calibration_in_the_large",
    "accuracy", "roc_auc", "up_rate", "reliability",
}


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return load_dataset("BTCUSDT", "1h").candles


@pytest.fixture(scope="module")
def recent(candles: pd.DataFrame) -> pd.DataFrame:
    """The last 4,000 real candles (2023–2024, no gaps)."""
    return candles.iloc[-4000:].reset_index(drop=True)


def run(config: dict, job_dir: Path, frame: pd.DataFrame, **kwargs):
    events: list[dict] = []
    result = run_job(TrainingConfig(**config), job_dir, events.append, candles=frame, **kwargs)
    return result, events


@pytest.mark.slow
def test_real_slice_metrics_are_sane_and_artifacts_complete(candles: pd.DataFrame, tmp_path: Path) -> None:
    frame = candles.iloc[-20_000:].reset_index(drop=True)
    job_dir = tmp_path / "job"
    result, events = run({"epochs": 8, "cv_folds": 3, "lookback": 32}, job_dir, frame)
    metrics = result.metrics
    pooled = metrics["pooled"]
    model = pooled["model"]
    # Honest ranges for 1 h BTC (MODEL.md): direction barely predictable, volatility clearly so.
    assert 0.47 <= model["accuracy"] <= 0.56
    assert model["ece"] <= 0.03
    assert pooled["skill"]["climatology"]["crps_skill"] > 0
    assert 0.72 <= model["coverage_80"] <= 0.88 and 0.90 <= model["coverage_95"] <= 0.98
    assert METRIC_KEYS | {"ece_raw", "brier_raw"} <= set(model)
    for name in ("climatology", "ewma", "garch"):
        assert METRIC_KEYS <= set(pooled["baselines"][name]) and pooled["baselines"][name]["n"] == pooled["n"]
        assert set(pooled["skill"][name]) >= {"crps_skill", "brier_skill"}
    assert pooled["n"] == sum(f["test"]["n"] for f in metrics["folds"])
    assert metrics["device"] == "cpu" and metrics["duration_s"] > 0

    types = [e["type"] for e in events]
    assert types[0] == EventType.TRAINING_STARTED.value and types.count("training.fold_completed") == 3
    fractions = [e["fraction"] for e in events if e["type"] == "training.epoch"]
    assert fractions == sorted(fractions) and 0 < fractions[0] and fractions[-1] == 1.0
    fold_events = [e for e in events if e["type"] == "training.fold_completed"]
    assert [e["metrics"] for e in fold_events] == metrics["folds"]

    on_disk = json.loads((job_dir / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    predictions = pd.read_csv(job_dir / "predictions.csv")
    model_columns = ["timestamp", "fold", "y", "mu", "sigma", "p_up", "p_up_raw", "nu"]
    baseline_columns = [  # EWMA's distribution is Gaussian: no nu
        f"{name}_{part}" for name in ("climatology", "ewma", "garch") for part in ("p_up", "mu", "sigma", "nu")
        if name != "ewma" or part != "nu"
    ]
    baseline_columns += [f"{name}_p_up" for name in ("logit_ar1", "logit_ar3", "gbm", "majority")]
    assert list(predictions.columns) == model_columns + baseline_columns
    assert (predictions["nu"] > 2).all() and predictions["majority_p_up"].isin([0.0, 1.0]).all()
    assert len(predictions) == pooled["n"] and predictions["timestamp"].is_monotonic_increasing
    assert (predictions["sigma"] > 0).all() and predictions["p_up"].between(0, 1).all()
    close = frame.set_index(frame["open_time"].astype("int64") // 10**9)["close"]
    t0 = int(predictions["timestamp"].iloc[0])
    assert predictions["y"].iloc[0] == pytest.approx(np.log(close[t0 + 3600] / close[t0]))
    for name in ("report.html", "reliability.png", "pit.png", "loss_curves.png", "config.json", "model.pt"):
        assert (job_dir / name).stat().st_size > 0, name
    assert 'src="reliability.png"' in (job_dir / "report.html").read_text()
    assert result.artifacts["dir"] == str(job_dir) and Path(result.artifacts["model"]).is_file()

    # model.pt holds enough to predict again: the last fold's test forecasts come back identical.
    _, timestamps, calibrated, raw, _ = predict_from_checkpoint(job_dir / "model.pt", frame, fold=-1)
    last = predictions[predictions["fold"] == 3]
    index = pd.Series(np.arange(len(timestamps)), index=timestamps)[last["timestamp"]].to_numpy()
    np.testing.assert_allclose(calibrated.mu[index], last["mu"], rtol=1e-6)
    np.testing.assert_allclose(calibrated.sigma[index], last["sigma"], rtol=1e-6)
    np.testing.assert_allclose(calibrated.p_up[index], last["p_up"], atol=1e-7)
    np.testing.assert_allclose(raw.p_up[index], last["p_up_raw"], atol=1e-7)


def _without_times(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "duration_s"}


def test_same_request_same_metrics(recent: pd.DataFrame, tmp_path: Path) -> None:
    first, _ = run(TINY, tmp_path / "a", recent)
    second, _ = run(TINY, tmp_path / "b", recent)
    other, _ = run({**TINY, "seed": 7}, tmp_path / "c", recent)
    assert _without_times(first.metrics) == _without_times(second.metrics)
    assert (tmp_path / "a" / "predictions.csv").read_bytes() == (tmp_path / "b" / "predictions.csv").read_bytes()
    assert first.metrics["pooled"]["model"]["crps"] != other.metrics["pooled"]["model"]["crps"]


@pytest.mark.parametrize(
    "options",
    [
        {"distribution": "gaussian", "calibration_method": "isotonic"},
        {"distribution": "laplace", "calibration_method": "platt"},
        {"distribution": "student_t", "p_up_source": "head", "calibration_method": "temperature"},
        {"distribution": "student_t", "calibration_method": "none", "use_cv": False, "forecast_horizon": 6},
        {"distribution": "student_t", "p_up_source": "cdf", "calibration_method": "mle"},
        {"distribution": "student_t", "p_up_source": "cdf", "calibration_method": "crps"},
    ],
    ids=["gaussian-isotonic", "laplace-platt", "head-temperature", "holdout-h6-none", "cdf-mle", "cdf-crps"],
)
def test_every_family_source_and_calibration_runs(recent: pd.DataFrame, tmp_path: Path, options: dict) -> None:
    result, _ = run({**TINY, **options}, tmp_path / "job", recent)
    model = result.metrics["pooled"]["model"]
    predictions = pd.read_csv(tmp_path / "job" / "predictions.csv")
    assert len(result.metrics["folds"]) == (1 if options.get("use_cv") is False else 2)
    fitted = [f["calibrator"] for f in result.metrics["folds"]]
    assert {f["method"] for f in fitted} == {options["calibration_method"]}
    if options["calibration_method"] in ("mle", "crps"):  # what was fitted is on record: the scale and one nu per fold
        assert all(f["params"]["scale"] > 0 and f["params"]["nu"] > 2 for f in fitted), fitted
    if options["calibration_method"] == "none":
        assert model["ece"] == model["ece_raw"]
        np.testing.assert_array_equal(predictions["p_up"], predictions["p_up_raw"])
    else:
        assert not np.array_equal(predictions["p_up"], predictions["p_up_raw"])
    assert 0.4 < model["accuracy"] < 0.6
    # The gates are on record and say what forecast each test block; the headline counts the fallbacks.
    for fold in result.metrics["folds"]:
        rows = predictions[predictions["fold"] == fold["fold"]]
        gates = fold["gates"]
        assert (rows["sigma"].nunique() > 1) == gates["distribution"]["network"], gates
        if gates["direction"] is not None:
            assert (rows["p_up_raw"].nunique() > 1) == gates["direction"]["stack"], gates
    # report.html says per fold what forecast its test block (read back from the predictions), and the data.
    page = (tmp_path / "job" / "report.html").read_text()
    table = page[page.index("<h2>Folds</h2>"):page.index("<h2>Plots</h2>")]
    said = dict(re.findall(r"<tr><td>(\d+)</td>.*?<td>([^<]*)</td></tr>", table))
    source = options.get("p_up_source", "stack")
    expected = {}
    for fold, rows in predictions.groupby("fold"):
        p_up = source if source != "stack" else "stack" if rows["p_up_raw"].nunique() > 1 else "base rate"
        distribution = "network" if rows["sigma"].nunique() > 1 else "unconditional fit"
        expected[str(fold)] = f"p_up: {p_up}; distribution: {distribution}"
    assert said == expected
    data = result.metrics["provenance"]["dataset"]
    assert data["rows"] == len(recent)
    assert (f"<p>Data: BTCUSDT-1h, {len(recent):,} candles, {data['first_open_time']} to {data['last_open_time']}, "
            f"SHA-256 {data['sha256'][:12]}…</p>") in page
    networks = [f["gates"]["distribution"]["network"] for f in result.metrics["folds"]]
    text = result.metrics["pooled"]["verdicts"]["headline"]["distribution"]["text"]
    assert (f"the network's distribution in {sum(networks)} of {len(networks)} folds" in text) == (not all(networks))


def test_predicting_again_reproduces_every_fold_and_the_final_model_sees_all(
    recent: pd.DataFrame, tmp_path: Path
) -> None:
    """One code path for training-time and later predictions: every fold's predictions.csv rows come back
    exactly (as written, 10 significant digits); the default model is the final one, refitted on all the bars."""
    run(TINY, tmp_path / "job", recent)
    written = pd.read_csv(tmp_path / "job" / "predictions.csv")
    columns = ["mu", "sigma", "nu", "p_up", "p_up_raw"]
    for index, fold in enumerate(sorted(written["fold"].unique())):
        _, timestamps, calibrated, raw, _ = predict_from_checkpoint(tmp_path / "job" / "model.pt", recent, fold=index)
        rows = written[written["fold"] == fold]
        at = pd.Series(np.arange(len(timestamps)), index=timestamps)[rows["timestamp"]].to_numpy()
        again = pd.DataFrame({"mu": calibrated.mu[at], "sigma": calibrated.sigma[at], "nu": calibrated.nu[at],
                              "p_up": calibrated.p_up[at], "p_up_raw": raw.p_up[at]})
        as_written = pd.read_csv(io.StringIO(again.to_csv(index=False, float_format="%.10g")))
        pd.testing.assert_frame_equal(as_written, rows[columns].reset_index(drop=True))
    checkpoint = torch.load(tmp_path / "job" / "model.pt", weights_only=True)
    final = checkpoint["final"]
    assert final["last_candle"] == recent["open_time"].iloc[-1].isoformat()
    assert final["calibrator"]["method"] == "abs" and final["direction"] is not None
    _, timestamps, calibrated, _, _ = predict_from_checkpoint(tmp_path / "job" / "model.pt", recent)
    assert timestamps[-1] == recent["open_time"].iloc[-1].timestamp()  # the latest bar, label unknown yet
    assert np.isfinite(calibrated.p_up).all() and (calibrated.sigma > 0).all()
    _, _, by_last_fold, _, _ = predict_from_checkpoint(tmp_path / "job" / "model.pt", recent, fold=-1)
    assert not np.array_equal(calibrated.mu, by_last_fold.mu)
    with pytest.raises(ValueError, match="no model 5"):
        predict_from_checkpoint(tmp_path / "job" / "model.pt", recent, fold=5)


def test_refit_schedule_refits_every_block_warm_started(recent: pd.DataFrame, tmp_path: Path) -> None:
    result, _ = run({**TINY, "refit_every": 1000}, tmp_path / "job", recent)
    folds = result.metrics["folds"]
    assert len(folds) == 3 and all(f["test"]["n"] <= 1000 for f in folds[:-1])
    assert sum(f["test"]["n"] for f in folds) == result.metrics["pooled"]["n"]


@pytest.mark.parametrize("kind", ["mlp", "gru"])
def test_each_model_kind_trains_and_predicts(recent: pd.DataFrame, tmp_path: Path, kind: str) -> None:
    result, _ = run({**TINY, "model": kind}, tmp_path / "job", recent)
    assert result.metrics["network"]["class"] == {"mlp": "MLPForecaster", "gru": "GRUForecaster"}[kind]
    assert 0.4 < result.metrics["pooled"]["model"]["accuracy"] < 0.6
    _, _, calibrated, _, _ = predict_from_checkpoint(tmp_path / "job" / "model.pt", recent)
    assert np.isfinite(calibrated.mu).all() and (calibrated.sigma > 0).all()


def test_stop_event_stops_between_batches(recent: pd.DataFrame, tmp_path: Path) -> None:
    stop = threading.Event()
    events: list[dict] = []

    def emit(event: dict) -> None:
        events.append(event)
        if event["type"] == "training.epoch":
            stop.set()

    with pytest.raises(TrainingStopped):
        run_job(TrainingConfig(**{**TINY, "epochs": 50}), tmp_path / "job", emit, stop, candles=recent)
    assert [e["type"] for e in events] == ["training.started", "training.epoch"]
    assert not (tmp_path / "job" / "metrics.json").exists()


def _failure(frame: pd.DataFrame, tmp_path: Path, **config) -> JobError:
    with pytest.raises(JobError) as info:
        run({**TINY, **config}, tmp_path / "job", frame)
    return info.value


def test_bad_inputs_are_clear_data_errors(recent: pd.DataFrame, tmp_path: Path) -> None:
    cases = {
        "empty": (recent.iloc[:0], {}, r"no candles \(the table is empty\)"),
        "one row": (recent.iloc[:1], {}, r"no usable samples: .* longest gap-free run has 1 of 1 bars"),
        "too short for the folds": (recent.iloc[:200], {}, r"fold 1: .*samples"),
        "horizon longer than the data": (recent.iloc[:300], {"forecast_horizon": 400}, r"\+ horizon 400\), the longest"),
        "no column": (recent.drop(columns="volume"), {}, r"missing column\(s\) volume"),
    }
    nan_prices = recent.copy()
    nan_prices.loc[[10, 11], "close"] = np.nan
    cases["NaN prices"] = (nan_prices, {}, r"2 row\(s\) with non-finite or non-positive prices at 2023-")
    for name, (frame, config, pattern) in cases.items():
        error = _failure(frame, tmp_path, **config)
        assert error.stage == "data", name
        assert len(str(error.error).splitlines()) == 1, name
        assert pd.Series([str(error.error)]).str.contains(pattern).all(), (name, str(error.error))


def test_unsorted_and_duplicated_candles_are_resolved_not_refused(recent: pd.DataFrame, tmp_path: Path) -> None:
    reference, _ = run(TINY, tmp_path / "ref", recent)
    shuffled = recent.sample(frac=1.0, random_state=0)
    doubled = pd.concat([recent, recent.iloc[100:300]]).sort_values("open_time", kind="stable")
    for name, frame in (("unsorted", shuffled), ("duplicated", doubled)):
        result, events = run(TINY, tmp_path / name, frame)
        assert events[0]["rows"] == len(recent), name
        assert _without_times(result.metrics) == _without_times(reference.metrics), name


def test_conflicting_duplicates_keep_the_last_row(recent: pd.DataFrame, tmp_path: Path) -> None:
    changed = recent.iloc[[500]].copy()
    changed["close"] *= 1.01
    changed["high"] = changed[["high", "close"]].max(axis=1)
    result, events = run(TINY, tmp_path / "job", pd.concat([recent, changed]))
    assert events[0]["rows"] == len(recent)
    reference, _ = run(TINY, tmp_path / "ref", recent)
    assert result.metrics["pooled"]["model"]["crps"] != reference.metrics["pooled"]["model"]["crps"]
