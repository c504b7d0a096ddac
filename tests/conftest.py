"""Shared fixtures. Tests work on tmp trees under /var/tmp and never touch the host's /etc,
/proc/sys or kernel. Programs run only through a Context's runner: tests give `commands`
(below), which refuses what a test did not allow; nothing is patched."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from nftune import run as run_mod
from nftune.context import Context
from nftune.result import CheckResult
from nftune.root import Root

BASETEMP = Path(os.environ.get("NFTUNE_TEST_TMP", f"/var/tmp/nftune-pytest-{os.getpid()}"))


def pytest_configure(config: pytest.Config) -> None:
    if not config.option.basetemp:  # keep test trees out of /tmp
        config.option.basetemp = str(BASETEMP)


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.option.basetemp == str(BASETEMP):
        shutil.rmtree(BASETEMP, ignore_errors=True)


def require(why: str | None, env: str, what: str) -> None:
    """Skip the calling test module when `why` says it cannot run here, unless the
    environment variable `env` is 1 (tests/run sets it): then that is a failure."""
    if why is None:
        return
    if os.environ.get(env) == "1":
        pytest.fail(f"{what} required but cannot run: {why}", pytrace=False)
    pytest.skip(f"{what}: {why}", allow_module_level=True)


class Commands:
    """Records run() calls; answers the allowed ones with exit 0, and the output given for
    their argv."""

    def __init__(self) -> None:
        self.allowed: set[str] = set()
        self.calls: list[list[str]] = []
        self.answers: list[tuple[str, tuple[str, ...], str]] = []

    def allow(self, *names: str) -> None:
        self.allowed.update(names)

    def answer(self, name: str, stdout: str, *args: str) -> None:
        """Allow `name` and give it this output when its argv holds every one of `args`
        (a journalctl match, say); other calls of it print nothing."""
        self.allow(name)
        self.answers.append((name, args, stdout))

    def __call__(self, argv: list[str], **kw: Any) -> Any:
        name = os.path.basename(argv[0])
        if name not in self.allowed:
            raise AssertionError(f"test ran an unexpected command: {argv}")
        self.calls.append(list(argv))
        out = next((text for n, args, text in self.answers
                    if n == name and all(a in argv for a in args)), "")
        return run_mod.Completed(tuple(argv), 0, out, "")


@pytest.fixture
def commands() -> Commands:
    return Commands()


def context(root: Root, commands: Commands | None = None, bus: Any = None,
            address: str | None = None) -> Context:
    """A run's Context over a test tree: `commands` runs programs, `bus` is the manager."""
    return Context(root, runner=commands or Commands(),
                   bus_factory=None if bus is None else lambda _: bus, bus_address=address)


def applied(tree: Path, commands: Commands | None = None, **live: Any) -> Root:
    """A live-looking node nftune applied to: a kernel with nf_conntrack and ip_vs,
    systemd's two units; `live` as fake_live() takes it."""
    commands = commands or Commands()
    add_kernel(tree, "6.1.0-test", ("nf_conntrack", "ip_vs"))
    add_units(tree)
    root = fake_live(tree, **live)
    commands.allow("modprobe", "systemd-sysctl", "udevadm")
    from nftune.apply import apply
    from nftune.artifacts import Layer

    apply(context(root, commands), Layer.ADMIN)
    return root


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """nftune's main() in this process: exit code, stdout and stderr."""
    from nftune.cli import main

    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def verified(root: Root, check: str) -> list[CheckResult]:
    """One check's results of a verify of `root`, under a healthy boot's manager."""
    from fakes import healthy

    from nftune.verify import verify

    return [r for r in verify(context(root, bus=healthy())).results if r.check == check]


def family(ctx: Context, name: str) -> list[CheckResult]:
    """What verify's runner makes of one family of checks (nftune/checks/NAME.py)."""
    from nftune.specs import SPECS
    from nftune.verify import outcome

    return [r for s in SPECS if s.family == name for r in outcome(ctx, s)]


