"""trainer.recovery: the app's own files never stop it, even in a folder it cannot write (settings as example)."""

from __future__ import annotations

from pathlib import Path

import pytest

from embedded_server.settings import AppSettings, load_settings
from trainer import atomic


@pytest.fixture
def unwritable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every atomic write fails as it does in a chmod 555 folder (root ignores the mode, so it is simulated)."""

    def refuse(path, _write):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(atomic, "atomic_write", refuse)


def test_a_missing_settings_file_in_a_read_only_folder_gives_defaults(tmp_path: Path, unwritable: None) -> None:
    loaded = load_settings(tmp_path)
    assert loaded.settings == AppSettings() and loaded.warning is None
    assert not (tmp_path / "config.json").exists()


def test_a_corrupt_settings_file_in_a_read_only_folder_still_gives_defaults(tmp_path: Path, unwritable: None) -> None:
    (tmp_path / "config.json").write_text("{broken")
    loaded = load_settings(tmp_path)
    assert loaded.settings == AppSettings()
    assert "was corrupt" in loaded.warning and "config.json.bak." in loaded.warning
