"""Walk-forward folds: purge gaps >= horizon between every pair of blocks, for every fold and several horizons."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.data.store import load_dataset
from trainer.features import DataError, build_samples
from trainer.splits import HOLDOUT_FRACTION, MIN_BLOCK, final_fold, min_samples, walk_forward


@pytest.fixture(scope="module")
def candles():
    return load_dataset("BTCUSDT", "1h").candles


ORDER = ("train", "validation", "calibration", "test")


@pytest.mark.parametrize("use_cv, folds", [(True, 5), (True, 3), (True, 1), (False, 5)])
@pytest.mark.parametrize("horizon", [1, 4, 24, 120])
def test_purge_gap_for_every_fold(candles, horizon: int, use_cv: bool, folds: int) -> None:
    positions = build_samples(candles, "1h", 32, horizon).positions
    splits = walk_forward(positions, horizon, folds, use_cv)
    assert len(splits) == (folds if use_cv else 1)
    for fold in splits:
        blocks = fold.blocks()
        for name in ORDER:
            block = blocks[name]
            assert len(block) >= MIN_BLOCK and (np.diff(block) > 0).all()
            assert np.isin(block, positions).all()
        for i, earlier in enumerate(ORDER):
            for later in ORDER[i + 1 :]:
                # No label interval (t, t+h] of an earlier block reaches a bar of a later block.
                assert blocks[earlier].max() + horizon < blocks[later].min(), (fold.fold, earlier, later)
        # The headline rule, stated directly: no training label overlaps a test bar.
        label_ends = np.concatenate([fold.train, fold.validation, fold.calibration]) + horizon
        assert (label_ends < fold.test.min()).all()
        train_labels = (fold.train[:, None] + np.arange(1, horizon + 1)).ravel()
        assert not np.isin(train_labels, fold.test).any()


@pytest.mark.parametrize("horizon", [1, 24])
def test_test_blocks_are_consecutive_and_cover_the_tail(candles, horizon: int) -> None:
    positions = build_samples(candles, "1h", 64, horizon).positions
    splits = walk_forward(positions, horizon, 5)
    tests = np.concatenate([f.test for f in splits])
    np.testing.assert_array_equal(tests, positions[len(positions) - len(tests) :])
    assert len(tests) == pytest.approx(len(positions) * 5 / 6, abs=2)
    # Expanding window: each fold learns from everything the previous one learnt from, and more.
    for before, after in zip(splits, splits[1:]):
        assert np.isin(before.train, after.train).all() and len(after.train) > len(before.train)
        assert after.test.min() > before.test.max()


def test_single_split_holds_out_the_tail() -> None:
    positions = np.arange(10_000, dtype=np.int64)
    (fold,) = walk_forward(positions, 3, folds=7, use_cv=False)
    assert len(fold.test) == HOLDOUT_FRACTION * 10_000 and fold.test[-1] == 9_999
    purged = 10_000 - sum(len(b) for b in fold.blocks().values())
    assert purged == 3 * 3  # exactly `horizon` bars between each of the three pairs of neighbours


def test_too_few_samples_name_the_fold() -> None:
    with pytest.raises(DataError, match="fold 1: test block has"):
        walk_forward(np.arange(100, dtype=np.int64), 1, folds=10)
    with pytest.raises(DataError, match="fold 1: only .* precede the test block"):
        walk_forward(np.arange(120, dtype=np.int64), 1, folds=3)
    with pytest.raises(DataError, match="purge gaps of 50 bars"):
        walk_forward(np.arange(400, dtype=np.int64), 50, folds=1)


def test_too_few_samples_say_the_numbers_and_what_to_change() -> None:
    positions = np.arange(212, dtype=np.int64)
    with pytest.raises(DataError) as info:
        walk_forward(positions, 1, folds=5)
    need = min_samples(1, folds=5)
    message = str(info.value)
    assert message.startswith(f"Too few samples for 5-fold walk-forward CV: the data give 212 samples, it needs at "
                              f"least {need}; use at most 2 CV folds, use a shorter lookback or horizon, or import "
                              "more candles. (fold 1: only ")
    assert len(walk_forward(positions, 1, folds=2)) == 2  # the advice holds: 2 folds fit, 3 do not
    with pytest.raises(DataError):
        walk_forward(positions, 1, folds=3)
    assert len(walk_forward(np.arange(need), 1, folds=5)) == 5  # and the figure is the least that fits
    with pytest.raises(DataError):
        walk_forward(np.arange(need - 1), 1, folds=5)
    with pytest.raises(DataError, match="3-fold walk-forward CV: .* 120 samples.*; turn walk-forward CV off"):
        walk_forward(np.arange(120, dtype=np.int64), 1, folds=3)
    one_fits = np.arange(min_samples(1, folds=1), dtype=np.int64)  # "1 CV fold", never "1 CV fold or fewer"
    with pytest.raises(DataError, match=r"; use 1 CV fold, use a shorter .* purge gaps of 1 bar\)$"):
        walk_forward(one_fits, 1, folds=2)


@pytest.mark.parametrize("horizon", [1, 24])
def test_final_model_blocks_are_purged_and_cover_the_tail(candles, horizon: int) -> None:
    """The deployable model's split: all samples, train | validation | calibration with purge gaps, no test."""
    positions = build_samples(candles, "1h", 32, horizon).positions
    fold = final_fold(positions, horizon)
    assert len(fold.test) == 0 and fold.calibration[-1] == positions[-1]
    assert fold.train.max() + horizon < fold.validation.min()
    assert fold.validation.max() + horizon < fold.calibration.min()
    with pytest.raises(DataError, match="too few samples"):
        final_fold(positions[:30], horizon)


@pytest.mark.parametrize("horizon", [1, 24])
def test_refit_schedule_purges_every_fold_and_tests_the_same_tail(candles, horizon: int) -> None:
    positions = build_samples(candles, "1h", 32, horizon).positions
    default = walk_forward(positions, horizon, 5)
    every = walk_forward(positions, horizon, 5, refit_every=24 * 180)
    assert len(every) > len(default)
    tested = np.concatenate([f.test for f in every])
    np.testing.assert_array_equal(tested, np.concatenate([f.test for f in default]))
    for fold in every:
        assert fold.test[-1] - fold.test[0] < 24 * 180 or fold is every[-1]
        label_ends = np.concatenate([fold.train, fold.validation, fold.calibration]) + horizon
        assert (label_ends < fold.test.min()).all()
    with pytest.raises(DataError, match="refits"):
        walk_forward(positions, horizon, 5, refit_every=24)
