"""Smoke test of the BUILT ``candlecast`` executable (onedir or onefile), the way a user runs it.

    .venv/bin/python packaging/smoke_test.py dist/candlecast/candlecast
    .venv/bin/python packaging/smoke_test.py dist/onefile/candlecast [--no-gui] [--artifacts DIR]

Steps, each printed as ``ok: ...`` or ``FAILED: ...`` (exit 1 at the first failure, its logs copied to
``--artifacts``): ``--version``; ``datasets --json`` lists the bundled BTCUSDT 1 h candles from inside the bundle
(``trainer.paths.resource_path`` under ``sys._MEIPASS``); ``serve --port 0`` in a fresh ``CANDLECAST_HOME``
answers ``GET /``; ``POST /start_training`` with a tiny config, followed on ``/ws`` through both
``training.started`` events (server, then the frozen worker) to ``training.completed``; ``GET /jobs/{id}`` and
``GET /status/log_tail``; SIGTERM stops the server with exit 0 and leaves no process of its session behind;
``serve --get /``; ``train`` with a tiny config; ``import`` of a small real candle file; no ``_MEI*`` folder left
in the temp dir (onefile unpacks there). Then the GUI under Xvfb (skipped, with the reason, when Xvfb or xdotool
is missing): the window appears, its embedded server answers and runs a tiny job with the frozen worker, a
screenshot goes to ``--artifacts`` and must not be blank, and SIGTERM closes the app with nothing left behind.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
import websocket

from trainer.processes import end_process

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from gui_harness import missing_tools, xvfb  # noqa: E402 (the GUI tests' own Xvfb harness)

ROOT = Path(__file__).resolve().parent.parent
#: One fold, one epoch, a short window: seconds of training on the bundled candles.
TINY_JOB = {"epochs": 1, "cv_folds": 1, "lookback": 8, "batch_size": 512}
TINY_FLAGS = ["--epochs", "1", "--cv-folds", "1", "--lookback", "8", "--batch-size", "512"]
#: A small real candle file (freqtrade feather: pyarrow in the bundle); the repo's own sample if ../shared is absent.
IMPORT_FILES = (
    ROOT.parent / "shared" / "data" / "formats" / "freqtrade_BTC_USDT-1d.feather",
    ROOT / "tests" / "fixtures" / "formats" / "binance_spot_klines_BTCUSDT-1h-2024-12_2025-01.csv",
)
#: Seconds for anything that imports torch or trains (a busy 2-core machine, onefile unpacking included).
SLOW = 300
SERVER_LINE = re.compile(r"(http://127\.0\.0\.1:\d+)")


class SmokeFailure(Exception):
    """One step failed; the message says which and why."""


def check(condition: object, message: str) -> None:
    if not condition:
        raise SmokeFailure(message)


def ok(message: str) -> None:
    print(f"ok: {message}", flush=True)


def session_processes(sid: int) -> list[str]:
    """``"pid command"`` of every live process in session ``sid`` (Linux /proc; empty elsewhere)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm, _, rest = text.partition(" (")[2].rpartition(") ")
        fields = rest.split()
        if len(fields) > 3 and int(fields[3]) == sid and fields[0] != "Z":
            found.append(f"{stat.parent.name} {comm}")
    return found


