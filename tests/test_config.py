from __future__ import annotations

from pathlib import Path

import pytest
from conftest import add_kernel, write

from nftune.apply import apply
from nftune.artifacts import Layer
from nftune.config import load, parse
from nftune.context import Context
from nftune.errors import NftuneError
from nftune.root import Root
from nftune.sysctl import SysctlD


def test_defaults_do_the_job_with_no_config(root: Root) -> None:
    cfg = load(root)
    assert [m.name for m in cfg.modules] == ["nf_conntrack"]
    assert [(s.display, s.value) for s in cfg.sysctls] == [
        ("net.netfilter.nf_conntrack_tcp_be_liberal", "1")]
    assert cfg.sysctl_priority == "90"
    assert cfg.sources == ()


def test_main_file_then_dropins_in_name_order_later_wins(tree: Path, root: Root) -> None:
    write(tree, "/etc/nftune/nftune.conf", "[Sysctl]\nnet.netfilter.nf_conntrack_max=1\n")
    write(tree, "/etc/nftune/nftune.conf.d/20-b.conf",
          "[Sysctl]\nnet.netfilter.nf_conntrack_max=3\n")
    write(tree, "/etc/nftune/nftune.conf.d/10-a.conf",
          "[Sysctl]\nnet.netfilter.nf_conntrack_max=2\n[Modules]\nLoad=ip_vs br_netfilter\n")
    write(tree, "/etc/nftune/nftune.conf.d/ignored.txt", "[Bogus]\n")
    cfg = load(root)
    assert cfg.sources == ("/etc/nftune/nftune.conf", "/etc/nftune/nftune.conf.d/10-a.conf",
                           "/etc/nftune/nftune.conf.d/20-b.conf")
    [s] = [s for s in cfg.sysctls if s.key == "net/netfilter/nf_conntrack_max"]
    assert s.value == "3"
    assert str(s.origin) == "/etc/nftune/nftune.conf.d/20-b.conf:2"
    assert [m.name for m in cfg.modules] == ["nf_conntrack", "ip_vs", "br_netfilter"]


def test_empty_assignments_reset() -> None:
    cfg = parse([("/c", "[Modules]\nLoad=\nLoad=ip_vs\n[Sysctl]\n"
                       "net.netfilter.nf_conntrack_tcp_be_liberal=\n")])
    assert [m.name for m in cfg.modules] == ["ip_vs"]
    assert cfg.sysctls == ()


def test_values_change_and_priority_is_set() -> None:
    cfg = parse([("/c", "# comment\n; comment\n[Sysctl]\n"
                       "net/netfilter/nf_conntrack_tcp_be_liberal = 0\n"
                       "net.ipv4.ip_local_port_range = 1024 \\\n 65000\n"
                       "[Files]\nSysctlPriority=95\n")])
    assert [(s.key, s.value) for s in cfg.sysctls] == [
        ("net/netfilter/nf_conntrack_tcp_be_liberal", "0"),
        ("net/ipv4/ip_local_port_range", "1024  65000")]
    assert cfg.sysctl_priority == "95"


def test_alternatives_and_dash_names_normalize() -> None:
    cfg = parse([("/c", "[Modules]\nLoad=nf-conntrack-ipv4|nf_conntrack\n")])
    assert cfg.modules[-1].alternatives == ("nf_conntrack_ipv4", "nf_conntrack")


