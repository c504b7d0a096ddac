"""The scenarios: what each boot of a guest asserts from inside. A scenario prepares the
root filesystem on the host (setup), then boots it once per step; each step is a shell
script run in the guest after that boot has settled (helpers: guest/lib.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

RELEASES = ("bullseye", "bookworm", "trixie")
KEY = "net.netfilter.nf_conntrack_tcp_be_liberal"
STATE = "/var/lib/nftune-e2e"


REBOOTS = int(os.environ.get("NFTUNE_E2E_REBOOTS", "3"))  # the reboot loop's length


@dataclass(frozen=True)
class Inputs:
    deb: Path | None
    rpm: Path | None


Setup = Callable[[Path, Inputs], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    steps: tuple[str, ...]
    setup: Setup | None = None
    needs: tuple[str, ...] = field(default=())  # "deb", "rpm"
    releases: tuple[str, ...] = RELEASES


def _sysctl_d_only(rootfs: Path, _: Inputs) -> None:
    """What an admin does without nftune: a sysctl.d line, nothing more."""
    (rootfs / "etc/sysctl.d/90-local.conf").write_text(f"{KEY} = 1\n")


def install_offline(rootfs: Path, inputs: Inputs) -> None:
    """What an image build does: install into the tree, before it ever boots."""
    assert inputs.deb is not None
    p = subprocess.run(["dpkg", f"--root={rootfs}", "-i", str(inputs.deb)],
                       capture_output=True, text=True, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"dpkg --root failed: {p.stdout}{p.stderr}")


def _copy_deb(rootfs: Path, inputs: Inputs) -> None:
    assert inputs.deb is not None
    shutil.copy(inputs.deb, rootfs / STATE.lstrip("/") / "nftune.deb")


def _drift(rootfs: Path, inputs: Inputs) -> None:
    install_offline(rootfs, inputs)
    (rootfs / "etc/sysctl.d/99-zz-local.conf").write_text(f"{KEY} = 0\n")


def _sysctl_d_and_deb(rootfs: Path, inputs: Inputs) -> None:
    """No nftune yet, an admin's sysctl.d line, and the .deb to install in the guest."""
    _sysctl_d_only(rootfs, inputs)
    _copy_deb(rootfs, inputs)


def _copy_rpm(rootfs: Path, inputs: Inputs) -> None:
    assert inputs.rpm is not None
    shutil.copy(inputs.rpm, rootfs / STATE.lstrip("/") / "nftune.rpm")


VERIFY_AND_CHAIN = """
show verify-exit nftune verify
show chain-exit nftune chain
check chain-live true "$(nftune chain --json | grep -o '"live": [a-z]*' | cut -d' ' -f2)"
"""

BASELINE = """
check nf_conntrack-at-boot absent "$(loaded)"
check sysctl-could-not-write yes "$(couldnt_write > /dev/null && echo yes || echo no)"
modprobe nf_conntrack
check value-after-late-load 0 "$(liberal)"
"""
# Files with nftune in their name, but the test agent's and dpkg's own database.
LEFTOVERS = f"""
check no-nftune-files "" "$(find / -xdev -name '*nftune*' ! -path '{STATE}*' \\
    ! -path '/usr/local/lib/nftune-e2e*' ! -name 'nftune-e2e.service' \\
    ! -path '/var/lib/dpkg/*' ! -path '/var/log/*' | sort | tr '\\n' ' ')"
"""

SCENARIOS = (
    Scenario(
        "baseline", "no nftune: sysctl.d alone, then a late load; the bug: the value is 0",
        (BASELINE,), _sysctl_d_only),
    Scenario(
        "offline", "dpkg --root into the image, as an image build does; first boot: 1",
        ("""
check nf_conntrack-at-boot loaded "$(loaded)"
check value-at-boot 1 "$(liberal)"
""" + VERIFY_AND_CHAIN,),
        install_offline, ("deb",)),
    Scenario(
        "first-boot", "dpkg -i on the running guest: 1 at once; after a reboot, 1 at boot",
        (f"""
dpkg -i {STATE}/nftune.deb > /tmp/dpkg.log 2>&1
check dpkg-exit 0 $?
check value-at-once 1 "$(liberal)"
""", """
check value-at-boot 1 "$(liberal)"
""" + VERIFY_AND_CHAIN),
        _copy_deb, ("deb",)),
    Scenario(
        "reboot-loop", f"{REBOOTS} boots of one image: 1 and verify passing on every boot",
        tuple("""
check value-at-boot 1 "$(liberal)"
show verify-exit nftune verify
""" for _ in range(REBOOTS)),
        install_offline, ("deb",)),
    Scenario(
        "drift", "an admin's later sysctl.d file sets 0: verify fails and names it",
        ("""
check value-at-boot 0 "$(liberal)"
nftune verify > /tmp/verify.txt 2>&1
check verify-exit 1 $?
check names-the-file yes "$(grep -q 99-zz-local.conf /tmp/verify.txt && echo yes || echo no)"
""",),
        _drift, ("deb",)),
    Scenario(
        "purge", "install, then purge: no nftune file left; the next boot is the baseline",
        (f"""
dpkg -i {STATE}/nftune.deb > /tmp/dpkg.log 2>&1
check dpkg-install-exit 0 $?
dpkg -P nftune >> /tmp/dpkg.log 2>&1
check dpkg-purge-exit 0 $?
""" + LEFTOVERS, BASELINE),
        _sysctl_d_and_deb, ("deb",)),
    Scenario(
        "rpm", "the .rpm with rpm -i --nodeps, scriptlets against the real systemd; reboot",
        (f"""
rpm -i --nodeps {STATE}/nftune.rpm > /tmp/rpm.log 2>&1
check rpm-exit 0 $?
check value-at-once 1 "$(liberal)"
""", """
check value-at-boot 1 "$(liberal)"
""" + VERIFY_AND_CHAIN),
        _copy_rpm, ("rpm",), ("bookworm",)),
)

# `python -m e2e --demo` (tools/demo): the bug, then the fix, in one run; its output is
# printed, and its assertions count like a scenario's.
DEMO = Scenario(
    "demo", "the bug without nftune, then dpkg -i, a reboot, verify and chain",
    (f"""
say "Boot 1, without nftune. The admin's sysctl.d line, as on most nodes:"
show cat-exit cat /etc/sysctl.d/90-local.conf
say "At boot nf_conntrack was $(loaded), so systemd-sysctl could not set the key:"
show journal-exit couldnt_write
say "kube-proxy (or an nft ct rule) loads nf_conntrack later; the key keeps its default:"
modprobe nf_conntrack
show sysctl-exit sysctl {KEY}
check value-after-late-load 0 "$(liberal)"
say "Install nftune; its postinst applies the fix at once:"
show dpkg-exit dpkg -i {STATE}/nftune.deb
check value-at-once 1 "$(liberal)"
""", f"""
say "Boot 2, with nftune. nf_conntrack at boot: $(loaded); the value:"
show sysctl-exit sysctl {KEY}
check value-at-boot 1 "$(liberal)"
say "nftune-verify.service checked this boot:"
check verify-unit active "$(systemctl is-active nftune-verify.service)"
say "nftune verify: every check, with expected and actual:"
show verify-exit nftune verify
say "nftune chain: the ordering, proven from this boot's timestamps:"
show chain-exit nftune chain
"""),
    _sysctl_d_and_deb, ("deb",))


def by_name(names: list[str] | None) -> list[Scenario]:
    if not names:
        return list(SCENARIOS)
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"e2e: no scenario {unknown[0]!r}; known: {', '.join(known)}")
    return [known[n] for n in names]
