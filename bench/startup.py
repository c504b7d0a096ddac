#!/usr/bin/env python3
"""Start-up cost of `nftune --version` and `nftune --help`, as a ratio to `python3 -c pass`
from the same interpreter, measured interleaved in one run (the machine is shared and noisy).

Target (issue 2): nftune --version <= 3x python3 -c pass.
Usage: bench/startup.py [--runs N] [--check]   (--check: exit 1 when a target is missed)
"""

from __future__ import annotations

import sys

from common import medians, nftune_argv, options, table

TARGET = 3.0


def main() -> int:
    ap = options(__doc__, 40)
    args = ap.parse_args()
    ratios = table(medians({
        "python3 -c pass": [sys.executable, "-c", "pass"],
        "nftune --version": [*nftune_argv(), "--version"],
        "nftune --help": [*nftune_argv(), "--help"],
    }, args.runs), "python3 -c pass")
    ok = ratios["nftune --version"] <= TARGET
    print(f"target: nftune --version <= {TARGET:g}x python3 -c pass: "
          f"{'met' if ok else 'MISSED'}")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
