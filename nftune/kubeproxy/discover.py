"""Which processes named kube-proxy nftune reads (the trust rule), and reading one: its
/proc entries, bounded, through the descriptor of its /proc directory."""

from __future__ import annotations

import os
import re

from ..errors import NftuneError
from ..root import Root
from .model import NAME, Gone, KubeProxy, Survey, Untrusted

MAX_STATUS = 16 << 10  # /proc/PID/status is about 1.5 KiB
CAP_NET_ADMIN = 12

# Why a process named kube-proxy is not read: it could not itself write what it claims.
EXITED = "exited"
KERNEL_THREAD = "a kernel thread"
HIDDEN = "namespaces unreadable"
OTHER_USERNS = "another user namespace than PID 1's"
OTHER_NETNS = "another network namespace than PID 1's"
NO_NET_ADMIN = "no CAP_NET_ADMIN"
ELEVATED = "privileged by a setuid or file-capability program (AT_SECURE)"
REASONS = (EXITED, KERNEL_THREAD, HIDDEN, OTHER_USERNS, OTHER_NETNS, NO_NET_ADMIN, ELEVATED)
PF_KTHREAD = 0x00200000  # /proc/PID/stat's flags (include/linux/sched.h)
AT_SECURE = 23  # the auxiliary vector's entry (include/uapi/linux/auxvec.h)


def survey(root: Root) -> Survey:
    """Every process named kube-proxy, each judged by what it could do and read only
    when it could be kube-proxy (the trust rule, in _trust)."""
    host = _namespaces(root, "/proc/1")
    found: list[KubeProxy] = []
    unreadable: list[tuple[int, NftuneError]] = []
    ignored: dict[str, list[int]] = {}
    for pid in pids(root):
        try:
            found.append(read(root, pid, host))
        except Gone:
            ignored.setdefault(EXITED, []).append(pid)
        except Untrusted as e:
            ignored.setdefault(e.reason, []).append(pid)
        except NftuneError as e:
            unreadable.append((pid, e))
    return Survey(tuple(found), tuple(unreadable),
                  tuple((r, tuple(ignored[r])) for r in REASONS if r in ignored))


def pids(root: Root) -> list[int]:
    """Every process whose name is kube-proxy. On procfs each comm is opened relative to
    /proc (a node has hundreds of processes; it holds no links a tree could have made);
    in a test tree, through the tree like any file."""
    from ..chase import on_kernel_fs

    out = []
    with root.directory("/proc") as d:
        if d is None:
            return []
        fast = on_kernel_fs(d)
        for name in root.listdir("/proc"):
            if name.isdigit() and len(name) <= 10 and \
                    _comm(root, d, name, fast) == NAME.encode():
                out.append(int(name))
    return sorted(out)


def _comm(root: Root, d: int, pid: str, fast: bool) -> bytes | None:
    try:
        if not fast:
            return (root.read_bytes(f"/proc/{pid}/comm", 64) or b"").strip()
        fd = os.open(f"{pid}/comm", os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC,
                     dir_fd=d)
    except (OSError, NftuneError):
        return None  # gone, or not a process's directory
    try:
        return os.read(fd, 64).strip()
    except OSError:
        return None
    finally:
        os.close(fd)


Namespaces = tuple[str, str]  # the network and user namespaces, as their links read


def _namespaces(tree: Root, top: str) -> Namespaces | None:
    """The network and user namespaces of the process whose /proc directory is `top` in
    `tree`. None when they cannot be read: the kernel lets only a process with ptrace
    rights over it (CAP_SYS_PTRACE) read them, and a zombie has none."""
    try:
        return (tree.readlink(f"{top}/ns/net"), tree.readlink(f"{top}/ns/user"))
    except OSError:
        return None


