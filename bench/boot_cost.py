#!/usr/bin/env python3
"""What nftune costs a boot: a bookworm guest under qemu, booted N times without nftune and
N times with the .deb installed offline (dpkg --root), the boots interleaved so a noisy
machine slows both alike. The guest has a NIC, as a node does. Both images have a kubelet
stand-in (a oneshot ordered as
kubeadm's kubelet.service is) and a probe: a oneshot that runs
`systemd-analyze critical-chain systemd-sysctl.service` at the point of the boot where
nftune-verify.service runs (same ordering, no default dependencies). Each boot reports
`systemd-analyze time` and `blame`, when the kubelet stand-in started, and the CPU time
each unit consumed (systemd's own accounting: the "Consumed ... CPU time" it logs when a
unit stops, CPUUsageNSec for one still active, as nftune-rps.service and the probe stay).

Prints the medians and their ratios: the userspace time (every start-up job done), the
default target, the kubelet stand-in's start, the blame entries nftune adds or changes,
and the CPU of all nftune units against the probe's.

Targets (issue 14): kubelet stand-in start with nftune / without <= 1.03; CPU of all
nftune units <= 3x the probe's. Serial logs: build/bench/boot-cost/.
Usage: bench/boot_cost.py [--boots N] [--release R] [--deb DEB]   (needs root and qemu)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP))

from e2e import vm  # noqa: E402
from e2e.scenarios import KUBELET, Inputs, install_offline  # noqa: E402

# A node has a NIC: one virtio NIC with one receive queue on 2 CPUs, which RPS (Mode=auto)
# chooses, so nftune-rps.service does its real work.
NODE = vm.Hardware(nics=(("-netdev", "user,id=n1", "-device", "virtio-net-pci,netdev=n1"),))
UNITS = ("nftune-verify.service", "nftune-rps.service", "systemd-modules-load.service",
         "systemd-sysctl.service")
NFTUNE_UNITS = ("nftune-verify.service", "nftune-rps.service")
PROBE = "analyze-probe.service"
# What nftune-verify.service does for a living, as cheap as systemd makes it: read the
# unit graph and this boot's timestamps. Started where the verify unit starts, with the
# same accounting; critical-chain refuses to run before the boot has finished, so it waits
# for that first (the wait, a systemctl blocked on the bus, is part of its CPU).
PROBE_UNIT = """[Unit]
Description=The yardstick for nftune's CPU: systemd-analyze critical-chain
DefaultDependencies=no
After=sysinit.target systemd-sysctl.service systemd-modules-load.service nftune-rps.service
Conflicts=shutdown.target
Before=shutdown.target
[Service]
Type=simple
ExecStart=/bin/sh -c 'systemctl is-system-running --wait >/dev/null; \\
    exec systemd-analyze critical-chain systemd-sysctl.service'
# Active after it exits, so its CPUUsageNSec can still be read (as nftune-rps.service's).
RemainAfterExit=yes
[Install]
WantedBy=multi-user.target
"""
STEP = f"""
show analyze-time systemd-analyze time
show analyze-blame systemd-analyze blame
show kubelet-start sh -c 'echo kubelet-start-us $(( $(systemctl show -P \\
    ExecMainStartTimestampMonotonic kubelet.service) - $(systemctl show -P \\
    UserspaceTimestampMonotonic) ))'
show probe-done sh -c 'for i in $(seq 150); do [ "$(systemctl show -P SubState \\
    {PROBE})" = running ] || break; sleep 0.2; done; systemctl show -P Result {PROBE}'
show cpu sh -c 'journalctl -b -o cat _PID=1 | grep -E "^({"|".join(
    u.replace(".", "[.]") for u in (*NFTUNE_UNITS, PROBE))}): Consumed "; for u in \\
    {" ".join((*NFTUNE_UNITS, PROBE))}; do
    echo "$u: CPUUsageNSec $(systemctl show -P CPUUsageNSec $u)"; done; true'
