"""RPS and RFS in effect: each chosen NIC's queues, the RFS table, and what covers devices
created later (the decisions are nftune/rps/decide.py's)."""

from __future__ import annotations

from ..artifacts import RPS_UDEV_NAME
from ..attrs import read_attr
from ..context import Context
from ..errors import NftuneError
from ..record import Record
from ..result import Cause, Check, CheckResult, failed, passed, skipped
from ..root import Root
from .container import set_now

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..config import RpsConfig
    from ..rps.decide import Decision
    from ..rps.sysfs import Machine


class Decided(Record):
    """What RPS is on this machine, read once for the three checks."""

    machine: Machine
    decisions: list[Decision]
    read_only: str | None  # why sysfs cannot be written here


def decided(ctx: Context) -> Decided | NftuneError:
    """This machine's decisions, or why they cannot be made (the rps check says it)."""
    def make() -> Decided | NftuneError:
        from ..rps.decide import decide
        from ..rps.sysfs import read_machine, read_nics, read_only

        try:
            machine = read_machine(ctx.root)
            return Decided(machine, decide(ctx.config.rps, machine, read_nics(ctx.root)),
                           read_only(ctx.root))
        except NftuneError as e:
            return e

    return ctx.memo("rps", make)


def _decided(ctx: Context) -> Decided:
    d = decided(ctx)
    assert not isinstance(d, NftuneError)  # the spec's need
    return d


def rps(ctx: Context) -> list[CheckResult]:
    """Each selected NIC's queues have the masks nftune computes."""
    from ..rps.sysfs import queue_states

    d = decided(ctx)
    if isinstance(d, NftuneError):  # one check fails; verify's other checks still run
        return [failed(Check.RPS, "RPS", Cause.NOT_APPLIED, reason=str(d), hint=d.hint)]
    root, ro = ctx.root, d.read_only
    results = []
    for dec in d.decisions:
        if not dec.selected:
            continue
        states = queue_states(root, dec)
        want = f"rps_cpus={dec.mask} rps_flow_cnt={dec.flow_cnt}"
        bad = [s for s in states if not s.ok]
        if not bad:
            results.append(passed(Check.RPS, dec.nic.name, expected=want, actual=want,
                                  reason=dec.reason))
            continue
        got = f"rps_cpus={bad[0].actual} rps_flow_cnt={bad[0].flow_cnt}"
        where = f"{len(bad)} of {len(states)} rx queues, first {bad[0].queue}"
        if ro:
            results.append(skipped(Check.RPS, dec.nic.name, Cause.READ_ONLY, expected=want,
                                   actual=got, reason=f"{ro}: {where} not set"))
        else:
            results.append(failed(Check.RPS, dec.nic.name, Cause.NOT_APPLIED, expected=want,
                                  actual=got, reason=where,
                                  hint="systemctl status nftune-rps.service; " +
                                       set_now(ctx, "nftune rps apply sets it now")))
    if not results:
        results.append(passed(Check.RPS, "RPS", reason="no NIC here needs RPS (nftune rps show "
                                                   "says why for each)"))
    return results


def rfs(ctx: Context) -> list[CheckResult]:
    """The RFS table is FlowEntries rounded up to a power of two, when a NIC is chosen."""
    from ..rps.decide import pow2
    from ..rps.sysfs import FLOW_ENTRIES

    config = ctx.config.rps
    if not (any(d.selected for d in _decided(ctx).decisions) and config.flow_entries):
        return []
    entries = str(pow2(config.flow_entries))
    now = read_attr(ctx.root, FLOW_ENTRIES)
    if now == entries:
        return [passed(Check.RFS, "net.core.rps_sock_flow_entries", expected=entries,
                       actual=now)]
    return [failed(Check.RFS, "net.core.rps_sock_flow_entries", Cause.NOT_APPLIED,
                   expected=entries, actual=now, hint=set_now(ctx, "nftune rps apply sets it now"))]


def new_devices(ctx: Context) -> list[CheckResult]:
    d = _decided(ctx)
    return [new_devices_result(ctx.root, ctx.config.rps, d.machine, d.read_only)]


def new_devices_result(root: Root, rps: RpsConfig, machine: Machine,
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
