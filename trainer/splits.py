"""Walk-forward cross-validation with purge gaps (MODEL.md, "Walk-forward cross-validation").

Each fold has four time-ordered blocks of sample positions (bar indices t):
``train | purge | validation | purge | calibration | purge | test``. A purge of at least ``horizon`` bars
separates consecutive blocks: for an earlier block A and a later block B, ``max(A) + horizon < min(B)``, so no
label interval (t, t+h] of A reaches any bar of B and no training label overlaps a test bar.

With ``use_cv`` the valid positions are cut into ``folds + 1`` equal chunks (as scikit-learn's
``TimeSeriesSplit``): fold k (1-based) tests on chunk k and learns from everything before it (expanding
window), so the test blocks are consecutive and cover the tail. Without it there is one split whose test block
is the last ``HOLDOUT_FRACTION`` of the samples. Inside the part before a test block, the last
``CALIBRATION_FRACTION`` is the calibration slice and, before it, the last ``VALIDATION_FRACTION`` of the rest is
the early-stopping validation slice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainer.features import DataError

#: Share of the samples in the single test block when ``use_cv`` is false.
HOLDOUT_FRACTION = 0.2
#: Share of the pre-test samples used to fit the calibrator.
CALIBRATION_FRACTION = 0.1
#: Share of the remaining training samples used for early stopping.
VALIDATION_FRACTION = 0.1
#: Fewest samples any block may hold; below this a fold's estimates are noise.
MIN_BLOCK = 20
#: Most folds a ``refit_every`` schedule may make (each is one model fit).
MAX_REFITS = 100


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: sorted int64 arrays of sample bar positions; ``fold`` counts from 1."""

    fold: int
    train: np.ndarray
    validation: np.ndarray
    calibration: np.ndarray
    test: np.ndarray

    def blocks(self) -> dict[str, np.ndarray]:
        """The four blocks in time order, by name."""
        return {"train": self.train, "validation": self.validation, "calibration": self.calibration, "test": self.test}


def _before(positions: np.ndarray, later_start: int, horizon: int) -> np.ndarray:
    """Positions whose label interval (t, t+horizon] ends before bar ``later_start`` (the purge rule)."""
    return positions[positions + horizon < later_start]


def _tail(positions: np.ndarray, fraction: float) -> np.ndarray:
    return positions[len(positions) - max(MIN_BLOCK, int(round(fraction * len(positions)))) :]


def walk_forward(
    positions: np.ndarray, horizon: int, folds: int = 5, use_cv: bool = True, refit_every: int | None = None
) -> list[Fold]:
    """Split sorted sample positions (int64, shape (m,)) into walk-forward folds with purge gaps.

    ``horizon``: bars of the forecast horizon (the purge is at least that). ``folds``: number of folds when
    ``use_cv``; ignored otherwise (one split). ``refit_every`` (with ``use_cv``): the tested tail starts where
    the ``folds`` schedule's does, but is cut into test blocks of ``refit_every`` bars each (the last one takes a
    remainder shorter than ``MIN_BLOCK`` samples), so the model is refitted that often; more than
    ``MAX_REFITS`` blocks is a ``DataError``. Raises ``DataError`` when a block would hold fewer than
    ``MIN_BLOCK`` samples: a plain sentence with the samples there are, the samples the split needs, and what to
    change (``shortfall``), then which fold failed and why.
    """
    positions = np.asarray(positions, dtype=np.int64)
    out = _split(positions, horizon, folds, use_cv, refit_every)
    if isinstance(out, str):
        raise DataError(f"{shortfall(positions, horizon, folds, use_cv)} ({out})")
    return out


def min_samples(horizon: int, folds: int = 5, use_cv: bool = True) -> int:
    """Fewest gap-free samples ``walk_forward`` can split into ``folds`` folds (one split without ``use_cv``)."""
    def fits(m: int) -> bool:
        return not isinstance(_split(np.arange(m, dtype=np.int64), horizon, folds, use_cv), str)

    high = 64
    while not fits(high):
        high *= 2
    low = high // 2  # fits(high) and, but for the first try, not fits(low)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if fits(middle) else (middle, high)
    return high


def shortfall(positions: np.ndarray, horizon: int, folds: int = 5, use_cv: bool = True) -> str:
    """The sentence a user reads when ``positions`` (shape (m,)) are too few for the split: how many samples
    there are, how many the split needs, and what to change (the most folds that fit, a shorter lookback or
    horizon, more candles)."""
    positions = np.asarray(positions, dtype=np.int64)
    have = len(positions)
    fixes = []
    if use_cv:
        wanted = f"{folds}-fold walk-forward CV"
        fitting = [k for k in range(folds - 1, 0, -1) if not isinstance(_split(positions, horizon, k, True), str)]
        if fitting:
            fixes.append("use 1 CV fold" if fitting[0] == 1 else f"use at most {fitting[0]} CV folds")
        elif not isinstance(_split(positions, horizon, folds, False), str):
            fixes.append("turn walk-forward CV off")
    else:
        wanted = "a single train/test split"
    fixes += ["use a shorter lookback or horizon", "import more candles"]
    need = min_samples(horizon, folds, use_cv)
    return (f"Too few samples for {wanted}: the data give {have:,} samples, it needs at least {need:,}; "
            f"{', '.join(fixes[:-1])}, or {fixes[-1]}.")