def alive(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(") ")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_for(what: str, probe: Callable[[], Any], timeout: float, proc: subprocess.Popen | None = None) -> Any:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` (and the process's exit, if it died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise SmokeFailure(f"{what}: the process exited with {proc.returncode} first")
        time.sleep(0.2)
    raise SmokeFailure(f"{what}: nothing within {timeout:.0f} s")


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


class Smoke:
    """The executable under test, a private temp dir (homes, TMPDIR for onefile's unpacking), and the artifacts dir."""

    def __init__(self, exe: Path, work: Path, artifacts: Path) -> None:
        self.exe = exe
        self.onefile = not (exe.parent / "_internal").is_dir()
        self.kind = "onefile" if self.onefile else "onedir"
        self.work = work
        self.tmp = work / "tmp"
        self.tmp.mkdir()
        self.artifacts = artifacts
        self.logs: list[Path] = []  # copied to artifacts on failure

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("CANDLECAST_PORT", "DISPLAY", "WAYLAND_DISPLAY", "PYTHONPATH")}
        home.mkdir(parents=True, exist_ok=True)
        return env | {"CANDLECAST_HOME": str(home), "TMPDIR": str(self.tmp)} | extra

    def run(self, home: Path, *args: str, timeout: float = SLOW) -> subprocess.CompletedProcess[str]:
        """Run the executable to its end; fail on a timeout."""
        try:
            return subprocess.run(
                [str(self.exe), *args], env=self.env(home), capture_output=True, text=True, timeout=timeout, cwd=self.work
            )
        except subprocess.TimeoutExpired:
            raise SmokeFailure(f"candlecast {' '.join(args)} did not finish within {timeout} s") from None

    @contextmanager
    def spawn(self, name: str, home: Path, *args: str, **env: str) -> Iterator[tuple[subprocess.Popen, Path]]:
        """Start the executable in its own session, output to a log file; on leaving, SIGTERM → wait → SIGKILL."""
        output = self.work / f"{name}.out"
        self.logs += [output, home / "logs" / "backend.log"]
        with open(output, "wb") as sink:
            proc = subprocess.Popen(
                [str(self.exe), *args], env=self.env(home, **env), stdout=sink, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=self.work, start_new_session=True,
            )
        try:
            yield proc, output
        finally:  # after a failure: nothing this launch started may outlive the smoke test
            end_process(proc)
            for entry in session_processes(proc.pid):
                try:
                    os.kill(int(entry.split()[0]), signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def stop(self, proc: subprocess.Popen, what: str) -> None:
        """SIGTERM, a clean exit 0, and no process of its session left (workers, onefile's child)."""
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(90)
        except subprocess.TimeoutExpired:
            raise SmokeFailure(f"{what} ignored SIGTERM for 90 s") from None
        check(code == 0, f"{what} exited with {code} after SIGTERM")
        left = wait_for_empty_session(proc.pid)
        check(not left, f"{what} left processes behind: {left}")
        ok(f"{what}: SIGTERM → exit 0, no process left")


def wait_for_empty_session(sid: int, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := session_processes(sid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


# ---- steps ------------------------------------------------------------------------------------------------------


def step_version(smoke: Smoke) -> None:
    done = smoke.run(smoke.work / "home-cli", "--version", timeout=120)
    check(done.returncode == 0 and re.fullmatch(r"candlecast \S+\n", done.stdout), f"--version: {done.stdout!r} {done.stderr!r}")
    ok(f"--version → {done.stdout.strip()}")


def step_bundled_dataset(smoke: Smoke) -> None:
    done = smoke.run(smoke.work / "home-cli", "datasets", "--json", timeout=120)
    check(done.returncode == 0, f"datasets --json exited {done.returncode}: {done.stderr[-2000:]}")
    entries = json.loads(done.stdout)["datasets"]
    bundled = next((e for e in entries if e["source"] == "bundled" and (e["symbol"], e["timeframe"]) == ("BTCUSDT", "1h")), None)
    check(bundled and bundled["rows"] > 50_000, f"the bundled BTCUSDT 1h dataset is not listed: {[e['id'] for e in entries]}")
    path = Path(bundled["path"])
    bundle = smoke.tmp if smoke.onefile else smoke.exe.parent  # onefile unpacks itself into TMPDIR/_MEI*
    inside = path.is_relative_to(bundle)
    check(inside, f"the bundled dataset resolves outside the bundle: {path}")
    ok(f"bundled dataset BTCUSDT-1h ({bundled['rows']} rows) resolved inside the bundle: {path}")


def follow_job(url: str, ws_url: str) -> tuple[str, list[dict[str, Any]]]:
    """POST a tiny job and read ``/ws`` until its ``training.completed``; returns the job id and its events."""
    ws = websocket.create_connection(ws_url, timeout=SLOW)
    try:
        hello = json.loads(ws.recv())
        check(hello.get("type") == "hello", f"/ws sent {hello} instead of hello")
        resp = requests.post(url + "/start_training", json=TINY_JOB, timeout=30)
        check(resp.status_code == 202, f"POST /start_training answered {resp.status_code}: {resp.text[:500]}")
        job_id = resp.json()["job_id"]
        events = []
        while True:
            message = json.loads(ws.recv())
            if message.get("job_id") != job_id:
                continue
            events.append(message)
            if message["type"] == "training.failed":
                raise SmokeFailure(f"job {job_id} failed: {message.get('error')}\n{message.get('traceback_tail')}")
            if message["type"] in ("training.completed", "training.stopped", "training.cancelled"):
                break
    except websocket.WebSocketTimeoutException:
        raise SmokeFailure(f"/ws: no event for {SLOW} s") from None
    finally:
        ws.close()
    started = [e.get("origin") for e in events if e["type"] == "training.started"]
    check(started == ["server", "worker"], f"training.started origins {started}, expected server then worker")
    check(events[-1]["type"] == "training.completed", f"job {job_id} ended with {events[-1]['type']}")
    return job_id, events


def check_job(url: str, job_id: str) -> None:
    job = requests.get(f"{url}/jobs/{job_id}", timeout=30).json()
    check(job["status"] == "completed", f"GET /jobs/{job_id}: status {job['status']}")
    check(job["metrics"] and job["metrics"]["pooled"]["n"] > 0, f"GET /jobs/{job_id}: no pooled metrics")
    # The honest verdicts ran in the frozen worker: GARCH (arch), logistic and gradient boosting baselines
    # (scikit-learn) and the Diebold–Mariano tests and bootstrap (statsmodels, arch), all imported lazily.
    pooled = job["metrics"]["pooled"]
    absent = [name for name in ("garch", "logit_ar1", "gbm") if not pooled["baselines"].get(name)]
    check(not absent and pooled.get("verdicts"), f"GET /jobs/{job_id}: baselines {absent} or verdicts missing")
    missing = [k for k in ("model", "metrics", "predictions", "report") if not (job["artifacts"][k] and Path(job["artifacts"][k]).is_file())]
    check(not missing, f"GET /jobs/{job_id}: artifacts missing: {missing}")


def step_serve(smoke: Smoke) -> None:
    home = smoke.work / "home-serve"
    with smoke.spawn("serve", home, "serve", "--port", "0") as (proc, output):
        url = wait_for("serve --port 0 prints its address", lambda: SERVER_LINE.search(output.read_text()), 120, proc)[1]
        wait_for(f"GET {url}/", lambda: http_ok(url + "/"), 60, proc)
        ok(f"serve --port 0 answers GET / on {url}")
        job_id, events = follow_job(url, url.replace("http://", "ws://") + "/ws")
        worker = next(e for e in events if e.get("origin") == "worker")
        ok(f"job {job_id}: /ws training.started (server), training.started (worker pid {worker['pid']}), "
           f"{sum(e['type'] == 'training.epoch' for e in events)} epoch event(s), training.completed")
        check_job(url, job_id)
        ok(f"GET /jobs/{job_id}: completed, pooled metrics, model/metrics/predictions/report present")
        wait_for(f"worker pid {worker['pid']} to exit after training.completed", lambda: not alive(worker["pid"]), 60)
        tail = requests.get(url + "/status/log_tail?n=50", timeout=30)
        check(tail.status_code == 200 and tail.json()["count"] > 0, f"GET /status/log_tail: {tail.status_code} {tail.text[:300]}")
        ok(f"GET /status/log_tail: {tail.json()['count']} lines")
        smoke.stop(proc, "serve")


def step_serve_get(smoke: Smoke) -> None:
    done = smoke.run(smoke.work / "home-serve", "serve", "--get", "/", timeout=120)
    check(done.returncode == 0, f"serve --get / exited {done.returncode}: {done.stdout[-500:]} {done.stderr[-1000:]}")
    check(json.loads(done.stdout)["status"] == "ok", f"serve --get /: {done.stdout[:300]}")
    ok("serve --get / → 200, status ok")


def step_train(smoke: Smoke) -> None:
    out = smoke.work / "train-out"
    done = smoke.run(smoke.work / "home-cli", "train", *TINY_FLAGS, "--json", "--out", str(out))
    check(done.returncode == 0, f"train exited {done.returncode}: {done.stderr[-3000:]}")
    metrics = json.loads(done.stdout)
    check(metrics["pooled"]["n"] > 0 and (out / "metrics.json").is_file(), f"train: no metrics in {out}")
    ok(f"train: pooled CRPS {metrics['pooled']['model']['crps']:.6f} over {metrics['pooled']['n']} bars, artifacts in {out.name}/")


def step_import(smoke: Smoke) -> None:
    source = next((p for p in IMPORT_FILES if p.is_file()), None)
    check(source is not None, f"no candle file to import; looked for {[str(p) for p in IMPORT_FILES]}")
    done = smoke.run(smoke.work / "home-cli", "import", str(source), "--json", timeout=120)
    check(done.returncode == 0, f"import {source.name} exited {done.returncode}: {done.stderr[-2000:]}")
    dataset = json.loads(done.stdout)["dataset"]
    check(dataset["rows"] > 0 and Path(dataset["path"]).is_file(), f"import {source.name}: {dataset}")
    ok(f"import {source.name} → {dataset['id']} ({dataset['rows']} rows)")


def step_no_unpacked_folders(smoke: Smoke) -> None:
    left = sorted(p.name for p in smoke.tmp.glob("_MEI*"))
    check(not left, f"unpacked folders left in {smoke.tmp}: {left}")
    ok(f"no _MEI* folder left in the temp dir ({smoke.kind})")


# ---- GUI under Xvfb ---------------------------------------------------------------------------------------------


def find_window(display: str) -> str:
    done = subprocess.run(
        ["xdotool", "search", "--name", "^Candlecast$"], env=dict(os.environ, DISPLAY=display),
        capture_output=True, text=True, timeout=30,
    )
    return done.stdout.split()[0] if done.returncode == 0 and done.stdout.split() else ""


def xdotool(display: str, *args: str) -> None:
    done = subprocess.run(["xdotool", *args], env=dict(os.environ, DISPLAY=display), capture_output=True, text=True, timeout=30)
    check(done.returncode == 0, f"xdotool {' '.join(args)}: {done.stderr.strip()}")


def screenshot(display: str, target: Path) -> int:
    """Grab the whole screen into ``target``; returns its number of distinct colours (ImageMagick's %k)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["import", "-display", display, "-window", "root", str(target)], check=True, timeout=60, capture_output=True)
    colours = subprocess.run(["identify", "-format", "%k", str(target)], capture_output=True, text=True, timeout=60)
    return int(colours.stdout.strip() or 0)


def read_probe(path: Path) -> dict[str, Any] | None:
    """The app's state file (``CANDLECAST_GUI_PROBE``, rewritten atomically twice a second), None before the first."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def step_gui(smoke: Smoke) -> None:
    """The app as a user runs it: window, embedded server, a real click on Start, the job to its results."""
    missing = missing_tools()
    if missing:
        print(f"skipped: the GUI check needs {', '.join(missing)} (apt-get install xvfb xdotool imagemagick)", flush=True)
        return
    home = smoke.work / "home-gui"
    probe_file = smoke.work / "gui-probe.json"
    # The form starts with the "last used" parameters of layout.json: a tiny job, in a window at (0, 0).
    layout = {"schema_version": 1, "viewport": {"x": 0, "y": 0, "width": 1360, "height": 860}, "params": TINY_JOB}
    (home / "config").mkdir(parents=True)
    (home / "config" / "layout.json").write_text(json.dumps(layout))
    # Port 0: the embedded server takes any free port (8000 may be busy on a CI machine); the probe names it.
    with xvfb() as display, smoke.spawn(
        "gui", home, DISPLAY=display, CANDLECAST_PORT="0", CANDLECAST_GUI_PROBE=str(probe_file)
    ) as (proc, _):
        def probe(what: str, condition: Callable[[dict[str, Any]], bool], timeout: float = SLOW) -> dict[str, Any]:
            return wait_for(what, lambda: (p := read_probe(probe_file)) is not None and condition(p) and p, timeout, proc)

        window = wait_for("the Candlecast window", lambda: find_window(display), 120, proc)
        ready = probe("the GUI connected to its server", lambda p: p["rest_ok"] and p["ws"] == "connected" and p["start_button"]["enabled"])
        url = ready["server_url"]
        check(http_ok(url + "/"), f"the GUI's embedded server does not answer GET {url}/")
        ok(f"GUI window {window} on Xvfb {display}; its embedded server answers on {url}")
        button = ready["start_button"]
        xdotool(display, "mousemove", "--window", window, str(int(button["x"] + button["width"] / 2)), str(int(button["y"] + button["height"] / 2)))
        time.sleep(0.3)  # a frame sees the hover before the press, as with a real mouse
        xdotool(display, "click", "1")
        done = probe("the clicked job to complete with results", lambda p: p["results_loaded"] and p["phase"] == "idle" and p["job_id"])
        check(done["message"].startswith("Training completed"), f"the GUI says: {done['message']}")
        check_job(url, done["job_id"])
        ok(f"Start clicked: job {done['job_id']} ran in the frozen worker and its results are shown")
        time.sleep(1)  # one more frame with the results drawn
        shot = smoke.artifacts / f"gui-{smoke.kind}.png"
        colours = screenshot(display, shot)
        check(colours > 50, f"screenshot {shot} looks blank ({colours} colours)")
        ok(f"screenshot {shot} ({colours} colours)")
        smoke.stop(proc, "GUI")


# ---- main -------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run every step against the executable; 0 when all pass, 1 at the first failure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("exe", type=Path, help="the built executable (dist/candlecast/candlecast or dist/onefile/candlecast)")
    parser.add_argument("--no-gui", action="store_true", help="skip the GUI check")
    parser.add_argument("--artifacts", type=Path, default=ROOT / "test-artifacts", help="screenshots and failure logs")
    args = parser.parse_args(argv)
    exe = args.exe.resolve()
    if not (exe.is_file() and os.access(exe, os.X_OK)):
        print(f"smoke_test: {args.exe} is not an executable file (build it: bash packaging/build.sh)", file=sys.stderr)
        return 2
    steps = [step_version, step_bundled_dataset, step_serve, step_serve_get, step_train, step_import]
    if not args.no_gui:
        steps.append(step_gui)
    with tempfile.TemporaryDirectory(prefix="candlecast-smoke-") as work:
        smoke = Smoke(exe, Path(work), args.artifacts.resolve())
        print(f"smoke test of {exe} ({smoke.kind})", flush=True)
        started = time.monotonic()
        try:
            for step in steps:
                step(smoke)
            step_no_unpacked_folders(smoke)  # last: every launch above (onefile: each unpacks itself) has ended
        except (SmokeFailure, requests.RequestException, OSError, ValueError, KeyError) as exc:
            print(f"FAILED ({smoke.kind}): {type(exc).__name__}: {exc}", flush=True)
            saved = smoke.artifacts / f"smoke-{smoke.kind}-logs"
            saved.mkdir(parents=True, exist_ok=True)
            for number, log in enumerate(smoke.logs):
                if log.is_file():
                    shutil.copy(log, saved / f"{number}-{log.name}")
            print(f"logs copied to {saved}", flush=True)
            return 1
        print(f"smoke test passed ({smoke.kind}, {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
