"""The graph proof: systemd-modules-load.service is ordered before systemd-sysctl.service,
directly or through other units, over After= and Before= in both directions, and nothing
orders it the other way round too (a cycle, which systemd breaks by dropping a job).

The same proof runs on two graphs: unit files read offline (the next boot) and the units
systemd has loaded, read over D-Bus (this boot).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from .record import Record
from .result import Cause
from .unitgraph import build, unmodelled
from .units import UnitTree

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    from .systemd import Bus

MODULES_LOAD = "systemd-modules-load.service"
SYSCTL = "systemd-sysctl.service"


class Node(Record):
    """A unit in the graph: whether it exists, and the files that define it."""

    name: str
    found: bool
    masked: bool
    source: str  # the files that define it, for messages
    missing: bool = False  # LoadState=not-found: no unit file on the unit path


class Edge(Record):
    """One step of an ordering path, and what creates it."""

    unit: str  # runs before the unit asked about
    source: str  # the file:line (offline) or unit files (live) that create the edge


if TYPE_CHECKING:  # for the type checker only
    class Graph(Protocol):
        def node(self, name: str) -> Node: ...

        def ordered_before(self, name: str) -> Iterator[Edge]:
            """Units ordered before `name`, the cheapest to find first."""
            ...


class LoadedGraph:
    """A loaded unit graph, as systemd holds it: each unit's load state and names, and for
    each unit the units it is ordered after (its After= and the others' Before=), with the
    line or rule behind each edge."""

    def __init__(self) -> None:
        self.state: dict[str, str] = {}  # id -> loaded, masked, not-found, ...
        self.source: dict[str, str] = {}
        self.ids: dict[str, str] = {}  # every name -> id
        self.after: dict[str, dict[str, str]] = {}  # id -> {unit before it: why}
        self.jobs: set[str] | None = None  # units the boot starts; None: not known

    def add_unit(self, uid: str, state: str, names: list[str], source: str) -> None:
        self.state[uid] = state
        self.source[uid] = source
        for n in (uid, *names):
            self.ids.setdefault(n, uid)

    def add_after(self, uid: str, other: str, why: str) -> None:
        if uid != other:
            self.after.setdefault(uid, {}).setdefault(other, why)

    def id(self, name: str) -> str:
        return self.ids.get(name, name)

    def is_after(self, uid: str, other: str) -> bool:
        return other in self.after.get(uid, {})

    def set_jobs(self, jobs: set[str]) -> None:
        self.jobs = jobs

    def node(self, name: str) -> Node:
        uid = self.id(name)
        state = self.state.get(uid, "not-found")
        return Node(uid, state not in ("not-found", "error", "bad-setting"), state == "masked",
                    self.source.get(uid) or "not found", state == "not-found")

    def ordered_before(self, name: str) -> Iterator[Edge]:
        """With `jobs` known, only units the boot starts: ordering binds only those."""
        for other, why in self.after.get(self.id(name), {}).items():
            o = self.id(other)
            if self.jobs is None or o in self.jobs:
                yield Edge(o, why)


class FileGraph(LoadedGraph):
    """The graph the next boot loads from the unit files under a tree: the units
    default.target pulls in, and everything they name, with systemd's implicit edges."""

    def __init__(self, tree: UnitTree, also: tuple[str, ...] = ()) -> None:
        """`also`: units to load besides what the boot loads (a unit asked about)."""
        super().__init__()
        self.tree = tree
        self.unmodelled = unmodelled(tree.root, tree)
        build(self, tree, tree.version, also)


class BusGraph:
    """The units systemd has loaded; its After= lists already include others' Before=.
    As offline, ordering binds only units started this boot (a unit that never had a job
    orders nothing); the two units the proof is about always count, as a job of theirs
    deleted to break a cycle is the failure to find."""

    def __init__(self, bus: Bus, ours: tuple[str, ...] = (MODULES_LOAD, SYSCTL)) -> None:
        self.bus = bus
        self.ours = ours

    def node(self, name: str) -> Node:
        u = self.bus.unit(name)
        return Node(name, u.found, u.masked, u.sources, u.load_state == "not-found")

    def ordered_before(self, name: str) -> Iterator[Edge]:
        u = self.bus.unit(name)
        why = f"After= of {name} ({u.sources})" if name in self.ours else f"After= of {name}"
        for other in u.after:
            if other in self.ours or self.bus.unit(other).started:
                yield Edge(other, why)


class Proof(Record):
    """The verdict on modules-load before sysctl: why, and by which path."""

    cause: Cause
    path: tuple[str, ...]  # modules-load ... sysctl when proven
    reason: str
    source: str | None = None  # the edge into sysctl, the mask, or the edge closing a cycle
    edges: tuple[Edge, ...] = ()  # each unit of the path but the last, with its edge's line
    cycle: tuple[Edge, ...] = ()  # each unit of the cycle, with the edge to the next one
    unmodelled: tuple[str, ...] = ()  # offline: what could add units that no file shows


def search(graph: Graph, first: str, then: str) -> list[Edge] | None:
    """The path from `first` to `then` as edges (first's first), or None: a breadth-first walk
    backwards from `then`, so the usual direct After= line is found without a scan. With
    first == then, the shortest cycle through it."""
    parent: dict[str, tuple[str, str] | None] = {then: None}  # unit: (unit after it, why)
    queue = deque([then])
    while queue:
        cur = queue.popleft()
        for e in graph.ordered_before(cur):
            if e.unit == first:
                path = [Edge(first, e.source)]
                at = cur
                while (step := parent[at]) is not None:
                    path.append(Edge(at, step[1]))
                    at = step[0]
                return path
            if e.unit in parent:
                continue
            parent[e.unit] = (cur, e.source)
            queue.append(e.unit)
    return None


def describe_cycle(cycle: list[Edge] | tuple[Edge, ...]) -> str:
    """"a < b < c < a", then each edge with the line or rule behind it."""
    units = [e.unit for e in cycle]
    head = " < ".join([*units, units[0]])
    steps = "; ".join(f"{e.unit} < {units[(i + 1) % len(units)]}: {e.source}"
                      for i, e in enumerate(cycle))
    return f"ordering cycle: {head} ({steps})"


def prove(graph: Graph, first: str = MODULES_LOAD, then: str = SYSCTL) -> Proof:
    extra = tuple(getattr(graph, "unmodelled", ()))
    for name in (first, then):
        n = graph.node(name)
        if not n.found:
            if n.missing:
                return Proof(Cause.UNIT_MISSING, (), f"{name} is not found on the unit path",
                             None)
            return Proof(Cause.UNIT_MASKED, (), f"{name} cannot be loaded ({n.source})",
                         n.source)
        if n.masked:
            return Proof(Cause.UNIT_MASKED, (), f"{name} is masked ({n.source})", n.source)
        if (jobs := getattr(graph, "jobs", None)) is not None and n.name not in jobs:
            return Proof(Cause.ORDERING_BROKEN, (),
                         f"{name} is not started at boot: nothing default.target pulls in "
                         "(Wants=, Requires=, .wants/) names it, and ordering binds only "
                         "units that are started", n.source)
    edges = search(graph, first, then)
    path = (*(e.unit for e in edges), then) if edges else ()
    for unit in (then, first):
        cycle = search(graph, unit, unit)
        if cycle is not None:
            # The culprit is likelier an edge off the proven path than on it.
            on_path = {(e.unit, e.source) for e in edges or ()}
            culprit = next((e for e in reversed(cycle) if (e.unit, e.source) not in on_path),
                           cycle[-1])
            return Proof(Cause.ORDERING_CYCLE, path,
                         f"{describe_cycle(cycle)}; systemd breaks a cycle by deleting one "
                         f"of its jobs at boot, which can be {first}'s or {then}'s",
                         culprit.source, tuple(edges or ()), tuple(cycle), extra)
    if edges is None:
        return Proof(Cause.ORDERING_BROKEN, (),
                     f"nothing orders {then} after {first} ({graph.node(then).source})",
                     unmodelled=extra)
    return Proof(Cause.OK, path, " < ".join(path), edges[-1].source, tuple(edges),
                 unmodelled=extra)
