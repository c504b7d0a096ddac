"""nftune's configuration: built-in defaults, then /etc/nftune/nftune.conf, then
/etc/nftune/nftune.conf.d/*.conf in name order. Later assignments win.

One table (SETTINGS) defines every setting, in mkosi's shape: its section, key, where the
value goes, its default, its parser (made from a few shared ones) and its help. The
parser, the defaults, the error messages, `nftune config` and the man page all read it.
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

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows it)
if TYPE_CHECKING:
    from typing import Any

BUILTIN = "(built-in defaults)"
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


# The records below are built from SETTINGS (their fields are its `dest`s); the defaults
# are the table's, written there once.

class RpsConfig(Record):
    """[RPS]: how receive processing is spread over CPUs (see nftune/rps/)."""

    mode: str  # auto: only NICs with fewer rx queues than CPUs; on; off
    interfaces: tuple[str, ...]  # globs; none: every physical NIC
    exclude: tuple[str, ...]
    cpus: frozenset[int] | None  # None: the NIC's NUMA node, else all online CPUs
    exclude_isolated: bool
    flow_entries: int  # rps_sock_flow_entries; 0 turns RFS off
    cpus_origin: Origin | None = None  # where CPUs= was set, for the error that names it


class VerifyConfig(Record):
    """[Verify]: the checks after boot (nftune-verify.timer) and where results go."""

    interval: int  # minutes between checks
    gate: bool  # kubelet.service waits for, and requires, a passing verify
    repair: bool  # put nftune's values back when changed at runtime
    prometheus_dir: str | None  # node_exporter's textfile directory


class ConntrackConfig(Record):
    """[Conntrack]: the table's size (see nftune/conntrack.py). None: not managed."""

    max: int | str | None  # entries, or "auto": kube-proxy's formula, capped by memory
    buckets: int | str | None  # hash buckets, or "auto": Max / 4 as the kernel rounds it
    memory_share: int  # percent of RAM the table may take with Max=auto; 0: no cap
    max_origin: Origin | None = None  # where Max= was set, for the errors that name it
    buckets_origin: Origin | None = None

    @property
    def managed(self) -> bool:
        return self.max is not None or self.buckets is not None


class Config(Record):
    """The effective configuration: built-in defaults, then the admin's files."""

    modules: tuple[ModuleSpec, ...]
    sysctls: tuple[SysctlSpec, ...]
    sysctl_priority: str
    sources: tuple[str, ...]  # in-tree config files read, in order
    rps: RpsConfig
    verify: VerifyConfig
    conntrack: ConntrackConfig

    def lines(self) -> list[str]:
        """The configuration in its own syntax, each list entry with its origin."""
        out: list[str] = []
        for section in SECTIONS:
            out += ["", f"[{section}]"] if out else [f"[{section}]"]
            for s in _in(section):
                value = s.get(self)
                if s.key == "*":
                    out += [f"{v.display + '=' + v.value:<45} # {v.origin}" for v in value
                            if v.origin != self.conntrack.max_origin]
                elif s.dest == "modules":
                    out += [f"Load={m.name:<40} # {m.origin}" for m in value]
                else:
                    out.append(f"{s.key}={s.parser.show(value)}")
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sources": list(self.sources),
            "modules": [{"load": m.name, "from": str(m.origin)} for m in self.modules],
            "sysctl": [{"key": s.display, "value": s.value, "from": str(s.origin)}
                       for s in self.sysctls],
        }
        for s in SETTINGS:
            if s.dest in ("modules", "sysctls"):
                continue
            shown = s.parser.json(s.get(self))
            if s.section == "Files":  # a top-level key, as it always was
                out[s.json_key] = shown
            else:
                out.setdefault(s.section.lower(), {})[s.json_key] = shown
        return out


class Parser(Record):
    """How a setting's value is read, shown, and written as JSON. `read` gets the value so
    far (lists add to it) and returns the new one, or raises NftuneError."""

    read: Callable[[Entry, Any], Any]
    show: Callable[[Any], str] = str
    json: Callable[[Any], Any] = lambda v: v
    initial: Any = None  # before the built-in defaults: what a list starts from


