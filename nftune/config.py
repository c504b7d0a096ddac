"""nftune's configuration: built-in defaults, then /etc/nftune/nftune.conf, then
/etc/nftune/nftune.conf.d/*.conf in name order. Later assignments win.

One table (SETTINGS) defines every setting: its section, key, syntax and help text. The
parser, the error messages, `nftune config` and the man page all read it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from . import ini, sysctl
from .errors import EXIT_USAGE, NftuneError
from .ini import Entry, Origin
from .record import Record
from .root import Root
from .text import cut

BUILTIN = "(built-in defaults)"
DEFAULT_SYSCTL_PRIORITY = "90"
DEFAULTS = f"""\
[Modules]
Load=nf_conntrack

[Sysctl]
net.netfilter.nf_conntrack_tcp_be_liberal=1

[Files]
SysctlPriority={DEFAULT_SYSCTL_PRIORITY}

[RPS]
Mode=auto
CPUs=auto
ExcludeIsolatedCPUs=yes
FlowEntries=32768

[Verify]
Interval=5
Gate=no
Repair=no
PrometheusDirectory=
"""
MODULE_NAME = re.compile(r"[A-Za-z0-9_-]{1,55}")
# An interface glob: what a Linux interface name may hold (no "/", ":" or white space),
# plus fnmatch's "*", "?" and "[...]".
IFACE_GLOB = re.compile(r"[A-Za-z0-9_.@*?\[\]!-]{1,64}")
MAX_FLOW_ENTRIES = 1 << 29  # the kernel refuses a larger rps_sock_flow_entries
IN_TREE_PATH = re.compile(r"[A-Za-z0-9_./@+-]{1,255}")  # no spaces, quotes or specifiers
# PrometheusDirectory= becomes ReadWritePaths= of a sandboxed service: never a directory
# that would make the system, its configuration or the kernel's interfaces writable.
SANDBOX_OPENERS = frozenset(["", "/etc", "/usr", "/var", "/var/lib", "/run", "/boot", "/opt",
                             "/srv", "/home", "/root", "/tmp", "/var/tmp", "/bin", "/sbin",
                             "/lib", "/lib64", "/usr/local", "/proc", "/sys", "/dev"])
SANDBOX_TREES = ("/proc/", "/sys/", "/dev/", "/boot/", "/etc/", "/usr/", "/bin/", "/sbin/",
                 "/lib/", "/lib64/")


class ModuleSpec(Record):
    """A module to load at boot; alternatives are tried in order (see kernel.resolve)."""

    alternatives: tuple[str, ...]
    origin: Origin

    @property
    def name(self) -> str:
        return "|".join(self.alternatives)


class SysctlSpec(Record):
    """One sysctl nftune sets, and the config line that asks for it."""

    key: str  # canonical slash form, see sysctl.normalize
    value: str
    origin: Origin

    @property
    def display(self) -> str:
        return sysctl.display(self.key)


class RpsConfig(Record):
    """[RPS]: how receive processing is spread over CPUs (see rps.py)."""

    mode: str = "auto"  # auto: only NICs with fewer rx queues than CPUs; on; off
    interfaces: tuple[str, ...] = ()  # globs; none: every physical NIC
    exclude: tuple[str, ...] = ()
    cpus: frozenset[int] | None = None  # None: the NIC's NUMA node, else all online CPUs
    cpus_origin: Origin | None = None
    exclude_isolated: bool = True
    flow_entries: int = 32768  # rps_sock_flow_entries; 0 turns RFS off


class VerifyConfig(Record):
    """[Verify]: the checks after boot (nftune-verify.timer) and where results go."""

    interval: int = 5  # minutes between checks
    gate: bool = False  # kubelet.service waits for, and requires, a passing verify
    repair: bool = False  # put nftune's values back when changed at runtime
    prometheus_dir: str | None = None  # node_exporter's textfile directory


class Config(Record):
    """The effective configuration: built-in defaults, then the admin's files."""

    modules: tuple[ModuleSpec, ...]
    sysctls: tuple[SysctlSpec, ...]
    sysctl_priority: str
    sources: tuple[str, ...]  # in-tree config files read, in order
    rps: RpsConfig = RpsConfig()
    verify: VerifyConfig = VerifyConfig()

    def sysctl(self, key: str) -> SysctlSpec | None:
        return next((s for s in self.sysctls if s.key == key), None)