def ordering(ctx: Context) -> CheckResult:
    """The ordering check's one result for the context's tree."""
    from nftune.checks.ordering import ordering as check

    [r] = check(ctx)
    return r


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    d = tmp_path / "root"
    d.mkdir()
    return d


@pytest.fixture
def root(tree: Path) -> Root:
    return Root(tree, live=False)


def write(tree: Path | str, path: str, text: str) -> Path:
    p = Path(tree) / path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def add_kernel(tree: Path, version: str, modules: tuple[str, ...] = ("nf_conntrack",),
               builtin: tuple[str, ...] = ()) -> None:
    d = tree / "lib/modules" / version
    d.mkdir(parents=True)
    (d / "modules.dep").write_text("kernel/lib/libcrc32c.ko.xz:\n" + "".join(
        f"kernel/net/netfilter/{m}.ko.xz: kernel/lib/libcrc32c.ko.xz\n" for m in modules))
    for path in ("kernel/lib/libcrc32c.ko.xz", *(f"kernel/net/netfilter/{m}.ko.xz"
                                                 for m in modules)):
        (d / path).parent.mkdir(parents=True, exist_ok=True)
        (d / path).write_bytes(b"")
    (d / "modules.builtin").write_text("".join(f"kernel/net/{m}.ko\n" for m in builtin))
    (d / "modules.dep.bin").write_bytes(b"")  # kmod's index; its content is never read


LIB = "/usr/lib/systemd/system"
SYSCTL_UNIT = """[Unit]
Description=Apply Kernel Variables
DefaultDependencies=no
Conflicts=shutdown.target
After=systemd-modules-load.service
Before=sysinit.target shutdown.target
ConditionPathIsReadWrite=/proc/sys/net/

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/lib/systemd/systemd-sysctl
TimeoutSec=90s
"""
MODULES_UNIT = """[Unit]
Description=Load Kernel Modules
DefaultDependencies=no
Before=sysinit.target shutdown.target
ConditionCapability=CAP_SYS_MODULE
ConditionDirectoryNotEmpty=|/lib/modules-load.d
ConditionDirectoryNotEmpty=|/usr/lib/modules-load.d
ConditionDirectoryNotEmpty=|/usr/local/lib/modules-load.d
ConditionDirectoryNotEmpty=|/etc/modules-load.d
ConditionDirectoryNotEmpty=|/run/modules-load.d
ConditionKernelCommandLine=|modules-load
ConditionKernelCommandLine=|rd.modules-load

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/lib/systemd/systemd-modules-load
TimeoutSec=90s
"""




def add_units(tree: Path) -> None:
    """systemd-sysctl and systemd-modules-load as Debian 12 ships them."""
    write(tree, f"{LIB}/systemd-sysctl.service", SYSCTL_UNIT)
    write(tree, f"{LIB}/systemd-modules-load.service", MODULES_UNIT)
    write(tree, f"{LIB}/sysinit.target", "[Unit]\nDescription=System Initialization\n")
    for program in ("systemd-sysctl", "systemd-modules-load"):
        write(tree, f"/lib/systemd/{program}", "")
        os.chmod(tree / f"lib/systemd/{program}", 0o755)


def add_boot(tree: Path) -> None:
    """The two units under sysinit.target, basic.target and multi-user.target (the default
    target), as a Debian 12 boot has them."""
    add_units(tree)
    write(tree, f"{LIB}/multi-user.target",
          "[Unit]\nRequires=basic.target\nAfter=basic.target\n")
    os.symlink("multi-user.target", tree / "usr/lib/systemd/system/default.target")
    write(tree, f"{LIB}/basic.target", "[Unit]\nRequires=sysinit.target\nAfter=sysinit.target\n")
    os.makedirs(tree / "usr/lib/systemd/system/sysinit.target.wants")
    for u in ("systemd-modules-load.service", "systemd-sysctl.service"):
        os.symlink(f"../{u}", tree / f"usr/lib/systemd/system/sysinit.target.wants/{u}")
    os.makedirs(tree / "etc/systemd/system")