"""
_SPAN = re.compile(r"(\d+(?:\.\d+)?)(min|ms|us|µs|h|s)\b")
_SCALE = {"h": 3600.0, "min": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}
_USERSPACE = re.compile(r"\+ ([^+=]+?) \(userspace\)")
_TARGET = re.compile(r"^\S+\.target reached after (.+) in userspace")
_BLAME = re.compile(r"^((?:\d+(?:\.\d+)?(?:min|ms|us|µs|h|s) ?)+) (\S+)$")
_KUBELET = re.compile(r"^kubelet-start-us (\d+)$")
# core/unit.c, unit_log_resources(): "UNIT: Consumed 1.234s CPU time."
_CONSUMED = re.compile(r"^(\S+): Consumed (.+?) CPU time")
_NSEC = re.compile(r"^(\S+): CPUUsageNSec (\d+)$")


def timespan(text: str) -> float:
    """Seconds in a span as systemd prints it: "850ms", "1min 2.345s"."""
    return sum(float(n) * _SCALE[unit] for n, unit in _SPAN.findall(text))


def analyze(output: str) -> dict[str, float]:
    """Userspace seconds and each unit's blame seconds, from one boot's step output."""
    found: dict[str, float] = {}
    for raw in output.splitlines():
        line = raw.removeprefix("    | ").strip()
        if m := _USERSPACE.search(line):
            found["userspace"] = timespan(m.group(1))
        elif m := _TARGET.match(line):
            found["target"] = timespan(m.group(1))
        elif m := _BLAME.match(line):
            found[m.group(2)] = timespan(m.group(1))
        elif m := _KUBELET.match(line):
            found["kubelet"] = int(m.group(1)) / 1e6
        elif m := _CONSUMED.match(line):
            found[f"cpu:{m.group(1)}"] = timespan(m.group(2))
        elif (m := _NSEC.match(line)) and f"cpu:{m.group(1)}" not in found:
            found[f"cpu:{m.group(1)}"] = int(m.group(2)) / 1e9
    return found


def kubelet_and_probe(rootfs: Path) -> None:
    """Both images: the kubelet stand-in and the critical-chain probe, enabled."""
    units = rootfs / "etc/systemd/system"
    wants = units / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    for name, text in (("kubelet.service", KUBELET), (PROBE, PROBE_UNIT)):
        (units / name).write_text(text)
        (wants / name).symlink_to(f"/etc/systemd/system/{name}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--boots", type=int, default=3)
    ap.add_argument("--release", default="bookworm", choices=("bullseye", "bookworm", "trixie"))
    ap.add_argument("--deb", type=Path)
    args = ap.parse_args()
    out = TOP / os.environ.get("OUT", "out")
    deb = args.deb or next(iter(sorted(out.glob("nftune_*_amd64.deb"), reverse=True)), None)
    why = ("needs root" if os.geteuid() != 0 else
           f"missing {', '.join(vm.tools_missing())}" if vm.tools_missing() else
           f"no .deb in {out} (make deb)" if deb is None else None)
    if why:
        print(f"bench skipped: {why}")
        return 0
    base = vm.base_rootfs(args.release)
    kernel, initrd = vm.kernel_and_initrd(base)
    logs = TOP / "build/bench/boot-cost"
    shutil.rmtree(logs, ignore_errors=True)
    work = Path(f"/var/tmp/nftune-boot-cost-{os.getpid()}")
    steps = [STEP] * args.boots
    samples: dict[str, list[dict[str, float]]] = {"without": [], "with": []}
    try:
        def with_nftune(root: Path) -> None:
            kubelet_and_probe(root)
            install_offline(root, Inputs(deb, None))

        images = {
            "without": vm.scenario_image(base, work / "without", steps, kubelet_and_probe),
            "with": vm.scenario_image(base, work / "with", steps, with_nftune),
        }
        for n in range(1, args.boots + 1):
            for name, image in images.items():
                (logs / name).mkdir(parents=True, exist_ok=True)
                b = vm.boot_step(f"boot-cost/{name}#{n}", image, kernel, initrd,
                                 logs / name / f"serial-boot{n}.log", n, hw=NODE)
                got = analyze(b.output)
                if not b.finished or "userspace" not in got:
                    print(f"bench failed: {name} boot {n} gave no systemd-analyze report; "
                          f"see {logs / name}")
                    return 1
                samples[name].append(got)
    finally:
        vm.remove_tree(work)
    report(samples, args.release, args.boots)
    return 0


def report(samples: dict[str, list[dict[str, float]]], release: str, boots: int) -> None:
    def median(name: str, key: str) -> float | None:
        values = [s[key] for s in samples[name] if key in s]
        return statistics.median(values) if values else None

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v * 1000:.0f}"

    print(f"boot cost, {release} under qemu TCG: median of {boots} boots each, interleaved")
    print(f"{'systemd-analyze':<42} {'without ms':>10} {'with ms':>10} {'ratio':>7}")
    base_user = median("without", "userspace")
    with_user = median("with", "userspace")
    labels = {"userspace": "time: userspace (boot finished)",
              "target": "time: default target reached",
              "kubelet": "kubelet stand-in started"}
    for key in ("userspace", "target", "kubelet", *UNITS):
        before, after = median("without", key), median("with", key)
        ratio = f"{after / before:.2f}" if before and after else "-"
        label = labels.get(key, f"blame: {key}")
        print(f"{label:<42} {ms(before):>10} {ms(after):>10} {ratio:>7}")
    verify = median("with", "nftune-verify.service")
    if base_user and with_user:
        print(f"userspace with nftune / without: {with_user / base_user:.2f}")
    if verify is not None and with_user:
        print(f"nftune-verify.service / userspace (with): {verify / with_user:.3f}")
    kubelet = [median(n, "kubelet") for n in ("without", "with")]
    if kubelet[0] and kubelet[1]:
        ok = kubelet[1] / kubelet[0] <= 1.03
        print(f"target: kubelet stand-in start with / without nftune <= 1.03: "
              f"{kubelet[1] / kubelet[0]:.3f} {'met' if ok else 'MISSED'}")
    # One CPU figure per boot (the units' sum), then the median of the boots.
    sums = [sum(s.get(f"cpu:{u}", 0.0) for u in NFTUNE_UNITS) for s in samples["with"]
            if all(f"cpu:{u}" in s for u in NFTUNE_UNITS)]
    probe = median("with", f"cpu:{PROBE}")
    if sums and probe:
        cpu = statistics.median(sums)
        for u in NFTUNE_UNITS:
            print(f"{'cpu: ' + u:<42} {ms(median('with', f'cpu:{u}')):>21}")
        print(f"{'cpu: ' + PROBE:<42} {ms(probe):>21}")
        print(f"target: CPU of all nftune units <= 3x the probe's: {cpu / probe:.2f} "
              f"{'met' if cpu / probe <= 3 else 'MISSED'}")
    else:
        print("cpu: systemd logged no CPU time for the units (no accounting?)")


if __name__ == "__main__":
    sys.exit(main())
