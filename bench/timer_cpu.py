#!/usr/bin/env python3
"""What a timer run costs in CPU: the packaged nftune's `verify --service` (what
nftune-verify.timer starts: every check, the report file, the journal) inside a booted
container with the .deb installed, against the container's own
`systemd-analyze critical-chain systemd-sysctl.service`. CPU time is user + system of each
command and everything it waited for (journalctl included), from wait4(); the two are
interleaved in one run on the same container.

The container's first run proves the boot checks and keeps them (the boot has finished),
so the runs measured are timer runs with nothing changed: the runtime checks, and the boot
checks from the cache (nftune/cache.py).

Target (issue 25; issue 14's was 2.5x): a timer run's CPU time <= 1.5x systemd-analyze
critical-chain's.
Needs root, systemd-nspawn, mmdebstrap and the .deb in $OUT (make deb).
Usage: bench/timer_cpu.py [--runs N] [--check]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP / "tests"))

from common import cpu_seconds, medians, options, table  # noqa: E402
from nspawn import base_rootfs, booted, copy_rootfs, missing_tools  # noqa: E402

TARGET = 1.5


def main() -> int:
    ap = options(__doc__, 15)
    args = ap.parse_args()
    out = TOP / os.environ.get("OUT", "out")
    debs = sorted(out.glob("nftune_*_amd64.deb"))
    why = ("needs root" if os.geteuid() != 0 else
           f"missing {', '.join(missing_tools())}" if missing_tools() else
           f"no .deb in {out} (make deb)" if not debs else None)
    if why:
        print(f"bench skipped: {why}")
        return 1 if args.check else 0
    work = Path(f"/var/tmp/nftune-bench-cpu-{os.getpid()}")
    work.mkdir(parents=True)
    try:
        rootfs = copy_rootfs(base_rootfs(), work / "rootfs")
        subprocess.run(["dpkg", f"--root={rootfs}", "-i", str(debs[-1])], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with booted(rootfs, f"nftune-bench-cpu-{os.getpid()}") as c:
            inside = ["nsenter", "-t", str(c.leader), "-m", "-p", "-n"]
            cases = {"systemd-analyze critical-chain": [*inside, "systemd-analyze",
                                                        "critical-chain",
                                                        "systemd-sysctl.service"],
                     "nftune verify --service": [*inside, "/usr/sbin/nftune", "verify",
                                                 "--service"]}
            results = medians(cases, args.runs, cpu_seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"CPU time (user + system, children included), median of {args.runs}")
    ratios = table(results, "systemd-analyze critical-chain")
    ratio = ratios["nftune verify --service"]
    ok = ratio <= TARGET
    print(f"target: a timer run's CPU <= {TARGET:g}x systemd-analyze critical-chain's: "
          f"{'met' if ok else 'MISSED'}")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
