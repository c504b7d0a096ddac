"""kube-proxy, seen from the node: its processes, their flags and KubeProxyConfiguration
(read through /proc/PID/root, so a containerized kube-proxy's own files), and what each
will write to the conntrack table at its next start.

kube-proxy's rules (cmd/kube-proxy and pkg/proxy/apis/config, v1alpha1):
- with --config FILE, the file decides and the other flags are ignored; without it, the
  flags do (--proxy-mode, --conntrack-max-per-core, --conntrack-min,
  --conntrack-tcp-be-liberal);
- mode "" is iptables on Linux; also ipvs (deprecated from 1.35) and nftables;
- at its start it sets nf_conntrack_max to max(min, maxPerCore x CPUs) when that differs
  (maxPerCore 0: it leaves the table alone; defaults 32768 and 131072; 1.36 caps the
  per-CPU part at 1048576), and raises hashsize to max / 4 when it is smaller (never
  lowers it; skipped when its /sys is read-only);
- tcpBeLiberal (1.29+) sets nf_conntrack_tcp_be_liberal=1 and drops its INVALID rule;
  tcpEstablishedTimeout (24h) and tcpCloseWaitTimeout (1h), and udpTimeout and
  udpStreamTimeout when not 0, are written to their sysctls.
"""

from __future__ import annotations

import errno
import os
import re

from .conntrack import KUBE_PROXY_CAP, KUBE_PROXY_MAX_PER_CORE, KUBE_PROXY_MIN, kube_proxy_max
from .errors import NftuneError
from .record import Record
from .root import Root
from .text import cut

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows it)
if TYPE_CHECKING:
    from typing import Any

NAME = "kube-proxy"
MAX_STATUS = 16 << 10  # /proc/PID/status is about 1.5 KiB
MAX_CMDLINE = 64 << 10  # kube-proxy's flags take a few hundred bytes
# A KubeProxyConfiguration is 1 to 3 KiB. Brackets nested N deep cost PyYAML's Python
# loader N^2, and the worst 8 KiB measured (brackets 15 deep throughout, !!set) take
# about 57 ms: a cap on both keeps any file under 100 ms (bench/kubeproxy_parse.py).
MAX_CONFIG = 8 << 10
MAX_FLOW_DEPTH = 16
MODES = ("iptables", "ipvs", "nftables")
API_VERSION = "kubeproxy.config.k8s.io/v1alpha1"
KIND = "KubeProxyConfiguration"
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


class Gone(Exception):
    """The process exited while it was read."""


class Untrusted(Exception):
    """A process that calls itself kube-proxy, but could not itself write the values it
    would claim: nftune reads nothing else of it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# kube-proxy's conntrack timeouts: (config field, flag, sysctl, default seconds; 0: leaves it)
TIMEOUTS = (
    ("tcpEstablishedTimeout", "conntrack-tcp-timeout-established",
     "net/netfilter/nf_conntrack_tcp_timeout_established", 86400),
    ("tcpCloseWaitTimeout", "conntrack-tcp-timeout-close-wait",
     "net/netfilter/nf_conntrack_tcp_timeout_close_wait", 3600),
    ("udpTimeout", "conntrack-udp-timeout", "net/netfilter/nf_conntrack_udp_timeout", 0),
    ("udpStreamTimeout", "conntrack-udp-timeout-stream",
     "net/netfilter/nf_conntrack_udp_timeout_stream", 0),
)


class Settings(Record):
    """kube-proxy's effective proxy mode and conntrack settings."""

    mode: str
    max_per_core: int
    minimum: int
    be_liberal: bool
    timeouts: tuple[tuple[str, int], ...]  # (sysctl key, seconds) it writes


