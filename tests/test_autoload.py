"""[Modules] Load=auto: apply lists the modules the node's own
sysctl.d keys need, in nftune's modules-load.d file and safety net, only where every
installed kernel has them as modules; and node-sysctl then passes."""

from __future__ import annotations

from pathlib import Path

from conftest import add_kernel, context, fake_live, write

from nftune.apply import apply
from nftune.artifacts import Layer
from nftune.autoload import pulled, trees
from nftune.checks.files import safety_net
from nftune.checks.nodesysctl import node_sysctl
from nftune.root import Root
from nftune.sysctlkeys import KeyData

KERNELS = (("6.1", "6.1.0-57-amd64"),)
KEYS: dict[str, tuple[str | None, ...]] = {
    "net/ipv4/ip_forward": ("",),
    "net/bridge/bridge-nf-call-iptables": ("br_netfilter",),
    "net/bridge/bridge-nf-call-ip6tables": ("br_netfilter",),
    "net/ipv4/vs/conntrack": ("ip_vs",), "net/sctp/addip_enable": ("sctp",),
    "net/netfilter/nf_conntrack_tcp_be_liberal": ("nf_conntrack",)}
K8S = ("net.bridge.bridge-nf-call-iptables = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\n"
       "net.ipv4.ip_forward = 1\nnet.sctp.addip_enable = 1\n")


def ctx_of(tree: Path):  # type: ignore[no-untyped-def]
    ctx = context(Root(str(tree)))
    ctx.memo("sysctl-keys", lambda: KeyData(KERNELS, KEYS))
    return ctx


def test_auto_lists_what_the_node_s_keys_need_and_cures_lost_at_boot(tree: Path) -> None:
    add_kernel(tree, "6.1.0-57-amd64", ("nf_conntrack", "br_netfilter"), builtin=("sctp",))
    write(tree, "/etc/sysctl.d/k8s.conf", K8S)
    write(tree, "/etc/nftune/nftune.conf", "[Modules]\nLoad = nf_conntrack auto\n")
    got = pulled(ctx_of(tree))
    assert [(p.module, p.lines) for p in got] == [("br_netfilter", (
        f"net.bridge.bridge-nf-call-iptables ({tree}/etc/sysctl.d/k8s.conf:1)",
        f"net.bridge.bridge-nf-call-ip6tables ({tree}/etc/sysctl.d/k8s.conf:2)"))]
    apply(ctx_of(tree), Layer.ADMIN)
    listed = (tree / "etc/modules-load.d/nftune.conf").read_text()
    assert "\nbr_netfilter\n" in listed and "sctp" not in listed  # built in: nothing to load
    rules = (tree / "etc/udev/rules.d/90-nftune.rules").read_text() if (
        tree / "etc/udev/rules.d/90-nftune.rules").exists() else ""
    assert 'KERNEL=="br_netfilter"' in rules and "--prefix=/net/bridge" in rules, rules
    assert all(r.status == "passed" for r in node_sysctl(ctx_of(tree))), \
        [r for r in node_sysctl(ctx_of(tree)) if r.failed]


def test_auto_never_lists_a_module_one_installed_kernel_lacks(tree: Path) -> None:
    add_kernel(tree, "6.1.0-57-amd64", ("nf_conntrack", "br_netfilter"))
    add_kernel(tree, "6.1.0-58-amd64", ("nf_conntrack",))
    write(tree, "/etc/sysctl.d/k8s.conf", K8S)
    write(tree, "/etc/nftune/nftune.conf", "[Modules]\nLoad = nf_conntrack auto\n")
    assert pulled(ctx_of(tree)) == []


def test_auto_skips_a_module_kmod_would_not_insert(tree: Path) -> None:
    """A blacklisted module is skipped by systemd-modules-load; an install command that
    fails fails its unit: auto lists neither."""
    add_kernel(tree, "6.1.0-57-amd64", ("nf_conntrack", "br_netfilter", "ip_vs"))
    write(tree, "/etc/sysctl.d/k8s.conf", K8S + "net.ipv4.vs.conntrack = 1\n")
    write(tree, "/etc/nftune/nftune.conf", "[Modules]\nLoad = nf_conntrack auto\n")
    write(tree, "/etc/modprobe.d/local.conf", "blacklist br_netfilter\ninstall ip_vs /bin/false\n")
    assert pulled(ctx_of(tree)) == []


def test_auto_works_with_the_node_checks_off_and_verify_expects_its_safety_net(
        tree: Path) -> None:
    """sctp is no module nftune knows: its rule comes from the measured data alone."""
    add_kernel(tree, "6.1.0-57-amd64", ("nf_conntrack", "br_netfilter", "sctp"))
    write(tree, "/etc/sysctl.d/k8s.conf", K8S)
    write(tree, "/etc/nftune/nftune.conf",
          "[Modules]\nLoad = nf_conntrack auto\n[Verify]\nNodeSysctl = no\n")
    assert [p.module for p in pulled(ctx_of(tree))] == ["br_netfilter", "sctp"]
    apply(ctx_of(tree), Layer.ADMIN)
    assert "\nbr_netfilter\nsctp\n" in (tree / "etc/modules-load.d/nftune.conf").read_text()
    assert "--prefix=/net/sctp" in (tree / "etc/udev/rules.d/90-nftune.rules").read_text()
    net = safety_net(ctx_of(tree))
    assert net and all(r.status == "passed" for r in net), net


def test_auto_skips_a_module_the_kernel_command_line_refuses(tree: Path) -> None:
    add_kernel(tree, "6.1.0-57-amd64", ("nf_conntrack", "br_netfilter"))
    write(tree, "/etc/sysctl.d/k8s.conf", K8S)
    write(tree, "/etc/nftune/nftune.conf", "[Modules]\nLoad = nf_conntrack auto\n")
    write(tree, "/proc/cmdline", "root=/dev/vda1 module_blacklist=br_netfilter\n")
    ctx = context(fake_live(tree))
    ctx.memo("sysctl-keys", lambda: KeyData(KERNELS, KEYS))
    assert pulled(ctx) == []


def test_a_key_right_under_a_top_directory_is_its_own_prefix() -> None:
    """`net` as a prefix would re-apply every network key each time the module loads."""
    data = KeyData((("6.1", "6.1.0-57-amd64"),), {
        "net/nf_conntrack_max": ("nf_conntrack",),
        "net/netfilter/nf_conntrack_max": ("nf_conntrack",),
        "net/netfilter/nf_conntrack_tcp_be_liberal": ("nf_conntrack",),
        "net/ipv4/conf/*/arp_filter": ("",)})
    assert trees(data, "nf_conntrack") == ("net/netfilter", "net/nf_conntrack_max")
