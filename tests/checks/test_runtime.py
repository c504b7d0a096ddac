"""The runtime checks (nftune/checks/runtime.py) on a tree that looks like a running system."""

from __future__ import annotations

from pathlib import Path

from conftest import (
    Commands,
    add_cpus,
    add_kernel,
    add_nic,
    applied,
    context,
    fake_live,
    verified,
    write,
)
from fakes import healthy

from nftune.apply import apply
from nftune.artifacts import Layer
from nftune.result import Cause, Status
from nftune.verify import verify

KEY = "net/netfilter/nf_conntrack_tcp_be_liberal"


def test_all_passes_on_a_right_node(tree: Path, commands: Commands) -> None:
    add_cpus(tree, "0-3")
    add_nic(tree, "eth0", rx=1)
    root = applied(tree, commands, values={KEY: "1"})
    report = verify(context(root, commands, bus=healthy()))
    assert report.ok, [r.line() for r in report.results if r.failed]
    assert {r.check for r in report.results} >= {
        "module-exists", "modules-load", "sysctl-boot", "safety-net", "module-loaded",
        "sysctl-value", "ordering", "order-dropin", "boot-graph", "unit-state", "boot-order",
        "module-timing", "rps", "rfs", "rps-new-devices"}
    # Every check passes; the kube-proxy check has no kube-proxy to look at.
    assert [(r.check, r.cause) for r in report.results if r.status is not Status.PASSED] \
        == [("kube-proxy", "not-applicable")]


def test_value_changed_at_runtime(tree: Path, commands: Commands) -> None:
    root = applied(tree, commands, values={KEY: "0"})
    [r] = verified(root, "sysctl-value")
    assert (r.status, r.cause, r.expected, r.actual) == (
        Status.FAILED, Cause.CHANGED_AT_RUNTIME, "1", "0")


def test_in_a_container_on_the_host_s_kernel_the_hint_is_the_host_s(
        tree: Path, commands: Commands) -> None:
    """PID 1 sees /proc/sys read-only (a container sharing its host's kernel): 'run nftune
    apply' would fail there; the hint says where the value is set."""
    root = applied(tree, commands, values={KEY: "0"})
    [r] = verified(root, "sysctl-value")
    assert r.hint == "run 'nftune apply' to set it now"
    with open(tree / "proc/1/mountinfo", "a") as f:
        f.write("24 23 0:21 /sys /proc/sys ro,nosuid,nodev,noexec shared:13 - proc proc rw\n")
    # Not a container (systemd does not say so): a read-only /proc/sys is the host's own.
    [r] = verified(root, "sysctl-value")
    assert r.hint == "run 'nftune apply' to set it now"
    write(tree, "/run/systemd/container", "systemd-nspawn\n")
    [r] = verified(root, "sysctl-value")
    assert r.hint is not None and r.hint.startswith("a container sharing its host's kernel")


def test_value_overridden_by_a_later_file(tree: Path, commands: Commands) -> None:
    root = applied(tree, commands, values={KEY: "0"})
    write(tree, "/etc/sysctl.d/99-zz-local.conf", "net.netfilter.nf_conntrack_tcp_be_liberal=0\n")
    [r] = verified(root, "sysctl-value")
    assert (r.cause, r.source) == (Cause.OVERRIDDEN_BY_FILE, "/etc/sysctl.d/99-zz-local.conf:1")


def test_module_not_loaded_and_key_missing(tree: Path, commands: Commands) -> None:
    root = applied(tree, commands, loaded=())
    [m] = verified(root, "module-loaded")
    assert (m.status, m.cause) == (Status.FAILED, Cause.NOT_LOADED)
    [v] = verified(root, "sysctl-value")
    assert v.cause is Cause.NOT_LOADED and "nf_conntrack is not loaded" in v.reason


def test_builtin_module_counts_as_loaded(tree: Path, commands: Commands) -> None:
    add_kernel(tree, "6.1.0-test", (), builtin=("nf_conntrack",))
    root = fake_live(tree, loaded=(), values={KEY: "1"})
    commands.allow("systemd-sysctl")
    apply(context(root, commands), Layer.ADMIN)
    assert [c[0] for c in commands.calls] == ["/lib/systemd/systemd-sysctl"]  # no modprobe
    [m] = verified(root, "module-loaded")
    assert (m.status, m.actual) == (Status.PASSED, "built in")
    [e] = verified(root, "modules-load")
    assert e.status is Status.PASSED and "built in" in e.reason