class KubeProxy(Record):
    """One running kube-proxy and what it does at its next start."""

    pid: int
    source: str  # where the settings come from: "flags", or the config file in its root
    settings: Settings
    cpus: int  # its CPU affinity: Go's runtime.NumCPU()

    @property
    def subject(self) -> str:
        return f"{NAME}[{self.pid}]"

    @property
    def mode(self) -> str:
        return self.settings.mode

    @property
    def sets_max(self) -> int | None:
        """nf_conntrack_max at its next start (None: left alone), as 1.36 caps it."""
        s = self.settings
        return kube_proxy_max(self.cpus, s.max_per_core, s.minimum)

    @property
    def sets_max_before_cap(self) -> int | None:
        """What a kube-proxy before 1.36 sets, when the cap changes it (else None)."""
        s = self.settings
        old = kube_proxy_max(self.cpus, s.max_per_core, s.minimum, cap=None)
        return old if old != self.sets_max else None

    @property
    def hashsize_floor(self) -> int | None:
        """It raises hashsize to at least this at its next start."""
        m = self.sets_max
        return None if m is None else m // 4

    def summary(self) -> str:
        s = self.settings
        parts = [f"mode {s.mode}", f"settings from {self.source}"]
        if self.sets_max is None:
            parts.append("conntrack.maxPerCore 0: leaves the table alone")
        else:
            parts.append(f"at its start: nf_conntrack_max {self.sets_max} (maxPerCore "
                         f"{s.max_per_core} x {self.cpus} CPUs, min {s.minimum}), "
                         f"hashsize at least {self.hashsize_floor}")
        if (old := self.sets_max_before_cap) is not None:
            parts.append(f"before kube-proxy 1.36 (no cap at {KUBE_PROXY_CAP}): {old}")
        parts.append(f"tcpBeLiberal {'true' if s.be_liberal else 'false'}")
        return "; ".join(parts)


class Survey(Record):
    """Every process named kube-proxy: those that could be kube-proxy, read; the others
    by why they were not (a reason of REASONS -> their PIDs)."""

    found: tuple[KubeProxy, ...]
    unreadable: tuple[tuple[int, NftuneError], ...]  # trusted, but its settings unreadable
    ignored: tuple[tuple[str, tuple[int, ...]], ...]

    def ignored_line(self) -> str | None:
        """One line: how many were ignored and why; None when none was."""
        if not self.ignored:
            return None
        n = sum(len(p) for _, p in self.ignored)
        parts = []
        for reason, pids_ in self.ignored:
            shown = ", ".join(map(str, pids_[:5])) + (", …" if len(pids_) > 5 else "")
            parts.append(f"{reason}: {len(pids_)} (PID{'s' * (len(pids_) > 1)} {shown})")
        return (f"{n} process{'es' * (n != 1)} named {NAME} ignored, as none could itself "
                f"write what it would claim: {'; '.join(parts)}")


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
    from .chase import on_kernel_fs

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


def flag(argv: list[str], name: str) -> str | None:
    """The last value of --NAME (pflag: --name=value or --name value)."""
    value = None
    for i, word in enumerate(argv):
        if word.startswith(f"--{name}="):
            value = word.split("=", 1)[1]
        elif word == f"--{name}" and i + 1 < len(argv):
            value = argv[i + 1]
    return value


TRUE, FALSE = ("1", "t", "T", "TRUE", "true", "True"), ("0", "f", "F", "FALSE", "false", "False")


def _bool_flag(argv: list[str], name: str) -> bool:
    """pflag's bool: --name, or --name=VALUE with strconv.ParseBool's spellings."""
    value = False
    for word in argv:
        if word == f"--{name}":
            value = True
        elif word.startswith(f"--{name}="):
            text = word.split("=", 1)[1]
            if text not in TRUE + FALSE:
                raise NftuneError(f"--{name} is not true or false")
            value = text in TRUE
    return value


def _cpus(status: str) -> int:
    from .cpus import parse_list

    m = re.search(r"^Cpus_allowed_list:\s*(\S*)", status, re.M)
    try:
        return len(parse_list(m.group(1))) if m else 0
    except ValueError:
        return 0


def _int32_flag(argv: list[str], name: str, default: int) -> int:
    """pflag's int32 (strconv.ParseInt with base 0: 0x, 0o, 0b and a leading 0)."""
    text = flag(argv, name)
    if text is None:
        return default
    try:
        value = int(text, 8) if re.fullmatch(r"0[0-7]+", text) else int(text, 0)
    except ValueError:
        value = -1
    if not 0 <= value < 1 << 31:
        raise NftuneError(f"--{name} is not a number from 0 to 2147483647")
    return value


