"""The conntrack table's size ([Conntrack]): the sizing rule (pure), this machine's facts,
the live values, and the runtime files nftune-conntrack.service writes at every boot.

Max=auto is kube-proxy's own formula, so the two agree: max(min, maxPerCore x CPUs) with
its defaults, the per-CPU part capped as kube-proxy >= 1.36 caps it. It is then capped so
the table (entries, and the buckets beside them) takes at most MemoryShare= of RAM.
Buckets=auto is Max / 4, which is also what kube-proxy raises hashsize to.
"""

from __future__ import annotations

import json

from .config import AUTO, MAX_BUCKETS, MAX_ENTRIES, ConntrackConfig
from .errors import EXIT_FAILED, NftuneError
from .fsio import read_attr
from .paths import CONNTRACK_BUCKETS, CONNTRACK_MAX, RUN_DIR, SIZING
from .record import Record
from .root import Root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .context import Context

# kube-proxy's KubeProxyConntrackConfiguration defaults (pkg/proxy/apis/config).
KUBE_PROXY_MAX_PER_CORE = 32768
KUBE_PROXY_MIN = 131072
KUBE_PROXY_CAP = 1 << 20  # the scaled value's cap since kube-proxy 1.36; min still wins
# The nf_conntrack slab's object size is 256 bytes on x86-64 kernels 5.10 to 6.12; before
# the module is loaded there is no slab to measure, and this stated figure stands in.
STATED_ENTRY = 320
BUCKET_BYTES = 8  # one hlist_nulls_head per bucket
BUCKET_ALIGN = 512  # the kernel rounds hashsize up to PAGE_SIZE / BUCKET_BYTES
SLAB = "/sys/kernel/slab/nf_conntrack/object_size"
HASHSIZE = "/sys/module/nf_conntrack/parameters/hashsize"


def kube_proxy_max(cpus: int, per_core: int = KUBE_PROXY_MAX_PER_CORE,
                   minimum: int = KUBE_PROXY_MIN, cap: int | None = KUBE_PROXY_CAP) -> int | None:
    """What kube-proxy sets nf_conntrack_max to at its start; None: it leaves it alone
    (maxPerCore 0)."""
    if per_core == 0:
        return None
    scaled = per_core * cpus
    if cap is not None:
        scaled = min(scaled, cap)
    return max(scaled, minimum)


