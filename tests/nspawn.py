"""A real systemd for integration tests: a Debian root filesystem (mmdebstrap) booted with
`systemd-nspawn -b`, never the host's own root. Tests reach its manager from the host over
the container's D-Bus socket.

The base rootfs is built once per recipe and cached in NFTUNE_CACHE (default
/var/tmp/nftune-cache); each scenario boots its own copy. Every container is stopped by
its PID, on failure too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from e2e.vm import cached_root

SUITE = "bookworm"
PACKAGES = ("systemd", "systemd-sysv", "dbus", "kmod")
BOOT_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
TOOLS = ("systemd-nspawn", "mmdebstrap", "nsenter")


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def why_not() -> str | None:
    """Why a real systemd cannot be booted here; None when it can."""
    if os.geteuid() != 0:
        return "needs root"
    if missing := missing_tools():
        return f"missing {', '.join(missing)} (tools/bootstrap installs them)"
    return None


def base_rootfs() -> Path:
    """The cached bookworm rootfs, built on first use (about 20 s)."""
    return cached_root(SUITE, SUITE, PACKAGES, _prepare, os.uname().release)


def rpm_rootfs() -> Path:
    """The same with rpm, to install and erase the .rpm from inside a booted container."""
    return cached_root(f"{SUITE}-rpm", SUITE, (*PACKAGES, "rpm"), _prepare,
                       os.uname().release)


def _prepare(rootfs: Path) -> None:
    # The host kernel's pid_max is global: the container may not write it.
    (rootfs / "etc/sysctl.d/50-pid-max.conf").symlink_to("/dev/null")
    # The running kernel as the container sees it, so module names resolve: nf_conntrack is
    # built into the kernels of this machine kind; depmod turns the list into its index.
    release = os.uname().release
    kdir = rootfs / "lib/modules" / release
    kdir.mkdir(parents=True, exist_ok=True)
    builtin = [m for m in ("nf_conntrack", "ip_vs", "br_netfilter")
               if Path(f"/sys/module/{m}").exists() and not Path(f"/sys/module/{m}/initstate")
               .exists()]
    (kdir / "modules.builtin").write_text("".join(
        f"kernel/net/netfilter/{m}.ko\n" for m in builtin))
    subprocess.run(["chroot", str(rootfs), "depmod", release], check=True,
                   capture_output=True)


def copy_rootfs(base: Path, dest: Path) -> Path:
    subprocess.run(["cp", "-a", "--reflink=auto", str(base), str(dest)], check=True)
    return dest


@dataclass
class Container:
    name: str
    rootfs: Path
    nspawn_pid: int
    leader: int
    log: Path

    @property
    def root(self) -> Path:
        """The running container's root as the host sees it."""
        return Path(f"/proc/{self.leader}/root")

    @property
    def bus_address(self) -> str:
        return f"unix:path=/proc/{self.leader}/root/run/dbus/system_bus_socket"

    def enter(self, *argv: str, net_only: bool = False) -> subprocess.CompletedProcess[str]:
        """Run a host program in the container's namespaces (mount and PID, or the network
        namespace only)."""
        ns = ["-n"] if net_only else ["-m", "-p"]
        return subprocess.run(["nsenter", "-t", str(self.leader), *ns, *argv],
                              capture_output=True, text=True, timeout=60, check=False)

    def inside(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run one of the container's programs as if inside it: its mount, PID and network
        namespaces, so what it changes in /proc/sys is the container's (a package's
        maintainer scripts apply sysctls), never the host's."""
        return subprocess.run(["nsenter", "-t", str(self.leader), "-m", "-p", "-n", *argv],
                              capture_output=True, text=True, timeout=timeout, check=False)


def leader_of(pid: int) -> int | None:
    """The container's PID 1 as the host sees it: the nspawn process's child."""
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(kids[0]) if kids else None


def _state(c: Container) -> str:
    from nftune.errors import NftuneError
    from nftune.systemd import Systemd

    try:
        with Systemd(c.bus_address) as bus:
            return bus.boot().system_state
    except NftuneError:
        return ""


@contextmanager
def booted(rootfs: Path, name: str, *, privileged: bool = True) -> Iterator[Container]:
    """Boot rootfs; `privileged` gives it CAP_SYS_MODULE and its own network namespace, so
    systemd-modules-load and systemd-sysctl run (without, both are skipped)."""
    log = rootfs.with_suffix(".console.log")
    extra = ["--private-network", "--capability=CAP_SYS_MODULE"] if privileged else []
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["systemd-nspawn", "--quiet", "-b", "-D", str(rootfs), "-M", name,
             "--register=no", "--keep-unit", "--console=pipe", *extra],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        deadline = time.monotonic() + BOOT_TIMEOUT
        c = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited with {proc.returncode}: "
                                   f"{log.read_text(errors='replace')[-2000:]}")
            leader = leader_of(proc.pid)
            if leader:
                c = Container(name, rootfs, proc.pid, leader, log)
                if _state(c) in ("running", "degraded"):
                    break
            time.sleep(0.2)
        else:
            raise TimeoutError(f"{name} did not finish booting in {BOOT_TIMEOUT:g}s; see {log}")
        assert c is not None
        yield c
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM powers the container off cleanly; its session is killed if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(STOP_TIMEOUT)
