"""Set what differs from the decisions: each queue's mask and RFS share, the RFS table,
rps_default_mask; values compared as the kernel prints them."""

from __future__ import annotations

from collections.abc import Callable

from ..attrs import At, read_attr, sync_attr
from ..config import RpsConfig
from ..context import Context
from ..cpus import bits, mask_value
from ..record import Record
from ..root import Root
from .decide import Decision, decide, default_mask, pow2
from .sysfs import (
    DEFAULT_MASK,
    FLOW_ENTRIES,
    NET,
    NO_SYSFS,
    has_sysfs,
    queues,
    read_machine,
    read_nics,
    read_only,
)


class AttrWrite(Record):
    """One sysfs value set (or to set)."""

    path: str
    old: str | None
    new: str


class Applied(Record):
    """What `rps apply` wrote, or why it wrote nothing."""

    writes: tuple[AttrWrite, ...]
    skipped: str | None  # why nothing could be written (a read-only sysfs), or None

    def lines(self, root: Root) -> list[str]:
        n = len(self.writes)
        return [*(f"{root.show(w.path)}: {w.old} -> {w.new}" for w in self.writes),
                f"rps: skipped: {self.skipped}" if self.skipped else
                f"rps: {n} value{'s' * (n != 1)} set" if n else "rps: no change"]

    def to_json(self) -> dict[str, object]:
        return {"skipped": self.skipped,
                "writes": [{"path": w.path, "old": w.old, "new": w.new} for w in self.writes]}


def _sync(root: Root, path: str, new: str, same: Callable[[str], bool],
          write: bool, at: At | None = None) -> AttrWrite | None:
    old = sync_attr(root, path, new, same, write=write, at=at)
    return None if old is None else AttrWrite(path, old, new)


def reconcile(root: Root, rps: RpsConfig, decisions: list[Decision], default: str | None,
              *, write: bool) -> list[AttrWrite]:
    """Every attribute whose live value differs from the decisions, written when `write`.
    Masks are compared as values, not text. A physical NIC nftune does not select keeps
    its masks, unless they are rps_default_mask's, which nftune set: those it clears."""
    writes: list[AttrWrite | None] = []
    current = read_attr(root, DEFAULT_MASK) if default else None
    inherited = mask_value(current) if current else None
    for d in decisions:
        if not d.selected:
            if inherited and d.nic.physical:
                writes += [_sync(root, f"{NET}/{d.nic.name}/queues/{q}/rps_cpus", "0",
                                 lambda old: mask_value(old) != inherited, write, at)
                           for q, at in queues(root, d.nic)]
            continue
        want, flows = bits(d.cpus), str(d.flow_cnt)

        def same_mask(old: str, d: Decision = d, want: int = want) -> bool:
            return old == d.mask or mask_value(old) == want

        for q, at in queues(root, d.nic):
            base = f"{NET}/{d.nic.name}/queues/{q}"
            writes.append(_sync(root, f"{base}/rps_cpus", d.mask, same_mask, write, at))
            writes.append(_sync(root, f"{base}/rps_flow_cnt", flows, flows.__eq__, write, at))
    if any(d.selected for d in decisions):
        entries = str(pow2(rps.flow_entries))
        writes.append(_sync(root, FLOW_ENTRIES, entries, entries.__eq__, write))
    if default is not None:
        default_value = mask_value(default)
        writes.append(_sync(root, DEFAULT_MASK, default,
                            lambda old: mask_value(old) == default_value, write))
    return [w for w in writes if w is not None]


def apply(ctx: Context, only: list[str] | None = None) -> Applied:
    """Decide on this machine and write what differs. `only`: these interfaces (udev)."""
    root, rps = ctx.root, ctx.config.rps
    if rps.mode == "off":
        return Applied((), "Mode=off")
    if not has_sysfs(root):
        return Applied((), NO_SYSFS)
    machine = read_machine(root)
    decisions = decide(rps, machine, read_nics(root, only))
    default = default_mask(rps, machine)
    if why := read_only(root):
        pending = reconcile(root, rps, decisions, default, write=False)
        return Applied((), why if pending else None)
    return Applied(tuple(reconcile(root, rps, decisions, default, write=True)), None)
