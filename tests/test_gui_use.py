"""The real app under Xvfb with two real jobs (issue 13): the Results tab shows a completed one (the first
to complete) with its Next bar forecast, the Jobs tab's tick boxes and Compare open the Compare window
(screenshots, checked non-blank: job ids whole in the pairs table, every reliability point inside the plot, the
unequal test bars said), and after a restart the Results tab shows the newest completed job again.
With two more jobs that ended short (one cancelled, one whose worker was killed: a long reason) the Jobs tab shows
every field of each in the default window without sideways scrolling, and sorts by a field's name in its header.

Needs Xvfb, xdotool and ImageMagick, like ``tests/test_gui.py`` (whose fixtures it uses).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from desktop_app.job_columns import COLUMNS, LAYOUT
from gui_harness import DEFAULT_VIEWPORT, write_layout
from test_gui import after, assert_not_blank, display, launch, ready  # noqa: F401  (fixtures)

pytestmark = pytest.mark.gui

JOB = {"epochs": 1, "cv_folds": 1, "lookback": 8, "batch_size": 512}
#: Least difference (sum over R, G, B) between a tick box's outline and its row's background.
BOX_CONTRAST = 60
#: The Jobs tab (viewport pixels), where Dear PyGui reports no rectangle for a tab.
JOBS_TAB = {"x": 530, "y": 40, "width": 44, "height": 18}


def wait_job(url: str, job_id: str, done: Any, timeout: float = 300) -> dict[str, Any]:
    """``GET /jobs/{job_id}`` once ``done(job)``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = requests.get(f"{url}/jobs/{job_id}", timeout=30).json()
        if done(job):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not get there: {job}")


def wait_completed(url: str, job_id: str, timeout: float = 300) -> None:
    job = wait_job(url, job_id, lambda j: j["status"] not in ("queued", "starting", "running"), timeout)
    assert job["status"] == "completed", job["status"]


