"""node-sysctl: every key sysctl.d sets, judged against the
measured data: kubeadm's k8s.conf without br_netfilter listed is lost at boot, listed it
is not, a built-in module's key exists, a typo names the nearest key."""

from __future__ import annotations

from pathlib import Path

from conftest import add_kernel, context, write

from nftune.checks.nodesysctl import node_sysctl
from nftune.root import Root
from nftune.sysctlkeys import KeyData, series_of

KERNELS = (("6.1", "6.1.0-57-amd64"),)
KEYS: dict[str, tuple[str | None, ...]] = {
    "net/ipv4/ip_forward": ("",), "net/ipv4/conf/*/rp_filter": ("",),
    "net/bridge/bridge-nf-call-iptables": ("br_netfilter",),
    "net/ipv4/vs/conntrack": ("ip_vs",),
    "net/netfilter/nf_conntrack_tcp_be_liberal": ("nf_conntrack",)}
K8S = """net.bridge.bridge-nf-call-iptables = 1
net.ipv4.ip_forward = 1
net.ipv4.vs.conntrack = 1
net.ipv4.conf.eth0.rp_filter = 0
"""


def results(tree: Path) -> dict[str, tuple[str, str, str]]:
    ctx = context(Root(str(tree)))
    ctx.memo("sysctl-keys", lambda: KeyData(KERNELS, KEYS))
    return {r.subject: (r.status, r.cause, r.reason + (r.hint or "")) for r in node_sysctl(ctx)}


def test_kubeadm_s_k8s_conf_is_lost_at_boot_until_its_modules_are_listed(tree: Path) -> None:
    add_kernel(tree, "6.1.0-57-amd64", ("nf_conntrack", "br_netfilter", "ip_vs"))
    write(tree, "/etc/sysctl.d/k8s.conf", K8S)
    got = results(tree)
    # The core kernel's keys are counted, not listed.
    assert "net.ipv4.ip_forward" not in got and "net.ipv4.conf.eth0.rp_filter" not in got
    assert got["sysctl.d"] == ("passed", "ok", "2 other keys the core kernel has")
    status, cause, text = got["net.bridge.bridge-nf-call-iptables"]
    assert (status, cause) == ("failed", "lost-at-boot")
    assert "k8s.conf:1 sets it, but br_netfilter makes the key" in text
    assert "/etc/modules-load.d/br_netfilter.conf" in text
    assert got["net.ipv4.vs.conntrack"][:2] == ("failed", "lost-at-boot")
    write(tree, "/etc/modules-load.d/k8s.conf", "br_netfilter\nip_vs\n")
    got = results(tree)
    status, _, text = got["net.bridge.bridge-nf-call-iptables"]
    assert status == "passed" and "br_netfilter is loaded first" in text
    assert got["net.ipv4.vs.conntrack"][0] == "passed"


def test_a_built_in_module_s_key_exists_from_the_start(tree: Path) -> None:
    add_kernel(tree, "6.1.0-57-amd64", ("nf_conntrack",), builtin=("br_netfilter",))
    write(tree, "/etc/sysctl.d/k8s.conf", "net.bridge.bridge-nf-call-iptables = 1\n")
    status, _, text = results(tree)["net.bridge.bridge-nf-call-iptables"]
    assert status == "passed" and "built into 6.1.0-57-amd64" in text


def test_a_typo_is_an_unknown_key_with_the_nearest_one(tree: Path) -> None:
    add_kernel(tree, "6.1.0-57-amd64")
    write(tree, "/etc/sysctl.d/90-typo.conf", "net.netfilter.nf_conntrack_tcp_be_liberl = 1\n")
    status, cause, text = results(tree)["net.netfilter.nf_conntrack_tcp_be_liberl"]
    assert (status, cause) == ("failed", "unknown-key")
    assert "did you mean net.netfilter.nf_conntrack_tcp_be_liberal?" in text


def test_series_are_the_measured_one_at_or_below_the_kernel() -> None:
    assert series_of("6.1.0-57-amd64", ["5.10", "6.1", "6.12"]) == "6.1"
    assert series_of("6.6.13+bpo-amd64", ["5.10", "6.1", "6.12"]) == "6.1"
    assert series_of("4.19.0-27-amd64", ["5.10", "6.1"]) is None


def test_globs_write_what_exists_when_systemd_sysctl_runs(tree: Path) -> None:
    add_kernel(tree, "6.1.0-57-amd64", ("nf_conntrack", "br_netfilter"))
    write(tree, "/etc/sysctl.d/50-globs.conf", "net.bridge.*= 1\nnet.ipv4.conf.*.rp_filter = 2\n"
          "net.nothing.* = 1\n-net.bridge.bridge-nf-call-iptables\n")
    got = results(tree)
    status, cause, text = got["net.bridge.*"]
    assert (status, cause) == ("failed", "lost-at-boot") and "br_netfilter" in text
    assert got["net.ipv4.conf.*.rp_filter"][0] == "passed"
    assert got["net.nothing.*"][:2] == ("failed", "unknown-key")
    assert "net.bridge.bridge-nf-call-iptables" not in got  # "-key": only shields


def test_node_sysctl_report_lists_without_failing_and_no_turns_it_off(tree: Path) -> None:
    add_kernel(tree, "6.1.0-57-amd64", ("nf_conntrack", "br_netfilter"))
    write(tree, "/etc/sysctl.d/k8s.conf", "net.bridge.bridge-nf-call-iptables = 1\n")
    write(tree, "/etc/nftune/nftune.conf", "[Verify]\nNodeSysctl = report\n")
    status, cause, text = results(tree)["net.bridge.bridge-nf-call-iptables"]
    assert (status, cause) == ("passed", "lost-at-boot") and "NodeSysctl=report" in text
    write(tree, "/etc/nftune/nftune.conf", "[Verify]\nNodeSysctl = no\n")
    assert results(tree) == {}


def test_a_kernel_older_than_the_data_is_not_judged(tree: Path) -> None:
    add_kernel(tree, "4.19.0-27-amd64", ("nf_conntrack", "br_netfilter"))
    write(tree, "/etc/sysctl.d/k8s.conf", "net.bridge.bridge-nf-call-iptables = 1\n")
    status, _, text = results(tree)["net.bridge.bridge-nf-call-iptables"]
    assert status == "passed" and "older than every measured one, not judged" in text


def test_a_key_another_series_has_is_unknown_on_this_kernel(tree: Path) -> None:
    data = KeyData((*KERNELS, ("6.12", "6.12.118+deb13-amd64")),
                   {**{k: (*v, v[0]) for k, v in KEYS.items()},
                    "net/ipv4/tcp_new_thing": (None, "")})
    add_kernel(tree, "6.1.0-57-amd64")
    write(tree, "/etc/sysctl.d/90-new.conf", "net.ipv4.tcp_new_thing = 1\n")
    ctx = context(Root(str(tree)))
    ctx.memo("sysctl-keys", lambda: data)
    [r] = node_sysctl(ctx)
    assert (r.status, r.cause) == ("failed", "unknown-key")
    assert ("kernel 6.1.0-57-amd64 does not have (of the measured series, only 6.12 has "
            "it, not 6.1)") in r.reason
