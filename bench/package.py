#!/usr/bin/env python3
"""The shipped binary ($OUT/bin/nftune/nftune, from "make bin") against `python3 -c pass`,
interleaved in one run, and the size of the .deb.

Targets (issue 4): nftune --version <= 2x python3 -c pass; nftune verify on a tmp root
<= 3x python3 -c pass; the .deb <= 15 MB.
Usage: bench/package.py [--runs N] [--check]   (--check: exit 1 when a target is missed)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import medians, table

TOP = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("OUT", "out"))
OUT = OUT if OUT.is_absolute() else TOP / OUT
MB = 1024 * 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    binary = OUT / "bin/nftune/nftune"
    if not binary.exists():
        print(f"bench skipped: no {binary} (make bin)")
        return 1 if args.check else 0
    tree = Path(tempfile.mkdtemp(prefix="nftune-bench.", dir="/var/tmp"))
    try:
        subprocess.run([binary, "apply", "--root", tree], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cases = {
            "python3 -c pass": ["/usr/bin/python3", "-c", "pass"],
            "nftune --version": [str(binary), "--version"],
            "nftune verify --root TMP": [str(binary), "verify", "--root", str(tree)],
        }
        results = medians(cases, args.runs)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    ratios = table(results, "python3 -c pass")
    targets = [("nftune --version <= 2x python3 -c pass", ratios["nftune --version"] <= 2),
               ("nftune verify <= 3x python3 -c pass", ratios["nftune verify --root TMP"] <= 3)]
    debs = sorted(OUT.glob("nftune_*.deb"))
    if debs:
        size = debs[-1].stat().st_size
        print(f"{debs[-1].name}: {size / MB:.1f} MB")
        targets.append((".deb <= 15 MB", size <= 15 * MB))
    for name, ok in targets:
        print(f"target: {name}: {'met' if ok else 'MISSED'}")
    return 0 if all(ok for _, ok in targets) or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
