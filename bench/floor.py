#!/usr/bin/env python3
"""Where PyInstaller's start-up floor goes, and what each build option gives: variants of
the binary, each built by tools/build-bin from packaging/nftune.spec with one option
changed, then timed interleaved in one run (medians): the hello-world, `nftune --version`
and `nftune verify --root` on a tree nftune applied to, against `python3 -c pass`.

"before" is nftune as it was before issue 14 (BASE), built the way it was then (all of
pystemd with lxml, PyInstaller's runtime hooks and ctypes hook). Without that history (a
shallow clone) it is left out.

The README's table "What each build option gave" comes from this. About 3 minutes (one
PyInstaller build per variant); not part of tests/run.
Usage: bench/floor.py [--runs N] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import checkout, medians

TOP = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("OUT", "out"))
OUT = OUT if OUT.is_absolute() else TOP / OUT
BASE = "e12a7dd"  # the last commit before issue 14
# name: (spec options, what it tries); the first is what tools/build-bin ships.
VARIANTS: dict[str, tuple[str, str]] = {
    "shipped": ("", "as shipped: modules as .pyc files, -O0, none of the hooks below"),
    "rthooks": ("--keep-rthooks", "PyInstaller's inspect and pkgutil runtime hooks kept"),
    "ctypes-hook": ("--keep-ctypes-hook", "PyInstaller's ctypes hook kept (imports ctypes)"),
    "archive": ("--archive", "modules in the PYZ archive, zlib 6 (PyInstaller's default)"),
    "optimize-1": ("--optimize 1", "bytecode -O (asserts stripped)"),
    "optimize-2": ("--optimize 2", "bytecode -OO (docstrings stripped too)"),
    "zlib-0": ("--archive --zlib-level 0", "the PYZ archive, entries stored"),
    "onefile": ("--onefile", "one file, unpacked to a temporary directory on every start"),
    "before": ("--archive --keep-rthooks --keep-ctypes-hook --all-of-pystemd",
               f"nftune at {BASE}, built as then"),
}


def build(name: str, options: str, script: str, src: Path | None) -> Path:
    env = {**os.environ, "NFTUNE_BIN_VARIANT": f"{name} {script} {options}".strip()}
    if src is not None:
        env["NFTUNE_BIN_SRC"] = str(src)
    subprocess.run([str(TOP / "tools/build-bin")], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    out = OUT / "floor" / name
    return out if out.is_file() else out / name  # one file, or one directory


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--only", nargs="*", choices=list(VARIANTS), default=list(VARIANTS))
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench skipped: needs root (tools/build-bin chroots into its builder)")
        return 0
    scratch = Path(tempfile.mkdtemp(prefix="nftune-floor.", dir="/var/tmp"))
    try:
        old = scratch / "before"
        variants = [v for v in args.only if v != "before" or checkout(BASE, old)]
        if "before" in args.only and "before" not in variants:
            print(f"'before' left out: this clone lacks {BASE} (a shallow clone)")
        hello: dict[str, Path] = {}
        binary: dict[str, Path] = {}
        for v in variants:
            opts = VARIANTS[v][0]
            print(f"building {v} ...", flush=True)
            if v != "before":
                hello[v] = build(f"hello-{v}", opts, "/src/hello.py", None)
            binary[v] = build(f"nftune-{v}", opts, "/src/nftune-entry.py",
                              old if v == "before" else None)
        tree = scratch / "tree"
        tree.mkdir()
        subprocess.run([str(binary[variants[0]]), "apply", "--root", str(tree)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cases = {"python3 -c pass": ["/usr/bin/python3", "-c", "pass"]}
        for v in variants:
            if v in hello:
                cases[f"{v}: hello"] = [str(hello[v])]
            cases[f"{v}: --version"] = [str(binary[v]), "--version"]
            cases[f"{v}: verify --root"] = [str(binary[v]), "verify", "--root", str(tree)]
        results = medians(cases, args.runs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    base = results["python3 -c pass"]
    print(f"\npython3 -c pass: {base * 1000:.1f} ms (median of {args.runs}, interleaved)")
    print(f"{'variant':<12} {'hello':>12} {'--version':>12} {'verify --root':>14} "
          f"{'size':>8}  what")
    for v in variants:
        cells = []
        for what in ("hello", "--version", "verify --root"):
            m = results.get(f"{v}: {what}")
            cells.append("-" if m is None else f"{m * 1000:.1f} {m / base:.2f}x")
        top = binary[v] if v == "onefile" else binary[v].parent
        size = sum(f.stat().st_size for f in [top, *top.rglob("*")] if f.is_file())
        print(f"{v:<12} {cells[0]:>12} {cells[1]:>12} {cells[2]:>14} "
              f"{size / 2**20:>6.1f}M  {VARIANTS[v][1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
