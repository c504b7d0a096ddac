"""`nftune conntrack`: the wanted table, this boot's decision, and the live one."""

from __future__ import annotations

from ..config import ConntrackConfig
from ..record import Record
from .machine import Live, live, machine
from .record import read_record
from .size import Sizing, needs_machine, size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..context import Context


class TableView(Record):
    """`nftune conntrack`: the wanted table and the live one."""

    config: ConntrackConfig
    sizing: Sizing | None  # None: sized at boot (auto, not the running system)
    booted: Sizing | None  # what nftune-conntrack.service decided this boot
    live: Live | None  # None: not the running system

    def lines(self) -> list[str]:
        c = self.config
        out = [f"config: Max={c.max} Buckets={c.buckets} "
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
