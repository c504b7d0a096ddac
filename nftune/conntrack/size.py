"""The sizing rule, pure: what [Conntrack] wants on a machine, and whether it fits.

Max=auto is kube-proxy's own formula, so the two agree: max(min, maxPerCore x CPUs) with
its defaults, the per-CPU part capped as kube-proxy >= 1.36 caps it. It is then capped so
the table (entries, and the buckets beside them) takes at most MemoryShare= of RAM.
Buckets=auto is Max / 4, which is also what kube-proxy raises hashsize to.
"""

from __future__ import annotations

from ..config import MAX_BUCKETS, ConntrackConfig
from ..record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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
    return config.max.auto or (config.buckets.auto and not config.max.managed)


def static_buckets(config: ConntrackConfig) -> int | None:
    """The hash size when the config alone decides it (a number, or auto after a numeric
    Max); None otherwise."""
    if config.buckets.number is not None:
        return round_buckets(config.buckets.number)
    if config.buckets.auto and config.max.number is not None:
        return quarter(config.max.number)
    return None


def size(config: ConntrackConfig, machine: Capacity | None) -> Sizing:
    """Pure. `machine` is needed when needs_machine(config)."""
    formula = cap = None
    if config.max.number is not None:
        wanted: int | None = config.max.number
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
    if config.buckets.number is not None:
        buckets: int | None = round_buckets(config.buckets.number)
    elif config.buckets.auto:
        buckets = quarter(wanted if wanted is not None else KUBE_PROXY_MIN)
    else:
        buckets = None
    max_out = wanted if config.max.managed else None
    return Sizing(max_out, buckets, formula, cap, machine if needs_machine(config) else None)