def fake_live(tree: Path, *, loaded: tuple[str, ...] = ("nf_conntrack",),
              values: dict[str, str] | None = None, release: str = "6.1.0-test") -> Root:
    """A tmp tree that looks like a running system: /sys/module and /proc/sys."""
    write(tree, "/proc/sys/kernel/osrelease", release + "\n")
    write(tree, "/proc/1/status", "Name:\tsystemd\nCapBnd:\t000001ffffffffff\n")
    write(tree, "/proc/1/mountinfo",
          "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
          "23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n")
    if not (tree / "proc/cmdline").exists():
        write(tree, "/proc/cmdline", "BOOT_IMAGE=/boot/vmlinuz root=/dev/vda1 ro quiet\n")
    for m in loaded:
        (tree / "sys/module" / m).mkdir(parents=True, exist_ok=True)
    for key, value in (values or {}).items():
        write(tree, f"/proc/sys/{key}", value + "\n")
    return Root(tree, live=True)


def add_cpus(tree: Path, online: str = "0-3", *, possible: str | None = None,
             isolated: str = "", nohz_full: str | None = None,
             nodes: dict[int, str] | None = None, default_mask: str | None = None,
             flow_entries: str = "0") -> None:
    """The CPU side of a fake sysfs, and net.core's RPS sysctls."""
    cpu = "/sys/devices/system/cpu"
    write(tree, f"{cpu}/online", online + "\n")
    write(tree, f"{cpu}/possible", (possible or online) + "\n")
    write(tree, f"{cpu}/isolated", isolated + "\n")
    if nohz_full is not None:
        write(tree, f"{cpu}/nohz_full", nohz_full + "\n")
    for n, cpus in (nodes or {}).items():
        write(tree, f"/sys/devices/system/node/node{n}/cpulist", cpus + "\n")
    write(tree, "/proc/sys/net/core/rps_sock_flow_entries", flow_entries + "\n")
    if default_mask is not None:
        write(tree, "/proc/sys/net/core/rps_default_mask", default_mask + "\n")


def add_nic(tree: Path, name: str, rx: int = 1, *, physical: bool = True, numa: int = -1,
            mask: str = "0") -> None:
    """A NIC in a fake /sys/class/net: a device link (a directory here) when physical."""
    base = f"/sys/class/net/{name}"
    (tree / base.lstrip("/")).mkdir(parents=True)
    if physical:
        write(tree, f"{base}/device/numa_node", f"{numa}\n")
    for i in range(rx):
        write(tree, f"{base}/queues/rx-{i}/rps_cpus", mask + "\n")
        write(tree, f"{base}/queues/rx-{i}/rps_flow_cnt", "0\n")
    write(tree, f"{base}/queues/tx-0/xps_cpus", "0\n")


def snapshot(tree: Path) -> dict[str, tuple[int, bytes | str]]:
    """Every path under tree with its mode and content (or link target)."""
    out: dict[str, tuple[int, bytes | str]] = {}
    for dirpath, dirs, files in os.walk(tree):
        for name in dirs + files:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(tree))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = (st.st_mode, os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                out[rel] = (st.st_mode, p.read_bytes())
            else:
                out[rel] = (st.st_mode, b"")
    return out



def commit_seed(env: str) -> int:
    """A differential test's seed: $ENV when set, else one derived from the checked-out
    commit, so each change explores new cases and a failure replays with ENV=N."""
    if env in os.environ:
        return int(os.environ[env])
    head = subprocess.run(["git", "-C", str(Path(__file__).parent), "rev-parse", "HEAD"],
                          capture_output=True, text=True, check=False).stdout.strip()
    return int(head[:7], 16) % 1_000_000 if head else 1
