#!/usr/bin/env python3
"""The shipped binary ($OUT/bin/nftune/nftune, from "make bin") against `python3 -c pass`
and against the hello-world that the same spec builds ($OUT/bin/hello: PyInstaller's
floor), interleaved in one run; and the size of the .deb.

Targets (issue 14): nftune --version <= 1.15x hello and <= 2.5x python3 -c pass;
nftune verify --root (a tree nftune applied to) <= 4x python3 -c pass; the .deb <= 6 MB.
Usage: bench/package.py [--runs N] [--check]   (--check: exit 1 when a target is missed)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import medians, options, table

TOP = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("OUT", "out"))
OUT = OUT if OUT.is_absolute() else TOP / OUT
MB = 1024 * 1024


def main() -> int:
    ap = options(__doc__, 20)
    args = ap.parse_args()
    binary, hello = OUT / "bin/nftune/nftune", OUT / "bin/hello/hello"
    if not binary.exists() or not hello.exists():
        print(f"bench skipped: no {binary} or {hello} (make bin)")
        return 1 if args.check else 0
    tree = Path(tempfile.mkdtemp(prefix="nftune-bench.", dir="/var/tmp"))
    try:
        subprocess.run([binary, "apply", "--root", tree], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cases = {
            "python3 -c pass": ["/usr/bin/python3", "-c", "pass"],
            "hello (same spec)": [str(hello)],
            "nftune --version": [str(binary), "--version"],
            "nftune verify --root TMP": [str(binary), "verify", "--root", str(tree)],
        }
        results = medians(cases, args.runs)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    ratios = table(results, "python3 -c pass")
    version = results["nftune --version"]
    print(f"nftune --version / hello: {version / results['hello (same spec)']:.2f}")
    targets = [
        ("nftune --version <= 1.15x hello", version <= 1.15 * results["hello (same spec)"]),
        ("nftune --version <= 2.5x python3 -c pass", ratios["nftune --version"] <= 2.5),
        ("nftune verify --root <= 4x python3 -c pass",
         ratios["nftune verify --root TMP"] <= 4)]
    debs = sorted(OUT.glob("nftune_*.deb"))
    if debs:
        size = debs[-1].stat().st_size
        print(f"{debs[-1].name}: {size / MB:.1f} MB")
        targets.append((".deb <= 6 MB", size <= 6 * MB))
    for name, ok in targets:
        print(f"target: {name}: {'met' if ok else 'MISSED'}")
    return 0 if all(ok for _, ok in targets) or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
