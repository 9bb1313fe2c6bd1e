"""The control panel: one input per request field (``form.FIELDS``), live validation next to each field,
a 422's messages on the fields it names, and the Start / Cancel start request / Stop buttons (Start disabled,
with the reason below it, while the server does not answer) between the basic fields and the Advanced ones."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import dearpygui.dearpygui as dpg

from desktop_app import form
from desktop_app import messages as m
from desktop_app.controller import Action, State, allowed_actions
from desktop_app.panels.connection import start_blocked
from desktop_app.panels.run import Phase
from desktop_app.views import theme

LABEL_WIDTH = 128


class ControlPanel:
    """Builds the panel in the current container; ``dispatch(message_type, **fields)`` sends clicks."""

    def __init__(self, dispatch: Callable[..., None], initial: dict[str, Any], show_advanced: bool,
                 themes: dict[str, Any]) -> None:
        self._dispatch = dispatch
        self._local_errors: dict[str, str] = {}
        self._shown_errors: dict[str, str] = {}
        self._datasets: dict[str, tuple[str, str]] = {}
        self._last_state: State | None = None
        dpg.add_text("Training parameters", color=theme.ACCENT)
        dpg.add_separator()
        self._table(f for f in form.FIELDS if not f.advanced)
        # Start / Stop and the run's message above "Advanced": opening it never pushes them out of view.
        dpg.add_spacer(height=6)
        with dpg.group(horizontal=True):
            dpg.add_button(label="Start", tag="cp_start", width=110, height=34, callback=self._on_start)
            dpg.bind_item_theme("cp_start", themes["primary"])
            dpg.add_button(label="Stop", tag="cp_stop", width=110, height=34,
                           callback=lambda: self._dispatch(m.StopClicked))
            dpg.bind_item_theme("cp_stop", themes["danger"])
        dpg.add_button(label="Cancel start request", tag="cp_cancel", width=228, height=30, show=False,
                       callback=lambda: self._dispatch(m.CancelClicked))
        dpg.add_text("", tag="cp_blocked", color=theme.YELLOW, wrap=0, show=False)
        dpg.add_spacer(height=4)
        dpg.add_text("Ready", tag="cp_message", wrap=0)
        dpg.add_spacer(height=4)
        with dpg.collapsing_header(label="Advanced", default_open=show_advanced, tag="cp_advanced"):
            self._table(f for f in form.FIELDS if f.advanced)
        self.set_values(initial)
        self._validate()

    # ------------------------------------------------------------ building

    def _table(self, specs: Any) -> None:
        with dpg.table(header_row=False, policy=dpg.mvTable_SizingStretchProp, pad_outerX=False):
            dpg.add_table_column(width_fixed=True, init_width_or_weight=LABEL_WIDTH)
            dpg.add_table_column(width_stretch=True, init_width_or_weight=1.0)
            for spec in specs:
                with dpg.table_row():
                    dpg.add_text(spec.label, tag=f"cp_label_{spec.name}")
                    with dpg.group():
                        self._input(spec)
                        dpg.add_text("", tag=f"cp_error_{spec.name}", color=theme.RED, show=False, wrap=0)
                with dpg.tooltip(f"cp_label_{spec.name}"):
                    dpg.add_text(f"{spec.help}{_range(spec)}", wrap=360)

    def _input(self, spec: form.FieldSpec) -> None:
        tag = f"cp_{spec.name}"
        changed = lambda *_: self._edited(spec.name)  # noqa: E731 (a one-line callback)
        if spec.kind == "bool":
            dpg.add_checkbox(tag=tag, callback=changed)
        elif spec.kind == "choice":
            dpg.add_combo(list(spec.choices), tag=tag, width=-1, callback=changed)
        elif spec.name == "symbol":
            with dpg.group(horizontal=True):
                dpg.add_input_text(tag=tag, width=-34, uppercase=True, no_spaces=True, callback=changed)
                dpg.add_combo([], tag="cp_dataset_pick", no_preview=True, callback=self._on_dataset_picked)
            with dpg.tooltip("cp_dataset_pick"):
                dpg.add_text("Pick one of the stored datasets")
        else:
            # Numbers too are plain text without a character filter: what is typed stays and is checked as it is
            # typed (a filter, or an int input, would drop "abc" silently and keep the old value).
            hint = "symbol + timeframe" if spec.name == "dataset" else ""
            dpg.add_input_text(tag=tag, width=-1, hint=hint, no_spaces=True, callback=changed)

    # ------------------------------------------------------------ values

    def set_values(self, values: dict[str, Any]) -> None:
        """Put ``values`` (request fields) into the inputs."""
        for spec in form.FIELDS:
            value = values.get(spec.name, spec.default)
            if spec.kind in ("text", "int", "float"):
                value = "" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))
            dpg.set_value(f"cp_{spec.name}", value)
        self._validate()

    def values(self) -> dict[str, Any]:
        """The inputs' current values, keyed by request field."""
        return {spec.name: dpg.get_value(f"cp_{spec.name}") for spec in form.FIELDS}

    def show_advanced(self) -> bool:
        """Whether "Advanced" is open (remembered in the layout)."""
        return bool(dpg.get_value("cp_advanced"))

    def _validate(self) -> None:
        _, self._local_errors = form.validate(self.values())
        dpg.configure_item("cp_cv_folds", enabled=bool(dpg.get_value("cp_use_cv")))
        self._show_errors()

    def _edited(self, name: str) -> None:
        """An input changed: check the form again; a server message about this field no longer applies."""
        if self._last_state is not None and name in self._last_state.field_errors:
            self._dispatch(m.FieldEdited, name=name)
        self._validate()

    def _on_start(self) -> None:
        config, self._local_errors = form.validate(self.values())
        self._show_errors()
        if config is not None:
            self._dispatch(m.StartClicked, config=config, key=str(uuid.uuid4()))

    def _on_dataset_picked(self, sender: Any, label: str) -> None:
        symbol, timeframe = self._datasets.get(label, (None, None))
        if symbol:
            dpg.set_value("cp_symbol", symbol)
            dpg.set_value("cp_timeframe", timeframe)
            for name in ("symbol", "timeframe", "dataset"):
                self._edited(name)
        self._validate()

    # ------------------------------------------------------------ rendering

    def render(self, state: State, prev: State | None) -> None:
        """Enable the buttons the controller allows; show the server's field errors; list datasets."""
        if prev is not None and state.run is prev.run and state.field_errors is prev.field_errors \
                and state.catalog is prev.catalog and state.conn is prev.conn:
            return
        allowed = allowed_actions(state)
        run = state.run
        dpg.configure_item("cp_start", enabled=Action.START in allowed and not self._local_errors)
        dpg.configure_item("cp_stop", enabled=Action.STOP in allowed,
                           label="Stopping…" if run.phase is Phase.STOPPING else "Stop")
        dpg.configure_item("cp_cancel", show=run.phase is Phase.PENDING)
        blocked = start_blocked(state) if run.phase in (Phase.IDLE, Phase.FAILED) else None
        dpg.set_value("cp_blocked", blocked or "")
        dpg.configure_item("cp_blocked", show=blocked is not None)
        dpg.set_value("cp_message", run.message)
        dpg.configure_item("cp_message", color=theme.PHASE_COLOURS.get(run.phase.value, theme.TEXT))
        self._last_state = state
        self._show_errors()
        if prev is None or state.catalog.datasets is not prev.catalog.datasets:
            self._datasets = {
                f"{d.get('symbol')} {d.get('timeframe')} ({d.get('rows', 0):,} rows)": (d.get("symbol"), d.get("timeframe"))
                for d in state.catalog.datasets
            }
            dpg.configure_item("cp_dataset_pick", items=list(self._datasets))

    def _show_errors(self) -> None:
        server = self._last_state.field_errors if self._last_state else {}
        errors = {**server, **self._local_errors}
        if errors == self._shown_errors:
            return
        for spec in form.FIELDS:
            text = errors.get(spec.name, "")
            dpg.set_value(f"cp_error_{spec.name}", text)
            dpg.configure_item(f"cp_error_{spec.name}", show=bool(text))
            dpg.configure_item(f"cp_label_{spec.name}", color=theme.RED if text else theme.TEXT)
        if any(errors.get(spec.name) for spec in form.FIELDS if spec.advanced):
            dpg.set_value("cp_advanced", True)  # never hide an error inside a closed section
        self._shown_errors = errors
        if self._last_state is not None:
            allowed = Action.START in allowed_actions(self._last_state)
            dpg.configure_item("cp_start", enabled=allowed and not self._local_errors)


def _range(spec: form.FieldSpec) -> str:
    if spec.minimum is None and spec.maximum is None:
        return ""
    low = "" if spec.minimum is None else (f"> {spec.minimum:g}" if spec.exclusive_min else f"{spec.minimum:g}")
    high = "" if spec.maximum is None else f"{spec.maximum:g}"
    return f" Range: {low} … {high}." if not spec.exclusive_min else f" Range: {low}, ≤ {high}."
