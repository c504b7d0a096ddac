#!/usr/bin/env python3
"""What the implicit edges cost: `nftune chain --root` on a full Debian tree (the e2e
suite's cached bookworm root filesystem: systemd, udev, a kernel), today's nftune against
the last one before the offline graph modelled systemd's implicit dependencies (BASE),
interleaved in one run; and the graph alone, in-process.

Target (issue 13): at most 1.20x. The earlier nftune is taken from git; without that
history (a shallow clone) the benchmark says so and measures nothing.
Usage: bench/chain_offline.py [--runs N] [--check]
"""

from __future__ import annotations

import subprocess
import sys

from common import TOP, before, in_top, medians, options, table, verdict

BASE = "f694d9b"  # the last commit before issue 13
TARGET = 1.20
GRAPH = """
import statistics, sys, time
sys.path.insert(0, sys.argv[1])
from nftune.ordering import FileGraph, prove
from nftune.root import Root
from nftune.units import UnitTree
runs = []
for _ in range(15):
    t = time.perf_counter()
    prove(FileGraph(UnitTree(Root(sys.argv[2]))))
    runs.append(time.perf_counter() - t)
print(statistics.median(runs))
"""


def main() -> int:
    ap = options(__doc__, 21)
    args = ap.parse_args()
    sys.path.insert(0, str(TOP))
    from e2e.vm import base_rootfs

    tree = base_rootfs("bookworm")
    with before("chain_offline", BASE) as work:
        if work is None:
            return 0
        names = {"before implicit edges": work / "base", "now": TOP}
        print(f"nftune chain --root (a full bookworm tree), median of {args.runs}")
        ratios = table(medians({n: in_top(t, "chain", "--root", str(tree))
                                for n, t in names.items()}, args.runs),
                       "before implicit edges")
        graph = {}
        for n, t in names.items():
            graph[n] = float(subprocess.run([sys.executable, "-c", GRAPH, str(t), str(tree)],
                                            check=True, capture_output=True,
                                            text=True).stdout)
        print("the offline proof alone, in-process, median of 15")
        table(graph, "before implicit edges")
    return verdict(ratios["now"], TARGET, args.check)


if __name__ == "__main__":
    sys.exit(main())
