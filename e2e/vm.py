"""Real boots for the end-to-end suite: a Debian root filesystem per release (mmdebstrap,
cached), turned into a disk image without mounting it (mkfs.ext4 -d), booted under qemu
with the release's own kernel and initrd. The guest tests itself (guest/agent.sh) and
reports on its serial console, which the host reads back.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

GUEST = Path(__file__).resolve().parent / "guest"
CACHE = Path(os.environ.get("NFTUNE_CACHE", "/var/tmp/nftune-cache"))
PACKAGES = ("systemd", "systemd-sysv", "udev", "kmod", "iproute2", "procps",
            "linux-image-amd64", "dbus", "nftables", "iptables", "rpm", "ipvsadm", "python3")
# node_exporter reads nftune's metrics in one release's guest (the rst scenario); it is not
# started at boot.
EXPORTER = "prometheus-node-exporter"
EXCLUDE = ("/usr/share/man/*", "/usr/share/doc/*", "/usr/share/locale/*")
IMAGE_SIZE = "2G"
BOOT_TIMEOUT = 240.0  # TCG: about 25 s a boot here, far more on a loaded machine
STATE = "/var/lib/nftune-e2e"
CACHE_LAYOUT = "DIR/rootfs, DIR/.complete"  # part of the key: an old layout is never reused
_RESULT = re.compile(r"NFTUNE-E2E RESULT (PASS|FAIL) (\S+) expected=(.*?) actual=(.*)$")


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    expected: str
    actual: str


@dataclass(frozen=True)
class Boot:
    number: int
    results: tuple[Result, ...]
    output: str  # what the step printed besides its results
    finished: bool  # the agent reached its END marker
    reported: bool = True  # the agent began this boot's step (its BEGIN marker)


def tools_missing() -> list[str]:
    return [t for t in ("qemu-system-x86_64", "mmdebstrap", "mkfs.ext4")
            if shutil.which(t) is None]


def remove_tree(path: Path) -> None:
    """rm -rf, but never through a mount: an interrupted mmdebstrap leaves the host's /proc,
    /sys and /dev mounted inside its root."""
    inside = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
              if line.split()[1].startswith(f"{path}/")]
    if inside:
        raise RuntimeError(f"{path} has mounts inside ({', '.join(inside[:3])}); "
                           "unmount them first")
    shutil.rmtree(path, ignore_errors=True)


def copy_tree(src: Path, dest: Path) -> None:
    subprocess.run(["cp", "-a", "--reflink=auto", str(src), str(dest)], check=True)


def cached_root(name: str, suite: str, packages: tuple[str, ...],
                prepare: Callable[[Path], None], recipe: str = "",
                mode: tuple[str, ...] = ()) -> Path:
    """A minbase root of `suite` with `packages`, finished by `prepare`; built once and
    cached by everything that makes it (a changed recipe builds anew)."""
    text = "\n".join([CACHE_LAYOUT, suite, *packages, *EXCLUDE, *mode, recipe])
    done = CACHE / f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    if (done / ".complete").exists():
        return done / "rootfs"
    work = CACHE / f".{done.name}.{os.getpid()}"
    remove_tree(work)
    work.mkdir(parents=True)
    subprocess.run(["mmdebstrap", "--quiet", *mode, "--variant=minbase",
                    f"--include={','.join(packages)}",
                    *(f"--dpkgopt=path-exclude={e}" for e in EXCLUDE), suite,
                    str(work / "rootfs")], check=True, stdin=subprocess.DEVNULL)
    prepare(work / "rootfs")
    (work / ".complete").touch()
    remove_tree(done)
    work.rename(done)
    return done / "rootfs"


def base_rootfs(suite: str) -> Path:
    """The release's root filesystem with the guest agent enabled (about a minute)."""
    agent = "".join(p.read_text() for p in sorted(GUEST.iterdir()))
    packages = PACKAGES + (EXPORTER,) * (suite == "bookworm")
    return cached_root(f"e2e-{suite}", suite, packages, _install_agent, agent,
                       ("--mode=root",))


