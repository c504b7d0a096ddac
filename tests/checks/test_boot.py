"""The proof from this boot's unit states and timestamps, on a fake of the bus adapter
(the real one is exercised in test_nspawn.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import Commands, add_kernel, context, fake_live, family, write
from fakes import CAP, ML, RW, SC, T0, healthy, ran, skipped

from nftune.result import Cause, CheckResult, Status
from nftune.root import Root
from nftune.systemd import UnitState, unit_from_properties, unit_path
from nftune.timespan import fmt_span

KEY = "net/netfilter/nf_conntrack_tcp_be_liberal"
BOOT_ID = "0f3a2c1e-6a8b-4c7d-9e0f-112233445566"


@pytest.fixture
def node(tree: Path) -> Root:
    """A live-looking node: nf_conntrack a module of the running kernel, listed, value 1."""
    add_kernel(tree, "6.1.0-test")
    write(tree, "/etc/modules-load.d/nftune.conf", "nf_conntrack\n")
    return fake_live(tree, values={KEY: "1"})


def check_boot(bus: object, root: Root, commands: Commands | None = None) -> list[CheckResult]:
    return family(context(root, commands, bus=bus), "boot")


def by(results: list[CheckResult], check: str, subject: str) -> CheckResult:
    [r] = [r for r in results if r.check == check and r.subject == subject]
    return r


def journal_lines(*messages: str) -> str:
    return "".join(json.dumps({"MESSAGE": m}) + "\n" for m in messages)


def test_a_healthy_boot_passes_every_check(node: Root) -> None:
    out = check_boot(healthy(), node)
    assert [r.status for r in out] == [Status.PASSED] * len(out), [r.line() for r in out]
    order = by(out, "boot-order", SC)
    assert order.actual == f"{ML} finished @109ms, {SC} started @120ms"
    assert by(out, "unit-state", ML).reason == "@100ms +10ms"
    timing = by(out, "module-timing", "nf_conntrack")
    assert timing.source == "/etc/modules-load.d/nftune.conf:1"


def test_container_without_cap_sys_module(node: Root) -> None:
    bus = healthy()
    bus.units[ML] = skipped(ML, CAP)
    bus.units[SC] = skipped(SC, RW, after=(ML,))
    out = check_boot(bus, node)
    ml, sc = by(out, "unit-state", ML), by(out, "unit-state", SC)
    assert (ml.cause, ml.reason) == (Cause.MODULES_LOAD_SKIPPED,
                                     "skipped: ConditionCapability=CAP_SYS_MODULE failed")
    assert ml.hint and "capability" in ml.hint
    assert (sc.cause, sc.reason) == (Cause.SYSCTL_SKIPPED,
                                     "skipped: ConditionPathIsReadWrite=/proc/sys/net/ failed")
    assert by(out, "boot-order", SC).status is Status.SKIPPED
    assert by(out, "boot-graph", SC).status is Status.PASSED
    late = by(out, "module-timing", "nf_conntrack")
    assert late.cause is Cause.LOADED_LATE and late.failed
    assert "re-applied after the load" in late.reason  # the value is 1 after all


def test_module_loaded_late_and_value_lost(tree: Path) -> None:
    add_kernel(tree, "6.1.0-test")
    root = fake_live(tree, values={KEY: "0"})  # nothing lists nf_conntrack
    out = check_boot(healthy(), root)
    late = by(out, "module-timing", "nf_conntrack")
    assert late.cause is Cause.LOADED_LATE
    assert late.reason.startswith("not listed in modules-load.d at boot; its sysctls were not "
                                  "re-applied")


def test_sysctl_said_the_key_was_missing(node: Root, commands: Commands) -> None:
    write(node.path, "/proc/sys/kernel/random/boot_id", BOOT_ID + "\n")
    commands.answer("journalctl", journal_lines(
        f"Couldn't write '1' to '{KEY}', ignoring: No such file or directory"),
        "SYSLOG_IDENTIFIER=systemd-sysctl")
    out = check_boot(healthy(), node, commands)
    late = by(out, "module-timing", "nf_conntrack")
    assert late.cause is Cause.LOADED_LATE and "Couldn't write" in late.reason
    sysctl_call = commands.calls[-1]
    assert f"_BOOT_ID={BOOT_ID.replace('-', '')}" in sysctl_call
    assert f"--root={node.path}" in sysctl_call
    assert f"_PID={healthy().units[SC].exec_main_pid}" in sysctl_call


def test_listed_after_this_boot_began(node: Root) -> None:
    out = check_boot(healthy(booted_at=time.time() - 3600), node)
    r = by(out, "module-timing", "nf_conntrack")
    assert (r.status, r.cause) == (Status.SKIPPED, Cause.LOADED_LATE)
    assert "after this boot began" in r.reason


def test_builtin_modules_are_always_in_time(tree: Path) -> None:
    d = tree / "lib/modules/6.1.0-test"
    d.mkdir(parents=True)
    (d / "modules.builtin").write_text("kernel/net/netfilter/nf_conntrack.ko\n")
    root = fake_live(tree, values={KEY: "1"})
    r = by(check_boot(healthy(), root), "module-timing", "nf_conntrack")
    assert (r.status, r.actual) == (Status.PASSED, "built in")


def test_modules_load_failed_names_the_module_from_the_journal(
        node: Root, commands: Commands) -> None:
    write(node.path, "/proc/sys/kernel/random/boot_id", BOOT_ID + "\n")
    commands.answer("journalctl", journal_lines("Failed to find module 'nf_conntrack_ipv4'"),
                    "SYSLOG_IDENTIFIER=systemd-modules-load")
    bus = healthy().change(ML, active_state="failed", result="exit-code", exec_main_status=1)
    r = by(check_boot(bus, node, commands), "unit-state", ML)
    assert r.cause is Cause.MODULES_LOAD_FAILED
    assert r.reason == ("failed (exit-code, exit status 1): "
                        "Failed to find module 'nf_conntrack_ipv4'")
    assert "--priority=3" in commands.calls[0]


@pytest.mark.parametrize(("failing", "timing"), [("ip_vs", Status.PASSED),
                                                 ("nf_conntrack", Status.FAILED)])
def test_a_failed_unit_still_loads_the_other_modules(
        node: Root, commands: Commands, failing: str, timing: Status) -> None:
    write(node.path, "/proc/sys/kernel/random/boot_id", BOOT_ID + "\n")
    commands.answer("journalctl", journal_lines(
        f"Failed to insert module '{failing}': Invalid argument"),
        "SYSLOG_IDENTIFIER=systemd-modules-load")
    bus = healthy().change(ML, active_state="failed", result="exit-code", exec_main_status=1)
    r = by(check_boot(bus, node, commands), "module-timing", "nf_conntrack")
    assert r.status is timing, r.line()


def test_modules_load_succeeded_but_a_module_was_missing(node: Root) -> None:
    """systemd 252 logs a missing module and exits 0; without a journal the running
    kernel's module list names it."""
    write(node.path, "/etc/modules-load.d/k8s.conf", "nf_conntrack_ipv4\n")
    r = by(check_boot(healthy(), node), "unit-state", ML)
    assert r.cause is Cause.MODULES_LOAD_FAILED
    assert r.reason == ("active, but not every listed module was loaded: nf_conntrack_ipv4 "
                        "(listed in /etc/modules-load.d/k8s.conf:1) is not in the running "
                        "kernel")


