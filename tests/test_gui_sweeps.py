"""The real app under Xvfb with real sweeps (issue 14): a sweep defined and started from the Sweeps tab fills its
trials table live, draws its best-so-far line and parameter importance, opens its best job in the Results tab and
stops from the tab; a sweep that ``candlecast sweep --ray-address`` runs on a two-node Ray cluster on this
machine shows its trials live in the tab, with trials on both nodes. Screenshots of the tab are checked not blank.

Needs Xvfb, xdotool and ImageMagick, like ``tests/test_gui.py`` (whose fixtures it uses); the Ray test also needs
Ray (``tests/ray_cluster.py``; skipped with the reason where it cannot start).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from gui_harness import REPO_ROOT, SLOW, GuiApp, distinct_colours, write_layout
from ray_cluster import RAY_ENV, RayCluster, ray_cluster  # noqa: F401  (fixture)
from server_fixtures import write_settings
from trainer.events import TERMINAL_STATUSES
from test_gui import MIN_COLOURS, after, display, launch, ready  # noqa: F401  (fixtures)

pytestmark = pytest.mark.gui

#: The control panel's options every trial shares: one epoch, two inner folds, a short window.
TINY = {"epochs": 1, "cv_folds": 2, "lookback": 8, "batch_size": 512}
#: The Sweeps tab (viewport pixels), where Dear PyGui reports no rectangle for a tab.
SWEEPS_TAB = {"x": 584, "y": 40, "width": 56, "height": 18}
#: Seconds for a few tiny trials on a busy 2-core machine.
SWEEP_S = 900


def open_sweeps_tab(app: GuiApp, probe: dict[str, Any]) -> dict[str, Any]:
    """Click the Sweeps tab (again, should the click be lost on a busy machine) until its Start button shows."""
    for attempt in range(3):
        tab = probe["items"]["tab_sweeps"]
        app.click(tab if tab["width"] else SWEEPS_TAB)
        try:
            app.wait("the Sweeps tab", lambda p: p["items"]["sw_start"]["visible"], timeout=20)
            return after(app)  # its tables have had the frames to lay out their columns
        except AssertionError:
            if attempt == 2:
                raise
            probe = after(app)
    raise AssertionError("unreachable")


def set_number(app: GuiApp, tag: str, number: int) -> None:
    """Type ``number`` into the whole-number input ``tag`` and press Return, until the probe shows it."""
    for attempt in range(3):
        app.click(app.state()["items"][tag])
        try:
            app.wait(f"{tag} active", lambda p: p["items"][tag]["active"], timeout=5)
            app._xdotool("key", "--delay", "60", "ctrl+a", "BackSpace")
            app._xdotool("type", "--delay", "60", str(number))
            app._xdotool("key", "Return")
            app.wait(f"{number} in {tag}", lambda p: p["items"][tag]["value"] == number, timeout=10)
            return
        except AssertionError:
            if attempt == 2:
                raise


def rows(probe: dict[str, Any]) -> list[dict[str, Any]]:
    return probe["sweeps_tab"]["trials"]


def assert_tab_not_blank(app: GuiApp, label: str) -> None:
    """A screenshot whose Sweeps tab region (the content pane) has text, tables and a plot, not a blank area."""
    region = app.state()["items"]["content_pane"]
    assert region["width"] > 200 and region["height"] > 200, region
    path = app.screenshot(label)
    colours = distinct_colours(path, region)
    assert colours > MIN_COLOURS, f"{path}: the Sweeps tab looks blank ({colours} colours)"


def server_sweep(url: str, sweep_id: str) -> dict[str, Any]:
    return requests.get(f"{url}/sweeps/{sweep_id}", timeout=30).json()


@pytest.mark.slow
def test_a_sweep_from_the_tab_runs_live_opens_its_best_job_and_stops(
    launch, candlecast_home: Path  # noqa: F811
) -> None:
    # The form's options are the trials' fixed options; the window is the default one (it fits a 1366x768 screen).
    write_layout(candlecast_home, params=TINY)
    app = launch("sweeps")
    url = app.wait("the window, REST and WebSocket", ready)["server_url"]
    probe = open_sweeps_tab(app, app.state())
    assert probe["sweeps_tab"]["summary"] == "No sweep shown." and rows(probe) == []
    # The whole search space is in view without scrolling, and so are the shown sweep's buttons below it.
    tab = probe["sweeps_tab"]
    assert tab["form_open"] and len(tab["space"]) > 15 and tab["space_drawn"] == tab["space"], tab
    assert all(probe["items"][tag]["visible"] for tag in ("sw_trials", "sw_start", "sw_stop", "sw_open_best"))

    # The space from the same form: one choice of CV folds (the same in every trial), then a log range for the
    # learning rate (every trial differs, so the importance has something to apportion); 3 trials, one at a time,
    # on this machine.
    app.type_into(probe["items"]["sw_space_cv_folds"], "2")
    app.type_into(app.state()["items"]["sw_space_learning_rate"], "1e-4 .. 1e-2 log")
    set_number(app, "sw_trials", 3)
    app.click(app.state()["items"]["sw_start"])

    live = app.wait("a running trial in the table",
                    lambda p: p["sweeps_tab"]["picked"].endswith("(running)")
                    and any(r["state"] == "running" for r in rows(p)), timeout=SLOW)
    sweep_id = live["sweeps_tab"]["picked"].split(" ")[0]
    assert not live["sweeps_tab"]["form_open"]  # folded for the running sweep: its trials come up in view
    (listed,) = requests.get(f"{url}/sweeps", timeout=30).json()["sweeps"]  # that click started exactly one sweep
    sweep = server_sweep(url, sweep_id)
    assert listed["sweep_id"] == sweep_id and sweep["request"]["trials"] == 3 and sweep["request"]["parallel"] == 1
    assert sweep["request"]["space"] == {"cv_folds": {"choices": [2]},
                                         "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True, "step": None}}
    base = sweep["request"]["base"]
    assert {k: base[k] for k in TINY if k != "cv_folds"} == {k: v for k, v in TINY.items() if k != "cv_folds"}
    assert "cv_folds" not in base and "final_holdout" not in base
    assert live["items"]["sw_stop"]["enabled"]

    # Two trials complete: the table, the best-so-far line and (a moment later) the importance follow them.
    two = app.wait("two complete trials on the plot",
                   lambda p: sum(r["state"] == "complete" for r in rows(p)) >= 2
                   and p["sweeps_tab"]["best_points"] >= 2, timeout=SWEEP_S)
    app.click(two["items"]["sw_stop"])
    stopped = app.wait("the sweep stopped", lambda p: p["sweeps_tab"]["picked"] == f"{sweep_id} (stopped)"
                       and p["sweeps_tab"]["summary"].startswith("stopped"), timeout=SLOW)
    sweep = server_sweep(url, sweep_id)
    assert sweep["status"] == "stopped"
    for trial in sweep["trials"]:  # every trial's job ended: the stop reached the one running
        status = requests.get(f"{url}/jobs/{trial['job_id']}", timeout=30).json()["status"]
        assert status in TERMINAL_STATUSES, (trial, status)
    shown = app.wait("the stopped sweep's trials as the server has them",
                     lambda p: len(rows(p)) == len(sweep["trials"]) and not p["items"]["sw_stop"]["enabled"],
                     timeout=60)
    for row, trial in zip(rows(shown), sweep["trials"], strict=True):
        assert (row["number"], row["state"], row["job"], row["node"]) == (
            str(trial["number"]), trial["state"], trial["job_id"], "local"), (row, trial)
        # The searched option leads (the server lists the space's order: cv_folds first), every option on hover.
        assert list(trial["params"]) == ["cv_folds", "learning_rate"], trial["params"]
        assert row["params"] == f"learning_rate={trial['params']['learning_rate']:.5g}, cv_folds=2", row
        assert row["params_tip"] == row["params"].replace(", ", "\n"), row
    complete = [t for t in sweep["trials"] if t["state"] == "complete"]
    assert len(complete) >= 2 and shown["sweeps_tab"]["best_points"] == len(complete)
    best = min(complete, key=lambda t: t["value"])
    assert sweep["best"]["trial"] == best["number"]
    assert f"best so far: trial {best['number']}" in shown["sweeps_tab"]["summary"]

    bars = app.wait("the parameter importance", lambda p: p["sweeps_tab"]["importance"], timeout=SLOW)
    assert bars["sweeps_tab"]["importance"] == [["learning_rate", 1.0]], bars["sweeps_tab"]
    after(app)
    assert_tab_not_blank(app, "sweep-stopped")

    # Open best job: the Results tab shows the best trial's job.
    app.click(app.state()["items"]["sw_open_best"])
    # The Results tab is in front once a frame has drawn it (an item's "visible" is the last frame's).
    app.wait("the best job's results in front",
             lambda p: p["results_job_id"] == best["job_id"] and p["results_loaded"]
             and not p["items"]["sw_start"]["visible"], timeout=SLOW)


@pytest.mark.slow
def test_a_ray_sweep_from_the_cli_shows_live_in_the_tab_on_both_nodes(
    launch, candlecast_home: Path, ray_cluster: RayCluster, tmp_path: Path  # noqa: F811
) -> None:
    head_id, second_id = ray_cluster.head.node_id(), ray_cluster.second.node_id()
    # Two trials at once (one per 1-CPU node); a trial waiting for a free CPU has not started: a long start timeout.
    write_settings(candlecast_home, warm_worker=False, max_concurrent_jobs=2, start_timeout_s=900)
    write_layout(candlecast_home, params=TINY)
    app = launch("sweeps-ray", env=RAY_ENV)  # its job workers are drivers of this cluster
    probe = app.wait("the window, REST and WebSocket", ready)
    open_sweeps_tab(app, probe)

    # Three epochs: the two trials' Ray tasks overlap (each takes a node's only CPU, so the second runs on the other).
    space = tmp_path / "sweep.json"
    space.write_text(json.dumps({"base": {**TINY, "epochs": 3}, "pruner": "none",
                                 "space": {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}}}))
    env = {**os.environ, **RAY_ENV, "CANDLECAST_HOME": str(candlecast_home)}
    env.pop("DISPLAY", None)  # the CLI alone, as from a terminal: it finds the app's server on this data folder
    command = [sys.executable, "-m", "desktop_app.cli", "sweep", "--space", str(space), "--trials", "2",
               "--parallel", "2", "--ray-address", ray_cluster.address, "--json"]
    with subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as cli:
        try:
            # Live: the tab shows the CLI's sweep while it runs, both trials running at once, one on each node.
            both = app.wait("both trials running in the tab",
                            lambda p: p["sweeps_tab"]["picked"].endswith("(running)")
                            and sum(r["state"] == "running" for r in rows(p)) == 2, timeout=SWEEP_S)
            out, err = cli.communicate(timeout=SWEEP_S)
        finally:
            if cli.poll() is None:
                cli.kill()
    assert cli.returncode == 0, err[-2000:]
    sweep = json.loads(out)
    assert sweep["status"] == "completed" and sweep["request"]["ray_address"] == ray_cluster.address
    assert both["sweeps_tab"]["picked"].startswith(sweep["sweep_id"])
    nodes = {t["node_id"] for t in sweep["trials"]}
    assert nodes == {head_id, second_id}, (nodes, head_id, second_id)  # one trial on each node
    done = app.wait("the completed sweep in the tab",
                    lambda p: p["sweeps_tab"]["picked"] == f"{sweep['sweep_id']} (completed)"
                    and len(rows(p)) == 2 and all(r["state"] == "complete" for r in rows(p)), timeout=SLOW)
    assert {r["node"] for r in rows(done)} == {head_id[:12], second_id[:12]}
    assert {r["job"] for r in rows(done)} == {t["job_id"] for t in sweep["trials"]}
    assert "final untouched test period" in done["sweeps_tab"]["summary"]
    after(app)
    assert_tab_not_blank(app, "sweep-ray")
