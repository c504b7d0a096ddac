"""The graph proof: systemd-modules-load.service is ordered before systemd-sysctl.service,
directly or through other units, over After= and Before= in both directions, and nothing
orders it the other way round too (a cycle, which systemd breaks by dropping a job).

The same proof runs on two graphs: unit files read offline (the next boot) and the units
systemd has loaded, read over D-Bus (this boot).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from .result import Cause
from .systemd import Bus
from .units import UnitTree

MODULES_LOAD = "systemd-modules-load.service"
SYSCTL = "systemd-sysctl.service"


@dataclass(frozen=True)
class Node:
    name: str
    found: bool
    masked: bool
    where: str  # the files that define it, for messages


@dataclass(frozen=True)
class Edge:
    unit: str  # runs before the unit asked about
    source: str  # the file:line (offline) or unit files (live) that create the edge


class Graph(Protocol):
    def node(self, name: str) -> Node: ...

    def ordered_before(self, name: str) -> Iterator[Edge]:
        """Units ordered before `name`, the cheapest to find first."""
        ...


class FileGraph:
    """Unit files under a tree. A unit's own After= lines come first; Before= lines of
    other units need every unit parsed, which happens only when the proof gets there."""

    def __init__(self, tree: UnitTree) -> None:
        self.tree = tree
        self._before: dict[str, list[Edge]] | None = None

    def node(self, name: str) -> Node:
        u = self.tree.load(name)
        where = ", ".join(f for f in (u.fragment, *u.dropins) if f)
        return Node(name, u.found, u.masked, where or "not found")

    def ordered_before(self, name: str) -> Iterator[Edge]:
        u = self.tree.load(name)
        if u.masked:
            return
        for d in u.deps.get("After", ()):
            yield Edge(d.unit, d.source)
        if self._before is None:
            self._before = {}
            for other in self.tree.names():
                o = self.tree.load(other)
                if not o.masked:
                    for d in o.deps.get("Before", ()):
                        self._before.setdefault(d.unit, []).append(Edge(other, d.source))
        yield from self._before.get(name, ())


class BusGraph:
    """The units systemd has loaded; its After= lists already include others' Before=.
    Units the proof is about are read whole (their files name the culprit of a broken
    edge); others only for their After= list."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._whole: set[str] = set()

    def node(self, name: str) -> Node:
        self._whole.add(name)
        u = self.bus.unit(name)
        return Node(name, u.found, u.masked, u.sources)

    def ordered_before(self, name: str) -> Iterator[Edge]:
        if name in self._whole:
            u = self.bus.unit(name)
            yield from (Edge(other, f"After= of {name} ({u.sources})") for other in u.after)
        else:
            yield from (Edge(other, f"After= of {name}") for other in self.bus.after(name))


@dataclass(frozen=True)
class Proof:
    cause: Cause
    path: tuple[str, ...]  # modules-load ... sysctl when proven
    reason: str
    source: str | None = None  # the edge into sysctl, the mask, or the edge closing a cycle
    edges: tuple[Edge, ...] = ()  # each unit of the path but the last, with its edge's line


def search(graph: Graph, first: str, then: str) -> list[Edge] | None:
    """The path from `first` to `then` as edges (first's first), or None: a breadth-first walk
    backwards from `then`, so the usual direct After= line is found without a scan."""
    seen: dict[str, Edge | None] = {then: None}
    queue = deque([then])
    while queue:
        cur = queue.popleft()
        for e in graph.ordered_before(cur):
            if e.unit in seen:
                continue
            seen[e.unit] = Edge(cur, e.source)  # e.unit runs before cur
            if e.unit == first:
                path: list[Edge] = []
                at = first
                while (step := seen[at]) is not None:
                    path.append(Edge(at, step.source))
                    at = step.unit
                return path
            queue.append(e.unit)
    return None


def prove(graph: Graph, first: str = MODULES_LOAD, then: str = SYSCTL) -> Proof:
    for name in (first, then):
        n = graph.node(name)
        if not n.found:
            return Proof(Cause.UNIT_MASKED, (), f"{name} is not found on the unit path")
        if n.masked:
            return Proof(Cause.UNIT_MASKED, (), f"{name} is masked ({n.where})", n.where)
    edges = search(graph, first, then)
    if edges is None:
        return Proof(Cause.ORDERING_BROKEN, (),
                     f"nothing orders {then} after {first} ({graph.node(then).where})")
    path = (*(e.unit for e in edges), then)
    back = search(graph, then, first)
    if back is not None:
        loop = " < ".join((*(e.unit for e in back), first))
        return Proof(Cause.ORDERING_BROKEN, path,
                     f"ordering cycle: {' < '.join(path)}, but also {loop}; systemd breaks "
                     f"a cycle by dropping a job, so either may run first",
                     back[-1].source, tuple(edges))
    return Proof(Cause.OK, path, " < ".join(path), edges[-1].source, tuple(edges))