class _Builder:
    """The configuration while the files are read, before it is frozen."""

    def __init__(self) -> None:
        self.modules: list[ModuleSpec] = []
        self.sysctls: dict[str, SysctlSpec] = {}
        self.sysctl_priority = DEFAULT_SYSCTL_PRIORITY
        self.rps_mode = "auto"
        self.rps_interfaces: list[str] = []
        self.rps_exclude: list[str] = []
        self.rps_cpus: frozenset[int] | None = None
        self.rps_cpus_origin: Origin | None = None
        self.rps_exclude_isolated = True
        self.rps_flow_entries = 32768
        self.verify_interval = 5
        self.verify_gate = False
        self.verify_repair = False
        self.verify_prometheus: str | None = None


def _bad(entry: Entry, message: str, hint: str) -> NftuneError:
    return NftuneError(message, path=entry.origin.file, line=entry.origin.line,
                       key=entry.key, value=entry.value, hint=hint)


def _set_load(b: _Builder, e: Entry) -> None:
    if not e.value:  # an empty assignment resets the list, as in unit files
        b.modules.clear()
        return
    for token in re.split(r"[ \t]+", e.value):  # systemd's white space, not str.split()'s
        alts = tuple(a.replace("-", "_") for a in token.split("|"))
        for a in alts:
            if not MODULE_NAME.fullmatch(a):
                raise _bad(e, f"invalid module name {cut(a)!r}",
                           "module names are letters, digits, '_' and '-' (at most 55); "
                           "separate alternatives with '|' and modules with spaces")
        if all(m.alternatives != alts for m in b.modules):
            b.modules.append(ModuleSpec(alts, e.origin))


def _set_sysctl(b: _Builder, e: Entry) -> None:
    try:
        key = sysctl.validate_key(e.key)
    except ValueError as err:
        raise _bad(e, f"invalid sysctl key: {err}",
                   "use a key as sysctl(8) shows it, like net.netfilter.nf_conntrack_max") \
            from None
    if not e.value:  # an empty assignment stops managing the key
        b.sysctls.pop(key, None)
        return
    try:
        value = sysctl.validate_value(e.value)
    except ValueError as err:
        raise _bad(e, f"invalid sysctl value: {err}", "write the value as sysctl(8) "
                   "takes it; vectors are separated by spaces") from None
    b.sysctls.pop(key, None)  # re-insert: file order follows the last assignment
    b.sysctls[key] = SysctlSpec(key, value, e.origin)


def _set_priority(b: _Builder, e: Entry) -> None:
    if not re.fullmatch(r"[0-9]{2}", e.value):
        raise _bad(e, "the priority must be two digits",
                   "sysctl.d files apply in name order; use 10-99, e.g. SysctlPriority=90")
    b.sysctl_priority = e.value


def _set_rps_mode(b: _Builder, e: Entry) -> None:
    if e.value not in ("auto", "on", "off"):
        raise _bad(e, "Mode must be auto, on or off",
                   "auto spreads only NICs with fewer receive queues than CPUs; on spreads "
                   "every selected NIC; off leaves RPS alone")
    b.rps_mode = e.value


def _add_globs(target: list[str], e: Entry) -> None:
    """A list of interface globs: each assignment adds, an empty one resets."""
    if not e.value:
        target.clear()
        return
    for g in re.split(r"[ \t]+", e.value):
        if not IFACE_GLOB.fullmatch(g) or g in (".", ".."):
            raise _bad(e, f"invalid interface name or glob {cut(g)!r}",
                       "interface names hold letters, digits and '_.@-'; globs add "
                       "'*', '?' and '[...]'; separate them with spaces")
        if g not in target:
            target.append(g)


def _set_rps_interfaces(b: _Builder, e: Entry) -> None:
    _add_globs(b.rps_interfaces, e)


def _set_rps_exclude(b: _Builder, e: Entry) -> None:
    _add_globs(b.rps_exclude, e)


def _set_rps_cpus(b: _Builder, e: Entry) -> None:
    from .cpus import parse_list

    if e.value == "auto":
        b.rps_cpus, b.rps_cpus_origin = None, None
        return
    try:
        cpus = parse_list(e.value)
    except ValueError as err:
        raise _bad(e, f"invalid CPU list: {err}",
                   "write CPUs=auto, or a list such as 0-3,8") from None
    if not cpus:
        raise _bad(e, "the CPU list is empty", "write CPUs=auto, or a list such as 0-3,8")
    b.rps_cpus, b.rps_cpus_origin = cpus, e.origin


