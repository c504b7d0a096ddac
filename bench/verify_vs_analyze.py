#!/usr/bin/env python3
"""`nftune verify` (every check) against a booted container, as a ratio to the container's
own `systemd-analyze critical-chain systemd-sysctl.service`, interleaved in one run on the
same container (the machine is shared and noisy). The shipped binary ($OUT/bin/nftune,
"make bin") is measured, and the venv's nftune beside it.

Target (issue 14): the shipped nftune verify <= 1.2x systemd-analyze critical-chain.
Needs root, systemd-nspawn and mmdebstrap (tools/bootstrap installs them); the rootfs is
the nspawn tests' cached one. Usage: bench/verify_vs_analyze.py [--runs N] [--check]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from common import medians, nftune_argv, options, table
from nspawn import base_rootfs, booted, copy_rootfs, missing_tools

TARGET = 1.2
TOP = Path(__file__).resolve().parents[1]
BINARY = TOP / os.environ.get("OUT", "out") / "bin/nftune/nftune"


def main() -> int:
    ap = options(__doc__, 15)
    args = ap.parse_args()
    if os.geteuid() != 0 or missing_tools():
        why = "needs root" if os.geteuid() != 0 else f"missing {', '.join(missing_tools())}"
        print(f"bench skipped: {why}")
        return 1 if args.check else 0
    work = Path(f"/var/tmp/nftune-bench-{os.getpid()}")
    work.mkdir(parents=True)
    try:
        rootfs = copy_rootfs(base_rootfs(), work / "rootfs")
        subprocess.run([*nftune_argv(), "apply", "--root", str(rootfs)], check=True,
                       stdout=subprocess.DEVNULL)
        with booted(rootfs, f"nftune-bench-{os.getpid()}") as c:
            cases = {
                "systemd-analyze critical-chain": [
                    "nsenter", "-t", str(c.leader), "-m", "-p", "systemd-analyze",
                    "critical-chain", "systemd-sysctl.service"],
                "nftune verify (venv)": [*nftune_argv(), "verify", "--root", str(c.root),
                                         "--bus-address", c.bus_address],
            }
            if BINARY.exists():
                cases["nftune verify (shipped)"] = [str(BINARY), "verify", "--root",
                                                    str(c.root), "--bus-address", c.bus_address]
            results = medians(cases, args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratios = table(results, "systemd-analyze critical-chain")
    if "nftune verify (shipped)" not in ratios:
        print(f"target: not measured: no {BINARY} (make bin)")
        return 1 if args.check else 0
    ok = ratios["nftune verify (shipped)"] <= TARGET
    print(f"target: the shipped nftune verify <= {TARGET:g}x systemd-analyze critical-chain: "
          f"{'met' if ok else 'MISSED'}")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