@pytest.mark.parametrize(("text", "line", "needle"), [
    ("[Modules\nLoad=x\n", 1, "malformed section"),
    ("Load=x\n", 1, "outside of any section"),
    ("[Modules]\nLoad x\n", 2, "not an assignment"),
    ("[Modulez]\nLoad=x\n", 2, "did you mean [Modules]"),
    ("[Verify]\nInterval=0\n", 2, "Interval must be whole minutes"),
    ("[Verify]\nPrometheusDirectory=relative/dir\n", 2, "absolute, plain directory"),
    ("[Verify]\nPrometheusDirectory=/var/lib/x y\n", 2, "absolute, plain directory"),
    ("[Verify]\nGate=maybe\n", 2, "Gate must be yes or no"),
    ("[Modules]\nLaod=x\n", 2, "did you mean Load="),
    ("[Files]\nSysctlPriority=9\n", 2, "two digits"),
    ("[Files]\nSysctlPriority=../x\n", 2, "two digits"),
    # hostile module names
    ("[Modules]\nLoad=../../etc/passwd\n", 2, "invalid module name"),
    ("[Modules]\nLoad=a/b\n", 2, "invalid module name"),
    ("[Modules]\nLoad=a=b\n", 2, "invalid module name"),
    ("[Modules]\nLoad=a.b\n", 2, "invalid module name"),
    ("[Modules]\nLoad=a\x0bb\n", 2, "invalid module name"),
    ("[Modules]\nLoad=" + "a" * 56 + "\n", 2, "invalid module name"),
    # keys that are not sysctl paths
    ("[Sysctl]\nnet=1\n", 2, "below /proc/sys"),
    ("[Sysctl]\nnet..x=1\n", 2, "empty"),
    ("[Sysctl]\nnet/../../etc/passwd=1\n", 2, "'..'"),
    ("[Sysctl]\nnet.*.x=1\n", 2, "glob"),
    ("[Sysctl]\n-net.core.x=1\n", 2, "ignore failure"),
    ("[Sysctl]\nnet core.x=1\n", 2, "white space"),
    ("[Sysctl]\nnet.core.\x1b[31m=1\n", 2, "control characters"),
    # values with control characters
    ("[Sysctl]\nnet.core.x=1\x01\n", 2, "control characters"),
    ("[Sysctl]\nnet.core.x=1\x1f2\n", 2, "control characters"),
    ("[Sysctl]\nnet.core.x=1\x7f\n", 2, "control characters"),
])
def test_bad_input_names_file_line_key_value(text: str, line: int, needle: str) -> None:
    with pytest.raises(NftuneError) as e:
        parse([("/etc/nftune/nftune.conf", text)])
    msg = str(e.value)
    assert msg.startswith(f"/etc/nftune/nftune.conf:{line}:"), msg
    assert needle in msg + (e.value.hint or ""), msg
    assert e.value.exit_code == 2
    assert e.value.hint
    assert msg.isprintable()


def test_error_names_the_real_path_under_root(tree: Path, root: Root) -> None:
    write(tree, "/etc/nftune/nftune.conf", "[Sysctl]\nnet.core.x=\x02\n")
    with pytest.raises(NftuneError) as e:
        load(root)
    assert str(e.value).startswith(f"{tree}/etc/nftune/nftune.conf:2: net.core.x=")


def test_nul_and_cr_end_lines_like_systemd() -> None:
    # A NUL or CR cannot smuggle a second assignment into one value.
    cfg = parse([("/c", "[Sysctl]\nnet.core.a=1\rnet.core.b=2\x00net.core.c=3\n")])
    assert [(s.key, s.value) for s in cfg.sysctls][1:] == [
        ("net/core/a", "1"), ("net/core/b", "2"), ("net/core/c", "3")]


def test_not_utf8(tree: Path, root: Root) -> None:
    (tree / "etc/nftune").mkdir(parents=True)
    (tree / "etc/nftune/nftune.conf").write_bytes(b"[Sysctl]\nnet.core.x=\xff\n")
    with pytest.raises(NftuneError, match="UTF-8"):
        load(root)


def test_dropin_name_with_newline_is_rejected(tree: Path, root: Root) -> None:
    write(tree, "/etc/nftune/nftune.conf.d/a\nnet.core.x=0\n.conf", "[Sysctl]\n")
    with pytest.raises(NftuneError, match="not printable"):
        load(root)


def test_an_equals_sign_in_a_value_stays_in_that_value(tmp_path: Path) -> None:
    """systemd-sysctl splits a line at its first '=': `1=2` is one value of one key in
    the rendered file (the kernel then refuses it, as it would from any sysctl.d file)."""
    add_kernel(tmp_path, "6.1.0-57-amd64")
    write(tmp_path, "/etc/nftune/nftune.conf", "[Sysctl]\nnet.core.somaxconn = 1=2\n")
    root = Root(str(tmp_path))
    apply(Context(root), Layer.ADMIN)
    view = SysctlD.load(root)
    assert view.effective("net/core/somaxconn").winner.value == "1=2"
    assert {a.key for a in view.assignments} == {
        "net/core/somaxconn", "net/netfilter/nf_conntrack_tcp_be_liberal"}