def assert_box_shows(path: Path, tick: dict[str, Any]) -> None:
    """The tick box ``tick`` (a probe's ``ticks`` entry, unticked) stands out from its row in the screenshot: its
    outline differs from the row's background (taken just below the box) by more than ``BOX_CONTRAST``, at least
    along its sides."""
    from PIL import Image

    x, y, side = int(tick["x"]), int(tick["y"]), int(tick["height"])
    with Image.open(path) as image:
        rgb = image.convert("RGB")
        background = rgb.getpixel((x + side // 2, y + side + 2))
        outline = [rgb.getpixel((px, py)) for px in range(x, x + side) for py in range(y, y + side)]
    standing_out = sum(sum(abs(a - b) for a, b in zip(pixel, background)) > BOX_CONTRAST for pixel in outline)
    assert standing_out >= 2 * side, (tick, background, standing_out)


def assert_every_field_fits(table: dict[str, Any]) -> None:
    """The Jobs tab's header and drawn rows: each column's content ends before the next one's begins and the last
    ends inside the table (a column too narrow for its text would spill into the next; one past the edge would
    need sideways scrolling)."""
    assert table["header"] and table["rows"], table
    for cells in [table["header"], *(row["cells"] for row in table["rows"])]:
        assert len(cells) in (len(LAYOUT), len(LAYOUT) + 2), cells  # the header has no tick box or buttons
        for (_, right), (left, _) in zip(cells, cells[1:]):
            assert right <= left, (cells, table)
        assert cells[-1][1] <= table["right"], (cells, table["right"])


@pytest.mark.slow
def test_compare_two_real_jobs_and_the_next_bar(launch, candlecast_home: Path) -> None:  # noqa: F811
    write_layout(candlecast_home, params=JOB)
    app = launch("compare")
    url = app.wait("the window, REST and WebSocket", ready)["server_url"]
    first = requests.post(f"{url}/start_training", json=JOB, timeout=30).json()["job_id"]
    # The same data named two ways: symbol + timeframe (the defaults) and the dataset id.
    second = requests.post(f"{url}/start_training", json={**JOB, "lookback": 12, "dataset": "BTCUSDT-1h"},
                           timeout=30).json()["job_id"]
    wait_completed(url, first)
    wait_completed(url, second)
    comparison = requests.get(f"{url}/compare", params={"jobs": f"{second},{first}"}, timeout=120).json()
    assert comparison["differences"] == {"lookback": [12, 8]}  # no false {"dataset": ["BTCUSDT-1h", null]}
    test_bars = [comparison["key_figures"][j]["n"] for j in (second, first)]
    assert test_bars[0] != test_bars[1], test_bars  # a longer lookback leaves fewer samples to test on

    # Listed with their key figures; the Results tab shows the newest completed job and its next bar.
    probe = app.wait("both jobs ticked-able", lambda p: {first, second} <= set(p["ticks"]))
    probe = app.wait("the next bar", lambda p: p["next_bar"] is not None or p["next_bar_problem"])
    assert probe["next_bar_problem"] is None and probe["results_job_id"] in (first, second)
    assert probe["items"]["rv_next_text"]["value"].startswith("p_up ")
    assert "\n80 % interval of that close: " in probe["items"]["rv_next_text"]["value"]  # a line of its own: no price split
    assert probe["next_bar"]["open_time"] and 0 < probe["next_bar"]["p_up"] < 1

    # Two jobs end short: a queued one is cancelled, a running one's worker is killed (a reason of ~110 characters).
    killed = requests.post(f"{url}/start_training", json={**JOB, "epochs": 500}, timeout=30).json()["job_id"]
    cancelled = requests.post(f"{url}/start_training", json=JOB, timeout=30).json()["job_id"]
    assert requests.post(f"{url}/jobs/{cancelled}/stop", timeout=30).json()["status"] == "cancelled"
    running = wait_job(url, killed, lambda j: j["status"] == "running" and j["pid"])
    os.kill(running["pid"], signal.SIGKILL)
    reason = wait_job(url, killed, lambda j: j["status"] == "failed")["error"]["error"]
    assert len(reason) > 100, reason

    # Every field of the four jobs is readable in the default window: nothing spills or needs sideways scrolling,
    # the long reason is cut at a word to two lines (whole on hover).
    tab = probe["items"]["tab_jobs"]
    app.click(tab if tab["width"] else JOBS_TAB)
    app.wait("the four jobs drawn", lambda p: len(p["jobs_tab"]["rows"]) == 4)
    probe = after(app)  # the table has had the frames to fit its columns to the texts
    assert (probe["viewport"]["width"], probe["viewport"]["height"]) == (DEFAULT_VIEWPORT.width,
                                                                         DEFAULT_VIEWPORT.height)
    table = probe["jobs_tab"]
    assert_every_field_fits(table)
    assert table["names"] == [c.header for c in COLUMNS]
    row = {r["job_id"]: r for r in table["rows"]}
    assert [r["job_id"] for r in table["rows"]] == [cancelled, killed, second, first]  # the server's: newest first
    assert row[killed]["whole"] == reason and row[killed]["cut"].endswith(" …")
    assert reason.startswith(row[killed]["cut"].removesuffix(" …") + " ")  # whole words
    assert row[killed]["cut_height"] <= 2 * table["line_height"] + 4  # two lines at most
    assert row[cancelled]["whole"] == "stopped on request" and row[first]["whole"] == "–"
    jobs_shot = app.screenshot("jobs")
    assert_not_blank(jobs_shot)
    for job_id in row:  # on either stripe of the rows, enabled or not
        assert_box_shows(jobs_shot, probe["ticks"][job_id])

    # A click on a field's name sorts by it: the CRPS skill, ascending, the jobs without one last.
    app.click(probe["items"]["jv_head_crps_skill_garch"])
    probe = app.wait("sorted by CRPS skill", lambda p: p["jobs_tab"]["sort"] == ["crps_skill_garch", False])
    figures = {j["job_id"]: j["metrics"]["crps_skill_garch"]
               for j in requests.get(f"{url}/jobs?include=metrics", timeout=30).json()["jobs"] if j["metrics"]}
    assert [r["job_id"] for r in probe["jobs_tab"]["rows"]][:2] == sorted(figures, key=figures.get)
    assert "CRPS ▲" in probe["jobs_tab"]["names"]
    assert_every_field_fits(probe["jobs_tab"])
    assert probe["ticks"][first]["visible"] and probe["ticks"][second]["visible"], probe["ticks"]
    app.click(probe["ticks"][first])
    app.click(probe["ticks"][second])
    probe = after(app)
    app.click(probe["items"]["jv_compare"])
    probe = app.wait("the comparison", lambda p: p["compare"]["loaded"] or p["compare"]["problem"], timeout=120)
    assert probe["compare"]["open"] and probe["compare"]["problem"] is None, probe["compare"]
    assert probe["items"]["cmp_title"]["value"] == f"Comparing {second}, {first}"  # the list's order: newest first
    probe = after(app)
    assert probe["compare"]["bars_note"].startswith("These jobs were tested on different bars (Test bars row): their "
                                                    "rows are not comparable bar for bar"), probe["compare"]
    assert_not_blank(app.screenshot("compare"))

    # Below the metrics (the default window shows the top): the plots and the pairs table, as drawn.
    window = probe["items"]["cmp_window"]
    app.scroll_down(int(window["x"] + window["width"] / 2), int(window["y"] + window["height"] / 2), 15)
    shown = after(app)["compare"]
    (x_low, x_high), (y_low, y_high) = shown["reliability_axes"]
    for job_id in (first, second):  # every point inside the axes, none on their edge
        rel = comparison["reliability"][job_id]
        assert x_low < min(rel["p_mean"]) and max(rel["p_mean"]) < x_high, (shown["reliability_axes"], rel)
        assert y_low < min(rel["freq"]) and max(rel["freq"]) < y_high, (shown["reliability_axes"], rel)
    pit_low, pit_high = shown["pit_axis"]  # every bar inside, the tallest below the top
    bars = [share for job_id in (first, second) for share in comparison["pit"][job_id]]
    assert pit_low < min(bars) and max(bars) < pit_high, (shown["pit_axis"], bars)
    assert shown["legends_outside"] == [True, True]  # below the axes: no legend over the data
    assert [row[0]["value"] for row in shown["dm_rows"]] == [second, second]  # log loss and Brier
    for row in shown["dm_rows"]:
        assert row[1]["value"] == first and row[2]["value"] == str(comparison["pairs"][0]["n"])
        for cell, right in zip(row, row[1:]):  # no cell runs into the next column: nothing is cut
            assert cell["x"] + cell["width"] <= right["x"], row
    assert_not_blank(app.screenshot("compare-pairs"))
    # The wheel over a plot scrolls the window (the plot moves down), it does not zoom (the axes stay).
    plot = after(app)["compare"]["reliability_plot"]
    app.scroll_down(int(plot["x"] + plot["width"] / 2), int(plot["y"] + plot["height"] / 2), 3, up=True)
    scrolled = after(app)
    assert scrolled["compare"]["reliability_plot"]["y"] > plot["y"], (plot, scrolled["compare"])
    assert scrolled["compare"]["reliability_axes"] == shown["reliability_axes"], scrolled["compare"]
    assert app.close() == 0

    # After a restart the Results tab shows the newest completed job instead of staying empty.
    again = launch("compare-restart")
    probe = again.wait("results after the restart", lambda p: p["pid"] == again.proc.pid and p["results_loaded"])
    assert probe["results_job_id"] == second
    assert_not_blank(again.screenshot("restart-results"))
