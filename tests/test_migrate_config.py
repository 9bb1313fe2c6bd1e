"""``scripts/migrate_old_config.py`` and the migration the app runs at start (``desktop_app.config_migration``).

The script tests run the real script in a subprocess against files in this test's CANDLECAST_HOME.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from desktop_app import cli
from desktop_app.layout_store import load_layout
from embedded_server.settings import load_settings
from trainer import paths

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "migrate_old_config.py"

#: What an earlier version of the app wrote: flat, no schema_version.
OLD = {
    "tf": "4h",
    "horizon": 3,
    "calib": "isotonic",
    "pup_source": "head",
    "cv": False,
    "backend_url": "http://localhost:8123",
    "layout": {"x": 40, "y": 30, "width": 1500, "height": 950},
}


def migrate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def write(path: Path, content: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".bak.*"))


@pytest.fixture
def config(candlecast_home: Path) -> Path:
    """The app's own settings file path in this test's CANDLECAST_HOME (the script's default PATH)."""
    return paths.config_dir() / "config.json"


@pytest.mark.parametrize(
    ("old_key", "value", "field", "expected"),
    [
        ("tf", "4h", "timeframe", "4h"),
        ("horizon", 12, "forecast_horizon", 12),
        ("calib", "platt", "calibration_method", "platt"),
        ("pup_source", "head", "p_up_source", "head"),
        ("cv", False, "use_cv", False),
    ],
)
def test_each_old_control_is_renamed_and_the_new_fields_get_defaults(config, old_key, value, field, expected):
    write(config, {old_key: value})
    done = migrate()  # no PATH: the app's own file
    assert done.returncode == 0, done.stderr
    new = json.loads(config.read_text())
    assert new["schema_version"] == 2
    assert new["training"] == {field: expected, "symbol": "BTCUSDT", "batch_size": 512, "cv_folds": 5}
    assert old_key not in new and new["unknown"] == {}
    assert f"{old_key} -> training.{field}" in done.stdout


def test_the_full_old_file_becomes_the_current_schema_that_the_server_loads(config):
    write(config, OLD)
    done = migrate(str(config))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # everything had a place: no warning
    new = json.loads(config.read_text())
    assert new["host"] == "localhost" and new["port"] == 8123
    assert new["training"] == {
        "symbol": "BTCUSDT",
        "timeframe": "4h",
        "batch_size": 512,
        "use_cv": False,
        "cv_folds": 5,
        "forecast_horizon": 3,
        "calibration_method": "isotonic",
        "p_up_source": "head",
    }
    assert {"token", "max_concurrent_jobs", "start_timeout_s", "stop_grace_s"} <= new.keys()
    loaded = load_settings(config.parent)
    assert loaded.warning is None  # the server's own schema accepts the migrated file as it is
    assert loaded.settings.port == 8123 and loaded.settings.training["timeframe"] == "4h"


def test_the_old_file_is_backed_up_byte_for_byte_first(config):
    original = json.dumps(OLD, indent=4).encode()
    config.write_bytes(original)
    done = migrate(str(config))
    assert done.returncode == 0, done.stderr
    [backup] = backups(config)
    assert re.fullmatch(r"config\.json\.bak\.\d{8}T\d{6}Z", backup.name), backup.name
    assert backup.read_bytes() == original
    assert str(backup) in done.stdout


def test_the_layout_moves_into_layout_json(config):
    write(config, OLD)
    assert migrate(str(config)).returncode == 0
    viewport = load_layout(config.parent).layout.viewport
    assert (viewport.x, viewport.y, viewport.width, viewport.height) == (40, 30, 1500, 950)
    assert "layout" not in json.loads(config.read_text())


def test_the_layout_update_keeps_what_layout_json_already_had(config):
    write(config.parent / "layout.json", {"schema_version": 1, "params": {"epochs": 3}, "panels": {"tab": "jobs"}})
    write(config, {"layout": {"window": {"w": 1024, "h": 700}, "control_width": 400}})
    assert migrate(str(config)).returncode == 0
    layout = load_layout(config.parent).layout
    assert (layout.viewport.width, layout.viewport.height, layout.panels.control_width) == (1024, 700, 400)
    assert layout.params == {"epochs": 3} and layout.panels.tab == "jobs"


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [("http://localhost:8000", "localhost", 8000), ("http://127.0.0.1:9001/", "127.0.0.1", 9001), ("http://[::1]:7000", "::1", 7000)],
)
def test_backend_url_is_split_into_host_and_port(config, url, host, port):
    write(config, {"backend_url": url})
    assert migrate(str(config)).returncode == 0
    new = json.loads(config.read_text())
    assert (new["host"], new["port"]) == (host, port)