def _bad(entry: Entry, message: str, hint: str) -> NftuneError:
    return NftuneError(message, path=entry.origin.file, line=entry.origin.line,
                       key=entry.key, value=entry.value, hint=hint)


def yes_no(hint: str) -> Parser:
    def read(e: Entry, _: Any) -> bool:
        if e.value not in ("yes", "no"):
            raise _bad(e, f"{e.key} must be yes or no", hint)
        return e.value == "yes"

    return Parser(read, lambda v: "yes" if v else "no")


def number(low: int, high: int, message: str, hint: str) -> Parser:
    """A whole number in ASCII digits within [low, high] (int() alone would take other
    scripts' digits, and fail on a very long number)."""
    def read(e: Entry, _: Any) -> int:
        if not re.fullmatch(r"[0-9]{1,10}", e.value) or not low <= int(e.value) <= high:
            raise _bad(e, message, hint)
        return int(e.value)

    return Parser(read)


def one_of(values: tuple[str, ...], hint: str) -> Parser:
    def read(e: Entry, _: Any) -> str:
        if e.value not in values:
            words = ", ".join(values[:-1]) + f" or {values[-1]}"
            raise _bad(e, f"{e.key} must be {words}", hint)
        return e.value

    return Parser(read)


def matching(pattern: str, message: str, hint: str) -> Parser:
    def read(e: Entry, _: Any) -> str:
        if not re.fullmatch(pattern, e.value):
            raise _bad(e, message, hint)
        return e.value

    return Parser(read)


def words(item: Callable[[Entry, str], Any], key: Callable[[Any], Any] = lambda v: v,
          show: Callable[[Any], str] = str) -> Parser:
    """A list, as in unit files: each assignment adds its words (systemd's white space,
    not str.split()'s), an empty one resets; a word already there is not added again."""
    def read(e: Entry, so_far: tuple[Any, ...]) -> tuple[Any, ...]:
        if not e.value:
            return ()
        out = list(so_far)
        for word in re.split(r"[ \t]+", e.value):
            value = item(e, word)
            if all(key(v) != key(value) for v in out):
                out.append(value)
        return tuple(out)

    return Parser(read, lambda v: " ".join(map(show, v)), list, ())


def _module(e: Entry, word: str) -> ModuleSpec:
    alts = tuple(a.replace("-", "_") for a in word.split("|"))
    for a in alts:
        if not MODULE_NAME.fullmatch(a):
            raise _bad(e, f"invalid module name {cut(a)!r}",
                       "module names are letters, digits, '_' and '-' (at most 55); "
                       "separate alternatives with '|' and modules with spaces")
    return ModuleSpec(alts, e.origin)


def _glob(e: Entry, word: str) -> str:
    if not IFACE_GLOB.fullmatch(word) or word in (".", ".."):
        raise _bad(e, f"invalid interface name or glob {cut(word)!r}",
                   "interface names hold letters, digits and '_.@-'; globs add "
                   "'*', '?' and '[...]'; separate them with spaces")
    return word


def _sysctl(e: Entry, so_far: dict[str, SysctlSpec]) -> dict[str, SysctlSpec]:
    try:
        key = sysctl.validate_key(e.key)
    except ValueError as err:
        raise _bad(e, f"invalid sysctl key: {err}",
                   "use a key as sysctl(8) shows it, like net.netfilter.nf_conntrack_max") \
            from None
    out = {k: v for k, v in so_far.items() if k != key}  # re-added: file order follows
    if not e.value:  # an empty assignment stops managing the key
        return out
    try:
        value = sysctl.validate_value(e.value)
    except ValueError as err:
        raise _bad(e, f"invalid sysctl value: {err}", "write the value as sysctl(8) "
                   "takes it; vectors are separated by spaces") from None
    out[key] = SysctlSpec(key, value, e.origin)
    return out


AUTO = "auto"
# The kernel's limits: nf_conntrack_max is an int sysctl. The hash table is rounded up to
# a multiple of 512 buckets (a page of 8-byte heads) and refused above INT_MAX / 8 buckets
# (nf_ct_alloc_hashtable()), and kvmalloc() refuses more than INT_MAX bytes: the largest
# table the kernel makes is the largest multiple of 512 below INT_MAX / 8. A bigger
# hashsize= makes nf_conntrack fail to load.
MAX_ENTRIES = (1 << 31) - 1
MAX_BUCKETS = ((1 << 31) - 1) // 8 // 512 * 512
MAX_MEMORY_SHARE = 50


