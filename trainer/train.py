"""The job runner: data → walk-forward folds → fit → calibrate → evaluate → artifacts. Worker-side (torch).

``run_job`` is shared by the worker subprocess (``trainer.worker``) and ``candlecast train`` (in-process). It
reports progress through ``emit(event)`` (events of API.md made with ``make_event``): ``training.started``
once the data are loaded, ``training.epoch`` after every epoch and ``training.fold_completed`` after every
fold. The caller sends the terminal event. A failure is raised as ``JobError`` carrying the stage it happened
in; a stop request (``stop_event``) raises ``TrainingStopped`` between batches.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from scipy import stats

from trainer.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from trainer.baselines import NU_MIN_FIT, forecast_baselines
from trainer.direction import DirectionStack, fit_direction, refit_direction
from trainer.direction_baselines import direction_inputs, forecast_direction
from trainer.calibration import Calibrator, fit_calibrator
from trainer.config import TrainingConfig
from trainer.data.candles import validate_candles
from trainer.data.store import load_dataset
from trainer.distributions import Forecast, concat_forecasts
from trainer.events import EventType, make_event
from trainer.features import (
    FEATURE_NAMES,
    RETURN_LAGS,
    ROLLING_BARS,
    WARMUP,
    WINDOW_FEATURES,
    Samples,
    Scaler,
    build_samples,
)
from trainer.metrics import evaluate, evaluate_baseline, skill_scores
from trainer.model import (
    EpochStats,
    FitResult,
    ModelArgs,
    TrainingStopped,
    build_model,
    configure_torch,
    fit,
    predict,
    select_device,
)
from trainer.provenance import job_provenance, write_provenance
from trainer.splits import Fold, final_fold, job_folds
from trainer.verdicts import compact, diebold_mariano, hac_lags, job_verdicts

log = logging.getLogger(__name__)

#: Artifact file names inside a job folder (the shared worker contract).
ARTIFACTS = {
    "config": "config.json",
    "model": "model.pt",
    "metrics": "metrics.json",
    "predictions": "predictions.csv",
    "report": "report.html",
    "log": "worker.log",
}
#: Version of the ``model.pt`` layout, bumped when keys change (2: the direction stack and the final model).
CHECKPOINT_FORMAT = 2

Emit = Callable[[dict[str, Any]], None]


class JobError(Exception):
    """A job failed in ``stage`` (config, data, train, evaluate, artifacts); ``__cause__`` is the original error."""

    def __init__(self, stage: str, error: BaseException) -> None:
        super().__init__(f"{stage}: {error}")
        self.stage = stage
        self.error = error


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Tag any exception raised inside with the stage ``name`` (a stop request passes through unchanged)."""
    try:
        yield
    except (TrainingStopped, JobError):
        raise
    except Exception as exc:
        raise JobError(name, exc) from exc


@dataclass
class JobResult:
    """A finished job: the ``metrics.json`` dict, artifact paths by name (``ARTIFACTS`` keys plus ``dir``), and
    the compact verdicts of ``training.completed`` (``trainer.verdicts.compact``)."""

    metrics: dict[str, Any]
    artifacts: dict[str, str]
    duration_s: float
    verdicts: dict[str, Any]


def _block_span(samples: Samples, positions: np.ndarray) -> dict[str, Any]:
    """``{start, end, n}`` of a block: ISO-8601 UTC open times of its first and last sample bar."""
    def iso(t: int) -> str:
        return pd.Timestamp(samples.timestamps[t], unit="s", tz="UTC").isoformat()

    return {"start": iso(int(positions[0])), "end": iso(int(positions[-1])), "n": len(positions)}


