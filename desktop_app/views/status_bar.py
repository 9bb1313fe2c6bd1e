"""The status bar: REST dot (green when ``GET /`` answers, red when not) with "last ping HH:MM:SS", WebSocket
dot (green connected, yellow reconnecting, red disconnected), the server's URL, and the current job."""

from __future__ import annotations

import time

import dearpygui.dearpygui as dpg

from desktop_app.controller import State
from desktop_app.views import theme

HEIGHT = 32
WS_COLOURS = {"connected": theme.GREEN, "reconnecting": theme.YELLOW, "disconnected": theme.RED}


def _dot(tag: str) -> None:
    with dpg.drawlist(width=14, height=20):  # the height of a text line, so the dot sits on its centre
        dpg.draw_circle((7, 10), 5.5, tag=tag, color=theme.GREY, fill=theme.GREY)


class StatusBar:
    """Built in the current container; ``server_note`` says where the server runs (embedded, port, --connect)."""

    def __init__(self, server_url: str, server_note: str, themes: dict) -> None:
        with dpg.child_window(height=HEIGHT, border=False, no_scrollbar=True, tag="status_bar"):
            with dpg.group(horizontal=True):
                _dot("sb_rest_dot")
                dpg.add_text("REST", tag="sb_rest")
                dpg.add_text("not checked yet", tag="sb_ping", color=theme.MUTED)
                dpg.add_spacer(width=14)
                _dot("sb_ws_dot")
                dpg.add_text("WebSocket connecting", tag="sb_ws")
                dpg.add_spacer(width=14)
                dpg.add_text(f"Server {server_url}", tag="sb_server", color=theme.MUTED)
                dpg.add_text(server_note, tag="sb_note", color=theme.YELLOW, show=bool(server_note))
                dpg.add_spacer(width=14)
                dpg.add_text("", tag="sb_job", color=theme.MUTED)
        dpg.bind_item_theme("status_bar", themes["status_bar"])
        with dpg.tooltip("sb_rest"):
            dpg.add_text("", tag="sb_rest_tip", wrap=420)
        with dpg.tooltip("sb_ws"):
            dpg.add_text("", tag="sb_ws_tip", wrap=420)

    def render(self, state: State, prev: State | None) -> None:
        """Update the dots and texts when the connection or the job changed."""
        if prev is not None and state.conn is prev.conn and state.run.job_id == prev.run.job_id:
            return
        conn = state.conn
        rest = theme.GREY if conn.rest_ok is None else theme.GREEN if conn.rest_ok else theme.RED
        dpg.configure_item("sb_rest_dot", color=rest, fill=rest)
        dpg.set_value("sb_rest", "REST ok" if conn.rest_ok else "REST down" if conn.rest_ok is False else "REST")
        ping = time.strftime("%H:%M:%S", time.localtime(conn.last_ping)) if conn.last_ping else "never"
        dpg.set_value("sb_ping", f"last ping {ping}")
        version = conn.server.get("version")
        tip = f"candlecast {version} answers GET /" if version else "GET / every 10 s"
        dpg.set_value("sb_rest_tip", conn.rest_detail or tip)
        ws = WS_COLOURS.get(conn.ws, theme.GREY)
        dpg.configure_item("sb_ws_dot", color=ws, fill=ws)
        dpg.set_value("sb_ws", f"WebSocket {conn.ws}")
        dpg.set_value("sb_ws_tip", conn.ws_detail or "live events over /ws")
        job = state.run.job_id
        dpg.set_value("sb_job", f"Job {job}" if job else "")
