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


def _dpkg_root(rootfs: Path, inputs: Inputs) -> None:
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
    _dpkg_root(rootfs, inputs)
    (rootfs / "etc/sysctl.d/99-zz-local.conf").write_text(f"{KEY} = 0\n")


def _purge(rootfs: Path, inputs: Inputs) -> None:
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
        _dpkg_root, ("deb",)),
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
        _dpkg_root, ("deb",)),
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
        _purge, ("deb",)),
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


def by_name(names: list[str] | None) -> list[Scenario]:
    if not names:
        return list(SCENARIOS)
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"e2e: no scenario {unknown[0]!r}; known: {', '.join(known)}")
    return [known[n] for n in names]
