"""Fonts, colours and the global theme: a readable sans-serif font, roomier padding, and disabled controls that
look disabled (Dear PyGui draws them like enabled ones unless a theme says otherwise)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import dearpygui.dearpygui as dpg

GREEN = (80, 200, 120, 255)
YELLOW = (235, 190, 60, 255)
RED = (230, 80, 70, 255)
GREY = (140, 140, 140, 255)
MUTED = (165, 170, 180, 255)
ACCENT = (110, 170, 255, 255)
TEXT = (225, 228, 232, 255)
TRAIN = (110, 170, 255, 255)
VALID = (255, 160, 70, 255)
MEAN = (120, 235, 255, 255)  # a forecast's rolling mean: brighter than ACCENT, to stand out on the faint bars
#: A check box's fill and outline: lighter than a table's lighter stripe (Dear PyGui's default fill is that stripe's
#: colour, so a box vanished on every other row of the Jobs table); a disabled box keeps a dimmer outline.
CHECK_FILL = (72, 76, 86, 255)
CHECK_BORDER = (150, 155, 165, 255)
CHECK_BORDER_DISABLED = (95, 98, 105, 255)

FONT_SIZE = 16
MARKER_SIZE = 3.0  # pixels: a loss point visible on its own, small enough not to hide a curve of many epochs

PHASE_COLOURS = {"idle": MUTED, "pending": YELLOW, "running": GREEN, "stopping": YELLOW, "failed": RED}


def _font_file() -> Path | None:
    """DejaVu Sans as shipped inside matplotlib (a dependency already), found without importing matplotlib."""
    spec = importlib.util.find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return path
    return None


def setup() -> dict[str, int | str]:
    """Create fonts and themes (call after ``create_context``); returns named themes for ``bind_item_theme``."""
    font_file = _font_file()
    if font_file is not None:  # otherwise Dear PyGui's built-in font is used
        with dpg.font_registry():  # Dear PyGui 2 loads the glyphs a text needs (dashes, arrows…) on demand
            font = dpg.add_font(str(font_file), FONT_SIZE)
            dpg.add_font(str(font_file), FONT_SIZE + 4, tag="font_large")
        dpg.bind_font(font)

    with dpg.theme() as global_theme:
        with dpg.theme_component(dpg.mvAll):
            dpg.add_theme_style(dpg.mvStyleVar_WindowPadding, 12, 10)
            dpg.add_theme_style(dpg.mvStyleVar_FramePadding, 8, 5)
            dpg.add_theme_style(dpg.mvStyleVar_ItemSpacing, 8, 7)
            dpg.add_theme_style(dpg.mvStyleVar_CellPadding, 6, 4)
            dpg.add_theme_style(dpg.mvStyleVar_FrameRounding, 4)
            dpg.add_theme_style(dpg.mvStyleVar_ChildRounding, 4)
            dpg.add_theme_style(dpg.mvStyleVar_WindowRounding, 6)
            dpg.add_theme_style(dpg.mvStyleVar_GrabRounding, 4)
            dpg.add_theme_style(dpg.mvStyleVar_TabRounding, 4)
            dpg.add_theme_color(dpg.mvThemeCol_Text, TEXT)
            # No filled backgrounds under other filled backgrounds: with a software renderer (Xvfb, remote
            # desktops, VMs) every full-area layer costs milliseconds per frame. Measured with llvmpipe: the
            # panels' and the plot's fills made a frame 2.5x as long as the same window without them. (The main
            # window keeps its own background: Dear PyGui's viewport clear colour does not show through.)
            dpg.add_theme_color(dpg.mvThemeCol_ChildBg, (0, 0, 0, 0))
        with dpg.theme_component(dpg.mvPlot):
            dpg.add_theme_color(dpg.mvPlotCol_FrameBg, (0, 0, 0, 0), category=dpg.mvThemeCat_Plots)
            dpg.add_theme_color(dpg.mvPlotCol_PlotBg, (0, 0, 0, 0), category=dpg.mvThemeCat_Plots)
            dpg.add_theme_color(dpg.mvPlotCol_PlotBorder, (90, 92, 98, 255), category=dpg.mvThemeCat_Plots)
        with dpg.theme_component(dpg.mvCheckbox):
            dpg.add_theme_style(dpg.mvStyleVar_FrameBorderSize, 1)
            dpg.add_theme_color(dpg.mvThemeCol_Border, CHECK_BORDER)
            dpg.add_theme_color(dpg.mvThemeCol_FrameBg, CHECK_FILL)
        for kind in (dpg.mvButton, dpg.mvInputInt, dpg.mvInputText, dpg.mvInputDouble, dpg.mvCombo, dpg.mvCheckbox):
            with dpg.theme_component(kind, enabled_state=False):
                dpg.add_theme_color(dpg.mvThemeCol_Text, (120, 120, 125, 255))
                dpg.add_theme_color(dpg.mvThemeCol_Button, (50, 52, 56, 255))
                dpg.add_theme_color(dpg.mvThemeCol_ButtonHovered, (50, 52, 56, 255))
                dpg.add_theme_color(dpg.mvThemeCol_ButtonActive, (50, 52, 56, 255))
                dpg.add_theme_color(dpg.mvThemeCol_FrameBg, (38, 40, 44, 255))
                dpg.add_theme_color(dpg.mvThemeCol_FrameBgHovered, (38, 40, 44, 255))
                if kind == dpg.mvCheckbox:
                    dpg.add_theme_style(dpg.mvStyleVar_FrameBorderSize, 1)
                    dpg.add_theme_color(dpg.mvThemeCol_Border, CHECK_BORDER_DISABLED)
    dpg.bind_theme(global_theme)

    with dpg.theme() as primary:
        with dpg.theme_component(dpg.mvButton):
            dpg.add_theme_color(dpg.mvThemeCol_Button, (40, 120, 75, 255))
            dpg.add_theme_color(dpg.mvThemeCol_ButtonHovered, (50, 150, 92, 255))
            dpg.add_theme_color(dpg.mvThemeCol_ButtonActive, (35, 105, 65, 255))
        with dpg.theme_component(dpg.mvButton, enabled_state=False):
            dpg.add_theme_color(dpg.mvThemeCol_Text, (120, 120, 125, 255))
            dpg.add_theme_color(dpg.mvThemeCol_Button, (50, 52, 56, 255))
            dpg.add_theme_color(dpg.mvThemeCol_ButtonHovered, (50, 52, 56, 255))
            dpg.add_theme_color(dpg.mvThemeCol_ButtonActive, (50, 52, 56, 255))
    with dpg.theme() as danger:
        with dpg.theme_component(dpg.mvButton):
            dpg.add_theme_color(dpg.mvThemeCol_Button, (140, 50, 45, 255))
            dpg.add_theme_color(dpg.mvThemeCol_ButtonHovered, (170, 62, 55, 255))
            dpg.add_theme_color(dpg.mvThemeCol_ButtonActive, (120, 42, 38, 255))
        with dpg.theme_component(dpg.mvButton, enabled_state=False):
            dpg.add_theme_color(dpg.mvThemeCol_Text, (120, 120, 125, 255))
            dpg.add_theme_color(dpg.mvThemeCol_Button, (50, 52, 56, 255))
            dpg.add_theme_color(dpg.mvThemeCol_ButtonHovered, (50, 52, 56, 255))
            dpg.add_theme_color(dpg.mvThemeCol_ButtonActive, (50, 52, 56, 255))
    with dpg.theme() as status_bar:
        with dpg.theme_component(dpg.mvAll):
            dpg.add_theme_color(dpg.mvThemeCol_ChildBg, (30, 32, 36, 255))
            dpg.add_theme_style(dpg.mvStyleVar_WindowPadding, 10, 4)
            dpg.add_theme_style(dpg.mvStyleVar_ItemSpacing, 6, 4)
    return {"primary": primary, "danger": danger, "status_bar": status_bar}


def large_font() -> str | None:
    """The tag of the larger font for headings, if the font file was found."""
    return "font_large" if dpg.does_item_exist("font_large") else None


def line_theme(colour: tuple[int, int, int, int], weight: float = 2.0, marker: bool = False) -> int | str:
    """A theme that draws a plot line series in ``colour``; ``marker``: a filled circle on every point too."""
    with dpg.theme() as theme:
        with dpg.theme_component(dpg.mvLineSeries):
            dpg.add_theme_color(dpg.mvPlotCol_Line, colour, category=dpg.mvThemeCat_Plots)
            dpg.add_theme_style(dpg.mvPlotStyleVar_LineWeight, weight, category=dpg.mvThemeCat_Plots)
            if marker:
                dpg.add_theme_style(dpg.mvPlotStyleVar_Marker, dpg.mvPlotMarker_Circle, category=dpg.mvThemeCat_Plots)
                dpg.add_theme_style(dpg.mvPlotStyleVar_MarkerSize, MARKER_SIZE, category=dpg.mvThemeCat_Plots)
                dpg.add_theme_color(dpg.mvPlotCol_MarkerFill, colour, category=dpg.mvThemeCat_Plots)
                dpg.add_theme_color(dpg.mvPlotCol_MarkerOutline, colour, category=dpg.mvThemeCat_Plots)
    return theme


def fill_theme(colour: tuple[int, int, int, int]) -> int | str:
    """A theme that fills a bar series with ``colour``."""
    with dpg.theme() as theme:
        with dpg.theme_component(dpg.mvBarSeries):
            dpg.add_theme_color(dpg.mvPlotCol_Fill, colour, category=dpg.mvThemeCat_Plots)
            dpg.add_theme_color(dpg.mvPlotCol_Line, colour, category=dpg.mvThemeCat_Plots)
    return theme
