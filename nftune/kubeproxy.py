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
- tcpBeLiberal (1.29+) sets nf_conntrack_tcp_be_liberal=1 and drops its INVALID rule.
"""

from __future__ import annotations

import re

from .conntrack import KUBE_PROXY_MAX_PER_CORE, KUBE_PROXY_MIN, kube_proxy_max
from .errors import NftuneError
from .record import Record
from .root import Root

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows it)
if TYPE_CHECKING:
    from typing import Any

NAME = "kube-proxy"
MAX_CMDLINE = 1 << 20
MAX_CONFIG = 1 << 20  # a KubeProxyConfiguration is a few KiB
MODES = ("iptables", "ipvs", "nftables")
API_VERSION = "kubeproxy.config.k8s.io/v1alpha1"
KIND = "KubeProxyConfiguration"


class Gone(Exception):
    """The process exited while it was read."""


class KubeProxy(Record):
    """One running kube-proxy and what it does at its next start."""

    pid: int
    mode: str
    source: str  # where the settings come from: "flags", or the config file in its root
    max_per_core: int
    minimum: int
    be_liberal: bool
    cpus: int  # its CPU affinity: Go's runtime.NumCPU()

    @property
    def subject(self) -> str:
        return f"{NAME}[{self.pid}]"

    @property
    def sets_max(self) -> int | None:
        """nf_conntrack_max at its next start (None: left alone)."""
        return kube_proxy_max(self.cpus, self.max_per_core, self.minimum)

    @property
    def hashsize_floor(self) -> int | None:
        """It raises hashsize to at least this at its next start."""
        m = self.sets_max
        return None if m is None else m // 4

    def summary(self) -> str:
        parts = [f"mode {self.mode}", f"settings from {self.source}"]
        if self.sets_max is None:
            parts.append("conntrack.maxPerCore 0: leaves the table alone")
        else:
            parts.append(f"at its start: nf_conntrack_max {self.sets_max} (maxPerCore "
                         f"{self.max_per_core} x {self.cpus} CPUs, min {self.minimum}), "
                         f"hashsize at least {self.hashsize_floor}")
        parts.append(f"tcpBeLiberal {'true' if self.be_liberal else 'false'}")
        return "; ".join(parts)


def pids(root: Root) -> list[int]:
    """Processes whose name is kube-proxy."""
    out = []
    for name in root.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            comm = root.read_bytes(f"/proc/{name}/comm", 64)
        except NftuneError:
            continue
        if comm is not None and comm.strip() == NAME.encode():
            out.append(int(name))
    return sorted(out)


def read(root: Root, pid: int) -> KubeProxy:
    """One kube-proxy's effective settings. Gone when it exits meanwhile; NftuneError
    (naming the file) when its configuration cannot be read or parsed."""
    try:
        raw = root.read_bytes(f"/proc/{pid}/cmdline", MAX_CMDLINE)
        status = root.read_text(f"/proc/{pid}/status")
    except NftuneError as e:
        if not root.exists(f"/proc/{pid}"):
            raise Gone from None
        raise e
    if raw is None or status is None:
        raise Gone
    argv = raw.decode("utf-8", "surrogateescape").split("\0")
    cpus = _cpus(status) or 1
    config = flag(argv, "config")
    if config:
        settings = _from_file(root, pid, config)
        source = config
    else:
        settings = _from_flags(argv)
        source = "flags"
    mode, per_core, minimum, liberal = settings
    if not root.exists(f"/proc/{pid}"):
        raise Gone
    return KubeProxy(pid, mode or "iptables", source, per_core, minimum, liberal, cpus)


def flag(argv: list[str], name: str) -> str | None:
    """The last value of --NAME (pflag: --name=value or --name value)."""
    value = None
    for i, word in enumerate(argv):
        if word.startswith(f"--{name}="):
            value = word.split("=", 1)[1]
        elif word == f"--{name}" and i + 1 < len(argv):
            value = argv[i + 1]
    return value


def _bool_flag(argv: list[str], name: str) -> bool:
    value = False
    for word in argv:
        if word == f"--{name}":
            value = True
        elif word.startswith(f"--{name}="):
            value = word.split("=", 1)[1].lower() in ("1", "t", "true")
    return value


def _cpus(status: str) -> int:
    from .cpus import parse_list

    m = re.search(r"^Cpus_allowed_list:\s*(\S*)", status, re.M)
    try:
        return len(parse_list(m.group(1))) if m else 0
    except ValueError:
        return 0


def _number(text: str | None, default: int, what: str) -> int:
    if text is None:
        return default
    if not re.fullmatch(r"[0-9]{1,10}", text):
        raise NftuneError(f"{what} is not a whole number", value=text)
    return int(text)


def _from_flags(argv: list[str]) -> tuple[str, int, int, bool]:
    return (flag(argv, "proxy-mode") or "",
            _number(flag(argv, "conntrack-max-per-core"), KUBE_PROXY_MAX_PER_CORE,
                    "--conntrack-max-per-core"),
            _number(flag(argv, "conntrack-min"), KUBE_PROXY_MIN, "--conntrack-min"),
            _bool_flag(argv, "conntrack-tcp-be-liberal"))


def _from_file(root: Root, pid: int, path: str) -> tuple[str, int, int, bool]:
    """The config file, read inside the process's own root (relative: its working
    directory), regular files only, at most MAX_CONFIG bytes."""
    base = f"/proc/{pid}/root" if path.startswith("/") else f"/proc/{pid}/cwd"
    # On the host, the kernel resolves the magic link to the process's root; in a test
    # tree, the link is resolved inside the tree like any other.
    theirs = Root(base if root.is_host else root.path + root.chase(base))
    shown = f"{path} (in {NAME}[{pid}]'s root)"
    try:
        data = theirs.read_bytes("/" + path.lstrip("/"), MAX_CONFIG)
    except NftuneError as e:
        e.path = shown
        raise
    except OSError as e:  # the root itself: the process is gone, or not ours to read
        if not root.exists(f"/proc/{pid}"):
            raise Gone from None
        raise NftuneError(f"cannot open: {e.strerror}", path=shown) from None
    if data is None:
        if not root.exists(f"/proc/{pid}"):
            raise Gone
        raise NftuneError("no such file", path=shown)
    return settings(parse_document(data, shown), shown)


def settings(doc: dict[str, Any], shown: str) -> tuple[str, int, int, bool]:
    """mode, maxPerCore, min and tcpBeLiberal of a KubeProxyConfiguration, with
    kube-proxy's defaults for what it leaves out."""
    conntrack = doc.get("conntrack") or {}
    if not isinstance(conntrack, dict):
        raise NftuneError("conntrack is not a mapping", path=shown)
    mode = doc.get("mode") or ""
    if not isinstance(mode, str) or mode not in ("", *MODES):
        raise NftuneError(f"unknown mode {mode!r}", path=shown, key="mode")
    return (mode, _int32(conntrack, "maxPerCore", KUBE_PROXY_MAX_PER_CORE, shown),
            _int32(conntrack, "min", KUBE_PROXY_MIN, shown),
            _boolean(conntrack, "tcpBeLiberal", shown))


