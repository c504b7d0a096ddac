"""The measured sysctl data's lookup: core and module keys per
kernel series, per-interface patterns, a key that is core on one series and a module's on
another, and the nearest known key for a typo."""

from __future__ import annotations

from nftune.sysctlkeys import KeyData, pattern

KERNELS = (("5.10", "5.10.0-46-amd64"), ("6.1", "6.1.0-57-amd64"))
KEYS: dict[str, tuple[str | None, ...]] = {
    "kernel/pid_max": ("", ""),
    "net/ipv4/conf/*/rp_filter": ("", ""),
    "net/netfilter/nf_conntrack_tcp_be_liberal": ("nf_conntrack", "nf_conntrack"),
    "net/bridge/bridge-nf-call-iptables": ("br_netfilter", None),
    "net/ipv4/vs/conntrack": ("ip_vs", ""),
}


def test_keys_are_found_by_series_and_owner() -> None:
    d = KeyData(KERNELS, KEYS)
    o = d.origin("net/netfilter/nf_conntrack_tcp_be_liberal")
    assert o is not None and o.core == ()
    assert o.modules == (("5.10", "nf_conntrack"), ("6.1", "nf_conntrack"))
    o = d.origin("net/ipv4/vs/conntrack")  # a module's on one series, core on another
    assert o is not None and o.core == ("6.1",) and o.modules == (("5.10", "ip_vs"),)
    assert d.origin("net/ipv4/conf/eth0/rp_filter") is not None
    assert d.origin("net/ipv4/conf/all/rp_filter") is None  # "all" is not an interface
    assert d.origin("net/netfilter/nf_conntrack_tcp_be_liberl") is None


def test_interfaces_are_patterns_but_all_and_default_are_not() -> None:
    assert pattern("net/ipv6/conf/ens3/forwarding") == "net/ipv6/conf/*/forwarding"
    assert pattern("net/ipv6/conf/default/forwarding") == "net/ipv6/conf/default/forwarding"
    assert pattern("net/ipv4/tcp_rmem") == "net/ipv4/tcp_rmem"


def test_a_typo_names_the_nearest_key_in_its_directory() -> None:
    d = KeyData(KERNELS, KEYS)
    assert d.nearest("net/netfilter/nf_conntrack_tcp_be_liberl") == \
        "net/netfilter/nf_conntrack_tcp_be_liberal"
    assert d.nearest("net/netfilter/something_else_entirely") is None


def test_the_shipped_data_knows_what_kubernetes_nodes_set() -> None:
    """The measured data (nftune/sysctldata.py), on every series it covers."""
    d = KeyData.load()
    assert set(d.kernels) == {"5.10", "6.1", "6.12"}
    for key, module in (("net/bridge/bridge-nf-call-iptables", "br_netfilter"),
                        ("net/ipv4/vs/conntrack", "ip_vs"),
                        ("net/netfilter/nf_conntrack_tcp_be_liberal", "nf_conntrack")):
        o = d.origin(key)
        assert o is not None and o.core == () and {m for _, m in o.modules} == {module}, o
        assert {s for s, _ in o.modules} == set(d.kernels)
    for key in ("net/ipv4/ip_forward", "kernel/pid_max", "net/core/default_qdisc",
                "net/ipv4/conf/eth0/rp_filter", "fs/protected_regular"):
        o = d.origin(key)
        assert o is not None and set(o.core) == set(d.kernels), (key, o)
