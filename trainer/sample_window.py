"""How many consecutive bars one training sample needs: the one place that counts it, for the importer's
minimum, the server's up-front refusal and the worker's ``trainer.features.build_samples``.

Light on purpose (standard library and ``trainer.config`` only; never numpy or pandas): the server imports it.
"""

from __future__ import annotations

from trainer.config import TrainingConfig

#: Lags (bars) of the log-return features; the longest one sets the warm-up.
RETURN_LAGS = (1, 4, 24)
#: Bars in the trailing windows of realised volatility and of the volume z-score.
ROLLING_BARS = 24
#: Bars of history a bar's features need besides itself (a bar with fewer in-segment predecessors has none).
WARMUP = max(max(RETURN_LAGS), ROLLING_BARS)


def bars_needed(lookback: int, horizon: int) -> int:
    """Consecutive bars (no gap) that make one sample: the features' ``WARMUP`` bars, the ``lookback`` window
    (ending at the sample's bar t) and the ``horizon`` label bars after t."""
    return WARMUP + lookback + horizon


def bars_needed_words(lookback: int, horizon: int) -> str:
    """``bars_needed`` in words: ``"89 consecutive bars (feature warm-up 24 + lookback 64 + horizon 1)"``."""
    return (f"{bars_needed(lookback, horizon)} consecutive bars (feature warm-up {WARMUP} + lookback {lookback} "
            f"+ horizon {horizon})")


def default_bars_needed() -> tuple[int, str]:
    """``bars_needed`` for ``TrainingConfig``'s default lookback and horizon, and why, for the importer's
    refusal: no job with the default window can train on fewer."""
    lookback = TrainingConfig.model_fields["lookback"].default
    horizon = TrainingConfig.model_fields["forecast_horizon"].default
    return bars_needed(lookback, horizon), (
        f"one training window with the default lookback and horizon needs {bars_needed_words(lookback, horizon)}"
    )
