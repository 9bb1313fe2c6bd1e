"""The API contract (``docs/API.md``, in this repository) and the code agree: routes, response keys, request fields,
job statuses and their terminal set, event types and their fields, error statuses. The README links the contract,
keeps its first set-up block to the two commands, and its set-up facts are true: the system packages are CI's, the
user folders are where ``trainer.paths`` puts them, and its event-recording commands work on a real server.
A change on either side fails here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from embedded_server import schemas
from embedded_server.job_states import TERMINAL, JobStatus
from embedded_server.openapi import COMMON, OPERATIONS
from embedded_server.ws import hello_message, ping_message
from trainer.config import TrainingConfig
from server_fixtures import TINY_JOB, is_final_status
from trainer.events import EVENT_RECORDS, EventType, TrainingStartedServer, TrainingStartedWorker, required_fields

REPO_ROOT = Path(__file__).resolve().parent.parent
API_MD = REPO_ROOT / "docs" / "API.md"
#: Error statuses the server sends that no route declares: Werkzeug's method check, and an unexpected fault.
FRAMEWORK_ERRORS = {405, 500}


def api_text() -> str:
    return API_MD.read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text under the Markdown heading ``title`` up to the next heading of any level."""
    text = api_text()
    start = text.index(title)
    following = re.search(r"^#{1,6} ", text[start + len(title) :], flags=re.MULTILINE)
    return text[start : start + len(title) + (following.start() if following else len(text))]