def _size(name: str, high: int, hint: str) -> Parser:
    """A table size: empty (nftune leaves it alone), auto, or a number in the kernel's range."""
    def read(e: Entry, _: Any) -> int | str | None:
        if e.value in ("", AUTO):
            return e.value or None
        if not re.fullmatch(r"[0-9]{1,10}", e.value) or not 1 <= int(e.value) <= high:
            raise _bad(e, f"{name} must be auto or a number from 1 to {high}", hint)
        return int(e.value)

    return Parser(read, lambda v: "" if v is None else str(v), lambda v: v)


def _share(e: Entry, _: Any) -> int:
    value = e.value.removesuffix("%")
    if not re.fullmatch(r"[0-9]{1,3}", value) or int(value) > MAX_MEMORY_SHARE:
        raise _bad(e, f"MemoryShare must be a percentage from 0 to {MAX_MEMORY_SHARE}",
                   "the share of RAM the table may take with Max=auto, e.g. MemoryShare=5%; "
                   "0: no cap")
    return int(value)


def _cpus(e: Entry, _: Any) -> frozenset[int] | None:
    from .cpus import parse_list

    hint = "write CPUs=auto, or a list such as 0-3,8"
    if e.value == "auto":
        return None
    try:
        cpus = parse_list(e.value)
    except ValueError as err:
        raise _bad(e, f"invalid CPU list: {err}", hint) from None
    if not cpus:
        raise _bad(e, "the CPU list is empty", hint)
    return cpus


def _show_cpus(cpus: frozenset[int] | None) -> str:
    from .cpus import format_list

    return "auto" if cpus is None else format_list(set(cpus))


def _directory(e: Entry, _: Any) -> str | None:
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
    return path or None


class Setting(Record):
    """One key of the config syntax: where its value goes (`dest`: a Config field, or
    "rps.x"/"verify.x" for a field of those records), its built-in default (in the
    config's own syntax; None: none), how it parses, and its help."""

    section: str
    key: str  # "*" takes any key (sysctl names)
    dest: str
    default: str | None
    parser: Parser
    syntax: str
    help: str

    @property
    def json_key(self) -> str:
        """ExcludeIsolatedCPUs -> exclude_isolated_cpus."""
        return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", self.key).lower()

    def get(self, config: Config) -> Any:
        record, _, field = self.dest.rpartition(".")
        return getattr(getattr(config, record) if record else config, field)


