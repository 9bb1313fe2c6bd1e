"""The training request schema (API.md, ``TrainingStartRequest``), shared by the CLI, the server and the GUI.

Light on purpose: pydantic only, never torch, numpy or pandas, so the server and GUI import it cheaply.
Unknown fields are rejected (``extra="forbid"``) and types are strict (``"3"``, ``true`` or ``2.0`` for an int
field are refused, not coerced), so a typo never silently trains with a default or a wrong value.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trainer.names import CALIBRATION_METHODS, DISTRIBUTIONS, MODEL_KINDS, P_UP_SOURCES

#: Candle timeframes the app knows, with their length in seconds (Binance's names).
TIMEFRAME_SECONDS: dict[str, int] = {
    "1m": 60,
    "3m": 180,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "2h": 7200,
    "4h": 14400,
    "6h": 21600,
    "12h": 43200,
    "1d": 86400,
}

Timeframe = Literal["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d"]
CalibrationMethod = Literal[CALIBRATION_METHODS]  # type: ignore[valid-type]  # the registry's names
PUpSource = Literal[P_UP_SOURCES]  # type: ignore[valid-type]
Distribution = Literal[DISTRIBUTIONS]  # type: ignore[valid-type]
ModelKind = Literal[MODEL_KINDS]  # type: ignore[valid-type]
Device = Literal["auto", "cpu", "cuda", "mps"]
FinalHoldout = Literal["off", "inner", "final"]

_SYMBOL_SEPARATORS = re.compile(r"[\s/_\-.]")
#: A dataset id: ``SYMBOL-timeframe``, ``bundled:`` first for the bundled copy (groups: prefix, symbol, timeframe).
#: Plain ECMA-262 syntax: the same text is the ``pattern`` of ``/openapi.json``.
DATASET_ID_PATTERN = r"^(bundled:)?([A-Z0-9]{2,30})-(" + "|".join(TIMEFRAME_SECONDS) + r")$"


#: How JSON spells the numbers that are not finite (Python's json module and float() read these words).
_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


#: pydantic error types in a user's words (JSON's: an integer, a number, a string, true or false, an object);
#: ``{bound}`` is the error's limit. Types not listed keep pydantic's message.
_WORDS = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "list_type": "must be a list",
    "missing": "required",
    "greater_than": "must be greater than {bound}",
    "greater_than_equal": "must be at least {bound}",
    "less_than": "must be less than {bound}",
    "less_than_equal": "must be at most {bound}",
    "literal_error": "must be {bound}",
}
_BOUND_KEYS = ("gt", "ge", "lt", "le", "expected")


def error_message(error: Any, allowed: Sequence[str] = ()) -> str:
    """One pydantic error (an item of ``ValidationError.errors()``) in a user's words: without pydantic's
    ``Value error, `` in front of a validator's own message, a NaN or ±Infinity (refused by ``allow_inf_nan=False``)
    as ``must be a finite number, not NaN`` instead of a bound it happened to fail, the common types as ``_WORDS``
    says (``must be an integer``, ``must be at least 1``), and an unknown field as ``unknown field``, with the
    closest of ``allowed`` (the model's field names) or all of them when given."""
    kind = error["type"]
    if kind == "finite_number":
        value = error.get("input")
        return f"must be a finite number, not {_NON_FINITE.get(str(value), repr(value))}"
    if kind == "extra_forbidden":
        name = str(error["loc"][-1]) if error.get("loc") else ""
        close = difflib.get_close_matches(name, allowed, n=1)
        if close:
            return f"unknown field; did you mean {close[0]}?"
        return f"unknown field; allowed: {', '.join(allowed)}" if allowed else "unknown field"
    if kind in _WORDS:
        ctx = error.get("ctx") or {}
        bound = next((ctx[key] for key in _BOUND_KEYS if key in ctx), "")
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return _WORDS[kind].format(bound=bound)
    return str(error["msg"]).removeprefix("Value error, ")


def normalize_symbol(raw: str) -> str:
    """Return the exchange symbol for ``raw``: ``"BTC/USDT"``, ``"btc-usdt"``, ``"BTC_USDT:USDT"`` → ``"BTCUSDT"``.

    A ccxt futures suffix (``":USDT"``) is dropped. Raises ``ValueError`` when what is left is not 2–30
    letters/digits.
    """
    base = raw.split(":", 1)[0]
    symbol = _SYMBOL_SEPARATORS.sub("", base).upper()
    if not re.fullmatch(r"[A-Z0-9]{2,30}", symbol):
        raise ValueError(f"not an exchange symbol: {raw!r} (expected e.g. BTCUSDT or BTC/USDT)")
    return symbol


def effective_dataset(dataset: str | None, symbol: str, timeframe: str) -> str:
    """The dataset a job trains on: ``dataset`` if given, else ``"<SYMBOL>-<timeframe>"``. Also for a saved config
    dict, which is compared without validating it (``trainer.comparison``)."""
    return dataset or f"{symbol}-{timeframe}"


class TrainingConfig(BaseModel):
    """One training job's request: every field of API.md's ``TrainingStartRequest`` with its default and range."""

    # allow_inf_nan=False: NaN and ±Infinity (which Python's JSON and float() accept) are refused as not finite.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    symbol: str = Field("BTCUSDT", description="Exchange symbol; BTC/USDT and btc-usdt normalise to BTCUSDT.")
    timeframe: Timeframe = Field("1h", description="Candle timeframe.")
    batch_size: int = Field(512, ge=1, le=65536, description="Samples per optimiser step.")
    use_cv: bool = Field(True, description="Walk-forward cross-validation; false gives one time-ordered split.")
    cv_folds: int = Field(5, ge=1, le=20, description="Walk-forward folds (ignored when use_cv is false).")
    refit_every: int | None = Field(
        None, ge=24, le=10_000_000,
        description="Bars per walk-forward test block: refit (warm-started) this often over the tail the folds "
        "test; default: cv_folds equal blocks.")
    forecast_horizon: int = Field(1, ge=1, le=500, description="Bars ahead of the forward log return.")
    calibration_method: CalibrationMethod = Field(
        "abs", description="How the forecast is calibrated on the calibration block: abs, mle and crps refit the "
        "distribution (the direction stack's p_up stays as it is); isotonic, platt and temperature remap p_up.")
    p_up_source: PUpSource = Field(
        "stack", description="p_up from the direction stack (boosting, AR logit and the network, docs/model.md), "
        "the predictive CDF, or a direction head.")
    seed: int = Field(42, ge=0, le=2**32 - 1, description="Random seed; same seed, same metrics on CPU.")
    epochs: int = Field(20, ge=1, le=1000, description="Most epochs per fold (early stopping may end sooner).")
    learning_rate: float = Field(1e-3, gt=0, le=1, description="Adam learning rate.")
    lookback: int = Field(64, ge=2, le=4096, description="Bars of history per sample.")
    model: ModelKind = Field("mlp", description="The network: an MLP over the window, or a GRU over its bars.")
    weight_decay: float = Field(1.0, ge=0, le=100, description="AdamW's decoupled weight decay.")
    patience: int = Field(3, ge=1, le=1000, description="Epochs without a better validation loss before stopping.")
    distribution: Distribution = Field("student_t", description="Family of the predictive distribution.")
    device: Device = Field("auto", description="auto picks CUDA, then MPS, else CPU.")
    final_holdout: FinalHoldout = Field(
        "off",
        description="Sweeps: 'inner' keeps the final test period (the last 20 % of candles) out and cross-validates "
        "inside the rest; 'final' trains before that period and tests once on it; 'off': plain walk-forward.",
    )
    dataset: str | None = Field(
        None,
        description="A dataset id from /datasets; default: symbol + timeframe. Given alone, it sets symbol and timeframe.",
        json_schema_extra={"pattern": DATASET_ID_PATTERN},  # checked by ``_dataset_id`` with a clearer message
    )

    @model_validator(mode="before")
    @classmethod
    def _symbol_and_timeframe_from_dataset(cls, data: object) -> object:
        """A ``dataset`` id names its symbol and timeframe: they default to the id's, not to BTCUSDT 1h (naming
        them too, differently, is still refused where the dataset is loaded)."""
        if isinstance(data, dict) and isinstance(data.get("dataset"), str):
            found = re.fullmatch(DATASET_ID_PATTERN, data["dataset"])
            if found:
                data = {"symbol": found.group(2), "timeframe": found.group(3), **data}
        return data

    @field_validator("symbol", mode="before")
    @classmethod
    def _normalize_symbol(cls, value: object) -> object:
        return normalize_symbol(value) if isinstance(value, str) else value

    @field_validator("dataset")
    @classmethod
    def _dataset_id(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(DATASET_ID_PATTERN, value):
            raise ValueError(f"not a dataset id: {value!r} (expected SYMBOL-timeframe, e.g. BTCUSDT-1h)")
        return value

    @property
    def dataset_id(self) -> str:
        """The dataset this job trains on (``effective_dataset``)."""
        return effective_dataset(self.dataset, self.symbol, self.timeframe)
