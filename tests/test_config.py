"""The training request schema (API.md's TrainingStartRequest): defaults, ranges, symbol normalisation, and no
silent coercion or unknown fields."""

from __future__ import annotations

import argparse
import math

import pytest
from pydantic import ValidationError

from trainer.cli_common import UserError, training_config_from_args
from trainer.config import TIMEFRAME_SECONDS, TrainingConfig, error_message, normalize_symbol


def test_defaults_are_those_of_the_api() -> None:
    assert TrainingConfig().model_dump() == {
        "symbol": "BTCUSDT", "timeframe": "1h", "batch_size": 512, "use_cv": True, "cv_folds": 5, "refit_every": None,
        "forecast_horizon": 1, "calibration_method": "abs", "p_up_source": "stack", "seed": 42, "epochs": 20,
        "learning_rate": 1e-3, "lookback": 64, "model": "mlp", "weight_decay": 1.0, "patience": 3,
        "distribution": "student_t", "device": "auto", "dataset": None, "final_holdout": "off",
    }
    assert TrainingConfig().dataset_id == "BTCUSDT-1h"
    assert list(TIMEFRAME_SECONDS) == ["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d"]


@pytest.mark.parametrize("raw", ["BTCUSDT", "BTC/USDT", "btc-usdt", " btc_usdt ", "BTC/USDT:USDT"])
def test_symbols_normalise(raw: str) -> None:
    assert normalize_symbol(raw) == "BTCUSDT" == TrainingConfig(symbol=raw).symbol


@pytest.mark.parametrize(
    "fields",
    [
        {"epochs": "3"}, {"epochs": True}, {"epochs": 2.0}, {"use_cv": "yes"}, {"use_cv": 0},
        {"learning_rate": "0.01"}, {"cv_folds": 0}, {"cv_folds": 21}, {"batch_size": 65537},
        {"forecast_horizon": 0}, {"lookback": 1}, {"learning_rate": 0.0}, {"seed": 2**32},
        {"timeframe": "7m"}, {"distribution": "cauchy"}, {"model": "lstm"}, {"refit_every": 1}, {"weight_decay": -1.0}, {"patience": 0}, {"symbol": "BTC/???"}, {"cv_fold": 3},
    ],
)
def test_wrong_types_ranges_and_unknown_fields_are_refused(fields: dict) -> None:
    with pytest.raises(ValidationError):
        TrainingConfig(**fields)


def test_an_int_is_a_valid_float() -> None:
    assert TrainingConfig(learning_rate=1).learning_rate == 1.0


@pytest.mark.parametrize(("value", "word"), [(math.nan, "NaN"), (math.inf, "Infinity"), (-math.inf, "-Infinity")])
def test_a_float_field_that_is_not_finite_says_so_not_a_bound(value: float, word: str) -> None:
    # NaN fails every comparison, so without allow_inf_nan=False it read "less than or equal to 100"; +Infinity
    # would pass a field bounded only below.
    with pytest.raises(ValidationError) as info:
        TrainingConfig(weight_decay=value)
    assert error_message(info.value.errors()[0]) == f"must be a finite number, not {word}"
    with pytest.raises(UserError, match=f"^--learning-rate: must be a finite number, not {word}$"):  # the CLI's words
        training_config_from_args(argparse.Namespace(learning_rate=value))


def test_a_dataset_id_alone_names_the_symbol_and_timeframe() -> None:
    """A fresh-user trial's `{"dataset": "BTCUSDT-1d"}` was refused as "not BTCUSDT 1h": the id sets them."""
    config = TrainingConfig(dataset="ETHUSDT-1d")
    assert (config.symbol, config.timeframe, config.dataset_id) == ("ETHUSDT", "1d", "ETHUSDT-1d")
    assert TrainingConfig(dataset="bundled:BTCUSDT-4h").timeframe == "4h"
    # Named as well, they stay as given (a mismatch is refused where the dataset is loaded).
    assert TrainingConfig(dataset="ETHUSDT-4h", timeframe="1h").timeframe == "1h"
    assert TrainingConfig.model_validate_json('{"dataset": "SOLUSDT-15m"}').symbol == "SOLUSDT"
