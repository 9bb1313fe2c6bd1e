"""Forecasts from a trained job for its latest candles (``POST /jobs/{id}/predict``, ``candlecast predict``), and
the current fingerprint of a job's dataset (``rerun``'s changed-data check). Worker-side (torch): the server
reaches it through the predictor process (``trainer.predictor``).

The forecasts come from ``trainer.train.predict_from_checkpoint``, the code path that scored the test blocks, so a
bar a fold's model already scored gets that fold's ``predictions.csv`` values again. Each refusal is a
``ForecastRefused`` carrying the HTTP status the API answers with and a one-line message.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainer.config import TIMEFRAME_SECONDS, TrainingConfig
from trainer.data.candles import CandleError, validate_candles
from trainer.data.catalog import parse_dataset_id
from trainer.data.store import load_dataset
from trainer.features import WARMUP, DataError
from trainer.paths import PROVENANCE_FILE
from trainer.provenance import dataset_fingerprint

#: Central interval levels of each forecast (as in the coverage metrics).
LEVELS = (0.5, 0.8, 0.95)
#: Bars read before the needed window, so the rolling features start as far back as a long series' do.
EXTRA_HISTORY = 2 * WARMUP


class ForecastRefused(Exception):
    """A forecast or check that cannot be given: ``status`` (404, 409, 422), a one-line message and, for a 422,
    ``loc``: the request field at fault (``["body", "candles"]``)."""

    def __init__(self, status: int, message: str, loc: tuple[str, ...] = ("body",)) -> None:
        super().__init__(message)
        self.status = status
        self.loc = list(loc)


def _source_field(request: dict[str, Any]) -> str:
    """The request field that names the candles (the job's own dataset when none is given)."""
    return next((name for name in ("candles", "path", "dataset") if request.get(name) is not None), "dataset")


def _iso(seconds: float) -> str:
    return pd.Timestamp(seconds, unit="s", tz="UTC").isoformat().replace("+00:00", "Z")


def job_config(job_dir: Path) -> TrainingConfig:
    """The job's ``TrainingConfig`` from its ``config.json``; ``ForecastRefused`` (409) when it is unreadable."""
    try:
        return TrainingConfig.model_validate_json((job_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ForecastRefused(409, f"job {job_dir.name}: cannot read its config.json ({exc})") from None


def recorded_provenance(job_dir: Path) -> dict[str, Any] | None:
    """The job's recorded ``provenance.json`` (``trainer.provenance``), or None for a job from before it existed."""
    try:
        return json.loads((job_dir / PROVENANCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def current_fingerprint(config: dict[str, Any]) -> dict[str, Any]:
    """The fingerprint (``trainer.provenance.dataset_fingerprint``) of the dataset ``config`` (a job's config
    dict) would train on now; ``ForecastRefused`` (404) when that dataset no longer exists or is invalid."""
    cfg = TrainingConfig(**config)
    try:
        dataset = load_dataset(cfg.symbol, cfg.timeframe, cfg.dataset)
    except CandleError as exc:
        raise ForecastRefused(404, str(exc)) from None
    return dataset_fingerprint(dataset.candles)


def _candles(config: TrainingConfig, request: dict[str, Any]) -> tuple[pd.DataFrame, str]:
    """The candle table a request names (inline ``candles``, a file ``path``, a ``dataset`` id, default the job's
    own dataset), validated with the job's timeframe, and a label for messages."""
    symbol, timeframe = request.get("symbol"), request.get("timeframe")
    if (symbol or config.symbol) != config.symbol or (timeframe or config.timeframe) != config.timeframe:
        raise ForecastRefused(
            422, f"the candles are {symbol or config.symbol} {timeframe or config.timeframe}; the job's model is "
            f"{config.symbol} {config.timeframe}", ("body", "symbol" if symbol else "timeframe"),
        )
    try:
        if request.get("candles") is not None:
            frame, label = pd.DataFrame(request["candles"]), "body.candles"
            if pd.api.types.is_numeric_dtype(frame["open_time"]):  # Unix ms (API.md), not pandas' default ns
                frame["open_time"] = pd.to_datetime(frame["open_time"], unit="ms", utc=True)
            _check_spacing(frame, config.timeframe)
            return validate_candles(frame, config.timeframe, source=label)[0], label
        if request.get("path"):
            from trainer.data.importer import clean_candles  # the readers only when a file is given
            from trainer.data.readers import read_candles

            path = Path(request["path"]).expanduser()
            raw = read_candles(path)
            # A file that names no symbol is taken to hold the job's (the user gave it for this job).
            named = "symbol" in raw.frame.columns or raw.symbol_from_name
            need, why = forecast_need(config, int(request.get("last", 1)))
            frame, file_symbol, file_timeframe, _ = clean_candles(
                raw, path, None if named else symbol or config.symbol, min_rows=need, need=why
            )
            if (file_symbol, file_timeframe) != (config.symbol, config.timeframe):
                raise ForecastRefused(
                    422, f"{path}: holds {file_symbol} {file_timeframe} candles; the job's model is "
                    f"{config.symbol} {config.timeframe}", ("body", "path"),
                )
            return frame, str(path)
        dataset_id = request.get("dataset") or config.dataset or f"{config.symbol}-{config.timeframe}"
        try:
            id_symbol, id_timeframe, _ = parse_dataset_id(dataset_id)
        except ValueError as exc:
            raise ForecastRefused(422, str(exc), ("body", "dataset")) from None
        if (id_symbol, id_timeframe) != (config.symbol, config.timeframe):
            raise ForecastRefused(
                422, f"dataset {dataset_id!r} holds {id_symbol} {id_timeframe} candles; the job's model is "
                f"{config.symbol} {config.timeframe}", ("body", "dataset"),
            )
        return load_dataset(config.symbol, config.timeframe, dataset_id).candles, f"dataset {dataset_id}"
    except CandleError as exc:
        raise ForecastRefused(422, str(exc), ("body", _source_field(request))) from None


def forecast_need(config: TrainingConfig, last: int) -> tuple[int, str]:
    """How many candles forecasts of the latest ``last`` bars need (a lookback window and the features' warm-up
    for the first, one more bar each for the rest), and that in words for a refusal."""
    need = WARMUP + config.lookback + last - 1
    return need, (f"the latest {last} forecast(s) need {need} candles (lookback {config.lookback} + feature "
                  f"warm-up {WARMUP} + {last - 1})")


def _check_spacing(frame: pd.DataFrame, timeframe: str) -> None:
    """Refuse inline candles whose usual spacing is not the job's timeframe (e.g. 4h candles for a 1h model)."""
    if "open_time" not in frame.columns or len(frame) < 2:
        return
    times = pd.to_datetime(frame["open_time"], utc=True, errors="coerce").sort_values().diff().dropna()
    if times.empty:
        return
    step = int(times.median().total_seconds())
    if step != TIMEFRAME_SECONDS[timeframe]:
        raise ForecastRefused(
            422, f"body.candles: candles are {step} s apart; the job's model is {timeframe}", ("body", "candles")
        )


def forecast(job_dir: Path, request: dict[str, Any]) -> dict[str, Any]:
    """Forecasts of the job in ``job_dir`` for the latest ``request["last"]`` closed candles (module doc).

    ``request``: ``{last, fold?, candles?, path?, dataset?, symbol?, timeframe?}`` (``schemas.PredictRequest``;
    ``fold``: a walk-forward fold's model by its number, default the deployable model refitted on all the data).
    Returns ``{job_id, symbol, timeframe, horizon, distribution, source, training_end, fallbacks, forecasts: [...]}``, each
    forecast ``{open_time, timestamp, close, horizon_end, p_up, p_up_raw, mu, sigma, nu, return_intervals,
    price_intervals}`` (intervals by level ``"50" "80" "95"``: ``[low, high]`` of the forward log return over the
    horizon and of the price at the horizon's end), oldest first. Raises ``ForecastRefused``.
    """
    from trainer.train import predict_from_checkpoint  # torch: only once a forecast is asked for

    config = job_config(job_dir)
    model_path = job_dir / "model.pt"
    if not model_path.is_file():
        raise ForecastRefused(409, f"job {job_dir.name} has no model file ({model_path} is missing)")
    last = int(request.get("last", 1))
    fold = request.get("fold")
    if fold is not None:
        folds = len(json.loads((job_dir / "metrics.json").read_text())["folds"])
        if not 1 <= fold <= folds:
            raise ForecastRefused(422, f"job {job_dir.name} has folds 1..{folds}, not {fold}", ("body", "fold"))
    frame, label = _candles(config, request)
    where = ("body", _source_field(request))
    need, why = forecast_need(config, last)
    if len(frame) < need:
        raise ForecastRefused(422, f"{label}: {len(frame)} candle(s); {why}", where)
    provenance = recorded_provenance(job_dir)
    training_end = provenance["dataset"]["last_open_time"] if provenance else None
    latest = frame["open_time"].iloc[-1]
    if training_end is not None and latest < pd.Timestamp(training_end):
        raise ForecastRefused(
            422, f"{label}: the latest candle opens at {latest.isoformat()}, before the model's training end "
            f"{training_end}; give candles up to now (or at least up to the training end)", where,
        )
    tail = frame.iloc[-(need + EXTRA_HISTORY):].reset_index(drop=True)
    try:
        positions, timestamps, calibrated, raw, fallbacks = predict_from_checkpoint(
            model_path, tail, "final" if fold is None else fold - 1
        )
    except DataError as exc:
        raise ForecastRefused(422, f"{label}: {exc}", where) from None
    except (ValueError, KeyError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:  # not this version's model
        raise ForecastRefused(409, f"job {job_dir.name}: its model file cannot be used ({exc})") from None
    wanted = np.arange(len(tail) - last, len(tail))
    missing = np.setdiff1d(wanted, positions)
    if missing.size:
        first = tail["open_time"].iloc[int(missing[0])].isoformat()
        raise ForecastRefused(
            422, f"{label}: a gap inside the {config.lookback + WARMUP} bars before {first} (the candle at "
            f"{first} has no gap-free window; {missing.size} of the latest {last} have none)", where,
        )
    index = np.searchsorted(positions, wanted)
    step = TIMEFRAME_SECONDS[config.timeframe]
    close = tail["close"].to_numpy(np.float64)[wanted]
    intervals = {level: calibrated.interval(level) for level in LEVELS}
    forecasts = []
    for row, i in enumerate(index):
        t = float(timestamps[i])
        returns = {f"{level * 100:g}": [float(lo[i]), float(hi[i])] for level, (lo, hi) in intervals.items()}
        forecasts.append({
            "open_time": _iso(t), "timestamp": t, "close": float(close[row]),
            "horizon_end": _iso(t + (config.forecast_horizon + 1) * step),
            "p_up": float(calibrated.p_up[i]), "p_up_raw": float(raw.p_up[i]), "mu": float(calibrated.mu[i]),
            "sigma": float(calibrated.sigma[i]), "nu": None if calibrated.nu is None else float(calibrated.nu[i]),
            "return_intervals": returns,
            "price_intervals": {
                k: [float(close[row] * np.exp(lo)), float(close[row] * np.exp(hi))] for k, (lo, hi) in returns.items()
            },
        })
    return {
        "job_id": job_dir.name, "symbol": config.symbol, "timeframe": config.timeframe,
        "horizon": config.forecast_horizon, "distribution": config.distribution, "source": label,
        "training_end": training_end, "fallbacks": fallbacks, "forecasts": forecasts,
    }