def _set_rps_isolated(b: _Builder, e: Entry) -> None:
    if e.value not in ("yes", "no"):
        raise _bad(e, "ExcludeIsolatedCPUs must be yes or no",
                   "yes keeps RPS off the CPUs in isolcpus= and nohz_full=")
    b.rps_exclude_isolated = e.value == "yes"


def _number(e: Entry, low: int, high: int) -> int | None:
    """A whole number in ASCII digits within [low, high], else None (int() alone would
    take other scripts' digits, and fail on a very long number)."""
    if not re.fullmatch(r"[0-9]{1,10}", e.value) or not low <= int(e.value) <= high:
        return None
    return int(e.value)


def _set_rps_flows(b: _Builder, e: Entry) -> None:
    n = _number(e, 0, MAX_FLOW_ENTRIES)
    if n is None:
        raise _bad(e, f"FlowEntries must be a number from 0 to {MAX_FLOW_ENTRIES}",
                   "32768 suits most servers; 0 turns RFS off")
    b.rps_flow_entries = n


def _yes_no(e: Entry, what: str) -> bool:
    if e.value not in ("yes", "no"):
        raise _bad(e, f"{e.key} must be yes or no", what)
    return e.value == "yes"


def _set_interval(b: _Builder, e: Entry) -> None:
    n = _number(e, 1, 1440)
    if n is None:
        raise _bad(e, "Interval must be whole minutes from 1 to 1440",
                   "how often nftune-verify.timer checks again, e.g. Interval=5")
    b.verify_interval = n


def _set_gate(b: _Builder, e: Entry) -> None:
    b.verify_gate = _yes_no(e, "yes: kubelet.service does not start while verify fails")


def _set_repair(b: _Builder, e: Entry) -> None:
    b.verify_repair = _yes_no(e, "yes: put nftune's values back when changed at runtime")


def _set_prometheus(b: _Builder, e: Entry) -> None:
    hint = ("node_exporter's --collector.textfile.directory, e.g. "
            "/var/lib/prometheus/node-exporter; empty: no metrics file")
    if e.value and (not e.value.startswith("/") or not IN_TREE_PATH.fullmatch(e.value)
                    or "/../" in e.value + "/" or "/./" in e.value + "/"
                    or "//" in e.value):
        raise _bad(e, "PrometheusDirectory must be an absolute, plain directory path", hint)
    path = e.value.rstrip("/")
    if e.value and (path in SANDBOX_OPENERS or path.startswith(SANDBOX_TREES)):
        raise _bad(e, "PrometheusDirectory would open nftune-verify.service's sandbox "
                      "(ReadWritePaths=)", "use a directory of its own, " + hint)
    b.verify_prometheus = path or None


class Setting(Record):
    """One key of the config syntax: where it goes, how it parses, its help."""

    section: str
    key: str  # "*" takes any key (sysctl names)
    syntax: str
    help: str
    apply: Callable[[_Builder, Entry], None]


