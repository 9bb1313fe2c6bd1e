"""A sweep on a real two-node Ray cluster on this machine (``ray_cluster``): trials run on both nodes as Ray tasks
driven by ordinary job workers, their events reach a WebSocket client with no seq hole, their artifacts land in the
local job folders, and killing the second node mid-trial fails that trial while the sweep completes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ray_cluster import RAY_ENV, RayCluster, ray_cluster  # noqa: F401  (fixture)
from server_fixtures import LiveServer, receive_until, write_settings
from test_sweeps import SPACE, TINY, _served, _wait_sweep


@pytest.mark.slow
def test_ray_sweep_runs_on_both_nodes_and_survives_a_lost_node(
    candlecast_home: Path, ray_cluster: RayCluster, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    for name, value in RAY_ENV.items():  # the server's job workers are Ray drivers of this cluster
        monkeypatch.setenv(name, value)
    head_id, second_id = ray_cluster.head.node_id(), ray_cluster.second.node_id()
    # Two trials at once (one per node); a trial waiting for a free CPU has not started yet: a long start timeout.
    write_settings(candlecast_home, warm_worker=False, max_concurrent_jobs=2, start_timeout_s=900)
    with _served(candlecast_home) as server:
        _run_and_check(server, ray_cluster, head_id, second_id)


def _run_and_check(server: LiveServer, ray_cluster: RayCluster, head_id: str, second_id: str) -> None:  # noqa: F811
    ws = server.ws()
    hello = receive_until(ws, lambda m: m["type"] == "hello")[0]
    body = {"space": SPACE, "base": TINY, "trials": 4, "parallel": 2, "ray_address": ray_cluster.address,
            "pruner": "none"}
    sweep_id = server.post("/sweeps", body).json()["sweep_id"]

    def on_second_node(message: dict[str, Any]) -> bool:
        return message.get("type") == "training.started" and message.get("node_id") == second_id

    messages = receive_until(ws, on_second_node)
    victim = messages[-1]["job_id"]
    server.wait_status(victim, {"running"})
    ray_cluster.second.kill()  # mid-trial: its task is lost
    messages += receive_until(ws, lambda m: m.get("type") in ("sweep.completed", "sweep.failed"))
    ws.close()

    events = [m for m in messages if "seq" in m]
    assert [e["seq"] for e in events] == list(range(hello["seq"] + 1, hello["seq"] + 1 + len(events)))
    assert messages[-1]["type"] == "sweep.completed", messages[-1]
    sweep = _wait_sweep(server, sweep_id, lambda s: s["status"] != "running")
    trials = {t["job_id"]: t for t in sweep["trials"]}
    assert len(trials) == 4 and {t["node_id"] for t in trials.values()} >= {head_id, second_id}
    lost = server.job(victim)
    assert trials[victim]["state"] == "failed" and lost["status"] == "failed"
    assert lost["error"]["stage"] == "worker" and "the Ray task was lost" in lost["error"]["error"]
    for job_id, trial in trials.items():
        job = server.job(job_id)
        assert (job["sweep_id"], job["trial"]) == (sweep_id, trial["number"])
        if trial["state"] == "complete":
            for name in ("model", "metrics", "predictions", "report"):
                assert Path(job["artifacts"][name]).is_file(), (job_id, name)  # back in the local job folder
    assert sweep["final"]["final_value"] is not None