class _Progress:
    """Share of the job done and its ETA, counting each fold's training as (max epochs × training samples).

    A fold that early stopping ends before ``epochs`` counts as whole at its final epoch, so the fraction only
    grows and the last epoch of the last fold reports exactly 1.0 (the GUI's and the CLI's progress bars).
    Folds still to come count with all their epochs, so the fraction is a lower bound and the ETA an upper one.
    """

    def __init__(self, folds: list[Fold], epochs: int) -> None:
        self.work = [len(f.train) * epochs for f in folds]
        self.total = float(sum(self.work))
        self.started = time.perf_counter()

    def fraction(self, fold_index: int, epoch: int, epochs: int, final: bool) -> float:
        """Share done after ``epoch`` of fold ``fold_index`` (0-based); ``final``: the fold's training ends here."""
        share = 1.0 if final else epoch / epochs
        done = sum(self.work[:fold_index]) + self.work[fold_index] * share
        return min(1.0, done / self.total)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def eta(self, fraction: float) -> float:
        return self.elapsed() * (1 - fraction) / fraction if fraction > 0 else 0.0


def _forecast(config: TrainingConfig, raw: dict[str, np.ndarray], scaler: Scaler) -> Forecast:
    """The network's forecast in log-return units from standardised head outputs (``predict``'s dict)."""
    mu = raw["mu"] * scaler.y_std + scaler.y_mean
    sigma = raw["sigma"] * scaler.y_std
    nu = raw.get("nu")
    if config.p_up_source == "head":
        return Forecast(config.distribution, mu, sigma, nu, 1.0 / (1.0 + np.exp(-raw["logit"])))
    return Forecast.from_params(config.distribution, mu, sigma, nu)


@dataclass
class Predictor:
    """One fitted model of a job (a fold's or the final one): the network, its feature ``scaler``, the direction
    ``stack`` (when ``p_up_source`` is "stack") and the ``calibrator``. The one code path from samples to
    forecasts, at training time and from a saved ``model.pt`` (``predict_from_checkpoint``)."""

    config: TrainingConfig
    network: torch.nn.Module
    scaler: Scaler
    stack: DirectionStack | None = None
    calibrator: Calibrator | None = None
    #: The unconditional distribution ``{"mu", "sigma", "nu"}`` used instead of the network's when the network
    #: did not beat it on the calibration block (``distribution_gate``); None: the network's.
    unconditional: dict[str, float | None] | None = None
    #: The distribution gate's t values ``{"crps", "nll"}`` on the calibration block, for ``metrics.json`` (not saved).
    distribution_gate_t: dict[str, float | None] | None = None

    def raw(self, samples: Samples, positions: np.ndarray) -> Forecast:
        """The forecast before calibration at ``positions`` ((m,) int64): the network's distribution, with the
        stack's p_up when there is a stack."""
        device = next(self.network.parameters()).device
        x = torch.from_numpy(self.scaler.transform_features(samples.features)).to(device)
        forecast = _forecast(self.config, predict(self.network, x, torch.from_numpy(positions).to(device)),
                             self.scaler)
        if self.stack is None:
            return forecast
        inputs = direction_inputs(samples.features, samples.close, samples.segment, positions,
                                  self.config.forecast_horizon)
        return forecast.replace(p_up=self.stack.predict(inputs, forecast.p_up))

    def __call__(self, samples: Samples, positions: np.ndarray) -> tuple[Forecast, Forecast]:
        """``(calibrated, raw)`` forecasts at ``positions``."""
        raw = self.raw(samples, positions)
        calibrated = raw if self.calibrator is None else self.calibrator.apply(raw)
        if self.unconditional is not None:
            calibrated = _unconditional(self.config, self.unconditional, calibrated)
        return calibrated, raw

    def fallbacks(self) -> list[str]:
        """What this model forecasts with instead of its own parts, one sentence each (empty: nothing fell back):
        the base rate when the stack's gate was closed, an unconditional fit when the network lost its gate."""
        out = []
        if self.stack is not None and not self.stack.active:
            out.append(f"p_up is the base rate {self.stack.base_rate:.4f}: the stack's gate was closed (its evidence "
                       "showed no direction signal)")
        if self.unconditional is not None:
            out.append("the distribution is an unconditional fit of the history: the network did not beat it")
        return out

    def checkpoint(self) -> dict[str, Any]:
        """The ``model.pt`` entry of this model (plain tensors, lists and numbers: ``weights_only`` loads it)."""
        return {
            "state_dict": {k: v.detach().cpu() for k, v in self.network.state_dict().items()},
            "scaler": self.scaler.to_dict(),
            "calibrator": None if self.calibrator is None else self.calibrator.to_dict(),
            "direction": None if self.stack is None else self.stack.to_dict(),
            "unconditional": self.unconditional,
        }

    @classmethod
    def from_checkpoint(cls, config: TrainingConfig, model_args: dict, saved: dict) -> Predictor:
        """Rebuild a saved model on the CPU (``checkpoint``'s inverse)."""
        network = build_model(ModelArgs(**model_args))
        network.load_state_dict(saved["state_dict"])
        stack = None if saved["direction"] is None else DirectionStack.from_dict(saved["direction"])
        calibrator = None if saved["calibrator"] is None else Calibrator.from_dict(saved["calibrator"])
        return cls(config, network, Scaler.from_dict(saved["scaler"]), stack, calibrator, saved["unconditional"])


