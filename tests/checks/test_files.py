"""The boot files' checks (nftune/checks/files.py): modules-load.d, sysctl.d with
systemd's and procps' precedence, the udev safety net."""

from __future__ import annotations

from pathlib import Path

from conftest import Commands, add_kernel, applied, context, verified, write

from nftune.apply import apply
from nftune.artifacts import Layer
from nftune.result import Cause, Status
from nftune.root import Root
from nftune.verify import verify

KEY = "net/netfilter/nf_conntrack_tcp_be_liberal"


def test_masked_modules_load_file(tree: Path, commands: Commands) -> None:
    root = applied(tree, commands, values={KEY: "1"})
    (tree / "etc/modules-load.d/nftune.conf").unlink()
    (tree / "etc/modules-load.d/nftune.conf").symlink_to("/dev/null")
    [r] = verified(root, "modules-load")
    assert (r.status, r.cause) == (Status.FAILED, Cause.FILE_MASKED)
    assert "masked by" in r.reason


def test_foreign_entry_missing_from_the_kernel_fails_modules_load(tree: Path,
                                                                   commands: Commands) -> None:
    root = applied(tree, commands, values={KEY: "1"})
    write(tree, "/etc/modules-load.d/k8s.conf", "# kubespray\nnf_conntrack_ipv4\n")
    bad = [r for r in verified(root, "module-exists") if r.failed]
    assert [(r.subject, r.cause, r.source) for r in bad] == [
        ("nf_conntrack_ipv4", Cause.MODULE_MISSING, "/etc/modules-load.d/k8s.conf:2")]


def test_safety_net_missing_or_stale(tree: Path, commands: Commands) -> None:
    root = applied(tree, commands, values={KEY: "1"})
    rules = tree / "etc/udev/rules.d/90-nftune.rules"
    rules.write_text(rules.read_text().replace("--prefix=/net/netfilter ", ""))
    [r] = verified(root, "safety-net")
    assert r.cause is Cause.FILE_STALE
    rules.unlink()
    [r] = verified(root, "safety-net")
    assert r.cause is Cause.FILE_MISSING


def test_sysctl_conf_read_only_by_procps(tree: Path, commands: Commands) -> None:
    root = applied(tree, commands, values={KEY: "1"})
    write(tree, "/etc/sysctl.conf", "net.netfilter.nf_conntrack_tcp_be_liberal = 0\n")
    [r] = verified(root, "sysctl-boot")
    assert (r.cause, r.source) == (Cause.OVERRIDDEN_BY_FILE, "/etc/sysctl.conf:1")
    assert "sysctl --system" in r.reason


def test_negative_match_line_is_named(tree: Path, commands: Commands) -> None:
    root = applied(tree, commands, values={KEY: "1"})
    write(tree, "/etc/sysctl.d/99-x.conf", "-net.netfilter.nf_conntrack_tcp_be_liberal\n")
    [r] = verified(root, "sysctl-boot")
    assert (r.cause, r.source) == (Cause.OVERRIDDEN_BY_FILE, "/etc/sysctl.d/99-x.conf:1")


def test_vendor_files_alone_pass(tree: Path) -> None:
    add_kernel(tree, "6.1.0-test")
    apply(context(Root(tree)), Layer.VENDOR)
    report = verify(context(Root(tree)))
    assert report.ok, [r.line() for r in report.results]
    [r] = verified(Root(tree), "sysctl-boot")
    assert r.source == "/usr/lib/sysctl.d/90-nftune.conf:7"


def test_stale_file_after_a_config_change(tree: Path, commands: Commands) -> None:
    root = applied(tree, commands, values={KEY: "1"})
    write(tree, "/etc/nftune/nftune.conf",
          "[Sysctl]\nnet.netfilter.nf_conntrack_tcp_be_liberal=2\n")
    [r] = verified(root, "sysctl-boot")
    assert (r.cause, r.expected, r.actual) == (Cause.FILE_STALE, "2", "1")
