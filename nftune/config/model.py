"""The configuration's records: what nftune.conf says once read (nftune/config/ reads it)."""

from __future__ import annotations

from .. import sysctl
from ..ini import Origin
from ..record import Record
from ..sysctl import CONNTRACK_MAX

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

AUTO = "auto"
# The kernel's limits: nf_conntrack_max is an int sysctl. The hash table is rounded up to
# a multiple of 512 buckets (a page of 8-byte heads) and refused above INT_MAX / 8 buckets
# (nf_ct_alloc_hashtable()), and kvmalloc() refuses more than INT_MAX bytes: the largest
# table the kernel makes is the largest multiple of 512 below INT_MAX / 8. A bigger
# hashsize= makes nf_conntrack fail to load.
MAX_ENTRIES = (1 << 31) - 1
MAX_BUCKETS = ((1 << 31) - 1) // 8 // 512 * 512
MAX_MEMORY_SHARE = 50


class ModuleSpec(Record):
    """A module to load at boot; alternatives are tried in order (see kernel.choose)."""

    alternatives: tuple[str, ...]
    origin: Origin

    @property
    def name(self) -> str:
        return "|".join(self.alternatives)

    @property
    def auto(self) -> bool:
        """Load=auto: the modules the node's sysctl.d keys need (nftune/autoload.py)."""
        return self.alternatives == ("auto",)


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
    node_sysctl: str = "fail"  # the node-sysctl check: fail, report (never fails) or no


class Size(Record):
    """A size of the conntrack table: unmanaged (nftune leaves it alone), auto (sized on
    the machine that boots), or a number."""

    number: int | None = None
    auto: bool = False
    origin: Origin | None = None  # where it was set, for the messages that name it

    @property
    def managed(self) -> bool:
        return self.auto or self.number is not None

    def __str__(self) -> str:
        """As the configuration writes it: "", "auto" or the number."""
        return AUTO if self.auto else "" if self.number is None else str(self.number)

    def json(self) -> int | str | None:
        return AUTO if self.auto else self.number


class ConntrackConfig(Record):
    """[Conntrack]: the table's size (see nftune/conntrack/)."""

    max: Size  # entries; auto: kube-proxy's formula, capped by memory
    buckets: Size  # hash buckets; auto: Max / 4 as the kernel rounds it
    memory_share: int  # percent of RAM the table may take with Max=auto; 0: no cap

    @property
    def managed(self) -> bool:
        return self.max.managed or self.buckets.managed

    def sysctls(self) -> tuple[SysctlSpec, ...]:
        """A numeric Max is an ordinary sysctl of nftune's file: every sysctl check
        covers it."""
        if self.max.number is None or self.max.origin is None:
            return ()
        return (SysctlSpec(CONNTRACK_MAX, str(self.max.number), self.max.origin),)


class Config(Record):
    """The effective configuration: built-in defaults, then the admin's files."""

    modules: tuple[ModuleSpec, ...]
    sysctl_lines: tuple[SysctlSpec, ...]  # [Sysctl]
    sysctl_priority: str
    sources: tuple[str, ...]  # in-tree config files read, in order
    rps: RpsConfig
    verify: VerifyConfig
    conntrack: ConntrackConfig
    # Each setting's last line ("file:line"), by its dest; one no line set is built in.
    origins: tuple[tuple[str, str], ...] = ()

    @property
    def auto_load(self) -> bool:
        """Load= lists `auto` (nftune/autoload.py)."""
        return any(m.auto for m in self.modules)

    @property
    def sysctls(self) -> tuple[SysctlSpec, ...]:
        """Every sysctl nftune sets: [Sysctl]'s, and [Conntrack]'s numeric Max."""
        return (*self.sysctl_lines, *self.conntrack.sysctls())

    def lines(self) -> list[str]:
        """The configuration in its own syntax, each list entry with its origin."""
        from . import SECTIONS, in_section

        out: list[str] = []
        for section in SECTIONS:
            out += ["", f"[{section}]"] if out else [f"[{section}]"]
            for s in in_section(section):
                value = s.get(self)
                if s.key == "*":
                    out += [f"{v.display + '=' + v.value:<45} # {v.origin}"
                            for v in self.sysctl_lines]
                elif s.dest == "modules":
                    out += [f"Load={m.name:<40} # {m.origin}" for m in value]
                else:
                    out.append(f"{s.key + '=' + s.parser.show(value):<45} # "
                               f"{self.origin(s.dest)}")
        return out

    def origin(self, dest: str) -> str:
        """Where a setting's value comes from: the line that last set it."""
        from .values import BUILTIN

        return dict(self.origins).get(dest, BUILTIN)

    def to_json(self) -> dict[str, Any]:
        from . import SETTINGS

        out: dict[str, Any] = {
            "sources": list(self.sources),
            "modules": [{"load": m.name, "from": str(m.origin)} for m in self.modules],
            "sysctl": [{"key": s.display, "value": s.value, "from": str(s.origin)}
                       for s in self.sysctls],
        }
        out["from"] = {}
        for s in SETTINGS:
            if s.dest in ("modules", "sysctls"):
                continue
            out["from"][f"{s.section}.{s.key}"] = self.origin(s.dest)
            shown = s.parser.json(s.get(self))
            if s.section == "Files":  # a top-level key, as it always was
                out[s.json_key] = shown
            else:
                out.setdefault(s.section.lower(), {})[s.json_key] = shown
        return out