def test_sysctl_started_before_modules_load_finished(node: Root) -> None:
    bus = healthy().change(SC, exec_main_start=T0 + 105_000, inactive_exit=T0 + 105_000)
    r = by(check_boot(bus, node), "boot-order", SC)
    assert r.cause is Cause.ORDERING_BROKEN
    assert r.actual == f"{ML} finished @109ms, {SC} started @105ms"


@pytest.mark.parametrize("state", ["masked", "not-found"])
def test_masked_or_missing_unit(node: Root, state: str) -> None:
    bus = healthy().change(ML, load_state=state)
    out = check_boot(bus, node)
    want = Cause.UNIT_MASKED if state == "masked" else Cause.UNIT_MISSING
    assert by(out, "unit-state", ML).cause is want
    assert by(out, "boot-graph", SC).cause is want


def test_unit_that_never_ran(node: Root) -> None:
    bus = healthy()
    bus.units[ML] = ran(ML, 0, 0, active_state="inactive", result="", condition_timestamp=0,
                        inactive_exit=0, exec_main_start=0, exec_main_exit=0, active_enter=0)
    r = by(check_boot(bus, node), "unit-state", ML)
    assert r.cause is Cause.NOT_RUN


def test_live_graph_cycle_is_named_unit_by_unit(node: Root) -> None:
    bus = healthy()
    bus.change(ML, after=(*bus.units[ML].after, SC),
               dropin_paths=("/etc/systemd/system/systemd-modules-load.service.d/x.conf",))
    r = by(check_boot(bus, node), "boot-graph", SC)
    assert r.cause is Cause.ORDERING_CYCLE
    assert r.source and "modules-load.service.d/x.conf" in r.source
    assert r.reason.startswith(f"ordering cycle: {SC} < {ML} < {SC} ("), r.reason
    assert f"{ML} < {SC}: After= of {SC}" in r.reason
    assert f"{SC} < {ML}: After= of {ML}" in r.reason


DELETED = (f"sysinit.target: Job {ML}/start deleted to break ordering cycle starting with "
           "sysinit.target/start")