def table_rows(text: str) -> list[list[str]]:
    """Cells of every Markdown table row (header and separator rows skipped); ``\\|`` stays inside a cell."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or set(line) <= {"|", "-", " "}:
            continue
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        rows.append(cells)
    return rows[1:] if rows else rows


def top_level_keys(obj: str) -> set[str]:
    """Keys of an inline object like ``{a, b: "x", c: {d, e}, f: [G…]}`` → ``{a, b, c, f}``."""
    inner = obj.strip()[1:-1]
    depth, flat = 0, []
    for char in inner:
        depth += char in "{[" and 1 or 0
        depth -= char in "}]" and 1 or 0
        if depth == 0 and char not in "}]":
            flat.append(char)
    return {part.split(":")[0].strip() for part in "".join(flat).split(",") if part.strip()}


def rest_rows() -> list[list[str]]:
    return table_rows(section("## REST"))


def test_every_rest_route_is_served_and_nothing_else() -> None:
    documented = {(row[0].lower(), row[1].strip("`")) for row in rest_rows()}
    documented.add(("get", "/ws"))  # the "## WebSocket `/ws`" section
    assert "## WebSocket `/ws`" in api_text()
    assert documented == {(op.method, op.path) for op in OPERATIONS}


def test_documented_success_statuses() -> None:
    served = {(op.method, op.path): op.responses for op in OPERATIONS}
    for method, path, status, *_ in rest_rows():
        assert int(status.strip("*")) in served[(method.lower(), path.strip("`"))], (method, path, status)


RESPONSE_MODELS = {
    "/": schemas.Health,
    "/start_training": schemas.StartAccepted,
    "/jobs": schemas.JobList,
    "/jobs/{job_id}/stop": schemas.StopAccepted,
    "/stop_training": schemas.StopAccepted,
    "/jobs/{job_id}/events": schemas.EventList,
    "/jobs/{job_id}/log": schemas.LogLines,
    "/status/log_tail": schemas.LogLines,
    "/datasets": schemas.DatasetList,
    "/jobs/{job_id}/predict": schemas.PredictResult,
    "/jobs/{job_id}/rerun": schemas.RerunAccepted,
    "/compare": schemas.Comparison,
}


def test_the_job_summary_and_forecast_objects() -> None:
    summary = re.search(r"`JobSummary` is `(\{.*?\})`", api_text(), flags=re.DOTALL)
    assert summary and top_level_keys(summary.group(1)) == set(schemas.JobSummary.model_fields)
    bar = re.search(r"Each `ForecastBar` is `(\{.*?\})`", api_text(), flags=re.DOTALL)
    assert bar and top_level_keys(bar.group(1)) == set(schemas.ForecastBar.model_fields)
    request = section("### Forecasts from a trained job")
    assert all(f"`{name}`" in request for name in schemas.PredictRequest.model_fields)


def test_documented_response_keys_are_the_models_fields() -> None:
    checked, previous = set(), None
    for _, path, _, body in rest_rows():
        path = path.strip("`")
        found = re.search(r"`(\{.*?\})`", body)
        obj = previous if body.startswith("same as above") else found and found.group(1)
        previous = obj
        if path in RESPONSE_MODELS:
            assert obj, f"no object for {path} in API.md"
            assert top_level_keys(obj) == set(RESPONSE_MODELS[path].model_fields), path
            checked.add(path)
    assert checked == set(RESPONSE_MODELS)


def test_the_job_object() -> None:
    job = re.search(r"`(\{job_id, status.*?\})`", section("### Job"), flags=re.DOTALL)
    assert job and top_level_keys(job.group(1)) == set(schemas.Job.model_fields)
    progress = re.search(r"progress: (\{.*?\})", job.group(1))
    assert top_level_keys(progress.group(1)) == set(schemas.Progress.model_fields)
    artifacts = re.search(r"artifacts: (\{.*?\})", job.group(1))
    assert top_level_keys(artifacts.group(1)) == set(schemas.Artifacts.model_fields)


def test_request_fields_are_the_training_config() -> None:
    rows = table_rows(section("### POST /start_training"))
    assert {row[0].strip("`") for row in rows} == set(TrainingConfig.model_fields)
    for name, _type, default, *_ in rows:
        field = TrainingConfig.model_fields[name.strip("`")]
        if default.startswith("`"):
            assert str(field.default) == default.strip("`").strip('"').replace("1e-3", "0.001"), name


def test_statuses_and_terminal_set() -> None:
    text = section("### Job")
    moves = text[text.index("Status values") : text.index("Terminal:")]
    assert set(re.findall(r"\b([a-z]+)\b", " ".join(re.findall(r"`([^`]*)`", moves)))) == {s.value for s in JobStatus}
    terminal = re.search(r"Terminal: ([a-z,\s]+)\.", text).group(1)
    assert {t.strip() for t in terminal.split(",")} == {s.value for s in TERMINAL}


def test_event_types() -> None:
    rows = table_rows(section("## WebSocket `/ws`"))
    documented = set()
    for row in rows:
        documented |= set(re.findall(r"`([a-z]+\.[a-z_]+)`", row[0]))
    assert documented == {e.value for e in EventType}


def test_error_statuses_are_the_served_ones() -> None:
    errors = section("### Errors")
    documented = {int(code) for code in re.findall(r"\b([45]\d\d)\b", errors)}
    served = set(COMMON) | {status for op in OPERATIONS for status in op.responses if status >= 400}
    assert documented == served | FRAMEWORK_ERRORS


def _documented_fields(cell: str) -> set[str]:
    """Field names of an event table cell like `` `origin: "server"`, `symbol, epoch: 0` — note``."""
    names = cell.split("—")[0].replace("`", "")
    return {part.split(":")[0].strip() for part in names.split(",") if part.strip()}


def test_event_fields_are_the_event_records() -> None:
    base = {"type", "job_id", "timestamp"}
    checked = set()
    for kinds, _sender, fields in table_rows(section("## WebSocket `/ws`")):
        documented = _documented_fields(fields)
        for kind in re.findall(r"`([a-z]+\.[a-z_]+)`", kinds):
            records = EVENT_RECORDS[EventType(kind)]
            if kind == EventType.TRAINING_STARTED.value:
                records = (TrainingStartedWorker if '"worker"' in fields else TrainingStartedServer,)
            assert {frozenset(required_fields(r) - base) for r in records} == {frozenset(documented)}, kind
            checked.add(records)
    assert len(checked) == len(EVENT_RECORDS) + 1  # both training.started records


def test_websocket_messages() -> None:
    text = section("## WebSocket `/ws`")
    hello = re.search(r"`(\{type: \"hello\".*?\})`", text).group(1)
    assert top_level_keys(hello) == set(hello_message(0, []))
    ping = re.search(r"`(\{type: \"ping\".*?\})`", text).group(1)
    assert top_level_keys(ping) == set(ping_message("ping", 0))
    event = re.search(r"Every event: `(\{.*?\})`", text).group(1)
    assert top_level_keys(event) - {"..."} == set(schemas.Event.model_fields)


def test_dataset_entries() -> None:
    row = next(r for r in rest_rows() if r[1] == "`/datasets`")
    entry = re.search(r"\[(\{.*?\})\]", row[3]).group(1)
    assert top_level_keys(entry) == set(schemas.Dataset.model_fields)


def test_dataset_import_request_and_response() -> None:
    row = next(r for r in rest_rows() if r[1] == "`/datasets/import`")
    body, answer = re.findall(r"`(\{.*?\})`", row[3])[:2]
    assert {key.rstrip("?") for key in top_level_keys(body)} == set(schemas.ImportRequest.model_fields)
    assert top_level_keys(answer) == set(schemas.ImportedDataset.model_fields)


def test_the_readme_links_the_contract_in_the_repository() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "](docs/API.md)" in readme and "shared/design" not in readme


# ---- the README's set-up facts and commands ---------------------------------------------------------------------


def readme() -> str:
    return (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_the_first_set_up_block_is_the_two_commands() -> None:
    block = re.search(r"```sh\n(.*?)```", readme(), flags=re.DOTALL).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["bash scripts/run.sh", "bash scripts/test.sh"]


def test_the_readme_installs_the_system_packages_the_tests_need() -> None:
    """The README's apt-get line is CI's (``.ci/run``), less binutils, which only the executable's build needs."""
    def packages(text: str) -> set[str]:
        line = re.search(r"apt-get install (.*)", text).group(1).split(">")[0].split("#")[0]
        return {word for word in line.split() if not word.startswith("-")}

    ci = packages((REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8"))
    assert packages(readme()) == ci - {"binutils"}
    assert {"xvfb", "xdotool", "imagemagick"} <= ci  # Xvfb, xdotool, import: tests/gui_harness.py's TOOLS


def test_the_readme_names_the_user_folders(monkeypatch, tmp_path: Path) -> None:
    from platformdirs.macos import MacOS
    from platformdirs.unix import Unix

    from trainer import paths

    text = readme()
    monkeypatch.setenv("HOME", "/home/u")
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(name, raising=False)
    systems = {"Linux": Unix(paths.APP_NAME, appauthor=False), "macOS": MacOS(paths.APP_NAME, appauthor=False)}
    rows = {r[0]: r[1:] for r in table_rows("\n".join(line.strip() for line in text.splitlines()))}
    for system, dirs in systems.items():
        shown = [cell.strip("`").replace("~", "/home/u") for cell in rows[system]]
        assert shown == [dirs.user_config_dir, dirs.user_data_dir, dirs.user_log_dir], system
    monkeypatch.setenv("CANDLECAST_HOME", str(tmp_path))
    layout = [p.relative_to(tmp_path).as_posix() for p in (paths.config_dir(), paths.data_dir(), paths.log_dir())]
    assert "`DIR/{}`, `DIR/{}` and `DIR/{}`".format(*layout) in text


@pytest.mark.parametrize("tool", ["python", "wscat"])
def test_the_readme_recipes_record_a_job_s_events(tool: str, live_server) -> None:
    """The README's non-interactive recorders, run as written (only the port changed) against a real server, write
    one JSON message per line: hello, then a real job's events up to its final status."""
    needle = "| wscat -c" if tool == "wscat" else "websocket.create_connection"
    line = next(text for text in readme().splitlines() if needle in text and text.endswith("> events.jsonl"))
    if tool == "wscat" and shutil.which("wscat") is None:
        pytest.skip("wscat is not installed (npm install -g wscat)")
    server = live_server()
    port = server.url.rsplit(":", 1)[1]
    command = line.removesuffix(" > events.jsonl").replace("localhost:8000", f"localhost:{port}")
    recorder = subprocess.Popen(command, shell=True, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
                                start_new_session=True)  # fmt: skip
    messages = []
    try:
        assert json.loads(recorder.stdout.readline())["type"] == "hello"
        job_id = server.post("/start_training", TINY_JOB).json()["job_id"]
        for text in recorder.stdout:  # the recorder ends by itself after 300 s at most
            messages.append(json.loads(text))
            if is_final_status(job_id)(messages[-1]):
                break
    finally:
        os.killpg(recorder.pid, signal.SIGTERM)
        recorder.wait(30)
        recorder.stdout.close()
    kinds = [m["type"] for m in messages if m.get("job_id") == job_id]
    assert kinds.count("training.started") == 2 and "training.completed" in kinds
    assert messages[-1]["status"] == "completed"