#: The network's distribution is kept when its Diebold–Mariano t against the unconditional fit is below this on CRPS
#: and on NLL: lower at all was better by nested validation at h = 4 and 24 than t < -1 and the same at h = 1
#: (benchmarks/model_choices.py --horizon 1|4|24).
DISTRIBUTION_GATE_T = 0.0


def _unconditional(config: TrainingConfig, params: dict[str, float | None], forecast: Forecast) -> Forecast:
    """``forecast`` with the unconditional distribution's constant mu, sigma (and nu); p_up follows it for
    ``p_up_source="cdf"`` and is kept otherwise (the stack or the head decide direction on their own)."""
    n = len(forecast)
    nu = None if params["nu"] is None else np.full(n, params["nu"])
    out = forecast.replace(mu=np.full(n, params["mu"]), sigma=np.full(n, params["sigma"]), nu=nu)
    return out.replace(p_up=out.p_up_from_cdf()) if config.p_up_source == "cdf" else out


def _fit_unconditional(config: TrainingConfig, labels: np.ndarray) -> dict[str, float | None]:
    """The configured family fitted to ``labels`` by maximum likelihood (scipy); a Student-t as the climatology
    baseline's (``trainer.baselines``, nu >= ``NU_MIN_FIT``), so on the same labels both are the same."""
    if config.distribution == "student_t":
        nu, mu, sigma = stats.t.fit(labels)
        if nu < NU_MIN_FIT:
            nu, mu, sigma = stats.t.fit(labels, fix_df=NU_MIN_FIT)
        return {"mu": float(mu), "sigma": float(sigma), "nu": float(nu)}
    mu, sigma = (stats.norm if config.distribution == "gaussian" else stats.laplace).fit(labels)
    return {"mu": float(mu), "sigma": float(sigma), "nu": None}


def distribution_gate(
    config: TrainingConfig, samples: Samples, inner: np.ndarray, block: np.ndarray, forecast: Forecast
) -> tuple[dict[str, float | None] | None, dict[str, float | None]]:
    """No signal, no claim for the distribution: fit the configured family to the labels of ``inner``
    (``_fit_unconditional``) and score it and the calibrated network ``forecast`` on ``block`` (CRPS and NLL,
    Diebold–Mariano with ``hac_lags(h)``). When the network is not better on both scores with t <
    ``DISTRIBUTION_GATE_T``, returns the family fitted on ``inner`` and ``block`` together (the history the
    climatology baseline is fitted on), else None; and the two t values."""
    y = samples.y[block]
    fixed = _unconditional(config, _fit_unconditional(config, samples.y[inner]), forecast)
    t = {score: diebold_mariano(getattr(forecast, method)(y) * sign - getattr(fixed, method)(y) * sign,
                                hac_lags(config.forecast_horizon))[0]
         for score, method, sign in (("crps", "crps", 1.0), ("nll", "logpdf", -1.0))}
    keep = all(value is not None and value < DISTRIBUTION_GATE_T for value in t.values())
    fallback = None if keep else _fit_unconditional(config, samples.y[np.concatenate([inner, block])])
    return fallback, {k: None if v is None else float(v) for k, v in t.items()}


