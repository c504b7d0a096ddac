"""The conntrack table's size ([Conntrack]), as rps/ is RPS: the sizing rule (size.py,
pure), this machine's facts and the live table (machine.py), this boot's decision
(record.py), and `nftune conntrack` (view.py)."""

from __future__ import annotations

from .machine import HASHSIZE, SLAB, Live, live, machine, machine_or_none, resize
from .record import read_record, write_record
from .size import (
    BUCKET_ALIGN,
    BUCKET_BYTES,
    KUBE_PROXY_CAP,
    KUBE_PROXY_MAX_PER_CORE,
    KUBE_PROXY_MIN,
    STATED_ENTRY,
    Capacity,
    Sizing,
    gib,
    kube_proxy_max,
    mib,
    needs_machine,
    over_share,
    quarter,
    round_buckets,
    size,
    smallest_machine,
    static_buckets,
    table_bytes,
)
from .view import TableView, show

__all__ = ["BUCKET_ALIGN", "BUCKET_BYTES", "HASHSIZE", "KUBE_PROXY_CAP",
           "KUBE_PROXY_MAX_PER_CORE", "KUBE_PROXY_MIN", "SLAB", "STATED_ENTRY", "Capacity",
           "Live", "Sizing", "TableView", "gib", "kube_proxy_max", "live", "machine",
           "machine_or_none", "mib", "needs_machine", "over_share", "quarter", "read_record",
           "resize", "round_buckets", "show", "size", "smallest_machine", "static_buckets",
           "table_bytes", "write_record"]
