"""Runtime checks and `apply` on a tmp tree that looks like a running system."""

from __future__ import annotations

from pathlib import Path

from conftest import Commands, add_cpus, add_kernel, add_nic, add_units, context, fake_live, write
from fakes import healthy

from nftune.apply import apply
from nftune.artifacts import Layer
from nftune.result import Cause, CheckResult, Status
from nftune.root import Root
from nftune.verify import verify

KEY = "net/netfilter/nf_conntrack_tcp_be_liberal"


def results(root: Root, check: str) -> list[CheckResult]:
    return [r for r in verify(context(root, bus=healthy())).results if r.check == check]


def applied(tree: Path, commands: Commands, **live: object) -> Root:
    add_kernel(tree, "6.1.0-test", ("nf_conntrack", "ip_vs"))
    add_units(tree)
    root = fake_live(tree, **live)  # type: ignore[arg-type]
    commands.allow("modprobe", "systemd-sysctl", "udevadm")
    apply(context(root, commands), Layer.ADMIN)
    return root


def test_apply_on_a_live_system_loads_then_applies(tree: Path, commands: Commands) -> None:
    write(tree, "/usr/lib/systemd/systemd-sysctl", "")
    write(tree, "/run/udev/control", "")
    (tree / "run/systemd/system").mkdir(parents=True)
    write(tree, "/etc/nftune/nftune.conf", "[Modules]\nLoad=ip_vs\n"
                                           "[Sysctl]\nnet.netfilter.nf_conntrack_max=1024\n")
    commands.allow("systemctl")
    root = applied(tree, commands)
    assert commands.calls == [
        ["modprobe", "-a", "nf_conntrack", "ip_vs"],
        ["/usr/lib/systemd/systemd-sysctl", f"--prefix=/{KEY}",
         "--prefix=/net/netfilter/nf_conntrack_max"],
        ["udevadm", "control", "--reload"],
        ["systemctl", "daemon-reload"],  # the systemd-sysctl drop-in is new
    ]
    commands.calls.clear()
    apply(context(root, commands), Layer.ADMIN)  # nothing changed: nothing to reload
    assert [c[0] for c in commands.calls] == ["modprobe", "/usr/lib/systemd/systemd-sysctl"]


def test_apply_under_root_never_touches_the_kernel(tree: Path, commands: Commands) -> None:
    apply(context(Root(tree, live=False), commands), Layer.ADMIN)
    assert commands.calls == []


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
    [r] = results(root, "sysctl-value")
    assert (r.status, r.cause, r.expected, r.actual) == (
        Status.FAILED, Cause.CHANGED_AT_RUNTIME, "1", "0")


def test_value_overridden_by_a_later_file(tree: Path, commands: Commands) -> None:
    root = applied(tree, commands, values={KEY: "0"})
    write(tree, "/etc/sysctl.d/99-zz-local.conf", "net.netfilter.nf_conntrack_tcp_be_liberal=0\n")
    [r] = results(root, "sysctl-value")
    assert (r.cause, r.source) == (Cause.OVERRIDDEN_BY_FILE, "/etc/sysctl.d/99-zz-local.conf:1")


def test_module_not_loaded_and_key_missing(tree: Path, commands: Commands) -> None:
    root = applied(tree, commands, loaded=())
    [m] = results(root, "module-loaded")
    assert (m.status, m.cause) == (Status.FAILED, Cause.NOT_LOADED)
    [v] = results(root, "sysctl-value")
    assert v.cause is Cause.NOT_LOADED and "nf_conntrack is not loaded" in v.reason


def test_builtin_module_counts_as_loaded(tree: Path, commands: Commands) -> None:
    add_kernel(tree, "6.1.0-test", (), builtin=("nf_conntrack",))
    root = fake_live(tree, loaded=(), values={KEY: "1"})
    commands.allow("systemd-sysctl")
    apply(context(root, commands), Layer.ADMIN)
    assert [c[0] for c in commands.calls] == ["/lib/systemd/systemd-sysctl"]  # no modprobe
    [m] = results(root, "module-loaded")
    assert (m.status, m.actual) == (Status.PASSED, "built in")
    [e] = results(root, "modules-load")
    assert e.status is Status.PASSED and "built in" in e.reason


def test_masked_modules_load_file(tree: Path, commands: Commands) -> None:
    root = applied(tree, commands, values={KEY: "1"})
    (tree / "etc/modules-load.d/nftune.conf").unlink()
    (tree / "etc/modules-load.d/nftune.conf").symlink_to("/dev/null")
    [r] = results(root, "modules-load")
    assert (r.status, r.cause) == (Status.FAILED, Cause.FILE_MASKED)
    assert "masked by" in r.reason


def test_foreign_entry_missing_from_the_kernel_fails_modules_load(tree: Path,
                                                                   commands: Commands) -> None:
    root = applied(tree, commands, values={KEY: "1"})
    write(tree, "/etc/modules-load.d/k8s.conf", "# kubespray\nnf_conntrack_ipv4\n")
    bad = [r for r in results(root, "module-exists") if r.failed]
    assert [(r.subject, r.cause, r.source) for r in bad] == [
        ("nf_conntrack_ipv4", Cause.MODULE_MISSING, "/etc/modules-load.d/k8s.conf:2")]


def test_safety_net_missing_or_stale(tree: Path, commands: Commands) -> None:
    root = applied(tree, commands, values={KEY: "1"})
    rules = tree / "etc/udev/rules.d/90-nftune.rules"
    rules.write_text(rules.read_text().replace("--prefix=/net/netfilter ", ""))
    [r] = results(root, "safety-net")
    assert r.cause is Cause.FILE_STALE
    rules.unlink()
    [r] = results(root, "safety-net")
    assert r.cause is Cause.FILE_MISSING


def test_sysctl_conf_read_only_by_procps(tree: Path, commands: Commands) -> None:
    root = applied(tree, commands, values={KEY: "1"})
    write(tree, "/etc/sysctl.conf", "net.netfilter.nf_conntrack_tcp_be_liberal = 0\n")
    [r] = results(root, "sysctl-boot")
    assert (r.cause, r.source) == (Cause.OVERRIDDEN_BY_FILE, "/etc/sysctl.conf:1")
    assert "sysctl --system" in r.reason


def test_negative_match_line_is_named(tree: Path, commands: Commands) -> None:
    root = applied(tree, commands, values={KEY: "1"})
    write(tree, "/etc/sysctl.d/99-x.conf", "-net.netfilter.nf_conntrack_tcp_be_liberal\n")
    [r] = results(root, "sysctl-boot")
    assert (r.cause, r.source) == (Cause.OVERRIDDEN_BY_FILE, "/etc/sysctl.d/99-x.conf:1")


def test_vendor_files_alone_pass(tree: Path) -> None:
    add_kernel(tree, "6.1.0-test")
    apply(context(Root(tree)), Layer.VENDOR)
    report = verify(context(Root(tree)))
    assert report.ok, [r.line() for r in report.results]
    [r] = results(Root(tree), "sysctl-boot")
    assert r.source == "/usr/lib/sysctl.d/90-nftune.conf:7"


def test_stale_file_after_a_config_change(tree: Path, commands: Commands) -> None:
    root = applied(tree, commands, values={KEY: "1"})
    write(tree, "/etc/nftune/nftune.conf",
          "[Sysctl]\nnet.netfilter.nf_conntrack_tcp_be_liberal=2\n")
    [r] = results(root, "sysctl-boot")
    assert (r.cause, r.expected, r.actual) == (Cause.FILE_STALE, "2", "1")
