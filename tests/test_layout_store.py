"""layout.json and Dear PyGui's ini: every corrupt variant → backup + default + warning, and the app goes on."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from desktop_app import layout_store as ls
from trainer.recovery import MAX_BYTES
from trainer import paths

NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
STAMP = "20250304T050607Z"
GOOD = ls.Layout(
    viewport=ls.Viewport(x=10, y=20, width=1500, height=900),
    panels=ls.Panels(control_width=400, show_advanced=True, tab="results"),
    params={"symbol": "ETHUSDT", "epochs": 3, "cv_folds": 2},
)
GOOD_TEXT = json.dumps(GOOD.model_dump(mode="json"), indent=2)


def _with(**changes) -> str:
    data = json.loads(GOOD_TEXT)
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split("__")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return json.dumps(data)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty config folder of its own (tmp_path also holds the per-test CANDLECAST_HOME)."""
    path = tmp_path / "config"
    path.mkdir()
    return path


BAD_CONTENTS = {
    "not json": b"this is not json",
    "truncated": GOOD_TEXT.encode()[: len(GOOD_TEXT) // 2],
    "nul bytes": GOOD_TEXT.encode()[:40] + b"\x00\x00\x00" + GOOD_TEXT.encode()[40:],
    "all nul": b"\x00" * 512,  # what a crash during a non-atomic write leaves behind
    "empty": b"",
    "not utf-8": b'{"schema_version": 1, "x": "\xff\xfe"}',
    "json array": b"[1, 2, 3]",
    "json null": b"null",
    "wrong type: width as string": _with(viewport__width="1500").encode(),
    "wrong type: bool as string": _with(panels__show_advanced="yes").encode(),
    "wrong type: viewport as list": _with(viewport=[1, 2, 3, 4]).encode(),
    "wrong type: params as string": _with(params="epochs=3").encode(),
    "out of range: negative width": _with(viewport__width=-5).encode(),
    "out of range: huge height": _with(viewport__height=10**9).encode(),
    "out of range: narrow panel": _with(panels__control_width=3).encode(),
    "out of range: unknown tab": _with(panels__tab="nowhere").encode(),
    "out of range: cv_folds 99": _with(params={"cv_folds": 99}).encode(),
    "unknown parameter": _with(params={"epoch": 3}).encode(),
    "unknown key": _with(extra_key=1).encode(),
    "future schema version": _with(schema_version=7).encode(),
    "too large": b" " * (MAX_BYTES + 1),
}


def _assert_recovered(folder: Path, loaded: ls.Loaded, original: bytes | None) -> None:
    assert loaded.layout == ls.Layout()
    assert loaded.backup == folder / f"layout.json.bak.{STAMP}"
    assert loaded.warning and loaded.backup.name in loaded.warning and str(folder) in loaded.warning
    assert "corrupt" in loaded.warning
    if original is not None:
        assert loaded.backup.read_bytes() == original
    default = json.loads((folder / "layout.json.default").read_text())
    assert ls.Layout.model_validate(default) == ls.Layout()
    # the app state stays usable: the fresh layout.json loads cleanly and saves again
    again = ls.load_layout(folder, now=NOW)
    assert again.warning is None and again.layout == ls.Layout()
    ls.save_layout(GOOD, folder)
    assert ls.load_layout(folder).layout == GOOD


@pytest.mark.parametrize("name", sorted(BAD_CONTENTS))
def test_corrupt_layout_is_backed_up_and_replaced(folder: Path, name: str) -> None:
    (folder / "layout.json").write_bytes(BAD_CONTENTS[name])
    loaded = ls.load_layout(folder, now=NOW)
    _assert_recovered(folder, loaded, BAD_CONTENTS[name])


def test_directory_at_the_path(folder: Path) -> None:
    (folder / "layout.json").mkdir()
    (folder / "layout.json" / "inner.txt").write_text("x")
    loaded = ls.load_layout(folder, now=NOW)
    assert "directory" in loaded.warning
    assert (loaded.backup / "inner.txt").read_text() == "x"
    _assert_recovered(folder, loaded, None)


def test_link_loop_is_unreadable(folder: Path) -> None:
    os.symlink("layout.json", folder / "layout.json")
    loaded = ls.load_layout(folder, now=NOW)
    assert "unreadable" in loaded.warning
    assert os.path.islink(loaded.backup)
    _assert_recovered(folder, loaded, None)


def test_fifo_is_not_read(folder: Path) -> None:
    os.mkfifo(folder / "layout.json")  # opening it for reading would block the app forever
    loaded = ls.load_layout(folder, now=NOW)
    assert "not a regular file" in loaded.warning
    _assert_recovered(folder, loaded, None)


def test_unreadable_file(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # chmod 000 does not stop root (the CI user), so the permission error is injected where the read happens.
    (folder / "layout.json").write_text(GOOD_TEXT)
    real = Path.read_bytes

    def refuse(self: Path) -> bytes:
        if self.name == "layout.json":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    loaded = ls.load_layout(folder, now=NOW)
    monkeypatch.setattr(Path, "read_bytes", real)
    assert "Permission denied" in loaded.warning
    _assert_recovered(folder, loaded, GOOD_TEXT.encode())


def test_two_corrupt_starts_in_one_second_keep_both_backups(folder: Path) -> None:
    (folder / "layout.json").write_bytes(b"{")
    first = ls.load_layout(folder, now=NOW).backup
    (folder / "layout.json").write_bytes(b"[")
    second = ls.load_layout(folder, now=NOW).backup
    assert first.read_bytes() == b"{" and second.read_bytes() == b"["
    assert second.name == f"layout.json.bak.{STAMP}-2"


def test_missing_layout_is_created_from_defaults_without_warning(folder: Path) -> None:
    loaded = ls.load_layout(folder, now=NOW)
    assert loaded == ls.Loaded(ls.Layout())
    assert ls.Layout.model_validate_json((folder / "layout.json").read_text()) == ls.Layout()
    assert not list(folder.glob("*.bak.*"))


def test_good_layout_round_trips(folder: Path) -> None:
    ls.save_layout(GOOD, folder)
    assert ls.load_layout(folder) == ls.Loaded(GOOD)
    assert not [p for p in folder.iterdir() if p.name != "layout.json"]  # no temp files left


def test_default_folder_is_the_config_dir(candlecast_home: Path) -> None:
    assert ls.layout_path() == paths.config_dir() / "layout.json"
    assert str(ls.layout_path()).startswith(str(candlecast_home))


def test_read_only_folder_is_not_fatal(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (folder / "layout.json").write_bytes(b"garbage")

    def no_writes(*args: object, **kwargs: object) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(ls, "atomic_write_json", no_writes)
    monkeypatch.setattr(ls.os, "replace", no_writes)
    loaded = ls.load_layout(folder, now=NOW)
    assert loaded.layout == ls.Layout() and loaded.backup is None
    assert "could not be moved aside" in loaded.warning


# ---------------------------------------------------------------- Dear PyGui's ini

GOOD_INI = (
    "[Window][Debug##Default]\nPos=60,60\nSize=400,400\nCollapsed=0\n\n"
    "[Table][0x1234ABCD,4]\nColumn 0  Weight=1.0000\n"
)


def test_valid_ini_is_loaded(folder: Path) -> None:
    (folder / "dpg.ini").write_text(GOOD_INI)
    assert ls.prepare_ini(folder) == (folder / "dpg.ini", None)


def test_missing_ini_loads_nothing(folder: Path) -> None:
    assert ls.prepare_ini(folder) == (None, None)


@pytest.mark.parametrize(
    "content",
    [b"\x00" * 64, GOOD_INI.encode() + b"\xff\xfe", b"random garbage line\n", GOOD_INI.encode()[:30] + b"\x00"],
    ids=["nul", "not utf-8", "garbage", "truncated with nul"],
)
def test_corrupt_ini_is_backed_up(folder: Path, content: bytes) -> None:
    (folder / "dpg.ini").write_bytes(content)
    path, warning = ls.prepare_ini(folder, now=NOW)
    assert path is None and warning and f"dpg.ini.bak.{STAMP}" in warning
    assert (folder / f"dpg.ini.bak.{STAMP}").read_bytes() == content
    assert (folder / "dpg.ini.default").read_bytes() == b""
    assert not (folder / "dpg.ini").exists()


def test_directory_at_the_ini_path(folder: Path) -> None:
    (folder / "dpg.ini").mkdir()
    path, warning = ls.prepare_ini(folder, now=NOW)
    assert path is None and "directory" in warning


def test_save_ini_is_atomic_and_checked(folder: Path) -> None:
    assert ls.save_ini(lambda tmp: Path(tmp).write_text(GOOD_INI), folder) == folder / "dpg.ini"
    assert (folder / "dpg.ini").read_text() == GOOD_INI
    assert ls.save_ini(lambda tmp: Path(tmp).write_bytes(b"\x00bad"), folder) is None
    assert (folder / "dpg.ini").read_text() == GOOD_INI  # the good one is kept
    assert sorted(p.name for p in folder.iterdir()) == ["dpg.ini"]