def _trust(mine: Root, status: bytes, host: Namespaces | None) -> None:
    """The trust rule: a process counts as kube-proxy only if it could itself write the
    values the check predicts from it: it shares PID 1's network namespace, is in PID 1's
    (the initial) user namespace and has CAP_NET_ADMIN in its effective set, as a
    hostNetwork, privileged kube-proxy has, and it was not made privileged by a setuid or
    file-capability program, whose argv and files its unprivileged caller chose (the
    kernel's AT_SECURE). `mine`: its /proc directory. procfs writes these, not the process."""
    if re.search(rb"^State:\s*[ZX]", status, re.M):
        raise Untrusted(EXITED)
    if _kernel_thread(mine):
        raise Untrusted(KERNEL_THREAD)
    theirs = _namespaces(mine, "")
    if theirs is None or host is None:
        raise Untrusted(HIDDEN)
    if theirs[1] != host[1]:
        raise Untrusted(OTHER_USERNS)
    if theirs[0] != host[0]:
        raise Untrusted(OTHER_NETNS)
    m = re.search(rb"^CapEff:\s*([0-9a-fA-F]{1,32})$", status, re.M)
    if m is None or not int(m.group(1), 16) >> CAP_NET_ADMIN & 1:
        raise Untrusted(NO_NET_ADMIN)
    if _secure(mine) != 0:
        raise Untrusted(ELEVATED)


def _kernel_thread(mine: Root) -> bool:
    """PF_KTHREAD in /proc/PID/stat (the name, in parentheses, may hold anything)."""
    try:
        stat = mine.read_bytes("/stat", MAX_STATUS) or b""
    except NftuneError:
        return False
    fields = stat.rpartition(b")")[2].split()
    return len(fields) > 6 and fields[6].isdigit() and bool(int(fields[6]) & PF_KTHREAD)


def _secure(mine: Root) -> int | None:
    """AT_SECURE from the process's auxiliary vector: 1 when its last execve() raised its
    privileges (setuid, setgid, file capabilities); None when it cannot be read."""
    import struct

    try:
        auxv = mine.read_bytes("/auxv", 4096) or b""
    except NftuneError:
        return None
    pair = struct.calcsize("@LL")
    for at in range(0, len(auxv) - pair + 1, pair):
        key, value = struct.unpack_from("@LL", auxv, at)
        if key == AT_SECURE:
            return int(value)
        if key == 0:  # AT_NULL ends it
            break
    return None


def read(root: Root, pid: int, host: Namespaces | None) -> KubeProxy:
    """One kube-proxy's effective settings. Untrusted when it could not be kube-proxy;
    Gone when it exits meanwhile; NftuneError (naming the file, never its content) when
    its configuration cannot be read or parsed. Its /proc directory is opened once: a
    PID reused meanwhile cannot mix two processes."""
    try:
        proc = root.open(f"/proc/{pid}", os.O_PATH | os.O_DIRECTORY)
    except OSError:
        raise Gone from None
    try:
        return _read(root, pid, proc, host)
    finally:
        os.close(proc)


def _read(root: Root, pid: int, proc: int, host: Namespaces | None) -> KubeProxy:
    from .parse import MAX_CMDLINE, _cpus, _from_file, _from_flags, flag  # a trusted one only

    mine = Root(f"/proc/self/fd/{proc}")
    try:
        status = mine.read_bytes("/status", MAX_STATUS)
        comm = mine.read_bytes("/comm", 64)
    except NftuneError:
        raise Gone from None  # procfs refuses a process that has exited
    if not status or (comm or b"").strip() != NAME.encode():
        raise Gone  # exited, or its PID was taken by another process since it was listed
    _trust(mine, status, host)
    try:
        raw = mine.read_bytes("/cmdline", MAX_CMDLINE)
    except NftuneError as e:
        if "larger than" in e.message:
            raise NftuneError(f"its command line is longer than {MAX_CMDLINE} bytes",
                              path=f"{NAME}[{pid}]") from None
        raise Gone from None
    if not raw:
        raise Gone
    argv = raw.decode("utf-8", "surrogateescape").split("\0")
    cpus = _cpus(status.decode("ascii", "replace")) or 1
    config = flag(argv, "config")
    if config:
        settings = _from_file(root, pid, proc, config)
        source = config
    else:
        settings = _from_flags(argv)
        source = "flags"
    return KubeProxy(pid, source, settings, cpus)
