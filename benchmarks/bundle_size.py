"""Size of the built onedir bundle (issue "Fast and light", goal 4): what each package costs in it, and the total
against the goal.

    .venv/bin/python benchmarks/bundle_size.py [dist/candlecast] [--compare dist/onedir-noslim/candlecast]
        [--top 25] [--detail torch,pyarrow,scipy]

A package's cost is the bytes of its files on disk in the bundle (libraries, data, ``.py`` sources; symbolic
links count 0, as in ``du -sb``) plus its compressed modules inside the program's PYZ archive (PyInstaller keeps
pure-Python modules there, so e.g. sympy has no folder of its own). Files at the bundle's top (the executable
less its PYZ, ``base_library.zip``, libraries of no package such as ``libpython``) are listed under their own
names. ``--detail`` breaks the named packages down one level further (e.g. ``torch/lib``, ``torch/_inductor``).
``--compare`` prints a second bundle side by side (e.g. the ``--no-slim`` build, to see what slimming saves).
Prints MB (10^6 bytes) and the total against ``GOAL_MB``; figures go in ``docs/benchmarks.md`` ("Packaging").
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

from PyInstaller.archive.readers import CArchiveReader
from PyInstaller.loader.pyimod01_archive import ZlibArchiveReader

ROOT = Path(__file__).resolve().parents[1]
GOAL_MB = 700.0
PYZ_TYPECODE = "z"  # PyInstaller's PKG_ITEM_PYZ


def _mb(size: float) -> str:
    return f"{size / 1e6:8.1f}"


def _module_key(name: str, depth: int) -> str:
    """``torch._inductor.codegen.x`` -> ``torch`` (depth 1) or ``torch/_inductor`` (depth 2)."""
    return "/".join(name.split(".")[:depth])


def pyz_sizes(executable: Path, detail: set[str]) -> tuple[Counter, int]:
    """Compressed bytes per package of the PYZ archives embedded in ``executable``, and their total."""
    sizes: Counter = Counter()
    total = 0
    package = CArchiveReader(str(executable))
    for name, (_, length, *_, typecode) in package.toc.items():
        if typecode != PYZ_TYPECODE:
            continue
        total += length
        for module, (_, _, entry_length) in package.open_embedded_archive(name).toc.items():
            top = module.split(".")[0]
            sizes[_module_key(module, 2 if top in detail else 1)] += entry_length
    return sizes, total


def bundle_sizes(bundle: Path, detail: set[str]) -> Counter:
    """Bytes per package (or top-level file) of a onedir bundle: files on disk plus modules in the PYZ."""
    executable = next((bundle / name for name in (bundle.name, "candlecast") if (bundle / name).is_file()), bundle)
    if not executable.is_file():
        raise SystemExit(f"bundle_size: {executable} is missing (build it: bash packaging/build.sh)")
    internal = bundle / "_internal" if (bundle / "_internal").is_dir() else bundle
    sizes, pyz_total = pyz_sizes(executable, detail)
    sizes[f"{executable.name} (bootloader + PKG, less its PYZ)"] += executable.stat().st_size - pyz_total
    for folder, _, files in os.walk(internal):
        for file in files:
            path = Path(folder, file)
            if path.is_symlink() or path == executable:
                continue
            parts = path.relative_to(internal).parts
            top = parts[0].removesuffix(".libs") if len(parts) > 1 else parts[0]  # numpy.libs/ counts as numpy
            key = top if top not in detail or len(parts) < 3 else f"{top}/{parts[1]}"
            sizes[key] += path.stat().st_size
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", nargs="?", type=Path, default=ROOT / "dist" / "candlecast", help="onedir bundle")
    parser.add_argument("--compare", type=Path, help="a second onedir bundle shown side by side")
    parser.add_argument("--top", type=int, default=25, help="rows listed (default 25); the rest are summed")
    parser.add_argument("--detail", default="torch", help="packages broken down one level (comma-separated)")
    args = parser.parse_args(argv)
    detail = {name for name in args.detail.split(",") if name}
    sizes = bundle_sizes(args.bundle.resolve(), detail)
    other = bundle_sizes(args.compare.resolve(), detail) if args.compare else None
    total = sum(sizes.values())
    header = f"{'MB':>8}  {'share':>6}" + (f"  {'compare':>8}  {'saved':>8}" if other is not None else "")
    print(f"{header}  item  ({args.bundle})")
    rows = sorted(sizes.items(), key=lambda item: -item[1])
    shown = rows[: args.top]
    for key, size in shown:
        line = f"{_mb(size)}  {size / total:6.1%}"
        if other is not None:
            line += f"  {_mb(other.get(key, 0))}  {_mb(other.get(key, 0) - size)}"
        print(f"{line}  {key}")
    rest = sum(size for _, size in rows[args.top:])
    print(f"{_mb(rest)}  {rest / total:6.1%}  ({len(rows) - len(shown)} smaller items)")
    if other is not None:
        gone = sorted(set(other) - set(sizes), key=lambda key: -other[key])[:10]
        print("only in the compared bundle (largest): " + ", ".join(f"{key} {other[key] / 1e6:.1f}" for key in gone))
        print(f"compared bundle: {sum(other.values()) / 1e6:.1f} MB")
    print(f"total: {total / 1e6:.1f} MB ({total / 2**20:.1f} MiB); goal <= {GOAL_MB:.0f} MB: ratio {total / 1e6 / GOAL_MB:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
