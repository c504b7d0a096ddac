"""`apply` on a tmp tree that looks like a running system, and under --root."""

from __future__ import annotations

from pathlib import Path

from conftest import Commands, applied, context, write

from nftune.apply import apply
from nftune.artifacts import Layer
from nftune.root import Root

KEY = "net/netfilter/nf_conntrack_tcp_be_liberal"


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