def _split(
    positions: np.ndarray, horizon: int, folds: int, use_cv: bool, refit_every: int | None = None
) -> list[Fold] | str:
    """The folds, or why a block would be too small (naming the fold)."""
    if use_cv:
        edges = np.linspace(0, len(positions), folds + 2).round().astype(int)
        tests = [positions[edges[k] : edges[k + 1]] for k in range(1, folds + 1)]
        if refit_every is not None and edges[1] < len(positions):
            tail = positions[edges[1] :]
            chunk = (tail - tail[0]) // refit_every
            tests = [tail[chunk == k] for k in np.unique(chunk)]
            if len(tests) > 1 and len(tests[-1]) < MIN_BLOCK:
                tests[-2:] = [np.concatenate(tests[-2:])]
            if len(tests) > MAX_REFITS:
                raise DataError(f"refit_every={refit_every} makes {len(tests)} refits of the tested bars "
                                f"(at most {MAX_REFITS}); use a larger refit_every")
    else:
        tests = [positions[len(positions) - int(round(HOLDOUT_FRACTION * len(positions))) :]]
    out = []
    for k, test in enumerate(tests, start=1):
        fold = _fold(k, positions, test, horizon)
        if isinstance(fold, str):
            return fold
        out.append(fold)
    return out


def _fold(k: int, positions: np.ndarray, test: np.ndarray, horizon: int) -> Fold | str:
    """Fold ``k`` testing on ``test``, learning from the ``positions`` before it, or why a block is too small."""
    if len(test) < MIN_BLOCK:
        return f"fold {k}: test block has {len(test)} samples (need {MIN_BLOCK})"
    pre_test = _before(positions, int(test[0]), horizon)
    blocks = _learning_blocks(pre_test, horizon)
    if blocks is None:
        return (f"fold {k}: only {len(pre_test)} samples precede the test block, too few for train, validation "
                f"and calibration blocks of {MIN_BLOCK}+ samples each with purge gaps of {horizon} "
                f"bar{'s' if horizon != 1 else ''}")
    return Fold(k, *blocks, test)


def _learning_blocks(pre_test: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Train, validation and calibration blocks of the positions ``pre_test`` (purged), or None if too few."""
    calibration = _tail(pre_test, CALIBRATION_FRACTION)
    rest = _before(pre_test, int(calibration[0]), horizon) if len(pre_test) else pre_test
    validation = _tail(rest, VALIDATION_FRACTION) if len(rest) else rest
    train = _before(rest, int(validation[0]), horizon) if len(validation) else validation
    if min(len(train), len(validation), len(calibration)) < MIN_BLOCK:
        return None
    return train, validation, calibration


def final_fold(positions: np.ndarray, horizon: int) -> Fold:
    """The deployable model's split of all samples (int64, sorted): train, validation and calibration blocks as a
    fold's, with purge gaps, and an empty test block; ``fold`` is 0. Raises ``DataError`` when too few."""
    positions = np.asarray(positions, dtype=np.int64)
    blocks = _learning_blocks(positions, horizon)
    if blocks is None:
        raise DataError(f"too few samples ({len(positions)}) for the final model's train, validation and "
                        f"calibration blocks")
    return Fold(0, *blocks, np.zeros(0, dtype=np.int64))


def final_period_start(n_bars: int) -> int:
    """First bar of a dataset's final test period: the last ``HOLDOUT_FRACTION`` of its ``n_bars`` candles.

    Counted in candles, not samples, so every trial of a sweep on one dataset holds out the very same bars
    whatever its lookback or horizon (which change how many samples the candles give)."""
    return n_bars - int(round(HOLDOUT_FRACTION * n_bars))


def job_folds(
    positions: np.ndarray, n_bars: int, horizon: int, folds: int, use_cv: bool, final_holdout: str = "off",
    refit_every: int | None = None,
) -> list[Fold]:
    """The folds of a job (``TrainingConfig.final_holdout``): ``"off"`` is ``walk_forward`` on all samples;
    ``"inner"`` is ``walk_forward`` on the samples whose label ends before the final period
    (``final_period_start``), so a sweep's objective never sees that period; ``"final"`` is one fold testing on
    the final period and learning from everything before it (purged), the sweep winner's single honest score.
    ``positions``: sorted int64 bar positions, (m,); ``refit_every`` as in ``walk_forward``. Raises
    ``DataError`` when a block would be too small."""
    positions = np.asarray(positions, dtype=np.int64)
    if final_holdout == "off":
        return walk_forward(positions, horizon, folds, use_cv, refit_every)
    start = final_period_start(n_bars)
    if final_holdout == "inner":
        return walk_forward(_before(positions, start, horizon), horizon, folds, use_cv, refit_every)
    fold = _fold(1, positions, positions[positions >= start], horizon)
    if isinstance(fold, str):
        raise DataError(f"Too few samples to score the final test period (the last {HOLDOUT_FRACTION:.0%} of "
                        f"{n_bars:,} candles): {fold}; import more candles.")
    return [fold]