_SPAN = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
MAX_DURATION = ((1 << 63) - 1) / 1e9  # Go's time.Duration: int64 nanoseconds
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60,
         "h": 3600}


def duration(text: str) -> int | None:
    """Go's time.ParseDuration, in whole seconds as kube-proxy writes them; None when it
    is not one."""
    if text in ("0", "+0", "-0", ""):
        return 0 if text else None
    body = text.lstrip("+")
    if body.startswith("-") or len(body) > 64:
        return None
    total, pos = 0.0, 0
    while pos < len(body):
        m = _SPAN.match(body, pos)
        if m is None or m.group(1) in ("", "."):
            return None
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    return int(total) if total < MAX_DURATION else None


def _timeout_flag(argv: list[str], name: str, default: int) -> int:
    text = flag(argv, name)
    if text is None:
        return default
    seconds = duration(text)
    if seconds is None:
        raise NftuneError(f"--{name} is not a duration like 24h0m0s")
    return seconds


def _from_flags(argv: list[str]) -> Settings:
    mode = flag(argv, "proxy-mode") or ""
    if mode not in ("", *MODES):
        raise NftuneError("--proxy-mode is not iptables, ipvs or nftables")
    timeouts = tuple((key, _timeout_flag(argv, flag_name, default))
                     for _, flag_name, key, default in TIMEOUTS)
    return Settings(mode or "iptables",
                    _int32_flag(argv, "conntrack-max-per-core", KUBE_PROXY_MAX_PER_CORE),
                    _int32_flag(argv, "conntrack-min", KUBE_PROXY_MIN),
                    _bool_flag(argv, "conntrack-tcp-be-liberal"),
                    tuple((k, v) for k, v in timeouts if v > 0))