def round_buckets(n: int) -> int:
    """hashsize as the kernel sets it: rounded up to a multiple of 512."""
    return -(-n // BUCKET_ALIGN) * BUCKET_ALIGN


def quarter(n: int) -> int:
    """Buckets=auto for a Max of n: n / 4 as the kernel rounds it, never more than the
    kernel can allocate (a Max above 1,073,739,776 would ask for more)."""
    return min(round_buckets(-(-n // 4)), MAX_BUCKETS)


def table_bytes(entries: int | None, buckets: int | None, entry: int) -> int:
    """What the table takes at full size: its buckets, and every entry Max allows."""
    return (buckets or 0) * BUCKET_BYTES + (entries or 0) * entry


def over_share(sizing: Sizing, machine: Capacity, share: int) -> str | None:
    """Why the table does not fit MemoryShare= of this machine's RAM; None when it does
    (or there is no share to keep to)."""
    total = table_bytes(sizing.max, sizing.buckets, machine.entry)
    if not share or total * 100 <= machine.memory * share:
        return None
    parts = []
    if sizing.buckets is not None:
        parts.append(f"{sizing.buckets} buckets x {BUCKET_BYTES} B")
    if sizing.max is not None:
        parts.append(f"{sizing.max} entries x {machine.entry} B")
    return (f"the table takes up to {mib(total)} at full size ({' + '.join(parts)}), more "
            f"than MemoryShare={share}% of this machine's {gib(machine.memory)} of RAM")


def smallest_machine(sizing: Sizing, share: int) -> int | None:
    """The RAM (bytes) below which this table takes more than `share` percent, at the
    stated entry size (the machine is not known offline); None without a share."""
    total = table_bytes(sizing.max, sizing.buckets, STATED_ENTRY)
    return -(-total * 100 // share) if share and total else None


def mib(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB" if n < 10 << 30 else gib(n)


def gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB"


class Capacity(Record):
    """What auto sizing reads from the machine that boots."""

    cpus: int  # online CPUs
    memory: int  # bytes (MemTotal)
    entry: int  # bytes per table entry
    measured: bool  # entry is the live slab's object size (else STATED_ENTRY)


class Sizing(Record):
    """The wanted table: max entries and buckets (None: not managed), and how."""

    max: int | None
    buckets: int | None  # as the kernel shows it (rounded)
    formula: int | None = None  # kube-proxy's value, when Max=auto
    memory_cap: int | None = None  # the MemoryShare= cap, when it applied
    machine: Capacity | None = None

    def how(self) -> str:
        """One line: where the numbers come from."""
        if self.machine is None:
            return "as configured"
        m = self.machine
        entry = f"{m.entry} B per entry ({'the slab' if m.measured else 'stated'})"
        parts = [f"{m.cpus} CPUs, {m.memory / (1 << 30):.1f} GiB, {entry}"]
        if self.formula is not None:
            parts.append(f"kube-proxy's formula {self.formula}")
        if self.memory_cap is not None:
            parts.append(f"memory cap {self.memory_cap}")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        m = self.machine
        return {"max": self.max, "buckets": self.buckets, "formula": self.formula,
                "memory_cap": self.memory_cap,
                "machine": None if m is None else {"cpus": m.cpus, "memory": m.memory,
                                                   "entry": m.entry, "measured": m.measured}}


def needs_machine(config: ConntrackConfig) -> bool:
    """The size depends on the machine that boots: Max=auto, or Buckets=auto with no Max."""
    return config.max == AUTO or (config.buckets == AUTO and config.max is None)


def static_buckets(config: ConntrackConfig) -> int | None:
    """The hash size when the config alone decides it (a number, or auto after a numeric
    Max); None otherwise."""
    if isinstance(config.buckets, int):
        return round_buckets(config.buckets)
    if config.buckets == AUTO and isinstance(config.max, int):
        return quarter(config.max)
    return None


def size(config: ConntrackConfig, machine: Capacity | None) -> Sizing:
    """Pure. `machine` is needed when needs_machine(config)."""
    formula = cap = None
    if isinstance(config.max, int):
        wanted: int | None = config.max
    elif needs_machine(config):
        if machine is None:
            raise ValueError("auto sizing needs the machine's facts")
        formula = kube_proxy_max(machine.cpus) or KUBE_PROXY_MIN
        wanted = formula
        if config.memory_share:
            # Each entry costs its object and, at Max / 4 buckets, a quarter of a bucket;
            # the kernel rounds the buckets up by less than 512 more.
            per_entry = machine.entry + BUCKET_BYTES / 4
            room = machine.memory * config.memory_share / 100 - \
                (BUCKET_ALIGN - 1) * BUCKET_BYTES
            cap = int(max(room, 0) / per_entry)
            if cap < formula:
                wanted = max(cap, 1)
            else:
                cap = None
    else:
        wanted = None
    if isinstance(config.buckets, int):
        buckets: int | None = round_buckets(config.buckets)
    elif config.buckets == AUTO:
        buckets = quarter(wanted if wanted is not None else KUBE_PROXY_MIN)
    else:
        buckets = None
    max_out = wanted if config.max is not None else None
    return Sizing(max_out, buckets, formula, cap, machine if needs_machine(config) else None)


def machine(root: Root) -> Capacity:
    """This machine's CPUs, memory and entry size; NftuneError when they cannot be read."""
    from .cpus import parse_list

    try:
        cpus = len(parse_list(read_attr(root, "/sys/devices/system/cpu/online") or ""))
    except ValueError:
        cpus = 0
    memory = 0
    for line in (root.read_text("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            words = line.split()
            if len(words) >= 2 and words[1].isdigit():
                memory = int(words[1]) * 1024
    if cpus < 1 or memory < 1:
        raise NftuneError("cannot read this machine's CPUs or memory",
                          path=root.show("/sys/devices/system/cpu/online" if cpus < 1
                                         else "/proc/meminfo"),
                          hint="Max=auto sizes the table on the running system only",
                          exit_code=EXIT_FAILED)
    slab = read_attr(root, SLAB) or ""
    if slab.isdigit() and 64 <= int(slab) <= 65536:
        return Capacity(cpus, memory, int(slab), True)
    return Capacity(cpus, memory, STATED_ENTRY, False)


def machine_or_none(root: Root) -> Capacity | None:
    """machine(), or None when its facts cannot be read (a check that needs them is then
    not made)."""
    try:
        return machine(root)
    except NftuneError:
        return None


class Live(Record):
    """The table as the running kernel has it (None: the module is not loaded)."""

    max: int | None
    buckets: int | None


def live(root: Root) -> Live:
    def number(path: str) -> int | None:
        text = read_attr(root, path)
        return int(text) if text is not None and text.isdigit() else None

    return Live(number(root.proc_sys(CONNTRACK_MAX)), number(root.proc_sys(CONNTRACK_BUCKETS)))


def resize(root: Root, buckets: int) -> str | None:
    """Resize a loaded table now (hashsize through sysfs; the initial network namespace
    only). Returns the old size when it changed; None when the module is not loaded or the
    size is already right."""
    from .fsio import sync_attr

    try:
        return sync_attr(root, HASHSIZE, str(buckets), lambda old: old == str(buckets))
    except NftuneError as e:
        if "Operation not supported" in e.message:
            e.hint = "hashsize can be set from the initial network namespace only"
        raise


def read_record(root: Root) -> Sizing | None:
    """What nftune-conntrack.service decided this boot, if it ran."""
    from .fsio import parse_json

    try:
        data = parse_json(root.read_bytes(SIZING) or b"null")
    except (NftuneError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    mx, buckets, formula, cap = (data.get(k) for k in ("max", "buckets", "formula",
                                                          "memory_cap"))
    if not all(v is None or (type(v) is int and 1 <= v <= MAX_ENTRIES)
               for v in (mx, buckets, formula, cap)):
        return None  # not what nftune writes: no decision
    m = data.get("machine")
    facts = None
    if isinstance(m, dict) and all(type(m.get(k)) is int and m[k] > 0
                                   for k in ("cpus", "memory", "entry")):
        facts = Capacity(m["cpus"], m["memory"], m["entry"], m.get("measured") is True)
    return Sizing(mx, buckets, formula, cap, facts)


def write_record(root: Root, sizing: Sizing) -> None:
    root.ensure_dir(RUN_DIR)
    root.write_atomic(SIZING, (json.dumps(sizing.to_json(), indent=2) + "\n").encode(), 0o644)


class TableView(Record):
    """`nftune conntrack`: the wanted table and the live one."""

    config: ConntrackConfig
    sizing: Sizing | None  # None: sized at boot (auto, not the running system)
    booted: Sizing | None  # what nftune-conntrack.service decided this boot
    live: Live | None  # None: not the running system

    def lines(self) -> list[str]:
        c = self.config
        out = [f"config: Max={'' if c.max is None else c.max} "
               f"Buckets={'' if c.buckets is None else c.buckets} "
               f"MemoryShare={c.memory_share}%"]
        if not c.managed:
            out.append("wanted: nothing ([Conntrack] leaves the table to the kernel and "
                       "kube-proxy)")
        elif self.sizing is None:
            out.append("wanted: sized at boot on the machine that runs it (auto)")
        else:
            s = self.sizing
            out.append(f"wanted: max {_or(s.max)}, buckets {_or(s.buckets)} ({s.how()})")
        if self.booted is not None:
            b = self.booted
            out.append(f"this boot: max {_or(b.max)}, buckets {_or(b.buckets)} ({b.how()})")
        if self.live is None:
            out.append("live: not the running system")
        elif self.live.max is None:
            out.append("live: nf_conntrack is not loaded")
        else:
            out.append(f"live: max {self.live.max}, buckets {_or(self.live.buckets)}")
        return out

    def to_json(self) -> dict[str, Any]:
        return {"wanted": None if self.sizing is None else self.sizing.to_json(),
                "boot": None if self.booted is None else self.booted.to_json(),
                "live": None if self.live is None else {"max": self.live.max,
                                                        "buckets": self.live.buckets}}


def _or(n: int | None) -> str:
    return "(unmanaged)" if n is None else str(n)


def show(ctx: Context) -> TableView:
    root, ct = ctx.root, ctx.config.conntrack
    if needs_machine(ct) and not root.live:
        sizing = None
    else:
        sizing = size(ct, machine(root) if needs_machine(ct) else None)
    return TableView(ct, sizing, read_record(root) if root.live else None,
                live(root) if root.live else None)