def load_candles(config: TrainingConfig, candles: pd.DataFrame | None) -> tuple[pd.DataFrame, int]:
    """The validated candle table of the job, ``candles`` if given (validated here), else the stored dataset, and
    how many of its candles are partial (resampled from only some of their lower bars; ``trainer.data.store``)."""
    if candles is not None:
        return validate_candles(candles, config.timeframe, source="candles")[0], 0
    dataset = load_dataset(config.symbol, config.timeframe, config.dataset)
    return dataset.candles, dataset.partial_candles


def run_job(
    config: TrainingConfig,
    job_dir: str | os.PathLike[str],
    emit: Emit,
    stop_event: threading.Event | None = None,
    candles: pd.DataFrame | None = None,
) -> JobResult:
    """Run one training job and write its artifacts into ``job_dir``; returns the ``JobResult``.

    ``candles``: train on this candle table instead of the dataset named by ``config`` (tests use a slice).
    Raises ``JobError`` (with ``.stage``) on failure and ``TrainingStopped`` when ``stop_event`` gets set.
    """
    job_dir = Path(job_dir)
    job_id = job_dir.name
    started = time.perf_counter()
    stop = stop_event or threading.Event()

    with stage("config"):
        device = select_device(config.device)
        configure_torch(config.seed, device)
    with stage("data"):
        frame, partial = load_candles(config, candles)
        samples = build_samples(frame, config.timeframe, config.lookback, config.forecast_horizon)
        folds = job_folds(samples.positions, len(frame), config.forecast_horizon, config.cv_folds, config.use_cv,
                          config.final_holdout, config.refit_every)
        provenance = job_provenance(config, frame, str(device))
        write_provenance(job_dir, provenance)
    log.info(
        "job %s: %s %s, %d candles (%d partial), %d samples, %d fold(s), device %s", job_id, config.symbol,
        config.timeframe, len(frame), partial, len(samples.positions), len(folds), device,
    )
    emit(
        make_event(
            EventType.TRAINING_STARTED, job_id, origin="worker", pid=os.getpid(), symbol=config.symbol,
            timeframe=config.timeframe, epoch=0, fold=0, rows=len(frame), samples=len(samples.positions),
            partial_candles=partial, device=str(device),
        )
    )

    progress = _Progress(folds, config.epochs)
    model_args = ModelArgs(
        lookback=config.lookback,
        n_features=samples.features.shape[1],
        family=config.distribution,
        direction_head=config.p_up_source == "head",
        kind=config.model,
        window_columns=tuple(FEATURE_NAMES.index(name) for name in WINDOW_FEATURES),
    )
    outcomes: list[FoldOutcome] = []
    for index, fold in enumerate(folds):
        if stop.is_set():
            raise TrainingStopped

        def on_epoch(stats: EpochStats, index: int = index, fold: Fold = fold) -> None:
            fraction = progress.fraction(index, stats.epoch, config.epochs, stats.final)
            emit(
                make_event(
                    EventType.TRAINING_EPOCH, job_id, fold=fold.fold, folds=len(folds), epoch=stats.epoch,
                    epochs=config.epochs, train_loss=stats.train_loss, val_loss=stats.val_loss, lr=stats.lr,
                    samples_per_s=stats.samples_per_s, elapsed_s=progress.elapsed(),
                    eta_s=progress.eta(fraction), fraction=fraction,
                )
            )

        # With a refit schedule each fold starts from the previous fold's weights (fewer epochs per refit).
        warm = outcomes[-1].checkpoint["state_dict"] if config.refit_every and outcomes else None
        outcome = run_fold(config, samples, fold, model_args, device, on_epoch, stop, _evidence(folds, outcomes),
                           warm)
        outcomes.append(outcome)
        log.info(
            "fold %d/%d: %d epochs, best val loss %.4f, test CRPS %s, accuracy %s", fold.fold, len(folds),
            outcome.entry["epochs_run"], outcome.entry["best_val_loss"], outcome.entry["model"]["crps"],
            outcome.entry["model"]["accuracy"],
        )
        emit(make_event(EventType.TRAINING_FOLD_COMPLETED, job_id, fold=fold.fold, metrics=outcome.entry))

    with stage("evaluate"):
        y_all = np.concatenate([o.y for o in outcomes])
        model_forecast = concat_forecasts([o.test for o in outcomes])
        model_block = evaluate(model_forecast, y_all, p_up_raw=np.concatenate([o.test_raw.p_up for o in outcomes]))
        pooled_baselines = {
            name: _concat_baseline([o.baselines[name] for o in outcomes]) for name in outcomes[0].baselines
        }
        base_blocks = {name: evaluate_baseline(value, y_all) for name, value in pooled_baselines.items()}
        # The folds' test blocks are consecutive, so the pooled bars are one time series for the tests.
        verdicts = job_verdicts(model_forecast, pooled_baselines, y_all, config.forecast_horizon, config.seed,
                                [len(o.y) for o in outcomes], [o.entry["gates"] for o in outcomes])
    metrics = {
        "pooled": {
            "n": len(y_all),
            "model": model_block,
            "baselines": base_blocks,
            "skill": {name: skill_scores(model_block, block) for name, block in base_blocks.items()},
            "verdicts": verdicts,
        },
        "folds": [o.entry for o in outcomes],
        "network": _network(model_args),
        "device": str(device),
        "duration_s": time.perf_counter() - started,
        "provenance": provenance,
    }
    if stop.is_set():
        raise TrainingStopped
    final = fit_final(config, samples, model_args, device, stop, outcomes[-1], _evidence(folds, outcomes))
    metrics["duration_s"] = time.perf_counter() - started
    with stage("artifacts"):
        artifacts = write_artifacts(
            job_dir, config, model_args, [o.checkpoint for o in outcomes], final, metrics,
            pd.concat([o.predictions for o in outcomes], ignore_index=True),
        )
    return JobResult(metrics=metrics, artifacts=artifacts, duration_s=time.perf_counter() - started,
                     verdicts=compact(verdicts))


