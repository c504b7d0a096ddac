#!/usr/bin/env python3
"""Start-up cost of `nftune --version` and `nftune --help`, as a ratio to `python3 -c pass`
from the same interpreter, measured interleaved in one run (the machine is shared and noisy).

Target (issue 2): nftune --version <= 3x python3 -c pass.
Usage: bench/startup.py [--runs N] [--check]   (--check: exit 1 when a target is missed)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET = 3.0


def nftune_argv() -> list[str]:
    exe = Path(sys.executable).with_name("nftune")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "nftune"]


def timed(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    cases = {
        "python3 -c pass": [sys.executable, "-c", "pass"],
        "nftune --version": [*nftune_argv(), "--version"],
        "nftune --help": [*nftune_argv(), "--help"],
    }
    for argv in cases.values():  # warm the page cache and bytecode
        timed(argv)
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, argv in cases.items():
            samples[name].append(timed(argv))
    base = statistics.median(samples["python3 -c pass"])
    ok = True
    print(f"{'command':<20} {'median ms':>10} {'ratio':>7}")
    for name, s in samples.items():
        ratio = statistics.median(s) / base
        print(f"{name:<20} {statistics.median(s) * 1000:>10.1f} {ratio:>7.2f}")
        if name == "nftune --version" and ratio > TARGET:
            ok = False
    print(f"target: nftune --version <= {TARGET:g}x python3 -c pass: "
          f"{'met' if ok else 'MISSED'}")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
