#!/usr/bin/env python3
"""What a timer run costs in CPU: the packaged nftune's `verify --service` (what
nftune-verify.timer starts: every check, the report file, the journal) inside a booted
container with the .deb installed, against the container's own
`systemd-analyze critical-chain systemd-sysctl.service`. CPU time is user + system of each
command and everything it waited for (journalctl included), from wait4(); the two are
interleaved in one run on the same container.

Target (issue 7): a timer run's CPU time <= 2x systemd-analyze critical-chain's.
Needs root, systemd-nspawn, mmdebstrap and the .deb in $OUT (make deb).
Usage: bench/timer_cpu.py [--runs N] [--check]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP / "tests"))

from nspawn import base_rootfs, booted, copy_rootfs, missing_tools  # noqa: E402

TARGET = 2.0


def cpu_seconds(argv: list[str]) -> float:
    """User + system CPU of the command and the children it waited for."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0  # reaped above
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--check", action="store_true")
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
    samples: dict[str, list[float]] = {"systemd-analyze critical-chain": [],
                                       "nftune verify --service": []}
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
            for argv in cases.values():
                cpu_seconds(argv)  # warm the page cache
            for _ in range(args.runs):
                for name, argv in cases.items():
                    samples[name].append(cpu_seconds(argv))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    medians = {name: statistics.median(v) for name, v in samples.items()}
    base = medians["systemd-analyze critical-chain"]
    print(f"CPU time (user + system), median of {args.runs}")
    for name, value in medians.items():
        print(f"  {name:<34} {value * 1000:7.1f} ms  {value / base:5.2f}x")
    ratio = medians["nftune verify --service"] / base
    ok = ratio <= TARGET
    print(f"target: a timer run's CPU <= {TARGET:g}x systemd-analyze critical-chain's: "
          f"{'met' if ok else 'MISSED'}")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