def _evidence(folds: list[Fold], outcomes: list[FoldOutcome]) -> tuple[np.ndarray, np.ndarray] | None:
    """The finished folds' test positions and direction evidence, in time order (None before the first fold or
    without a stack)."""
    done = [(fold.test, outcome.evidence) for fold, outcome in zip(folds, outcomes) if outcome.evidence is not None]
    if not done:
        return None
    return np.concatenate([p for p, _ in done]), np.concatenate([d for _, d in done])


def _network(model_args: ModelArgs) -> dict[str, Any]:
    """What was trained, for the summaries: the network's class name and its number of parameters."""
    net = build_model(model_args)
    return {"class": type(net).__name__, "parameters": sum(p.numel() for p in net.parameters())}


def _concat_baseline(parts: list[Forecast | np.ndarray]) -> Forecast | np.ndarray:
    """One baseline's folds joined in fold order: a distribution baseline's ``Forecast``s or a direction
    baseline's p_up arrays."""
    return concat_forecasts(parts) if isinstance(parts[0], Forecast) else np.concatenate(parts)


@dataclass
class FoldOutcome:
    """One evaluated fold: its ``metrics.json`` entry, the calibrated and raw test forecasts, the test labels
    ``y`` (m,), the baselines' forecasts, the checkpoint entry for ``model.pt`` and its prediction rows."""

    entry: dict[str, Any]
    test: Forecast
    test_raw: Forecast
    y: np.ndarray
    baselines: dict[str, Forecast | np.ndarray]
    checkpoint: dict[str, Any]
    predictions: pd.DataFrame
    #: The direction stack's per-bar evidence on the test block (``DirectionStack.evidence``), None without one.
    evidence: np.ndarray | None = None


