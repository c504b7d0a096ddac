"""The graph proof: systemd-modules-load.service is ordered before systemd-sysctl.service,
directly or through other units, over After= and Before= in both directions."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .result import Cause
from .units import UnitTree

MODULES_LOAD = "systemd-modules-load.service"
SYSCTL = "systemd-sysctl.service"


@dataclass(frozen=True)
class Proof:
    cause: Cause
    path: tuple[str, ...]  # modules-load ... sysctl when proven
    reason: str
    source: str | None = None  # the file:line of the first edge, or of the mask


def prove(tree: UnitTree, first: str = MODULES_LOAD, then: str = SYSCTL) -> Proof:
    for name in (first, then):
        u = tree.load(name)
        if not u.found:
            return Proof(Cause.UNIT_MASKED, (), f"{name} is not found on the unit path")
        if u.masked:
            return Proof(Cause.UNIT_MASKED, (), f"{name} is masked by {u.fragment}",
                         u.fragment)
    # The usual case, a direct edge, needs no scan of every unit.
    direct = [d for d in tree.load(then).deps.get("After", ()) if d.unit == first] + \
        [d for d in tree.load(first).deps.get("Before", ()) if d.unit == then]
    if direct:
        return Proof(Cause.OK, (first, then), f"{first} < {then}", direct[0].source)
    # Edges "a runs before b", with the line that creates each.
    before: dict[str, list[tuple[str, str]]] = {}
    for name in tree.names():
        u = tree.load(name)
        if u.masked:
            continue
        for d in u.deps.get("After", ()):
            before.setdefault(d.unit, []).append((name, d.source))
        for d in u.deps.get("Before", ()):
            before.setdefault(name, []).append((d.unit, d.source))
    seen = {first: (first, "")}
    queue = deque([first])
    while queue:
        cur = queue.popleft()
        for nxt, src in before.get(cur, ()):
            if nxt not in seen:
                seen[nxt] = (cur, src)
                queue.append(nxt)
    if then not in seen:
        sysctl = tree.load(then)
        return Proof(Cause.ORDERING_BROKEN, (),
                     f"nothing orders {then} after {first} (fragment {sysctl.fragment}"
                     + (f", drop-ins {', '.join(sysctl.dropins)}" if sysctl.dropins else "")
                     + ")")
    path = [then]
    while path[-1] != first:
        path.append(seen[path[-1]][0])
    path.reverse()
    return Proof(Cause.OK, tuple(path), " < ".join(path), seen[path[1]][1])
