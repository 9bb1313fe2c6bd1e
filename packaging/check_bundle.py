"""Checks that slimming (``packaging/candlecast.spec``) took nothing the app needs, on a built onedir bundle:

1. every module that a tiny training job (``candlecast train``, from source), the server and the GUI import is in
   the bundle: in the program's archives (its PYZ, ``base_library.zip``) or as an extension module file;
2. every shared library in the bundle loads (``ctypes.CDLL``, lazily bound), which is what stripping could break.

    .venv/bin/python packaging/check_bundle.py [dist/candlecast]

Exit 0 when both hold, 1 with the missing modules or the refused libraries listed. Complements
``packaging/smoke_test.py``, which runs the frozen program, with what a run may not reach.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from PyInstaller.archive.readers import CArchiveReader

ROOT = Path(__file__).resolve().parents[1]
PYZ_TYPECODE = "z"
MODULE_TYPECODES = {"m", "M"}  # modules the bootloader needs before the PYZ (``struct``, PyInstaller's own)
#: Runs in a fresh interpreter from source: a tiny job, then the server's and the GUI's modules; prints sys.modules.
PROBE = """
import contextlib, io, json, sys
before = set(sys.modules)  # the interpreter's own start (site, .pth hooks): not the app's
from desktop_app.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    main(["train", "--epochs", "1", "--cv-folds", "1", "--lookback", "8", "--out", sys.argv[1]])
import desktop_app.app, embedded_server.serve, trainer.data.import_cli  # noqa: E401
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def app_modules() -> set[str]:
    """Modules with a file of their own (not built in, frozen or created by an extension) that the app imports."""
    with tempfile.TemporaryDirectory(prefix="candlecast-check-") as work:
        env = dict(os.environ, CANDLECAST_HOME=work, PYTHONPATH=str(ROOT))
        done = subprocess.run([sys.executable, "-c", PROBE, str(Path(work) / "job")], env=env, capture_output=True,
                              text=True, check=True)
    names = json.loads(done.stdout.splitlines()[-1])
    listed = subprocess.run([sys.executable, "-c", f"""
import importlib.util, json, sys
out = []
for name in {names!r}:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        continue
    if spec is not None and spec.has_location and spec.origin not in (None, "built-in", "frozen"):
        out.append(name)
print(json.dumps(out))
"""], env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, check=True)
    return set(json.loads(listed.stdout))


def bundle_modules(bundle: Path) -> set[str]:
    """Module names the bundle holds: PYZ entries, modules in the program's own archive, ``base_library.zip``
    and extension module files."""
    internal = bundle / "_internal"
    package = CArchiveReader(str(bundle / "candlecast"))
    held = {name for entry, (*_, typecode) in package.toc.items() if typecode == PYZ_TYPECODE
            for name in package.open_embedded_archive(entry).toc}
    held |= {entry for entry, (*_, typecode) in package.toc.items() if typecode in MODULE_TYPECODES}
    with zipfile.ZipFile(internal / "base_library.zip") as library:
        held |= {name[:-4].replace("/", ".").removesuffix(".__init__") for name in library.namelist() if name.endswith(".pyc")}
    for path in internal.rglob("*.so"):
        relative = path.relative_to(internal).as_posix().removeprefix("python3.11/lib-dynload/")
        held.add(relative.split(".cpython-")[0].split(".abi3")[0].replace("/", "."))
    return held


def refused_libraries(bundle: Path) -> list[str]:
    """Shared libraries of the bundle that the dynamic loader refuses, with its reason."""
    refused = []
    for path in sorted((bundle / "_internal").rglob("*.so*")):
        if path.is_symlink() or not path.is_file() or path.read_bytes()[:4] != b"\x7fELF":
            continue
        try:
            ctypes.CDLL(str(path), mode=os.RTLD_LAZY)
        except OSError as exc:
            refused.append(f"{path.relative_to(bundle)}: {exc}")
    return refused


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", nargs="?", type=Path, default=ROOT / "dist" / "candlecast", help="onedir bundle")
    parser.add_argument("--libraries-only", action="store_true", help=argparse.SUPPRESS)  # the second half, below
    args = parser.parse_args(argv)
    bundle = args.bundle.resolve()
    if not (bundle / "candlecast").is_file():
        print(f"check_bundle: {bundle}/candlecast is missing (build it: bash packaging/build.sh)", file=sys.stderr)
        return 2
    if args.libraries_only:
        refused = refused_libraries(bundle)
        print(f"shared libraries the loader refuses: {refused or 'none'}", flush=True)
        os._exit(1 if refused else 0)  # no interpreter teardown with torch's libraries loaded through ctypes
    needed = app_modules()
    missing = sorted(needed - bundle_modules(bundle))
    print(f"{len(needed)} modules the app imports; missing from the bundle: {missing or 'none'}", flush=True)
    # A fresh process, so the loader finds the libraries' dependencies inside the bundle (LD_LIBRARY_PATH is
    # read at start), as the frozen program's does.
    libraries = subprocess.run([sys.executable, __file__, str(bundle), "--libraries-only"],
                               env=dict(os.environ, LD_LIBRARY_PATH=str(bundle / "_internal")))
    return 1 if missing or libraries.returncode else 0


if __name__ == "__main__":
    sys.exit(main())