def fit_predictor(
    config: TrainingConfig,
    samples: Samples,
    fold: Fold,
    model_args: ModelArgs,
    device: torch.device,
    on_epoch: Callable[[EpochStats], None],
    stop: threading.Event,
    init_state: dict[str, torch.Tensor] | None = None,
    evidence: tuple[np.ndarray, np.ndarray] | None = None,
    stack_weights: np.ndarray | None = None,
) -> tuple[Predictor, FitResult]:
    """Fit one model on a fold's pre-test blocks: scale on its training block, train the network (from
    ``init_state``, a previous fold's weights, when given) with early stopping on its validation block, then fit
    the direction stack and the calibrator on its calibration block. ``evidence``: positions and per-bar loss
    differences of earlier folds' test blocks for the stack's gate; ``stack_weights``: keep these stack
    weights and gate on ``evidence`` alone (the final model: ``trainer.direction.refit_direction``). Raises
    ``JobError`` (stage train or evaluate) or ``TrainingStopped``."""
    with stage("train"):
        scaler = Scaler.fit(samples, fold.train)
        x = torch.from_numpy(scaler.transform_features(samples.features)).to(device)
        y = torch.from_numpy(((samples.y - scaler.y_mean) / scaler.y_std).astype(np.float32)).to(device)
        up = torch.from_numpy((samples.y > 0).astype(np.float32)).to(device)

        def as_tensor(positions: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(positions).to(device)

        torch.manual_seed(config.seed + fold.fold)  # each fold's initial weights depend on the seed alone
        model = build_model(model_args).to(device)
        if init_state is not None:
            model.load_state_dict(init_state)
        result = fit(
            model, x, y, up, as_tensor(fold.train), as_tensor(fold.validation),
            epochs=config.epochs, batch_size=config.batch_size, learning_rate=config.learning_rate,
            seed=config.seed + fold.fold, patience=config.patience, weight_decay=config.weight_decay,
            on_epoch=on_epoch, should_stop=stop.is_set,
        )
    if stop.is_set():
        raise TrainingStopped
    with stage("evaluate"):
        predictor = Predictor(config, model, scaler)
        if config.p_up_source == "stack" and stack_weights is not None:
            predictor.stack = refit_direction(
                stack_weights, samples.features, samples.close, samples.segment, samples.y,
                np.concatenate([fold.train, fold.validation, fold.calibration]), evidence[1],
                config.forecast_horizon, config.seed + fold.fold,
            )
        elif config.p_up_source == "stack":
            network_p_up = predictor.raw(samples, fold.calibration).p_up
            earlier = None
            if evidence is not None:
                positions, d = evidence
                earlier = d[positions + config.forecast_horizon < fold.calibration[0]]
            predictor.stack = fit_direction(
                samples.features, samples.close, samples.segment, samples.y,
                np.concatenate([fold.train, fold.validation]), fold.calibration, network_p_up,
                config.forecast_horizon, config.seed + fold.fold, earlier,
            )
        calibration_raw = predictor.raw(samples, fold.calibration)
        predictor.calibrator = fit_calibrator(
            config.calibration_method, calibration_raw, samples.y[fold.calibration], config.p_up_source,
        )
        predictor.unconditional, predictor.distribution_gate_t = distribution_gate(
            config, samples, np.concatenate([fold.train, fold.validation]), fold.calibration,
            predictor.calibrator.apply(calibration_raw),
        )
    return predictor, result


def run_fold(
    config: TrainingConfig,
    samples: Samples,
    fold: Fold,
    model_args: ModelArgs,
    device: torch.device,
    on_epoch: Callable[[EpochStats], None],
    stop: threading.Event,
    evidence: tuple[np.ndarray, np.ndarray] | None = None,
    init_state: dict[str, torch.Tensor] | None = None,
) -> FoldOutcome:
    """Fit a model on the fold's pre-test blocks (``fit_predictor``, with the earlier folds' ``evidence``) and
    score its test block beside the baselines. Raises ``JobError`` (stage train or evaluate) or
    ``TrainingStopped``."""
    predictor, result = fit_predictor(config, samples, fold, model_args, device, on_epoch, stop, init_state,
                                      evidence)
    with stage("evaluate"):
        test, test_raw = predictor(samples, fold.test)
        y_test = samples.y[fold.test]
        # The baselines learn from everything the model and its calibrator saw, and nothing later.
        history = np.concatenate([fold.train, fold.validation, fold.calibration])
        baselines: dict[str, Forecast | np.ndarray] = dict(
            forecast_baselines(samples.close, samples.segment, history, fold.test, config.forecast_horizon)
        )
        baselines.update(
            forecast_direction(samples.features, samples.close, samples.segment, samples.y, history, fold.test,
                               config.forecast_horizon, config.seed + fold.fold)
        )
        entry = _fold_entry(samples, fold, result, evaluate(test, y_test, p_up_raw=test_raw.p_up), baselines, y_test,
                            predictor)
    predictions = pd.DataFrame(
        {
            "timestamp": samples.timestamps[fold.test], "fold": fold.fold, "y": y_test, "mu": test.mu,
            "sigma": test.sigma, "p_up": test.p_up, "p_up_raw": test_raw.p_up,
            "nu": test.nu if test.nu is not None else np.nan, **_baseline_columns(baselines),
        }
    )
    checkpoint = {"fold": fold.fold, **predictor.checkpoint(), "test": entry["test"]}
    gate_evidence = None
    if predictor.stack is not None:
        inputs = direction_inputs(samples.features, samples.close, samples.segment, fold.test,
                                  config.forecast_horizon)
        gate_evidence = predictor.stack.evidence(inputs, y_test > 0)
    return FoldOutcome(entry, test, test_raw, y_test, baselines, checkpoint, predictions, gate_evidence)


def fit_final(
    config: TrainingConfig, samples: Samples, model_args: ModelArgs, device: torch.device, stop: threading.Event,
    last: FoldOutcome, evidence: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """The deployable model: refit on all the job's samples (``final_fold``: train, validation and calibration
    blocks, no test), warm-started from the ``last`` fold's network and keeping its stack weights (gated on all
    the folds' test ``evidence``); returns its ``model.pt`` entry, with the blocks' spans and ``last_candle``
    (the open time of the last bar it saw)."""
    with stage("data"):
        fold = final_fold(samples.positions, config.forecast_horizon)
    saved_stack = last.checkpoint["direction"]
    predictor, result = fit_predictor(
        config, samples, fold, model_args, device, lambda stats: None, stop, last.checkpoint["state_dict"],
        evidence, None if saved_stack is None else np.asarray(saved_stack["weights"]),
    )
    spans = {name: _block_span(samples, block) for name, block in fold.blocks().items() if len(block)}
    last = pd.Timestamp(samples.timestamps[-1], unit="s", tz="UTC").isoformat()
    return {"fold": "final", **predictor.checkpoint(), **spans, "epochs_run": result.epochs_run,
            "last_candle": last}


def _baseline_columns(baselines: dict[str, Forecast | np.ndarray]) -> dict[str, np.ndarray]:
    """``predictions.csv`` columns of the baselines: ``<name>_p_up`` for each, and ``<name>_mu``,
    ``<name>_sigma`` (and ``<name>_nu`` for a Student-t) for a distribution baseline."""
    columns = {}
    for name, value in baselines.items():
        if isinstance(value, Forecast):
            columns.update({f"{name}_p_up": value.p_up, f"{name}_mu": value.mu, f"{name}_sigma": value.sigma})
            if value.nu is not None:
                columns[f"{name}_nu"] = value.nu
        else:
            columns[f"{name}_p_up"] = value
    return columns


def _fold_entry(
    samples: Samples, fold: Fold, result: FitResult, model_block: dict, baselines: dict[str, Forecast | np.ndarray],
    y_test: np.ndarray, predictor: Predictor,
) -> dict[str, Any]:
    """One ``metrics.json`` ``folds[i]`` entry (plus ``validation`` span, the loss ``history``, the fitted
    calibrator's method and scalar parameters, e.g. ``abs``'s scale or ``mle``'s scale and nu, and the ``gates``:
    whether the stack's p_up (else the base rate) and the network's distribution (else the unconditional fit)
    forecast this test block, with the gates' t)."""
    calibrator = predictor.calibrator
    base_blocks = {name: evaluate_baseline(value, y_test) for name, value in baselines.items()}
    fitted = None if calibrator is None else {
        "method": calibrator.method,
        "params": {k: v for k, v in calibrator.params.items() if not isinstance(v, list)},  # not isotonic's steps
    }
    return {
        "fold": fold.fold,
        **{name: _block_span(samples, block) for name, block in fold.blocks().items()},
        "calibrator": fitted,
        "gates": {
            "direction": None if predictor.stack is None else {"stack": predictor.stack.active,
                                                                "t": predictor.stack.gate_t},
            "distribution": {"network": predictor.unconditional is None, "t": predictor.distribution_gate_t},
        },
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best_val_loss,
        "history": {
            "train_loss": [s.train_loss for s in result.history],
            "val_loss": [s.val_loss for s in result.history],
        },
        "model": model_block,
        "baselines": base_blocks,
        "skill": {name: skill_scores(model_block, block) for name, block in base_blocks.items()},
    }


def write_artifacts(
    job_dir: Path,
    config: TrainingConfig,
    model_args: ModelArgs,
    checkpoints: list[dict],
    final: dict,
    metrics: dict,
    predictions: pd.DataFrame,
) -> dict[str, str]:
    """Write every artifact of a job atomically into ``job_dir``; returns their paths by name (+ ``dir``).
    ``checkpoints``: the folds' ``model.pt`` entries; ``final``: the deployable model's (``fit_final``)."""
    from trainer.report import write_report  # matplotlib only when a job gets this far

    job_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: str(job_dir / file) for name, file in ARTIFACTS.items()}
    atomic_write_json(paths["config"], config.model_dump(mode="json"))
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "model_args": model_args.to_dict(),
        "config": config.model_dump(mode="json"),
        "features": {
            "names": list(FEATURE_NAMES),
            "window": list(WINDOW_FEATURES),
            "return_lags": list(RETURN_LAGS),
            "rolling_bars": ROLLING_BARS,
            "warmup": WARMUP,
        },
        "folds": checkpoints,
        "final": final,
    }
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    atomic_write_bytes(paths["model"], buffer.getvalue())
    atomic_write_json(paths["metrics"], metrics)
    atomic_write_text(paths["predictions"], predictions.to_csv(index=False, float_format="%.10g"))
    write_report(job_dir, metrics, config, predictions)
    return {"dir": str(job_dir), **paths}


