"""node-sysctl: every key sysctl.d sets, judged against the
measured data: kubeadm's k8s.conf without br_netfilter listed is lost at boot, listed it
is not, a built-in module's key exists, a typo names the nearest key."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import add_kernel, context, fake_live, write

from nftune import sysctl
from nftune.checks import nodesysctl
from nftune.checks.nodesysctl import node_sysctl, node_sysctl_value
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


def test_a_line_s_dot_dot_never_leads_the_value_read_out_of_proc_sys(tree: Path) -> None:
    """systemd-sysctl refuses such a key; nftune neither reads nor echoes what it names.
    A key readable by root only (tcp_fastopen_key) is compared, never shown."""
    add_kernel(tree, "6.1.0-57-amd64")
    write(tree, "/etc/shadow", "root:SECRET-HASH:19000::::::\n")
    write(tree, "/etc/sysctl.d/90-evil.conf", "net/../../../etc/shadow = 1\n"
          "net/ipv4/conf/eth0/../../../../../etc/shadow = 1\n"
          "net.ipv4.ip_forward = 1\n")
    write(tree, "/etc/sysctl.d/91-private.conf", "net.ipv4.tcp_fastopen_key = SECRET-SET\n")
    (tree / "etc/sysctl.d/91-private.conf").chmod(0o600)
    assert not sysctl.safe_key("net/ipv4/conf/eth0/../../../../../etc/shadow")
    assert sysctl.safe_key("net/ipv4/conf/eth0/rp_filter")
    node = fake_live(tree, values={"net/ipv4/ip_forward": "0",
                                   "net/ipv4/tcp_fastopen_key": "SECRET-RUNNING"})
    (tree / "proc/sys/net/ipv4/tcp_fastopen_key").chmod(0o600)
    ctx = context(node)
    ctx.memo("sysctl-keys", lambda: KeyData(KERNELS, KEYS))
    got = node_sysctl_value(ctx)
    assert "SECRET" not in repr(got)
    assert [(r.subject, r.cause, r.actual) for r in got] == [
        ("net.ipv4.ip_forward", "changed-at-runtime", "0"),
        ("net.ipv4.tcp_fastopen_key", "changed-at-runtime", None), ("sysctl.d", "ok", None)]
    assert "readable by root only" in got[1].reason
    assert "SECRET" not in repr(node_sysctl(ctx))


def test_a_dash_line_asks_systemd_to_skip_a_missing_key_and_passes(tree: Path) -> None:
    """The unknown-key hint's own advice: a '-' line is not a failure."""
    add_kernel(tree, "6.1.0-57-amd64", ("nf_conntrack", "br_netfilter"))
    write(tree, "/etc/sysctl.d/k8s.conf", "-net.bridge.bridge-nf-call-iptables = 1\n"
          "-net.netfilter.nf_conntrack_tcp_be_liberl = 1\n-net.bridge.* = 1\n")
    got = results(tree)
    for subject in ("net.bridge.bridge-nf-call-iptables",
                    "net.netfilter.nf_conntrack_tcp_be_liberl", "net.bridge.*"):
        assert got[subject][0] == "passed", (subject, got[subject])
    assert "'-' asks it to skip" in got["net.bridge.bridge-nf-call-iptables"][2]


