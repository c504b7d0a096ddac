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
import sys
from pathlib import Path

from boundary import rps_medians
from common import TOP, apply_tree, before, in_top, medians, options, table, verdict

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
    apply_tree(tree)


def main() -> int:
    ap = options(__doc__, 15)
    args = ap.parse_args()
    # Both versions' bytecode cached alike: each run imports from .pyc, as a node does.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with before("reshape", BASE) as work:
        if work is None:
            return 0
        tree = work / "tree"
        build(tree)
        names = {"before": work / "base", "now": TOP}
        worst = 0.0
        for verb in (["verify"], ["chain"], ["config"], ["apply", "--dry-run"],
                     ["rps", "apply"]):
            # medians() runs each once first, which writes each version's bytecode.
            cases = {n: ["env", "-u", "PYTHONDONTWRITEBYTECODE",
                         *in_top(t, *verb, "--root", str(tree))]
                     for n, t in names.items()}
            print(f"nftune {' '.join(verb)} --root, median of {args.runs}")
            worst = max(worst, table(medians(cases, args.runs), "before")["now"])
        print("rps apply from zero (256 NICs x 32 queues, in-process), median of 5 processes")
        worst = max(worst, table(rps_medians(names, 5, env), "before")["now"])
    return verdict(worst, TARGET, args.check, "each ")


if __name__ == "__main__":
    sys.exit(main())
