from __future__ import annotations

from pathlib import Path

import pytest
from conftest import add_kernel

from nftune.config import parse
from nftune.errors import NftuneError
from nftune.kernel import choose_strict, load_kernels, modname
from nftune.root import Root


def test_modname() -> None:
    assert modname("kernel/net/netfilter/nf_conntrack.ko.xz") == "nf_conntrack"
    assert modname("kernel/drivers/net/virtio-net.ko.zst") == "virtio_net"
    assert modname("kernel/net/ipv4/tcp_bbr.ko") == "tcp_bbr"


def test_every_installed_kernel_is_read(tree: Path) -> None:
    add_kernel(tree, "5.10.0-1", ("nf_conntrack", "nf_conntrack_ipv4"))
    add_kernel(tree, "6.1.0-1", ("ip_vs",), builtin=("nf_conntrack",))
    (tree / "lib/modules/not-a-kernel").mkdir()
    ks = load_kernels(Root(tree))
    assert [k.version for k in ks] == ["5.10.0-1", "6.1.0-1"]
    assert ks[1].has("nf_conntrack") == "builtin"
    assert ks[1].has("nf_conntrack_ipv4") is None


def test_module_missing_from_one_kernel_is_an_error(tree: Path) -> None:
    add_kernel(tree, "4.14.0-old", ("nf_conntrack", "nf_conntrack_ipv4"))
    add_kernel(tree, "6.1.0-new", ("nf_conntrack",))
    cfg = parse([("/etc/nftune/nftune.conf", "[Modules]\nLoad=nf_conntrack_ipv4\n")])
    with pytest.raises(NftuneError) as e:
        choose_strict(cfg.modules, load_kernels(Root(tree)))
    msg = str(e.value)
    assert msg.startswith("/etc/nftune/nftune.conf:2: Load=nf_conntrack_ipv4:")
    assert "6.1.0-new" in msg and "4.14.0-old" not in msg
    assert e.value.hint and "Load=nf_conntrack" in e.value.hint


def test_alternatives_pick_the_first_every_kernel_has(tree: Path) -> None:
    add_kernel(tree, "4.14.0-old", ("nf_conntrack", "nf_conntrack_ipv4"))
    add_kernel(tree, "6.1.0-new", ("nf_conntrack",))
    cfg = parse([("/c", "[Modules]\nLoad=\nLoad=nf_conntrack_ipv4|nf_conntrack\n")])
    [c] = choose_strict(cfg.modules, load_kernels(Root(tree)))
    assert (c.name, c.listed) == ("nf_conntrack", True)


def test_builtin_everywhere_needs_no_entry_and_is_no_error(tree: Path) -> None:
    add_kernel(tree, "6.1.0-a", (), builtin=("nf_conntrack",))
    add_kernel(tree, "6.1.0-b", ("nf_conntrack",))
    [c] = choose_strict(parse([]).modules, load_kernels(Root(tree)))
    assert c.listed  # a module in one kernel: listed (modprobe of a built-in is a no-op)
    (tree / "lib/modules/6.1.0-b").rename(tree / "gone")
    [c] = choose_strict(parse([]).modules, load_kernels(Root(tree)))
    assert not c.listed and c.builtin_everywhere


def test_no_kernel_installed_takes_the_first_alternative(tree: Path) -> None:
    cfg = parse([("/c", "[Modules]\nLoad=\nLoad=nf_conntrack_ipv4|nf_conntrack\n")])
    [c] = choose_strict(cfg.modules, load_kernels(Root(tree)))
    assert (c.name, c.listed) == ("nf_conntrack_ipv4", True)
