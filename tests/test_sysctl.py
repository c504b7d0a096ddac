from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import write

from nftune import sysctl
from nftune.root import Root
from nftune.sysctl import SysctlD, effective, normalize, parse


@pytest.mark.parametrize(("raw", "canon"), [
    ("net.netfilter.nf_conntrack_max", "net/netfilter/nf_conntrack_max"),
    ("net/netfilter/nf_conntrack_max", "net/netfilter/nf_conntrack_max"),
    ("/net/netfilter/nf_conntrack_max", "net/netfilter/nf_conntrack_max"),
    ("net.ipv4.conf.eth0/100.rp_filter", "net/ipv4/conf/eth0.100/rp_filter"),
    ("net/ipv4/conf/eth0.100/rp_filter", "net/ipv4/conf/eth0.100/rp_filter"),
    ("  net.core.somaxconn ", "net/core/somaxconn"),
    ("net//core/./somaxconn", "net/core/somaxconn"),
])
def test_normalize_like_systemd(raw: str, canon: str) -> None:
    assert normalize(raw) == canon


def test_display_round_trips() -> None:
    assert sysctl.display("net/core/somaxconn") == "net.core.somaxconn"
    assert sysctl.display("net/ipv4/conf/eth0.100/rp_filter") == "net/ipv4/conf/eth0.100/rp_filter"


def test_values_compare_as_the_kernel_prints() -> None:
    assert sysctl.same_value("32768\t60999", "32768 60999")
    assert not sysctl.same_value("1", "0")


def test_parse_prefixes_and_comments() -> None:
    a = parse("# c\n; c\n-net.core.x = 1\nnot an assignment\n-net.core.y\n net/core/z=2 \n", "/f")
    assert [(x.key, x.value, x.ignore_failure, x.line) for x in a] == [
        ("net/core/x", "1", True, 3), ("net/core/y", None, True, 5), ("net/core/z", "2", False, 6)]


K = "net/netfilter/nf_conntrack_tcp_be_liberal"


def test_last_file_wins_and_a_repeat_does_not_move() -> None:
    a = parse(f"{K}=1\n", "/a") + parse(f"{K}=0\n", "/b") + parse(f"{K}=0\n", "/c")
    w = effective(a, K).winner
    assert w is not None and (w.file, w.value) == ("/b", "0")


def test_explicit_beats_glob_in_any_order() -> None:
    a = parse(f"{K}=1\n", "/a") + parse("net.netfilter.*=0\n", "/z")
    w = effective(a, K).winner
    assert w is not None and w.file == "/a"


def test_glob_applies_when_no_explicit_key() -> None:
    a = parse("net.netfilter.nf_conntrack_*=0\n", "/a") + parse("net.*.x=5\n", "/b")
    w = effective(a, K).winner
    assert w is not None and (w.file, w.value) == ("/a", "0")


def test_negative_match_removes_the_setting() -> None:
    a = parse(f"{K}=1\n", "/a") + parse("-net.netfilter.nf_conntrack_tcp_be_liberal\n", "/b")
    assert effective(a, K).winner is None


def test_sysctl_d_precedence_masks_and_sysctl_conf(tree: Path) -> None:
    root = Root(tree)
    write(tree, "/usr/lib/sysctl.d/50-a.conf", f"{K}=5\n")
    write(tree, "/etc/sysctl.d/50-a.conf", f"{K}=6\n")  # same name: /etc masks /usr/lib
    write(tree, "/usr/lib/sysctl.d/60-b.conf", f"{K}=7\n")
    (tree / "etc/sysctl.d/60-b.conf").symlink_to("/dev/null")  # masked
    write(tree, "/etc/sysctl.conf", "net.netfilter.nf_conntrack_tcp_be_liberal = 0\n")
    d = SysctlD.load(root)
    assert [(f.name, f.path, f.masked) for f in d.files] == [
        ("50-a.conf", "/etc/sysctl.d/50-a.conf", False),
        ("60-b.conf", "/etc/sysctl.d/60-b.conf", True)]
    w = d.effective(K).winner
    assert w is not None and w.value == "6"
    # Not linked into sysctl.d: only `sysctl --system` reads it, last.
    p = d.effective_procps(K).winner
    assert p is not None and p.source == "/etc/sysctl.conf:1"
    # Debian links it as 99-sysctl.conf: then systemd-sysctl reads it too, in name order.
    os.symlink("../sysctl.conf", tree / "etc/sysctl.d/99-sysctl.conf")
    d = SysctlD.load(root)
    w = d.effective(K).winner
    assert w is not None and w.source == "/etc/sysctl.d/99-sysctl.conf:1"
    assert d.procps_only == ()


def test_absolute_symlinks_resolve_inside_the_tree(tree: Path) -> None:
    write(tree, "/srv/k.conf", f"{K}=3\n")
    (tree / "etc/sysctl.d").mkdir(parents=True)
    (tree / "etc/sysctl.d/70-k.conf").symlink_to("/srv/k.conf")
    w = SysctlD.load(Root(tree)).effective(K).winner
    assert w is not None and (w.file, w.value) == ("/etc/sysctl.d/70-k.conf", "3")


def test_merged_usr_lib_is_not_read_twice(tree: Path) -> None:
    (tree / "usr/lib").mkdir(parents=True)
    (tree / "lib").symlink_to("usr/lib")
    assert Root(tree).conf_dirs("sysctl.d") == [
        "/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d"]
