"""What nftune-conntrack.service decided this boot (paths.SIZING): written at boot, read
by the checks and `nftune conntrack`; anything nftune would not write is no decision."""

from __future__ import annotations

import json

from ..artifacts import RUN_DIR, SIZING
from ..config import MAX_ENTRIES
from ..errors import NftuneError
from ..root import Root
from ..treewrite import ensure_dir, write_atomic
from .size import Capacity, Sizing


def read_record(root: Root) -> Sizing | None:
    """What nftune-conntrack.service decided this boot, if it ran."""
    from ..fsio import parse_json

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
    ensure_dir(root, RUN_DIR)
    write_atomic(root, SIZING, (json.dumps(sizing.to_json(), indent=2) + "\n").encode(), 0o644)