def parse_document(data: bytes, shown: str) -> dict[str, Any]:
    """A KubeProxyConfiguration in YAML (or JSON, which YAML reads too), with PyYAML's safe
    loader: plain data, no tags that construct objects."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        doc = yaml.load(data, Loader=loader)  # a safe loader: plain data only
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = where.line + 1 if where is not None else None
        problem = getattr(e, "problem", None) or str(e).split("\n", 1)[0]
        raise NftuneError(f"not YAML: {problem}", path=shown, line=line) from None
    except (RecursionError, ValueError, OverflowError) as e:  # absurd nesting or numbers
        raise NftuneError(f"cannot be read: {type(e).__name__}", path=shown) from None
    if not isinstance(doc, dict):
        raise NftuneError("not a KubeProxyConfiguration (not a mapping)", path=shown)
    if doc.get("kind") != KIND:
        raise NftuneError(f"kind is {doc.get('kind')!r}, not {KIND}", path=shown, key="kind")
    return doc


def _int32(section: dict[str, Any], key: str, default: int, shown: str) -> int:
    value = section.get(key)
    if value is None:
        return default
    if type(value) is not int or not 0 <= value < 1 << 31:
        raise NftuneError(f"conntrack.{key} is not a number from 0 to 2147483647",
                          path=shown, key=f"conntrack.{key}", value=str(value))
    return value


def _boolean(section: dict[str, Any], key: str, shown: str) -> bool:
    value = section.get(key, False)
    if type(value) is not bool:
        raise NftuneError(f"conntrack.{key} is not true or false", path=shown,
                          key=f"conntrack.{key}", value=str(value))
    return value
