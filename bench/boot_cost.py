#!/usr/bin/env python3
"""What nftune costs a boot: a bookworm guest under qemu, booted N times without nftune and
N times with the .deb installed offline (dpkg --root), the boots interleaved so a noisy
machine slows both alike. Each boot reports `systemd-analyze time` and
`systemd-analyze blame` from inside the guest.

Prints the medians of each and their ratios: the userspace time (until the boot finished,
every start-up job done), the time the default target was reached, and the blame entries
nftune adds or changes (its verify unit; systemd-modules-load, which now loads
nf_conntrack; systemd-sysctl), with the verify unit's share of userspace.
Serial logs: build/bench/boot-cost/.
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
from e2e.scenarios import Inputs, install_offline  # noqa: E402

UNITS = ("nftune-verify.service", "systemd-modules-load.service", "systemd-sysctl.service")
STEP = """
show analyze-time systemd-analyze time
show analyze-blame systemd-analyze blame
"""
_SPAN = re.compile(r"(\d+(?:\.\d+)?)(min|ms|us|µs|h|s)\b")
_SCALE = {"h": 3600.0, "min": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}
_USERSPACE = re.compile(r"\+ ([^+=]+?) \(userspace\)")
_TARGET = re.compile(r"^\S+\.target reached after (.+) in userspace")
_BLAME = re.compile(r"^((?:\d+(?:\.\d+)?(?:min|ms|us|µs|h|s) ?)+) (\S+)$")


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
    return found


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
        images = {
            "without": vm.scenario_image(base, work / "without", steps),
            "with": vm.scenario_image(base, work / "with", steps,
                                      lambda root: install_offline(root, Inputs(deb, None))),
        }
        for n in range(1, args.boots + 1):
            for name, image in images.items():
                (logs / name).mkdir(parents=True, exist_ok=True)
                b = vm.boot_step(f"boot-cost/{name}#{n}", image, kernel, initrd,
                                 logs / name / f"serial-boot{n}.log", n)
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
              "target": "time: default target reached"}
    for key in ("userspace", "target", *UNITS):
        before, after = median("without", key), median("with", key)
        ratio = f"{after / before:.2f}" if before and after else "-"
        label = labels.get(key, f"blame: {key}")
        print(f"{label:<42} {ms(before):>10} {ms(after):>10} {ratio:>7}")
    verify = median("with", "nftune-verify.service")
    if base_user and with_user:
        print(f"userspace with nftune / without: {with_user / base_user:.2f}")
    if verify is not None and with_user:
        print(f"nftune-verify.service / userspace (with): {verify / with_user:.3f}")


if __name__ == "__main__":
    sys.exit(main())