SETTINGS: tuple[Setting, ...] = (
    Setting("Modules", "Load", "modules", "nf_conntrack",
            words(_module, key=lambda m: m.alternatives, show=lambda m: m.name),
            "MODULE[|ALT...] ...",
            "Kernel modules to load at boot, before systemd-sysctl runs. A list: each "
            "assignment adds, an empty one resets. 'a|b' loads the first of a and b that "
            "every installed kernel has."),
    Setting("Sysctl", "*", "sysctls", "net.netfilter.nf_conntrack_tcp_be_liberal=1",
            Parser(_sysctl, initial={}), "KEY=VALUE",
            "A sysctl to set at boot, written as sysctl(8) shows it. An empty value stops "
            "managing the key."),
    Setting("Files", "SysctlPriority", "sysctl_priority", "90",
            matching(r"[0-9]{2}", "the priority must be two digits",
                     "sysctl.d files apply in name order; use 10-99, e.g. SysctlPriority=90"),
            "NN",
            "The two-digit prefix of nftune's sysctl.d file; it decides which files it "
            "overrides and which override it."),
    Setting("RPS", "Mode", "rps.mode", "auto",
            one_of(("auto", "on", "off"),
                   "auto spreads only NICs with fewer receive queues than CPUs; on spreads "
                   "every selected NIC; off leaves RPS alone"),
            "auto|on|off",
            "Receive packet steering at boot. auto: only NICs with fewer receive queues "
            "than CPUs, where spreading helps; on: every selected NIC; off: nftune "
            "leaves RPS alone."),
    Setting("RPS", "Interfaces", "rps.interfaces", None, words(_glob), "GLOB ...",
            "Interfaces RPS may be set on (a list; empty resets: every physical NIC). "
            "Only physical NICs, which have a device link in sysfs, are ever chosen."),
    Setting("RPS", "ExcludeInterfaces", "rps.exclude", None, words(_glob), "GLOB ...",
            "Interfaces RPS is never set on (a list; empty resets)."),
    Setting("RPS", "CPUs", "rps.cpus", "auto", Parser(_cpus, _show_cpus, _show_cpus),
            "auto|LIST",
            "The CPUs that process received packets. auto: the CPUs of the NIC's NUMA "
            "node, else every online CPU. A list such as 0-3,8 must name online CPUs."),
    Setting("RPS", "ExcludeIsolatedCPUs", "rps.exclude_isolated", "yes",
            yes_no("yes keeps RPS off the CPUs in isolcpus= and nohz_full="), "yes|no",
            "Keep RPS off the CPUs isolated by isolcpus= or nohz_full=."),
    Setting("RPS", "FlowEntries", "rps.flow_entries", "32768",
            number(0, MAX_FLOW_ENTRIES, f"FlowEntries must be a number from 0 to "
                   f"{MAX_FLOW_ENTRIES}", "32768 suits most servers; 0 turns RFS off"),
            "N",
            "RFS: net.core.rps_sock_flow_entries (rounded up to a power of two); each "
            "receive queue gets an equal share as rps_flow_cnt. 0 turns RFS off."),
    Setting("Verify", "Interval", "verify.interval", "5",
            number(1, 1440, "Interval must be whole minutes from 1 to 1440",
                   "how often nftune-verify.timer checks again, e.g. Interval=5"),
            "MINUTES",
            "How often nftune-verify.timer checks again after boot (a randomized delay of "
            "up to a minute is added, so a fleet does not check in lockstep)."),
    Setting("Verify", "Gate", "verify.gate", "no",
            yes_no("yes: kubelet.service does not start while verify fails"), "yes|no",
            "yes: kubelet.service requires a passing nftune-verify.service and starts "
            "after it (a drop-in nftune installs only then). no: nothing waits for the "
            "check."),
    Setting("Verify", "Repair", "verify.repair", "no",
            yes_no("yes: put nftune's values back when changed at runtime"), "yes|no",
            "yes: a sysctl changed at runtime is put back, and reported; one reset again "
            "within an interval is 'contested' and left alone. The check then runs "
            "before kubelet and containerd start (ordering only)."),
    Setting("Verify", "PrometheusDirectory", "verify.prometheus_dir", "",
            Parser(_directory, lambda v: v or "", lambda v: v), "DIR",
            "node_exporter's textfile directory: each check run writes DIR/nftune.prom. "
            "Empty: none."),
    Setting("Conntrack", "Max", "conntrack.max", "",
            _size("Max", MAX_ENTRIES, "Max=auto sizes the table for the machine that boots; "
                  "a number is net.netfilter.nf_conntrack_max; empty leaves it alone"),
            "auto|N",
            "net.netfilter.nf_conntrack_max. auto: kube-proxy's own formula for the machine "
            "that boots (max(131072, 32768 per CPU), the per-CPU part capped at 1048576), "
            "capped so the table takes at most MemoryShare= of RAM; sized on every boot by "
            "nftune-conntrack.service. Empty: nftune leaves it alone."),
    Setting("Conntrack", "Buckets", "conntrack.buckets", "",
            _size("Buckets", MAX_BUCKETS, "Buckets=auto is Max / 4; a number is the hash "
                  "size (the kernel rounds it up to a multiple of 512)"),
            "auto|N",
            "The hash table's size: `options nf_conntrack hashsize=N` in modprobe.d, in "
            "effect when the module loads (apply also resizes a loaded one). auto: Max / 4, "
            "rounded up as the kernel rounds it. Empty: nftune leaves it alone."),
    Setting("Conntrack", "MemoryShare", "conntrack.memory_share", "5",
            Parser(_share, lambda v: f"{v}%"), "PERCENT",
            "With Max=auto: the largest share of RAM the table may take (entries times the "
            "nf_conntrack slab's object size, or 320 bytes before the module is loaded, "
            "plus the buckets). 0: no cap."),
)
SECTIONS = tuple(dict.fromkeys(s.section for s in SETTINGS))


