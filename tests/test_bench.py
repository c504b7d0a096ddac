"""The benchmarks' parsing: what bench/boot_cost.py reads from a guest's systemd-analyze,
the kubelet stand-in's start and systemd's CPU accounting."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from boot_cost import analyze, timespan

OUTPUT = """\
    $ systemd-analyze time
    | Startup finished in 7.101s (kernel) + 1min 8.339s (userspace) = 1min 15.440s
    | graphical.target reached after 6.437s in userspace.
NFTUNE-E2E RESULT PASS analyze-time expected=0 actual=0
    $ systemd-analyze blame
    | 4.427s nftune-verify.service
    |  865ms systemd-journald.service
[   12.3] random: crng init done
    | 1min 2.5s slow.service
    |  750us sys-kernel-config.mount
    $ sh -c ...
    | kubelet-start-us 5123456
    | nftune-verify.service: Consumed 1.312s CPU time.
    | analyze-probe.service: Consumed 95ms CPU time.
    | nftune-verify.service: CPUUsageNSec [not set]
    | nftune-rps.service: CPUUsageNSec 45000000
"""


def test_timespans_as_systemd_prints_them() -> None:
    assert timespan("850ms") == 0.85
    assert timespan("1min 2.345s") == 62.345
    assert timespan("1h 2min") == 3720
    assert timespan("750us") == 0.00075


def test_time_and_blame_from_one_boot() -> None:
    assert analyze(OUTPUT) == {
        "userspace": 68.339, "target": 6.437, "nftune-verify.service": 4.427,
        "systemd-journald.service": 0.865, "slow.service": 62.5,
        "sys-kernel-config.mount": 0.00075, "kubelet": 5.123456,
        "cpu:nftune-verify.service": 1.312, "cpu:analyze-probe.service": 0.095,
        "cpu:nftune-rps.service": 0.045}
