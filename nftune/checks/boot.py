"""This boot, as the service manager saw it: the loaded unit graph, whether both units ran,
whether modules-load finished before sysctl started, and whether each module was there in
time. Read over D-Bus (see systemd.py) and, for the names of failed modules, the journal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .. import journal, udev
from ..attrs import read_attr
from ..config import SysctlSpec
from ..context import Context
from ..errors import NftuneError
from ..ordering import MODULES_LOAD, SYSCTL, BusGraph, Proof, prove
from ..record import Record
from ..result import Cause, Check, CheckResult, failed, passed, skipped
from ..root import Root
from ..sysctl import same_value
from ..systemd import BootTimes, UnitState
from ..timespan import fmt_span
from .container import CONDITION_HINTS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..systemd import Bus

_FAILED_MODULE = re.compile(r"module '([^']+)'")
SKIPPED = {MODULES_LOAD: Cause.MODULES_LOAD_SKIPPED, SYSCTL: Cause.SYSCTL_SKIPPED}
FAILED = {MODULES_LOAD: Cause.MODULES_LOAD_FAILED, SYSCTL: Cause.SYSCTL_FAILED}


def since_boot(t: int, boot: BootTimes) -> str:
    """A monotonic timestamp as systemd-analyze shows it: time since userspace began."""
    return fmt_span(max(t - boot.userspace, 0))


def started(u: UnitState) -> int:
    return u.exec_main_start or u.inactive_exit


def finished(u: UnitState) -> int:
    return u.exec_main_exit or u.active_enter


def ran(u: UnitState) -> bool:
    return u.found and not u.masked and u.condition_result and started(u) > 0


_CYCLE = "deleted to break ordering cycle"


def cycle_lines(ctx: Context) -> list[str]:
    """What the manager logged this boot about deleting jobs to break ordering cycles
    (transaction.c: "Job X/start deleted to break ordering cycle starting with Y/start").
    The boot's first transaction is logged before journald runs: on a machine the journal
    has it from the kernel log, in a container it is lost. Only PID 1 and the kernel log
    count: anyone may log under the name "systemd"."""
    return [m for m in journal.read(ctx, "systemd", 1, priority=4, or_kernel=True) if _CYCLE in m]


# -- what the manager says of this boot, read once for the checks below ---------------------

class Seen(Record):
    """This boot as the service manager saw it."""

    boot: BootTimes
    ml: UnitState
    sc: UnitState
    bad: list[str]  # what modules-load could not do although it ran
    proof: Proof
    said: list[str]  # the manager's lines about jobs deleted to break a cycle


def answered(ctx: Context) -> Seen | NftuneError:
    """What the manager says of this boot, or why it cannot be asked (not reached, or it
    would not answer: auth, no systemd1); read once."""
    def make() -> Seen | NftuneError:
        try:
            return _read(ctx, ctx.bus())
        except NftuneError as e:
            return e

    return ctx.memo("boot", make)


def seen(ctx: Context) -> Seen:
    s = answered(ctx)
    assert not isinstance(s, NftuneError)  # the specs' need
    return s


def _read(ctx: Context, bus: Bus) -> Seen:
    ml, sc = bus.unit(MODULES_LOAD), bus.unit(SYSCTL)
    bad = failed_modules(ctx, ml) if ran(ml) else []
    proof = prove(BusGraph(bus))
    # A job that never started (no condition was even checked) may have been deleted.
    said = cycle_lines(ctx) if proof.cause is Cause.ORDERING_CYCLE or any(
        not started(u) and not u.condition_timestamp for u in (ml, sc)) else []
    return Seen(bus.boot(), ml, sc, bad, proof, said)


# -- the checks -------------------------------------------------------------------------------

def reached(ctx: Context) -> list[CheckResult]:
    """The boot check reports only a manager that cannot be reached (specs.py's need)."""
    return []


def boot_graph(ctx: Context) -> list[CheckResult]:
    s = seen(ctx)
    return [graph_result(s.proof, s.said)]


def unit_state(ctx: Context) -> list[CheckResult]:
    s = seen(ctx)
    cyclic = {e.unit for e in s.proof.cycle}
    return [unit_result(s.ml, s.boot, s.bad, s.said, s.ml.name in cyclic),
            unit_result(s.sc, s.boot, [], s.said, s.sc.name in cyclic)]


def boot_order(ctx: Context) -> list[CheckResult]:
    s = seen(ctx)
    return [order_result(s.ml, s.sc, s.boot)]


def module_timing(ctx: Context) -> list[CheckResult]:
    s = seen(ctx)
    return timing_results(ctx, s.ml, s.sc, s.boot, s.bad)


def graph_result(proof: Proof, said: list[str]) -> CheckResult:
    """`said`: the manager's log lines about jobs it deleted to break cycles this boot."""
    if proof.cause is Cause.OK:
        return passed(Check.BOOT_GRAPH, SYSCTL, actual=" < ".join(proof.path), source=proof.source,
                      reason="as loaded by systemd this boot")
    reason = proof.reason
    if proof.cause is Cause.ORDERING_CYCLE and said:
        reason += f"; this boot: {said[0]}" + (f" (and {len(said) - 1} more)"
                                                if len(said) > 1 else "")
    return failed(Check.BOOT_GRAPH, SYSCTL, proof.cause, reason=reason, source=proof.source,
                  hint="compare with 'nftune verify --root /' (the files); after changing "
                       "unit files run 'systemctl daemon-reload'")


def _failed(u: UnitState) -> bool:
    return u.active_state == "failed" or u.result not in ("", "success")


def unit_result(u: UnitState, boot: BootTimes, bad: list[str], said: Sequence[str] = (),
              cyclic: bool = False) -> CheckResult:
    """`bad`: what the unit could not do although it ran (modules it did not load). A unit
    that did not run while on an ordering cycle (`cyclic`), or whose job the manager's log
    (`said`) says it deleted, lost its job to break the cycle."""
    if not u.found:
        return failed(Check.UNIT_STATE, u.name, Cause.UNIT_MISSING, actual=u.load_state,
                      expected="loaded", reason=f"{u.name} is {u.load_state or 'not found'}",
                      hint="install systemd's unit (the systemd package)")
    if u.masked:
        return failed(Check.UNIT_STATE, u.name, Cause.UNIT_MASKED, actual=u.load_state,
                      expected="loaded", reason=f"{u.name} is {u.load_state}",
                      source=u.fragment_path or None, hint=f"systemctl unmask {u.name}")
    if not u.condition_result and u.condition_timestamp:
        conds = u.failed_conditions
        kinds = {c.kind for c in conds}
        return failed(Check.UNIT_STATE, u.name, SKIPPED.get(u.name, Cause.NOT_RUN),
                      actual="skipped", expected="ran",
                      reason="skipped: " + (", ".join(f"{c} failed" for c in conds)
                                            or "a condition failed"),
                      hint=next((CONDITION_HINTS[k] for k in sorted(kinds)
                                 if k in CONDITION_HINTS), None))
    if _failed(u) or bad:
        if _failed(u):
            reason = f"failed ({u.result or u.active_state}"
            reason += f", exit status {u.exec_main_status})" if u.exec_main_code == 1 else ")"
        else:  # systemd 252 logs a module it cannot find, and still succeeds
            reason = f"{u.active_state}, but not every listed module was loaded"
        hint = f"journalctl -b -u {u.name}"
        if bad:
            reason += ": " + "; ".join(bad)
            hint = "remove the module from modules-load.d (see the module-exists check)"
        return failed(Check.UNIT_STATE, u.name, FAILED.get(u.name, Cause.NOT_RUN),
                      actual=u.active_state, expected="every listed module loaded"
                      if u.name == MODULES_LOAD else "active", reason=reason, hint=hint)
    deleted = [m for m in said if f"Job {u.name}/" in m]
    if not started(u) and (deleted or cyclic):
        why = (f"systemd deleted its job to break an ordering cycle this boot ({deleted[0]})"
               if deleted else "it is on an ordering cycle (see boot-graph), and systemd "
               "breaks a cycle by deleting a job on it (the manager's message is not in "
               "this boot's journal)")
        return failed(Check.UNIT_STATE, u.name, Cause.ORDERING_CYCLE, actual=u.active_state,
                      expected="ran", reason=f"did not run: {why}",
                      hint="see the boot-graph check, which names the cycle edge by edge")
    if not started(u):
        return failed(Check.UNIT_STATE, u.name, Cause.NOT_RUN, actual=u.active_state,
                      expected="ran", reason="did not run this boot"
                      + (" (the boot has not finished)" if not boot.finish else ""),
                      hint=f"systemctl list-dependencies --reverse {u.name}")
    # As systemd-analyze shows a unit: from leaving "inactive" to becoming "active".
    begin = u.inactive_exit or started(u)
    took = max(u.active_enter - begin, 0) if u.active_enter else 0
    return passed(Check.UNIT_STATE, u.name, actual="ran",
                  reason=f"@{since_boot(begin, boot)} +{fmt_span(took)}")


def failed_modules(ctx: Context, ml: UnitState) -> list[str]:
    """What systemd-modules-load could not load this boot. A unit that succeeded can only
    have missed modules the running kernel lacks, which its module list tells without a
    journal query; for a failed unit the journal says what went wrong."""
    running = ctx.running[1]
    lacking = [] if running is None else [
        f"{e.name} (listed in {e.source}) is not in the running kernel"
        for e in ctx.listed if not running.has(e.name)]
    if not _failed(ml) and running is not None:
        return lacking
    said = [m for m in journal.read(ctx, "systemd-modules-load", ml.exec_main_pid, priority=3)
            if _FAILED_MODULE.search(m)]
    return said or lacking


def order_result(ml: UnitState, sc: UnitState, boot: BootTimes) -> CheckResult:
    if not (ran(ml) and ran(sc)):
        who = next(u for u in (ml, sc) if not ran(u))
        return skipped(Check.BOOT_ORDER, SYSCTL, Cause.NOT_RUN,
                       reason=f"{who.name} did not run this boot (see unit-state)")
    done, start = finished(ml), started(sc)
    actual = (f"{MODULES_LOAD} finished @{since_boot(done, boot)}, "
              f"{SYSCTL} started @{since_boot(start, boot)}")
    if done and done <= start:
        return passed(Check.BOOT_ORDER, SYSCTL, actual=actual)
    return failed(Check.BOOT_ORDER, SYSCTL, Cause.ORDERING_BROKEN, actual=actual,
                  reason=f"{SYSCTL} started before {MODULES_LOAD} had finished",
                  hint="see the boot-graph check; 'nftune apply' installs a drop-in that "
                       "orders them")


def timing_results(ctx: Context, ml: UnitState, sc: UnitState, boot: BootTimes,
                        bad: list[str]) -> list[CheckResult]:
    """Each module was there when systemd-sysctl applied sysctl.d, so its keys got their
    values; a module loaded later gets them only from the udev safety net."""
    root, running = ctx.root, ctx.running[1]
    out = []
    in_time = ran(ml) and ran(sc) and finished(ml) <= started(sc)
    sysctl_said = journal.read(ctx, "systemd-sysctl", sc.exec_main_pid) if ran(sc) else []
    for c in ctx.choices:
        if running is not None and running.has(c.name) == "builtin":
            out.append(passed(Check.MODULE_TIMING, c.name, actual="built in",
                              reason="built into the running kernel: there before any unit"))
            continue
        if not root.exists(root.sys_module(c.name)):
            out.append(skipped(Check.MODULE_TIMING, c.name, Cause.NOT_LOADED,
                               reason="not loaded (see module-loaded)"))
            continue
        keys = [s for s in ctx.config.sysctls if udev.module_for_key(s.key) == c.name]
        missed = [m for m in sysctl_said
                  if "Couldn't write" in m and any(f"'{s.key}'" in m for s in keys)]
        entry = next((e for e in ctx.listed if e.name == c.name), None)
        if entry is not None and _newer_than_boot(root, entry.file, boot):
            out.append(skipped(Check.MODULE_TIMING, c.name, Cause.LOADED_LATE,
                               source=entry.source,
                               reason=f"listed in {root.show(entry.file)} after this boot "
                                      "began: loaded at runtime; the boot order holds from "
                                      "the next boot"))
            continue
        # systemd-modules-load goes on after a module fails: only this module's failure counts.
        failed_here = [m for m in bad if f"'{c.name}'" in m or m.startswith(f"{c.name} ")]
        if entry is not None and in_time and not failed_here and not missed:
            out.append(passed(Check.MODULE_TIMING, c.name, actual="loaded in time",
                              source=entry.source,
                              reason=f"listed in {root.show(entry.file)}, loaded by "
                                     f"{MODULES_LOAD} before {SYSCTL} started"))
            continue
        why = (missed[0] if missed else failed_here[0] if failed_here else
               "not listed in modules-load.d at boot" if entry is None else
               f"{MODULES_LOAD} did not load it before {SYSCTL} ran")
        out.append(failed(Check.MODULE_TIMING, c.name, Cause.LOADED_LATE,
                          actual="loaded late", expected="loaded before sysctl.d applied",
                          reason=f"{why}; {_safety_net(root, keys)}",
                          hint="run 'nftune apply' and reboot; see the unit-state and "
                               "boot-order checks"))
    return out


def _newer_than_boot(root: Root, path: str, boot: BootTimes) -> bool:
    st = root.stat(path)
    if st is None:
        return False
    mtime_us = int(st.st_mtime * 1e6)
    return boot.userspace_realtime > 0 and mtime_us > boot.userspace_realtime


def _safety_net(root: Root, keys: list[SysctlSpec]) -> str:
    values = []
    for s in keys:
        live = read_attr(root, root.proc_sys(s.key))
        values.append(live is not None and same_value(live, s.value))
    if values and all(values):
        return "its sysctls were re-applied after the load (nftune's udev rule does this)"
    return "its sysctls were not re-applied: whoever loaded it got the kernel defaults"