def _from_file(root: Root, pid: int, proc: int, path: str) -> Settings:
    """The config file, read inside the process's own root: a regular file on a file
    system that stores files (never procfs, sysfs, tracefs, FUSE or a network file
    system, where a read can have effects or block), opened non-blocking, at most
    MAX_CONFIG bytes."""
    shown = f"{cut(path)} (in {NAME}[{pid}]'s root)"
    if not path.startswith("/"):
        # kube-proxy resolves it from its working directory, but ".." and absolute links
        # from its root: one directory descriptor cannot stand for both.
        raise NftuneError("a relative --config path: nftune reads only absolute ones",
                          path=shown)
    try:
        # On the host, the kernel resolves the magic link to the process's root; in a
        # test tree, the link is resolved inside the tree like any other.
        top = os.open("root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=proc) \
            if root.is_host else root.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY)
    except OSError as e:
        if e.errno == errno.ENOENT:  # procfs has no such entry once the process has gone
            raise Gone from None
        raise NftuneError(f"cannot open its root: {e.strerror}", path=shown) from None
    try:
        theirs = Root(f"/proc/self/fd/{top}")
        with theirs.reader(path, storage_only=True) as f:
            if f is None:
                raise NftuneError("no such file", path=shown)
            data = f.read(MAX_CONFIG + 1)
    except NftuneError as e:
        e.path = shown
        raise
    except OSError as e:
        raise NftuneError(f"cannot read: {e.strerror}", path=shown) from None
    finally:
        os.close(top)
    if data is None:  # a non-blocking read that would block: not a file that stores data
        raise NftuneError("a read would block", path=shown)
    if len(data) > MAX_CONFIG:
        raise NftuneError(f"larger than {MAX_CONFIG} bytes (a KubeProxyConfiguration is a "
                          "few KiB)", path=shown)
    return settings(parse_document(data, shown), shown)


def _what(value: object) -> str:
    """What a value of the document is, never what it says: the file may be anything."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "another type"


def settings(doc: dict[str, Any], shown: str) -> Settings:
    """The mode and conntrack settings of a KubeProxyConfiguration, with kube-proxy's
    defaults for what it leaves out."""
    conntrack = doc.get("conntrack")
    if conntrack is None:
        conntrack = {}
    if not isinstance(conntrack, dict):
        raise NftuneError(f"conntrack is {_what(conntrack)}, not a mapping", path=shown,
                          key="conntrack")
    mode = doc.get("mode") or ""
    if not isinstance(mode, str) or mode not in ("", *MODES):
        raise NftuneError("mode is not iptables, ipvs or nftables", path=shown, key="mode")
    timeouts = []
    for field, _, key, default in TIMEOUTS:
        value = conntrack.get(field)
        seconds = default if value is None else duration(value) \
            if isinstance(value, str) else None
        if seconds is None:
            raise NftuneError(f"conntrack.{field} is {_what(value)}, not a duration like "
                              "24h0m0s", path=shown, key=f"conntrack.{field}")
        if seconds > 0:
            timeouts.append((key, seconds))
    return Settings(mode or "iptables",
                    _int32(conntrack, "maxPerCore", KUBE_PROXY_MAX_PER_CORE, shown),
                    _int32(conntrack, "min", KUBE_PROXY_MIN, shown),
                    _boolean(conntrack, "tcpBeLiberal", shown), tuple(timeouts))


# What went wrong in PyYAML's loader, by its error's class: the message itself quotes the
# document (a token, a tag), so it is never shown.
_YAML_ERRORS = {"ReaderError": "not text YAML allows", "ScannerError": "not valid YAML",
                "ParserError": "not valid YAML", "ComposerError": "not valid YAML",
                "ConstructorError": "a tag or value nftune does not accept",
                "TooDeep": f"brackets nested more than {MAX_FLOW_DEPTH} deep"}


def parse_document(data: bytes, shown: str) -> dict[str, Any]:
    """A KubeProxyConfiguration in YAML (or JSON, which YAML reads too), with PyYAML's safe
    loader: plain data, no tags that construct objects. Whatever the loader raises on
    whatever the file holds is an NftuneError that says what kind of problem and where,
    never what the file says."""
    try:
        loader = _loader()(data)
        try:
            doc = loader.get_single_data()
        finally:
            loader.dispose()
    except RecursionError:
        raise NftuneError("nested too deeply", path=shown) from None
    except MemoryError:
        raise NftuneError("too large to read", path=shown) from None
    except Exception as e:  # any input may raise anything in the loader
        what = _YAML_ERRORS.get(type(e).__name__, "a value nftune does not accept")
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line, column = getattr(mark, "line", None), getattr(mark, "column", None)
        where = f" (line {line + 1}, column {column + 1})" \
            if isinstance(line, int) and isinstance(column, int) else ""
        raise NftuneError(f"{what}{where}", path=shown) from None
    if not isinstance(doc, dict):
        raise NftuneError(f"not a KubeProxyConfiguration ({_what(doc)}, not a mapping)",
                          path=shown)
    if doc.get("kind") != KIND:
        raise NftuneError(f"kind is not {KIND}", path=shown, key="kind")
    return doc


_LOADER: Any = None


def _loader() -> Any:
    """PyYAML's Python SafeLoader (the C one is not bundled, and is not used in a venv
    either, so both behave alike), refusing flow collections nested past
    MAX_FLOW_DEPTH: each level makes every later token cost more (N^2)."""
    global _LOADER
    if _LOADER is None:
        import yaml

        class TooDeep(yaml.YAMLError):
            pass

        class Loader(yaml.SafeLoader):
            def fetch_flow_collection_start(self, token: Any) -> None:
                if self.flow_level >= MAX_FLOW_DEPTH:
                    raise TooDeep()
                super().fetch_flow_collection_start(token)

        _LOADER = Loader
    return _LOADER


def _int32(section: dict[str, Any], key: str, default: int, shown: str) -> int:
    value = section.get(key)
    if value is None:
        return default
    if type(value) is not int or not 0 <= value < 1 << 31:
        raise NftuneError(f"conntrack.{key} is {_what(value)}, not a number from 0 to "
                          "2147483647", path=shown, key=f"conntrack.{key}")
    return value


def _boolean(section: dict[str, Any], key: str, shown: str) -> bool:
    value = section.get(key, False)
    if value is None:
        return False
    if type(value) is not bool:
        raise NftuneError(f"conntrack.{key} is {_what(value)}, not true or false",
                          path=shown, key=f"conntrack.{key}")
    return value