def test_lines_past_the_bounds_fail_instead_of_passing_unseen(
        tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tree that pushes a lost line past the bounds gets a failure, not a pass."""
    monkeypatch.setattr(sysctl, "MAX_NODE_KEYS", 3)
    add_kernel(tree, "6.1.0-57-amd64", ("nf_conntrack", "br_netfilter"))
    write(tree, "/etc/sysctl.d/10-junk.conf", "".join(f"-kernel.junk{i}\n" for i in range(5)))
    write(tree, "/etc/sysctl.d/k8s.conf", "net.bridge.bridge-nf-call-iptables = 1\n")
    got = results(tree)
    assert "net.bridge.bridge-nf-call-iptables" not in got
    status, cause, text = got["sysctl.d (past the bounds)"]
    assert (status, cause) == ("failed", "too-many") and "3 distinct keys" in text


def test_findings_past_the_listing_bound_are_counted_and_still_fail(
        tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nodesysctl, "MAX_LISTED", 2)
    add_kernel(tree, "6.1.0-57-amd64")
    write(tree, "/etc/sysctl.d/90-typos.conf", "".join(f"net.ipv4.typo{i} = 1\n"
                                                       for i in range(5)))
    got = results(tree)
    assert len([s for s in got if s.startswith("net.ipv4.typo")]) == 2
    status, cause, text = got["sysctl.d (not listed)"]
    assert (status, cause) == ("failed", "too-many")
    assert text.startswith("3 more lines not listed one by one, 3 of them failed")


def test_a_long_value_is_echoed_cut(tree: Path) -> None:
    add_kernel(tree, "6.1.0-57-amd64", ("nf_conntrack", "br_netfilter"))
    write(tree, "/etc/sysctl.d/k8s.conf", f"net.bridge.bridge-nf-call-iptables = {'1' * 5000}\n")
    ctx = context(Root(str(tree)))
    ctx.memo("sysctl-keys", lambda: KeyData(KERNELS, KEYS))
    [r, *_] = node_sysctl(ctx)
    assert r.expected is not None and len(r.expected) == nodesysctl.MAX_SHOWN_VALUE


def test_a_later_dash_on_the_same_value_counts_as_systemd_ors_it_in(tree: Path) -> None:
    add_kernel(tree, "6.1.0-57-amd64", ("nf_conntrack", "br_netfilter"))
    write(tree, "/etc/sysctl.d/10-a.conf", "net.bridge.bridge-nf-call-iptables = 1\n")
    write(tree, "/etc/sysctl.d/20-b.conf", "-net.bridge.bridge-nf-call-iptables = 1\n")
    status, _, text = results(tree)["net.bridge.bridge-nf-call-iptables"]
    assert status == "passed" and "10-a.conf" not in text and "'-' asks" in text


def test_past_the_byte_bound_and_the_glob_bound_is_too_many(
        tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    add_kernel(tree, "6.1.0-57-amd64", ("nf_conntrack", "br_netfilter"))
    write(tree, "/etc/sysctl.d/k8s.conf", "net.ipv4.ip_forward = 1\nnet.bridge.* = 1\n"
          "net.ipv4.conf.*.rp_filter = 1\n")
    assert "sysctl.d (past the bounds)" not in results(tree)
    monkeypatch.setattr(nodesysctl, "MAX_GLOBS", 1)
    assert results(tree)["sysctl.d (past the bounds)"][:2] == ("failed", "too-many")
    monkeypatch.setattr(nodesysctl, "MAX_GLOBS", 200)
    monkeypatch.setattr(sysctl, "MAX_NODE_BYTES", 30)
    got = results(tree)
    assert got["sysctl.d (past the bounds)"][:2] == ("failed", "too-many")
    assert "net.bridge.*" not in got  # past the 30 bytes: not read


def test_a_megabyte_key_is_named_cut(tree: Path) -> None:
    add_kernel(tree, "6.1.0-57-amd64")
    write(tree, "/etc/sysctl.d/90-long.conf", f"net.{'x' * 100_000} = 1\n")
    got = results(tree)
    [subject] = [s for s in got if s.startswith("net.")]
    assert len(subject) == nodesysctl.MAX_SHOWN_VALUE and got[subject][1] == "unknown-key"


def test_a_listed_module_the_kernel_refuses_loads_nothing_first(tree: Path) -> None:
    """module_blacklist= on the running kernel's command line: listing the module does
    not make its keys exist at boot."""
    add_kernel(tree, "6.1.0-57-amd64", ("nf_conntrack", "br_netfilter"))
    write(tree, "/etc/sysctl.d/k8s.conf", "net.bridge.bridge-nf-call-iptables = 1\n")
    write(tree, "/etc/modules-load.d/k8s.conf", "br_netfilter\n")
    write(tree, "/proc/cmdline", "root=/dev/vda1 module_blacklist=br_netfilter\n")
    ctx = context(fake_live(tree))
    ctx.memo("sysctl-keys", lambda: KeyData(KERNELS, KEYS))
    [r, *_] = node_sysctl(ctx)
    assert (r.subject, r.status, r.cause) == (
        "net.bridge.bridge-nf-call-iptables", "failed", "lost-at-boot"), r