def _install_agent(rootfs: Path) -> None:
    lib = rootfs / "usr/local/lib/nftune-e2e"
    lib.mkdir(parents=True)
    shutil.copy(GUEST / "agent.sh", lib / "agent.sh")
    (lib / "agent.sh").chmod(0o755)
    state = rootfs / STATE.lstrip("/")
    state.mkdir(parents=True)
    shutil.copy(GUEST / "lib.sh", state / "lib.sh")
    shutil.copy(GUEST / "rstlab.py", state / "rstlab.py")
    shutil.copy(GUEST / "scrape.py", state / "scrape.py")
    shutil.copy(GUEST / "sysctlmap.py", state / "sysctlmap.py")
    unit = rootfs / "etc/systemd/system/nftune-e2e.service"
    shutil.copy(GUEST / "nftune-e2e.service", unit)
    wants = rootfs / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "nftune-e2e.service").symlink_to("/etc/systemd/system/nftune-e2e.service")
    (rootfs / "etc/hostname").write_text("nftune-e2e\n")
    # The serial console carries the report; no login prompt in the middle of it.
    (rootfs / "etc/systemd/system/serial-getty@ttyS0.service").symlink_to("/dev/null")
    (wants / f"{EXPORTER}.service").unlink(missing_ok=True)  # started by the scenario


def kernel_and_initrd(rootfs: Path) -> tuple[Path, Path]:
    [kernel] = sorted((rootfs / "boot").glob("vmlinuz-*"))[-1:]
    [initrd] = sorted((rootfs / "boot").glob("initrd.img-*"))[-1:]
    return kernel, initrd


def write_steps(rootfs: Path, steps: list[str]) -> None:
    """One shell script per boot; each runs after that boot has settled."""
    state = rootfs / STATE.lstrip("/")
    for n, body in enumerate(steps, 1):
        p = state / f"boot-{n}.sh"
        p.write_text(f"#!/bin/sh\n. {STATE}/lib.sh\n{body.strip()}\n")
        p.chmod(0o755)


def make_image(rootfs: Path, image: Path) -> None:
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(rootfs), str(image), IMAGE_SIZE],
                   check=True, stdout=subprocess.DEVNULL)


def scenario_image(base: Path, work: Path, steps: list[str],
                   setup: Callable[[Path], None] | None = None) -> Path:
    """work/disk.raw: a copy of the base root, changed by `setup`, with one step per boot."""
    work.mkdir(parents=True)
    rootfs = work / "rootfs"
    copy_tree(base, rootfs)
    if setup:
        setup(rootfs)
    write_steps(rootfs, steps)
    image = work / "disk.raw"
    make_image(rootfs, image)
    remove_tree(rootfs)
    return image


@dataclass(frozen=True)
class Hardware:
    """The guest's machine: CPUs, NICs, and devices it may ask the host to hot-plug."""

    cpus: int = 2
    nics: tuple[tuple[str, ...], ...] = ()  # qemu arguments for each NIC
    own_netns: bool = False  # qemu in a network namespace of its own (tap NICs stay there)
    # When the guest prints "NFTUNE-E2E QMP NAME", the host sends these QMP commands.
    on_request: tuple[tuple[str, tuple[dict[str, object], ...]], ...] = ()


