"""The machine that boots, as sizing reads it (CPUs, memory, the slab's entry size), and
the table as its kernel has it: read, and resized."""

from __future__ import annotations

from ..attrs import read_attr
from ..errors import EXIT_FAILED, NftuneError
from ..record import Record
from ..root import Root
from ..sysctl import CONNTRACK_BUCKETS, CONNTRACK_MAX
from .size import STATED_ENTRY, Capacity

SLAB = "/sys/kernel/slab/nf_conntrack/object_size"
HASHSIZE = "/sys/module/nf_conntrack/parameters/hashsize"


def machine(root: Root) -> Capacity:
    """This machine's CPUs, memory and entry size; NftuneError when they cannot be read."""
    from ..cpus import parse_list

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
    from ..attrs import sync_attr

    try:
        return sync_attr(root, HASHSIZE, str(buckets), lambda old: old == str(buckets))
    except NftuneError as e:
        if "Operation not supported" in e.message:
            e.hint = "hashsize can be set from the initial network namespace only"
        raise