class Prediction(NamedTuple):
    """``predict_from_checkpoint``'s answer: int64 bar ``positions`` and float64 Unix-second open ``timestamps``
    of the samples, (m,), their ``Forecast`` after (``calibrated``) and before (``raw``) the model's calibrator,
    and the model's ``fallbacks`` (``Predictor.fallbacks``)."""

    positions: np.ndarray
    timestamps: np.ndarray
    calibrated: Forecast
    raw: Forecast
    fallbacks: list[str]


def predict_from_checkpoint(
    path: str | os.PathLike[str], candles: pd.DataFrame, fold: int | str = "final"
) -> Prediction:
    """Predict again with a saved ``model.pt``: the calibrated forecast at every bar of ``candles`` with a full
    gap-free window (including the latest bars, whose outcome is not known yet).

    ``candles``: a candle table (validated here with the job's timeframe). ``fold``: which model: "final" (the
    default), the deployable model refitted on all the job's data, or a list index into the checkpoint's
    walk-forward folds (-1: the last). Runs on CPU, through the very code that made the job's predictions
    (``Predictor``), so the bars a fold scored get its ``predictions.csv`` values again.
    Returns a ``Prediction``.
    Raises ``ValueError`` when the file is not a Candlecast checkpoint of a known format or has no such fold.
    The file is read with ``torch.load(weights_only=True)``: tensors, lists and numbers only, no pickled code
    (the direction stack's trees are saved as arrays, ``trainer.direction``).
    """
    checkpoint = torch.load(io.BytesIO(Path(path).read_bytes()), map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a Candlecast model.pt of format {CHECKPOINT_FORMAT}")
    config = TrainingConfig(**checkpoint["config"])
    if fold == "final":
        saved = checkpoint["final"]
    elif isinstance(fold, int) and -len(checkpoint["folds"]) <= fold < len(checkpoint["folds"]):
        saved = checkpoint["folds"][fold]
    else:
        raise ValueError(f"{path}: no model {fold!r} (expected 'final' or a fold index below "
                         f"{len(checkpoint['folds'])})")
    frame = validate_candles(candles, config.timeframe, source=str(path))[0]
    samples = build_samples(frame, config.timeframe, config.lookback, config.forecast_horizon, require_label=False)
    predictor = Predictor.from_checkpoint(config, checkpoint["model_args"], saved)
    calibrated, raw = predictor(samples, samples.positions)
    return Prediction(samples.positions, samples.timestamps[samples.positions], calibrated, raw, predictor.fallbacks())
