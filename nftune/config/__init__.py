"""nftune's configuration: built-in defaults, then /etc/nftune/nftune.conf, then
/etc/nftune/nftune.conf.d/*.conf in name order. Later assignments win.

One table (SETTINGS) defines every setting, in mkosi's shape: its section, key, where the
value goes, its default, its parser (made from a few shared ones) and its help. The
parser, the defaults, the error messages, `nftune config` and the man page all read it.
"""

from __future__ import annotations

import re

from .. import ini
from ..errors import EXIT_USAGE, NftuneError
from ..ini import Entry, Origin
from ..record import Record
from ..root import Root
from ..sysctl import CONNTRACK_BUCKETS, CONNTRACK_MAX
from .model import (
    AUTO,
    MAX_BUCKETS,
    MAX_ENTRIES,
    Config,
    ConntrackConfig,
    ModuleSpec,
    RpsConfig,
    Size,
    SysctlSpec,
    VerifyConfig,
)
from .values import (
    BUILTIN,
    MAX_FLOW_ENTRIES,
    Parser,
    _bad,
    _cpus,
    _directory,
    _glob,
    _module,
    _share,
    _show_cpus,
    _size,
    _sysctl,
    matching,
    number,
    one_of,
    words,
    yes_no,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CONFIG = "/etc/nftune/nftune.conf"
CONFIG_D = "/etc/nftune/nftune.conf.d"

__all__ = ["AUTO", "MAX_BUCKETS", "MAX_ENTRIES", "Config", "ConntrackConfig", "ModuleSpec",
           "RpsConfig", "Size", "SysctlSpec", "VerifyConfig", "builtin", "load", "parse"]


class Setting(Record):
    """One key of the config syntax: where its value goes (`dest`: a Config field, or
    "rps.x", "verify.x" or "conntrack.x" for a field of those records; "sysctls": the
    [Sysctl] lines), its built-in default (in the config's own syntax; None: none), how it
    parses (config/values.py), and its help."""

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
    Setting("Verify", "NodeSysctl", "verify.node_sysctl", "fail",
            one_of(("fail", "report", "no"),
                   "fail: a sysctl.d key lost at boot fails verify; report: listed, never "
                   "failed; no: not checked"),
            "fail|report|no",
            "The node-sysctl check over every other key sysctl.d sets: fail (a key lost at "
            "boot, or one no kernel has, fails verify), report (each is listed and passes) "
            "or no (not checked)."),
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


def in_section(section: str) -> list[Setting]:
    return [s for s in SETTINGS if s.section == section]


def _defaults() -> str:
    """The built-in defaults as a config file, made from the table."""
    blocks = []
    for section in SECTIONS:
        lines = [s.default if s.key == "*" else f"{s.key}={s.default}"
                 for s in in_section(section) if s.default is not None]
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
    for s in in_section(e.section):
        if s.key in ("*", e.key):
            return s
    import difflib

    keys = [s.key for s in in_section(e.section)]
    close = difflib.get_close_matches(e.key, keys, 1)
    raise _bad(e, f"unknown setting in [{e.section}]",
               f"did you mean {close[0]}=?" if close else "known: " + ", ".join(keys))


def parse(texts: list[tuple[str, str]]) -> Config:
    """Pure: (file name, text) pairs in the order they apply, after the built-in defaults."""
    values = {s.dest: s.parser.initial for s in SETTINGS}
    origins: dict[str, Origin] = {}
    for name, text in [(BUILTIN, DEFAULTS), *texts]:
        for e in ini.parse(text, name):
            if name == BUILTIN:  # a line of a text no user sees: no line number
                e = e._replace(origin=Origin(BUILTIN, 0))
            s = _lookup(e)
            values[s.dest] = s.parser.read(e, values[s.dest])
            origins[s.dest] = e.origin
    records: dict[str, dict[str, Any]] = {"rps": {}, "verify": {}, "conntrack": {}}
    for dest, value in values.items():
        record, _, field = dest.rpartition(".")
        if record:
            records[record][field] = value
    cpus_origin = origins["rps.cpus"] if values["rps.cpus"] is not None else None
    conntrack = ConntrackConfig(**records["conntrack"])
    _one_writer(conntrack, values["sysctls"])
    return Config(values["modules"], tuple(values["sysctls"].values()),
                  values["sysctl_priority"], tuple(name for name, _ in texts),
                  RpsConfig(**records["rps"], cpus_origin=cpus_origin),
                  VerifyConfig(**records["verify"]), conntrack,
                  tuple((dest, str(o)) for dest, o in origins.items()))


# The sysctls [Conntrack] sets; under [Sysctl] too, they would have two writers.
CONNTRACK_KEYS = {"max": (CONNTRACK_MAX, "net/nf_conntrack_max"),
                  "buckets": (CONNTRACK_BUCKETS,)}


def _one_writer(conntrack: ConntrackConfig, sysctls: dict[str, SysctlSpec]) -> None:
    for field, keys in CONNTRACK_KEYS.items():
        size: Size = getattr(conntrack, field)
        origin = size.origin
        if not size.managed or origin is None:
            continue
        for key in keys:
            if (spec := sysctls.get(key)) is not None:
                name = field.capitalize()
                raise NftuneError(
                    f"[Conntrack] {name}= and [Sysctl] {spec.display} both set the table's "
                    f"size ({origin} and {spec.origin})", path=origin.file, line=origin.line,
                    key=name, value=str(size),
                    hint=f"keep one: {name}= (auto sizes it per machine), or remove it to "
                         f"leave {spec.display} to [Sysctl]")


def load(root: Root) -> Config:
    """Read the tree's config files. Origins and the generated headers use in-tree paths;
    error messages use the real path, so the user can open the file."""
    texts = []
    for f in config_files(root):
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


def config_files(root: Root) -> list[str]:
    """nftune's own config: the main file, then drop-ins in name order (later wins).
    Every entry is returned, whatever it is: reading it says what is wrong."""
    files = [CONFIG]
    files += sorted(f"{CONFIG_D}/{n}" for n in root.listdir(CONFIG_D)
                    if n.endswith(".conf") and not n.startswith("."))
    return [f for f in files if root.lstat(f) is not None]