def test_a_job_deleted_to_break_a_cycle_is_its_own_cause(
        node: Root, commands: Commands) -> None:
    write(node.path, "/proc/sys/kernel/random/boot_id", BOOT_ID + "\n")
    commands.answer("journalctl", journal_lines(
        "sysinit.target: Found ordering cycle on agent.service/start", DELETED))
    bus = healthy()
    bus.units[ML] = ran(ML, 0, 0, active_state="inactive", result="", condition_timestamp=0,
                        inactive_exit=0, exec_main_start=0, exec_main_exit=0, active_enter=0)
    bus.units[ML] = bus.units[ML]._replace(after=(SC,))
    out = check_boot(bus, node, commands)
    r = by(out, "unit-state", ML)
    assert (r.status, r.cause) == (Status.FAILED, Cause.ORDERING_CYCLE)
    assert DELETED in r.reason
    assert f"this boot: {DELETED}" in by(out, "boot-graph", SC).reason
    # PID 1, or the kernel log (where a real boot's first transaction is): no one else.
    assert any(a.endswith("SYSLOG_IDENTIFIER=systemd _PID=1 + _BOOT_ID="
                          f"{BOOT_ID.replace('-', '')} SYSLOG_IDENTIFIER=systemd "
                          "_TRANSPORT=kernel") and "--priority=4" in a
               for a in map(" ".join, commands.calls)), commands.calls


def test_a_unit_on_a_cycle_that_never_ran_lost_its_job_even_unlogged(node: Root) -> None:
    """In a container the boot's first transaction is logged before journald: no line."""
    bus = healthy()
    bus.units[ML] = ran(ML, 0, 0, active_state="inactive", result="", condition_timestamp=0,
                        inactive_exit=0, exec_main_start=0, exec_main_exit=0, active_enter=0)
    bus.units[ML] = bus.units[ML]._replace(after=(SC,))
    r = by(check_boot(bus, node), "unit-state", ML)
    assert r.cause is Cause.ORDERING_CYCLE and "on an ordering cycle" in r.reason


def test_a_unit_that_never_ran_without_a_cycle_is_not_run(
        node: Root, commands: Commands) -> None:
    write(node.path, "/proc/sys/kernel/random/boot_id", BOOT_ID + "\n")
    commands.answer("journalctl", journal_lines(DELETED.replace(ML, "other.service")))
    bus = healthy()
    bus.units[ML] = ran(ML, 0, 0, active_state="inactive", result="", condition_timestamp=0,
                        inactive_exit=0, exec_main_start=0, exec_main_exit=0, active_enter=0)
    assert by(check_boot(bus, node, commands), "unit-state", ML).cause is Cause.NOT_RUN


def test_live_graph_without_the_edge(node: Root) -> None:
    bus = healthy().change(SC, after=("-.slice",))
    r = by(check_boot(bus, node), "boot-graph", SC)
    assert r.cause is Cause.ORDERING_BROKEN


# -- the adapter's pure parts -----------------------------------------------------------------

def test_unit_path_escaping() -> None:
    assert unit_path("systemd-sysctl.service") == \
        b"/org/freedesktop/systemd1/unit/systemd_2dsysctl_2eservice"
    assert unit_path("-.mount") == b"/org/freedesktop/systemd1/unit/_2d_2emount"
    assert unit_path("1x.service").endswith(b"/_31x_2eservice")


def test_properties_become_plain_values() -> None:
    u = unit_from_properties(SC, {
        b"LoadState": b"loaded", b"After": [b"a.service", b"b.target"],
        b"Conditions": [(b"ConditionCapability", False, True, b"CAP_SYS_MODULE", -1)],
        b"ConditionResult": False, b"ExecMainStartTimestampMonotonic": 12,
        b"DropInPaths": [b"/etc/x.conf"], b"FragmentPath": b"/usr/lib/x"})
    assert u.after == ("a.service", "b.target")
    assert str(u.failed_conditions[0]) == "ConditionCapability=!CAP_SYS_MODULE"
    assert (u.exec_main_start, u.condition_result, u.sources) == (
        12, False, "/usr/lib/x, /etc/x.conf")
    assert u.found and not u.masked


@pytest.mark.parametrize(("us", "text"), [(0, "0us"), (999, "999us"), (1500, "1ms"),
                                          (1_234_000, "1.234s"), (2_000_000, "2s"),
                                          (61_500_000, "1min 1.5s")])
def test_fmt_span(us: int, text: str) -> None:
    assert fmt_span(us) == text


def test_live_graph_follows_only_units_started_this_boot(node: Root) -> None:
    """An agent that is loaded (named by an After=) but was never started orders nothing;
    started, it closes a cycle through modules-load."""
    bus = healthy()
    bus.units["agent.service"] = UnitState("agent.service", "loaded", after=(SC,))
    bus.change(ML, after=(*bus.units[ML].after, "agent.service"))
    assert by(check_boot(bus, node), "boot-graph", SC).status is Status.PASSED
    bus.units["agent.service"] = ran("agent.service", 130, 1, after=(SC,))
    r = by(check_boot(bus, node), "boot-graph", SC)
    assert r.cause is Cause.ORDERING_CYCLE and "agent.service" in r.reason
