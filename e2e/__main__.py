"""`python -m e2e`: boot real guests and report one line per assertion.

Each scenario gets its own copy of the release's cached root filesystem and its own disk
image; its serial logs stay in LOGS/RELEASE/SCENARIO/ (kept, and named, on a failure).
Exit status: 0 when every assertion passed, 1 when one failed or a boot gave no report,
2 when the suite cannot run here (no qemu, not root): never counted as a pass.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
from pathlib import Path

from . import vm
from .scenarios import DEMO, RELEASES, Inputs, Scenario, by_name

TOP = Path(__file__).resolve().parents[1]
WORK = Path(f"/var/tmp/nftune-e2e-{os.getpid()}")  # copies and disk images, while they run


def run_scenario(release: str, s: Scenario, inputs: Inputs, logs: Path,
                 show: bool = False) -> tuple[int, int]:
    """Boot the scenario's steps; print one line per assertion (and, with `show`, what
    each step printed). Returns (passed, failed)."""
    base = vm.base_rootfs(release)
    kernel, initrd = vm.kernel_and_initrd(base)
    work = WORK / f"{release}-{s.name}"
    out = logs / release / s.name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    passed = failed = 0
    try:
        setup = s.setup
        image = vm.scenario_image(base, work, list(s.steps),
                                  (lambda root: setup(root, inputs)) if setup else None)
        for n in range(1, len(s.steps) + 1):
            if show:
                print(f"\n>>> booting the {release} guest under qemu, boot {n} of "
                      f"{len(s.steps)} (about 30 s with TCG)", flush=True)
            b = vm.boot_step(f"{release}/{s.name}#{n}", image, kernel, initrd,
                             out / f"serial-boot{n}.log", n, s.hardware, s.timeout)
            if show:
                print(b.output, flush=True)
            for r in b.results:
                print(f"{'PASS' if r.ok else 'FAIL'} {release}/{s.name}#{n} {r.name}: "
                      f"expected {r.expected!r}, actual {r.actual!r}", flush=True)
                passed += r.ok
                failed += not r.ok
            if not b.finished or not b.results:
                print(f"FAIL {release}/{s.name}#{n} boot: {b.output or 'no end marker'}",
                      flush=True)
                failed += 1
            elif not show and b.output and not all(r.ok for r in b.results):
                # CI keeps this log, not the logs directory: the evidence goes with the FAIL.
                print(f"--- what {release}/{s.name}#{n} printed:\n{b.output}\n---", flush=True)
            if b.output:
                (out / f"output-boot{n}.txt").write_text(b.output + "\n")
    finally:
        vm.remove_tree(work)
    if failed:
        print(f"  logs: {out}", flush=True)
    return passed, failed


def _newest(pattern: str) -> Path | None:
    """The newest package in $OUT (default out/), as "make deb rpm" leaves them."""
    out = TOP / os.environ.get("OUT", "out")
    return next(iter(sorted(out.glob(pattern), reverse=True)), None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m e2e", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--release", action="append", choices=RELEASES,
                    help="a Debian release to boot (repeatable; default: all)")
    ap.add_argument("--scenario", action="append", help="a scenario (repeatable; default: all)")
    ap.add_argument("--deb", type=Path, help="the nftune .deb (default: the newest in $OUT, out/)")
    ap.add_argument("--rpm", type=Path, help="the nftune .rpm (default: the newest in $OUT, out/)")
    ap.add_argument("--logs", type=Path, default=TOP / "build/e2e",
                    help="where serial logs go (default: %(default)s)")
    ap.add_argument("--demo", action="store_true",
                    help="show the bug and the fix on a bookworm guest, with the guest's "
                         "output (tools/demo)")
    args = ap.parse_args(argv)
    deb = args.deb or _newest("nftune_*.deb")
    rpm = args.rpm or _newest("nftune-*.rpm")
    if args.demo and args.scenario:
        ap.error("--demo runs its own scenario; leave out --scenario")
    scenarios = [DEMO] if args.demo else by_name(args.scenario)
    releases = args.release or (["bookworm"] if args.demo else list(RELEASES))
    plan = [(r, s) for r in releases for s in scenarios if r in s.releases]
    if not plan:
        ap.error(f"no scenario of {', '.join(s.name for s in scenarios)} runs on "
                 f"{', '.join(releases)}")
    # A stopped run (SIGTERM) unwinds like Ctrl-C: qemu killed, work directory removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if os.geteuid() != 0 or vm.tools_missing():
        why = "needs root" if os.geteuid() != 0 else "missing " + ", ".join(vm.tools_missing())
        print(f"e2e: SKIPPED, every scenario: {why}. A skip is not a pass.", file=sys.stderr)
        return 2
    passed = failed = 0
    try:
        for release, s in plan:
            lacking = [k for k, v in (("deb", deb), ("rpm", rpm))
                       if k in s.needs and v is None]
            if lacking:
                print(f"FAIL {release}/{s.name}: no .{lacking[0]} (make {lacking[0]}, or "
                      f"--{lacking[0]})")
                failed += 1
                continue
            p, f = run_scenario(release, s, Inputs(deb, rpm), args.logs, show=args.demo)
            passed += p
            failed += f
    finally:
        vm.remove_tree(WORK)
    ran = {r: [s.name for q, s in plan if q == r] for r in releases}
    print(f"scenarios run: {len(plan)}; " + "; ".join(
        f"{r}: {len(names)} ({', '.join(names)})" for r, names in ran.items() if names))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
