"""RPS and RFS in effect: each chosen NIC's queues, the RFS table, and what covers devices
created later (the decisions are nftune/rps/decide.py's)."""

from __future__ import annotations

from ..artifacts import RPS_UDEV_NAME
from ..context import Context
from ..errors import NftuneError
from ..fsio import read_attr
from ..result import Cause, Check, CheckResult, failed, passed, skipped
from ..root import Root

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows it)
if TYPE_CHECKING:
    from ..config import RpsConfig
    from ..rps.sysfs import Machine


def checks(ctx: Context) -> list[CheckResult]:
    """Each selected NIC's queues, the RFS table, and what covers devices created later."""
    root, rps = ctx.root, ctx.config.rps
    if rps.mode == "off":
        return [skipped(Check.RPS, "RPS", Cause.OK, reason="Mode=off: nftune leaves RPS alone")]
    if not root.live:  # an image: nothing of RPS is read (or imported)
        return [skipped(Check.RPS, "RPS", Cause.NOT_LIVE,
                        reason="masks are decided on the running machine at boot")]
    from ..rps.decide import decide, pow2
    from ..rps.sysfs import FLOW_ENTRIES, NO_SYSFS, has_sysfs, read_machine, read_nics, read_only
    from ..rps.view import queue_states

    if not has_sysfs(root):
        return [skipped(Check.RPS, "RPS", Cause.NOT_LIVE, reason=NO_SYSFS)]
    try:
        machine = read_machine(root)
        decisions = decide(rps, machine, read_nics(root))
    except NftuneError as e:  # one check fails; verify's other checks still run
        return [failed(Check.RPS, "RPS", Cause.NOT_APPLIED, reason=str(e), hint=e.hint)]
    ro = read_only(root)
    results = []
    for d in decisions:
        if not d.selected:
            continue
        states = queue_states(root, d)
        want = f"rps_cpus={d.mask} rps_flow_cnt={d.flow_cnt}"
        bad = [s for s in states if not s.ok]
        if not bad:
            results.append(passed(Check.RPS, d.nic.name, expected=want, actual=want,
                                  reason=d.reason))
            continue
        got = f"rps_cpus={bad[0].actual} rps_flow_cnt={bad[0].flow_cnt}"
        where = f"{len(bad)} of {len(states)} rx queues, first {bad[0].queue}"
        if ro:
            results.append(skipped(Check.RPS, d.nic.name, Cause.READ_ONLY, expected=want,
                                   actual=got, reason=f"{ro}: {where} not set"))
        else:
            results.append(failed(Check.RPS, d.nic.name, Cause.NOT_APPLIED, expected=want,
                                  actual=got, reason=where,
                                  hint="systemctl status nftune-rps.service; "
                                       "nftune rps apply sets it now"))
    if any(d.selected for d in decisions) and rps.flow_entries:
        entries = str(pow2(rps.flow_entries))
        now = read_attr(root, FLOW_ENTRIES)
        if now == entries:
            results.append(passed(Check.RFS, "net.core.rps_sock_flow_entries", expected=entries,
                                  actual=now))
        else:
            results.append(failed(Check.RFS, "net.core.rps_sock_flow_entries", Cause.NOT_APPLIED,
                                  expected=entries, actual=now,
                                  hint="nftune rps apply sets it now"))
    if not results:
        results.append(passed(Check.RPS, "RPS", reason="no NIC here needs RPS (nftune rps show "
                                                   "says why for each)"))
    return [*results, check_new_devices(root, rps, machine, ro)]


def check_new_devices(root: Root, rps: RpsConfig, machine: Machine,
                      ro: str | None) -> CheckResult:
    """What gives devices created after boot their masks: the kernel's rps_default_mask
    (6.3+), or the udev rule alone."""
    from ..cpus import mask_value
    from ..rps.decide import default_mask
    from ..rps.sysfs import DEFAULT_MASK, udev_rule

    subject = "devices created later"
    rule = udev_rule(root)
    if rule is None:
        return failed(Check.RPS_NEW_DEVICES, subject, Cause.FILE_MISSING,
                      expected=RPS_UDEV_NAME, actual=None,
                      reason="no udev rule sets RPS on NICs and queues that appear later",
                      hint="nftune apply installs it")
    want = default_mask(rps, machine)
    if want is None:
        why = ("the kernel has no rps_default_mask (before 6.3)" if not machine.has_default_mask
               else "NUMA: one mask is not right for every NIC")
        return passed(Check.RPS_NEW_DEVICES, subject, expected="udev", actual="udev",
                      reason=f"the udev rule {rule}; {why}")
    got = read_attr(root, DEFAULT_MASK)
    if got is not None and mask_value(got) == mask_value(want):
        return passed(Check.RPS_NEW_DEVICES, subject, expected=f"rps_default_mask={want}",
                      actual=f"rps_default_mask={got}",
                      reason=f"the kernel's rps_default_mask, then the udev rule {rule}")
    if ro:
        return skipped(Check.RPS_NEW_DEVICES, subject, Cause.READ_ONLY,
                       expected=f"rps_default_mask={want}", actual=f"rps_default_mask={got}",
                       reason=ro)
    return failed(Check.RPS_NEW_DEVICES, subject, Cause.NOT_APPLIED,
                  expected=f"rps_default_mask={want}", actual=f"rps_default_mask={got}",
                  hint="nftune rps apply sets it now")
