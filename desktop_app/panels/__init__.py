"""The controller's reducers, one module per panel of the window.

Each module owns one slice of ``controller.State`` (a frozen dataclass it defines) and exports ``REDUCERS``:
``{message type: reducer}``, where a reducer is ``(State, message) -> (State, effects)``: pure, no I/O, no clock.
It returns the same ``State`` object when nothing changed. A reducer writes only its own slice; where one panel
changes another (the run's completion opens its results), it calls that panel's function for it
(``results.open_results``), so each slice has one writer module.

``controller.PANELS`` lists the modules; ``controller.update`` hands a message to every panel that names its type,
in that order, and joins their effects. Adding a panel: its slice and ``REDUCERS`` here, one field in
``controller.State`` and one entry in ``controller.PANELS`` (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from desktop_app import messages as m

Effects = tuple[m.Effect, ...]
#: ``(state, message) -> (state, effects)``; ``Any`` for the state, which ``controller`` composes from the slices.
Reducer = Callable[[Any, Any], tuple[Any, Effects]]


def on_slice(name: str, reduce: Callable[[Any, Any], tuple[Any, Effects]]) -> Reducer:
    """``reduce`` (``(slice, message) -> (slice, effects)``) over the slice ``State.<name>`` as a reducer of the
    whole state (the same state object when the slice did not change)."""

    def reducer(state: Any, msg: Any) -> tuple[Any, Effects]:
        part, effects = reduce(getattr(state, name), msg)
        return (state if part is getattr(state, name) else replace(state, **{name: part})), effects

    return reducer
