#!/usr/bin/env python3
"""What the node-wide sysctl checks cost (issue 28): `nftune verify --root` over a tree of
5,000 sysctl.d files holding 50,000 keys (known ones, interface keys, typos, globs), today's
nftune against the one just before them, interleaved in one run.

Target: at most 1.10x the verify --root of the nftune before (its budget today). The
earlier nftune is taken from git (BASE); without that history (a shallow clone) the
benchmark says so and measures nothing.
Usage: bench/node_sysctl.py [--runs N] [--files N] [--check]
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import TOP, apply_tree, before, in_top, medians, options, table, verdict

BASE = "9e0ae8b"  # issue 27's commit, the last before the node-wide checks
TARGET = 1.10
KEYS = ("net.ipv4.tcp_rmem = 4096 87380 6291456", "net.core.somaxconn = {i}",
        "net.ipv4.conf.eth{i}.rp_filter = 1", "vm.max_map_count = {i}",
        "net.bridge.bridge-nf-call-iptables = 1", "kernel.pid_max = 4194304",
        "net.ipv4.vs.conntrack = 1", "net.netfilter.nf_conntrack_tcp_be_liberl = 1",
        "net.ipv4.conf.*.accept_redirects = 0", "fs.inotify.max_user_watches = {i}")


def build(tree: Path, files: int) -> None:
    d = tree / "etc/sysctl.d"
    d.mkdir(parents=True)
    for i in range(files):
        (d / f"{i % 89 + 10:02d}-file{i:05d}.conf").write_text(
            f"# file {i}\n" + "".join(k.format(i=i) + "\n" for k in KEYS))
    k = tree / "lib/modules/6.1.0-57-amd64"
    k.mkdir(parents=True)
    (k / "modules.dep").write_text("kernel/net/netfilter/nf_conntrack.ko.xz:\n"
                                   "kernel/net/bridge/br_netfilter.ko.xz:\n")
    apply_tree(tree)


def main() -> int:
    ap = options(__doc__, 15)
    ap.add_argument("--files", type=int, default=5000)
    args = ap.parse_args()
    with before("node_sysctl", BASE) as work:
        if work is None:
            return 0
        tree = work / "tree"
        build(tree, args.files)
        print(f"nftune verify --root, {args.files} sysctl.d files, {args.files * len(KEYS)} "
              f"keys, median of {args.runs}")
        ratios = table(medians({"before": in_top(work / "base", "verify", "--root", str(tree)),
                                "now": in_top(TOP, "verify", "--root", str(tree))},
                               args.runs), "before")
    return verdict(ratios["now"], TARGET, args.check)


if __name__ == "__main__":
    sys.exit(main())