def _in(section: str) -> list[Setting]:
    return [s for s in SETTINGS if s.section == section]


def _defaults() -> str:
    """The built-in defaults as a config file, made from the table."""
    blocks = []
    for section in SECTIONS:
        lines = [s.default if s.key == "*" else f"{s.key}={s.default}"
                 for s in _in(section) if s.default is not None]
        blocks.append("\n".join([f"[{section}]", *lines]) + "\n")
    return "\n".join(blocks)


DEFAULTS = _defaults()
DEFAULT_SYSCTL_PRIORITY = next(s.default or "" for s in SETTINGS if s.key == "SysctlPriority")


def builtin() -> Config:
    """The built-in defaults alone."""
    return parse([])


def _lookup(e: Entry) -> Setting:
    if e.section not in SECTIONS:
        import difflib  # only a config error needs a suggestion

        hint = "known sections: " + ", ".join(f"[{s}]" for s in sorted(SECTIONS))
        if close := difflib.get_close_matches(e.section, SECTIONS, 1):
            hint = f"did you mean [{close[0]}]?"
        raise NftuneError(f"unknown section [{e.section}]", path=e.origin.file,
                          line=e.origin.line, key=e.key, value=e.value, hint=hint)
    in_section = _in(e.section)
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
    values = {s.dest: s.parser.initial for s in SETTINGS}
    origins: dict[str, Origin] = {}
    for name, text in [(BUILTIN, DEFAULTS), *texts]:
        for e in ini.parse(text, name):
            s = _lookup(e)
            values[s.dest] = s.parser.read(e, values[s.dest])
            origins[s.dest] = e.origin
    records: dict[str, dict[str, Any]] = {"rps": {}, "verify": {}, "conntrack": {}}
    for dest, value in values.items():
        record, _, field = dest.rpartition(".")
        if record:
            records[record][field] = value
    cpus_origin = origins["rps.cpus"] if values["rps.cpus"] is not None else None
    conntrack = ConntrackConfig(**records["conntrack"],
                                max_origin=origins.get("conntrack.max"),
                                buckets_origin=origins.get("conntrack.buckets"))
    _one_writer(conntrack, values["sysctls"])
    sysctls = dict(values["sysctls"])
    if isinstance(conntrack.max, int) and conntrack.max_origin is not None:
        # A number is an ordinary sysctl of nftune's file: every sysctl check covers it.
        key = CONNTRACK_KEYS["max"][0]
        sysctls[key] = SysctlSpec(key, str(conntrack.max), conntrack.max_origin)
    return Config(values["modules"], tuple(sysctls.values()),
                  values["sysctl_priority"], tuple(name for name, _ in texts),
                  RpsConfig(**records["rps"], cpus_origin=cpus_origin),
                  VerifyConfig(**records["verify"]), conntrack)


# The sysctls [Conntrack] sets; under [Sysctl] too, they would have two writers.
CONNTRACK_KEYS = {"max": ("net/netfilter/nf_conntrack_max", "net/nf_conntrack_max"),
                  "buckets": ("net/netfilter/nf_conntrack_buckets",)}


def _one_writer(conntrack: ConntrackConfig, sysctls: dict[str, SysctlSpec]) -> None:
    for field, keys in CONNTRACK_KEYS.items():
        origin = getattr(conntrack, f"{field}_origin")
        if getattr(conntrack, field) is None or origin is None:
            continue
        for key in keys:
            if (spec := sysctls.get(key)) is not None:
                name = field.capitalize()
                raise NftuneError(
                    f"[Conntrack] {name}= and [Sysctl] {spec.display} both set the table's "
                    f"size ({origin} and {spec.origin})", path=origin.file, line=origin.line,
                    key=name, value=str(getattr(conntrack, field)),
                    hint=f"keep one: {name}= (auto sizes it per machine), or remove it to "
                         f"leave {spec.display} to [Sysctl]")


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