def test_a_second_run_changes_nothing_and_says_so(config):
    write(config, OLD)
    assert migrate(str(config)).returncode == 0
    before = snapshot(config.parent)
    again = migrate(str(config))
    assert again.returncode == 0
    assert "nothing to do" in again.stdout
    assert snapshot(config.parent) == before  # no second backup, same bytes


def test_dry_run_prints_the_change_and_writes_nothing(config):
    write(config, OLD)
    before = snapshot(config.parent)
    done = migrate(str(config), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "dry run" in done.stdout
    assert '-  "tf": "4h",' in done.stdout and '+  "schema_version": 2,' in done.stdout  # a unified diff
    assert snapshot(config.parent) == before


def test_unknown_keys_and_unusable_values_are_kept_under_unknown_with_a_warning(config):
    write(config, {"tf": "7h", "horizon": 2, "theme": "dark", "layout": {"x": 5, "dock": "left", "width": 10}})
    done = migrate(str(config))
    assert done.returncode == 0, done.stderr
    new = json.loads(config.read_text())
    assert new["unknown"] == {"tf": "7h", "theme": "dark", "layout": {"dock": "left", "width": 10}}
    assert new["training"]["forecast_horizon"] == 2 and "timeframe" not in new["training"]
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 4, done.stderr
    assert all(name in done.stderr for name in ("'theme'", "tf = '7h'", "layout.dock", "layout.width = 10"))
    assert load_layout(config.parent).layout.viewport.x == 5
    assert load_settings(config.parent).warning is None


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"tf": "1h", ', "not valid JSON (line 1"),
        ('["tf", "1h"]', "expected a JSON object, found list"),
        (b"\xff\xfe{}", "not UTF-8"),
        ('{"schema_version": 7, "port": 1}', "schema_version 7"),
    ],
)
def test_a_file_it_cannot_read_is_refused_in_one_line_and_nothing_changes(config, content, reason):
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = snapshot(config.parent)
    done = migrate(str(config))
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert reason in done.stderr and str(config) in done.stderr and "nothing changed" in done.stderr
    assert snapshot(config.parent) == before


def test_a_missing_file_is_refused(tmp_path):
    done = migrate(str(tmp_path / "nope.json"))
    assert done.returncode == 1 and "no such file" in done.stderr


def test_a_current_format_file_is_left_alone(config):
    load_settings(config.parent)  # writes the current defaults
    before = snapshot(config.parent)
    done = migrate(str(config))
    assert done.returncode == 0 and "nothing to do" in done.stdout
    assert snapshot(config.parent) == before


def test_the_app_migrates_an_old_file_at_start(config):
    write(config, OLD | {"colour": "blue"})
    assert cli.main(["serve", "--get", "/"]) == 0  # the same start-up path as `candlecast` and `candlecast serve`
    loaded = load_settings()
    assert loaded.warning is None
    assert (loaded.settings.host, loaded.settings.port) == ("localhost", 8123)
    assert loaded.settings.training["calibration_method"] == "isotonic"
    assert loaded.settings.unknown == {"colour": "blue"}
    assert len(backups(config)) == 1
    assert load_layout(config.parent).layout.viewport.width == 1500


def test_the_app_leaves_an_unparsable_file_to_the_settings_recovery(config):
    write(config, "{broken")
    loaded = load_settings()
    assert loaded.warning and "was corrupt" in loaded.warning  # the recovery rule: backup + defaults
    assert loaded.settings.port == 8000
