"""A real two-node Ray cluster on this machine's loopback interface, for the sweep tests (``ray_cluster``).

Each node is a ``ray start … --block`` process in its own process group (1 CPU, no GPU, a small object store), so
the teardown ends exactly what the test started, by process group, never with a machine-wide ``ray stop``.

Loopback only: Ray 2.60 rewrites ``127.0.0.1`` into the machine's routable address
(``ray._private.services.resolve_ip_for_localhost``) unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, and with
that variable ``ray start --address`` refuses to start a second node. So the head runs with the variable set, and
the second node runs ``ray start`` with that rewrite turned off in its own process (``SECOND_NODE``). Drivers (the
Candlecast workers) need the variable too, which the test sets for the server it starts. Token auth is off
(``RAY_AUTH_MODE=disabled``) for every process.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

#: GCS port: outside Ray's worker port range (10002–19999).
GCS_PORT = 6390
#: Environment of every Ray process of the test (and of the drivers that connect to it).
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
NODE_OPTIONS = ["--num-cpus", "1", "--num-gpus", "0", "--object-store-memory", "100000000", "--disable-usage-stats",
                "--block"]
#: ``ray start`` (the ``ray`` command) run by this interpreter: the ``ray`` script's ``#!`` line names the
#: interpreter of the environment it was installed by, which may have moved since (a venv shared or copied).
RAY_CLI = "import sys; from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()"
#: ``ray start`` for a second node on loopback (see the module doc).
SECOND_NODE = """
import sys
import ray._private.ray_constants as constants
import ray._private.services as services
constants.ENABLE_RAY_CLUSTER = True  # pass ray start's multi-node check
services.resolve_ip_for_localhost = lambda host: host
services.get_node_ip_address = lambda address=None: "127.0.0.1"
from ray.scripts.scripts import main
sys.argv[0] = "ray"
main()
"""


@dataclass
class RayNode:
    proc: subprocess.Popen[bytes]
    log: Path

    def node_id(self, timeout: float = 60) -> str:
        """The Ray node id of this node (its raylet's ``--node_id``), once the raylet runs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    if os.getpgid(int(pid)) != self.proc.pid:
                        continue
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except (OSError, ProcessLookupError):
                    continue
                found = re.search(r"/raylet .*?--node_id=([0-9a-f]+)", cmdline)
                if found:
                    return found.group(1)
            assert self.proc.poll() is None, self.log.read_text(errors="replace")[-2000:]
            time.sleep(0.5)
        raise AssertionError(f"no raylet in the process group of {self.proc.pid}")

    def kill(self) -> None:
        """SIGKILL the node's whole process group (a lost machine)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(30)

    def stop(self) -> None:
        """End the node's process group: SIGTERM, then SIGKILL after 15 s."""
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(15)


@dataclass
class RayCluster:
    address: str
    head: RayNode
    second: RayNode


def _start(argv: list[str], log: Path) -> RayNode:
    with open(log, "wb") as sink:
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **RAY_ENV},
                                start_new_session=True)
    return RayNode(proc, log)


@contextlib.contextmanager
def two_node_cluster() -> Iterator[RayCluster]:
    """Start a head and a second node on 127.0.0.1 (1 CPU each) with a temp dir of their own; end both on exit.
    Raises ``RayUnavailable`` (with the head's log tail) when the head does not come up."""
    temp = Path(tempfile.mkdtemp(prefix="cc-ray-", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    head = _start([sys.executable, "-c", RAY_CLI, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(GCS_PORT),
                   "--temp-dir", str(temp / "ray"), "--include-dashboard", "false", *NODE_OPTIONS], temp / "head.log")
    nodes = [head]
    try:
        try:
            head.node_id(timeout=90)
        except AssertionError as exc:
            raise RayUnavailable(str(exc)[-300:]) from None
        second = _start([sys.executable, "-c", SECOND_NODE, "start", "--address", f"127.0.0.1:{GCS_PORT}",
                         "--node-ip-address", "127.0.0.1", *NODE_OPTIONS], temp / "second.log")
        nodes.append(second)
        second.node_id(timeout=90)
        yield RayCluster(f"127.0.0.1:{GCS_PORT}", head, second)
    finally:
        for node in reversed(nodes):
            node.stop()
        shutil.rmtree(temp, ignore_errors=True)


class RayUnavailable(RuntimeError):
    """The Ray head did not start on this machine."""


@pytest.fixture
def ray_cluster() -> Iterator[RayCluster]:
    """``two_node_cluster`` for a test; skips with the reason when Ray is not installed or cannot start here."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray is not installed (pip install 'candlecast[cluster]')")
    if not sys.platform.startswith("linux"):
        pytest.skip("the loopback two-node cluster is set up for Linux (/proc, process groups)")
    try:
        with two_node_cluster() as cluster:
            yield cluster
    except RayUnavailable as exc:
        pytest.skip(f"Ray cannot start here: {exc}")
