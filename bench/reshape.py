#!/usr/bin/env python3
"""What a reshaping costs (issue 15: checks as a package over one Context; issue 25: checks
as specs with one runner, the modules split): today's nftune against the last one before
it, interleaved in one run, on a tree with two kernels, systemd's two units, 200 other
sysctl.d files and nftune applied: `verify`, `chain`, `config`, `apply --dry-run` and
`rps apply`, each with --root; and bench/rps_apply.py's apply from zero (256 NICs x 32
queues, in-process).

Target (issues 15 and 25): the benchmarks do not get slower; here, each command at most 1.05x
(this machine's noise between two runs of the same code is about that). The earlier
nftune is taken from git (BASE); without that history (a shallow clone) the benchmark says
so and measures nothing.
Usage: bench/reshape.py [--runs N] [--check]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from boundary import rps_medians
from common import checkout, medians, options, table

TOP = Path(__file__).resolve().parents[1]
BASE = "869ce24"  # the last commit before issue 25 (checks as data)
TARGET = 1.05
UNIT = "[Unit]\nDefaultDependencies=no\nBefore=sysinit.target\n"


def build(tree: Path) -> None:
    for version in ("6.1.0-1", "6.1.0-2"):
        d = tree / "lib/modules" / version
        d.mkdir(parents=True)
        (d / "modules.dep").write_text("kernel/net/netfilter/nf_conntrack.ko.xz:\n")
        (d / "modules.builtin").write_text("")
    units = tree / "usr/lib/systemd/system"
    units.mkdir(parents=True)
    (units / "systemd-sysctl.service").write_text(
        UNIT + "After=systemd-modules-load.service\n")
    (units / "systemd-modules-load.service").write_text(UNIT)
    (units / "sysinit.target").write_text("[Unit]\n")
    sysctl_d = tree / "etc/sysctl.d"
    sysctl_d.mkdir(parents=True)
    for i in range(200):
        (sysctl_d / f"{i:03d}-other.conf").write_text("net.ipv4.ip_forward = 1\n" * 20)
    subprocess.run([sys.executable, "-m", "nftune", "apply", "--root", str(tree)],
                   check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(TOP)})


def main() -> int:
    ap = options(__doc__, 15)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nftune-bench-reshape.", dir="/var/tmp"))
    # Both versions' bytecode cached alike: each run imports from .pyc, as a node does.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    try:
        base = work / "base"
        if not checkout(BASE, base):
            print(f"reshape: skipped: commit {BASE} is not in this clone's history")
            return 0
        tree = work / "tree"
        build(tree)
        names = {"before": base, "now": TOP}
        worst = 0.0
        for verb in (["verify"], ["chain"], ["config"], ["apply", "--dry-run"],
                     ["rps", "apply"]):
            # medians() runs each once first, which writes each version's bytecode. Each
            # runs in its own top: `python -m` puts the working directory first on
            # sys.path, so from this checkout both would run this checkout's nftune.
            cases = {n: ["env", "-C", str(t), "-u", "PYTHONDONTWRITEBYTECODE",
                         f"PYTHONPATH={t}", sys.executable, "-m", "nftune", *verb, "--root",
                         str(tree)]
                     for n, t in names.items()}
            print(f"nftune {' '.join(verb)} --root, median of {args.runs}")
            worst = max(worst, table(medians(cases, args.runs), "before")["now"])
        print("rps apply from zero (256 NICs x 32 queues, in-process), median of 5 processes")
        worst = max(worst, table(rps_medians(names, 5, env), "before")["now"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ok = worst <= TARGET
    print(f"target: each <= {TARGET:.2f}x: {'met' if ok else 'MISSED'} (worst {worst:.2f}x)")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
