"""One registry per kind of name (trainer.names): the request schema offers exactly those names and every name
has exactly one implementation."""

from __future__ import annotations

import typing

from trainer import names
from trainer.calibration import _FITTERS, PARAM_KEYS
from trainer.config import TrainingConfig
from trainer.distributions import FAMILIES
from trainer.model import NETWORKS


def choices(field: str) -> tuple[str, ...]:
    return typing.get_args(TrainingConfig.model_fields[field].annotation)


def test_the_request_offers_the_registry_names() -> None:
    assert choices("calibration_method") == names.CALIBRATION_METHODS
    assert choices("distribution") == names.DISTRIBUTIONS
    assert choices("model") == names.MODEL_KINDS
    assert choices("p_up_source") == names.P_UP_SOURCES


def test_every_name_has_one_implementation() -> None:
    assert set(_FITTERS) == set(PARAM_KEYS) == set(names.CALIBRATION_METHODS)
    assert FAMILIES == names.DISTRIBUTIONS
    assert set(NETWORKS) == set(names.MODEL_KINDS)