def boot(image: Path, kernel: Path, initrd: Path, log: Path, number: int,
         timeout: float = BOOT_TIMEOUT, hw: Hardware = Hardware()) -> Boot:
    """Boot the image once, until the guest powers off (or the timeout kills it)."""
    argv = ["qemu-system-x86_64", "-accel", "tcg,thread=multi", "-smp", str(hw.cpus),
            "-m", "1024", "-machine", "q35", "-display", "none", "-monitor", "none",
            "-serial", f"file:{log}", "-no-reboot",
            "-kernel", str(kernel), "-initrd", str(initrd),
            "-append", "root=/dev/vda rw console=ttyS0 panic=1",
            "-drive", f"file={image},format=raw,if=virtio,cache=unsafe"]
    argv += [a for nic in hw.nics for a in nic] if hw.nics else ["-nic", "none"]
    qmp = log.with_suffix(".qmp")
    if hw.on_request:
        # A free PCIe slot to hot-plug into, and a control socket.
        argv += ["-device", "pcie-root-port,id=hp,chassis=9",
                 "-qmp", f"unix:{qmp},server=on,wait=off"]
    if hw.own_netns:
        argv = ["unshare", "--net", "--", *argv]
    started = time.monotonic()
    with open(log.with_suffix(".qemu.log"), "wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True)
        try:
            _serve(proc, log, qmp, hw, started + timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            qmp.unlink(missing_ok=True)
    took = time.monotonic() - started
    b = parse(log.read_text(errors="replace"), number, took)
    errors = log.with_suffix(".qemu.log").read_text(errors="replace").strip().splitlines()
    if not b.reported and errors:  # qemu itself failed: say how
        b = replace(b, output=f"{b.output}; qemu (exit {proc.returncode}): {errors[-1]}")
    return b


def _serve(proc: subprocess.Popen[bytes], log: Path, qmp: Path, hw: Hardware,
           deadline: float) -> None:
    """Wait for qemu to exit; meanwhile answer the guest's hot-plug requests."""
    pending = dict(hw.on_request)
    while time.monotonic() < deadline:
        try:
            proc.wait(0.5 if pending else max(0.0, deadline - time.monotonic()))
            return
        except subprocess.TimeoutExpired:
            pass
        for name in [n for n in pending if f"NFTUNE-E2E QMP {n}" in
                     log.read_text(errors="replace")]:
            replies = qmp_send(qmp, pending.pop(name))
            with open(log.with_suffix(".qemu.log"), "a") as f:
                f.write(f"QMP {name}: {replies}\n")


def qmp_send(path: Path, commands: tuple[dict[str, object], ...]) -> list[object]:
    """Send QMP commands to qemu's control socket; return their replies (events skipped)."""
    replies: list[object] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(str(path))
        stream = s.makefile("rwb")
        stream.readline()  # the greeting
        for cmd in ({"execute": "qmp_capabilities"}, *commands):
            stream.write(json.dumps(cmd).encode() + b"\n")
            stream.flush()
            while True:
                reply = json.loads(stream.readline())
                if "event" not in reply:
                    replies.append(reply)
                    break
    return replies


def boot_step(label: str, image: Path, kernel: Path, initrd: Path, log: Path,
              n: int, hw: Hardware = Hardware(), timeout: float = BOOT_TIMEOUT) -> Boot:
    """Boot for step n; once more if the guest never began the step. Under TCG a guest
    kernel has panicked early, once in about 90 boots; the image is then still at step n
    (the agent counts a boot only after its BEGIN marker). A second silent boot fails."""
    b = boot(image, kernel, initrd, log, n, timeout=timeout, hw=hw)
    if b.reported:
        return b
    first = log.with_name(f"{log.stem}-first.log")
    log.rename(first)
    log.with_suffix(".qemu.log").rename(first.with_suffix(".qemu.log"))
    print(f"RETRY {label}: {b.output}; booting once more (first serial log: {first})",
          flush=True)
    return boot(image, kernel, initrd, log, n, timeout=timeout, hw=hw)


def parse(serial: str, number: int, took: float = 0.0) -> Boot:
    begin = f"NFTUNE-E2E BEGIN boot={number}"
    end = f"NFTUNE-E2E END boot={number}"
    if begin not in serial:
        return Boot(number, (), f"no report from boot {number} after {took:.0f}s", False,
                    reported=False)
    body = serial.split(begin, 1)[1]
    finished = end in body
    body = body.split(end, 1)[0]
    results, output = [], []
    for line in body.splitlines():
        line = line.rstrip("\r")
        m = _RESULT.search(line)
        if m:
            results.append(Result(m.group(2), m.group(1) == "PASS", m.group(3), m.group(4)))
        elif line.strip():
            output.append(line)
    return Boot(number, tuple(results), "\n".join(output), finished)