SETTINGS: tuple[Setting, ...] = (
    Setting("Modules", "Load", "MODULE[|ALT...] ...",
            "Kernel modules to load at boot, before systemd-sysctl runs. A list: each "
            "assignment adds, an empty one resets. 'a|b' loads the first of a and b that "
            "every installed kernel has.", _set_load),
    Setting("Sysctl", "*", "KEY=VALUE",
            "A sysctl to set at boot, written as sysctl(8) shows it. An empty value stops "
            "managing the key.", _set_sysctl),
    Setting("Files", "SysctlPriority", "NN",
            "The two-digit prefix of nftune's sysctl.d file; it decides which files it "
            "overrides and which override it.", _set_priority),
    Setting("RPS", "Mode", "auto|on|off",
            "Receive packet steering at boot. auto: only NICs with fewer receive queues "
            "than CPUs, where spreading helps; on: every selected NIC; off: nftune "
            "leaves RPS alone.", _set_rps_mode),
    Setting("RPS", "Interfaces", "GLOB ...",
            "Interfaces RPS may be set on (a list; empty resets: every physical NIC). "
            "Only physical NICs, which have a device link in sysfs, are ever chosen.",
            _set_rps_interfaces),
    Setting("RPS", "ExcludeInterfaces", "GLOB ...",
            "Interfaces RPS is never set on (a list; empty resets).", _set_rps_exclude),
    Setting("RPS", "CPUs", "auto|LIST",
            "The CPUs that process received packets. auto: the CPUs of the NIC's NUMA "
            "node, else every online CPU. A list such as 0-3,8 must name online CPUs.",
            _set_rps_cpus),
    Setting("RPS", "ExcludeIsolatedCPUs", "yes|no",
            "Keep RPS off the CPUs isolated by isolcpus= or nohz_full=.", _set_rps_isolated),
    Setting("RPS", "FlowEntries", "N",
            "RFS: net.core.rps_sock_flow_entries (rounded up to a power of two); each "
            "receive queue gets an equal share as rps_flow_cnt. 0 turns RFS off.",
            _set_rps_flows),
    Setting("Verify", "Interval", "MINUTES",
            "How often nftune-verify.timer checks again after boot (a randomized delay of "
            "up to a minute is added, so a fleet does not check in lockstep).", _set_interval),
    Setting("Verify", "Gate", "yes|no",
            "yes: kubelet.service requires a passing nftune-verify.service and starts "
            "after it (a drop-in nftune installs only then). no: nothing waits for the "
            "check.", _set_gate),
    Setting("Verify", "Repair", "yes|no",
            "yes: a sysctl changed at runtime is put back, and reported; one reset again "
            "within an interval is 'contested' and left alone. The check then runs "
            "before kubelet and containerd start (ordering only).", _set_repair),
    Setting("Verify", "PrometheusDirectory", "DIR",
            "node_exporter's textfile directory: each check run writes DIR/nftune.prom. "
            "Empty: none.", _set_prometheus),
)


def _lookup(e: Entry) -> Setting:
    sections = {s.section for s in SETTINGS}
    if e.section not in sections:
        import difflib  # only a config error needs a suggestion

        hint = "known sections: " + ", ".join(f"[{s}]" for s in sorted(sections))
        if close := difflib.get_close_matches(e.section, sections, 1):
            hint = f"did you mean [{close[0]}]?"
        raise NftuneError(f"unknown section [{e.section}]", path=e.origin.file,
                          line=e.origin.line, key=e.key, value=e.value, hint=hint)
    in_section = [s for s in SETTINGS if s.section == e.section]
    for s in in_section:
        if s.key in ("*", e.key):
            return s
    import difflib

    keys = [s.key for s in in_section]
    close = difflib.get_close_matches(e.key, keys, 1)
    raise _bad(e, f"unknown setting in [{e.section}]",
               f"did you mean {close[0]}=?" if close else "known: " + ", ".join(keys))


def parse(texts: list[tuple[str, str]]) -> Config:
    """Pure: (file name, text) pairs in the order they apply, after the built-in defaults."""
    b = _Builder()
    for name, text in [(BUILTIN, DEFAULTS), *texts]:
        for e in ini.parse(text, name):
            _lookup(e).apply(b, e)
    rps = RpsConfig(b.rps_mode, tuple(b.rps_interfaces), tuple(b.rps_exclude), b.rps_cpus,
                    b.rps_cpus_origin, b.rps_exclude_isolated, b.rps_flow_entries)
    verify = VerifyConfig(b.verify_interval, b.verify_gate, b.verify_repair,
                          b.verify_prometheus)
    return Config(tuple(b.modules), tuple(b.sysctls.values()), b.sysctl_priority,
                  tuple(name for name, _ in texts), rps, verify)


def load(root: Root) -> Config:
    """Read the tree's config files. Origins and the generated headers use in-tree paths;
    error messages use the real path, so the user can open the file."""
    texts = []
    for f in root.config_files():
        if not f.isprintable():  # control characters, or bytes that are not UTF-8
            raise NftuneError("a config file name is not printable UTF-8", path=root.show(f),
                              hint="rename the file")
        try:
            raw = root.read_bytes(f)
        except NftuneError as e:  # a FIFO, a directory, a symlink loop: a config error
            e.exit_code = EXIT_USAGE
            raise
        if raw is None:
            raise NftuneError("cannot read: a dangling symlink", path=root.show(f),
                              hint="point it at a file in the tree, or remove it")
        try:
            text = raw.decode("utf-8").removeprefix("\ufeff")  # a BOM, as systemd allows
        except UnicodeDecodeError:
            raise NftuneError("not valid UTF-8", path=root.show(f),
                              hint="save the file as UTF-8 text") from None
        texts.append((f, text))
    try:
        return parse(texts)
    except NftuneError as e:
        if e.path and e.path.startswith("/"):
            e.path = root.show(e.path)
        raise
