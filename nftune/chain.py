"""`nftune chain [UNIT]`: the verdict of the ordering proof on top, then the unit's
critical chain as `systemd-analyze critical-chain` draws it.

Live, the chain follows, from each unit, the After= dependency that became active last
before the unit started (as systemd-analyze does); units on the proof path are always
shown. Offline (--root, no bus), the tree is the proof path with the line behind each edge.
"""

from __future__ import annotations

from .checks.ordering import proven
from .context import Context
from .errors import EXIT_FAILED, NftuneError
from .ordering import MODULES_LOAD, SYSCTL, BusGraph, Edge, FileGraph, prove, search
from .record import Record
from .result import Cause, Check, CheckResult, Status
from .text import escape
from .timespan import fmt_span
from .unitnames import UNIT_NAME
from .units import UnitTree

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .systemd import BootTimes, Bus, UnitState

MAX_DEPTH = 32


class Link:
    """One unit of the chain, with the units that delayed it below it (grown in place)."""

    def __init__(self, unit: str, activating: int | None = None, activated: int | None = None,
                 note: str = "") -> None:
        self.unit = unit
        self.activating = activating  # µs since userspace began
        self.activated = activated
        self.note = note  # offline: the line that orders this unit before its parent; live: state
        self.children: list[Link] = []

    @property
    def duration(self) -> int | None:
        if self.activating is None or self.activated is None:
            return None
        return max(self.activated - self.activating, 0)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"unit": self.unit}
        if self.activated is not None:
            d["activated_us"] = self.activated
            d["activating_us"] = self.activating
            d["duration_us"] = self.duration
        if self.note:
            d["note"] = self.note
        d["children"] = [c.to_json() for c in self.children]
        return d

    def label(self) -> str:
        text = self.unit
        if self.duration:
            text += f" @{fmt_span(self.activating or 0)} +{fmt_span(self.duration)}"
        elif self.activated is not None:
            text += f" @{fmt_span(self.activated)}"
        if self.note:
            text += f"  ({self.note})"
        return text


class Chain(Record):
    """The ordering proof and the chain of the unit asked about."""

    unit: str
    live: bool  # proven from a running manager (this boot), not from unit files
    verdict: CheckResult  # the first failed check, else a summary of the proof
    checks: tuple[CheckResult, ...]
    tree: Link
    cycle: tuple[Edge, ...] = ()  # an ordering cycle through either unit, edge by edge

    @property
    def ok(self) -> bool:
        return not self.verdict.failed

    def cycle_steps(self) -> list[tuple[str, str, str]]:
        """(unit, the unit it is ordered before, why) around the cycle."""
        units = [e.unit for e in self.cycle]
        return [(e.unit, units[(i + 1) % len(units)], e.source)
                for i, e in enumerate(self.cycle)]

    def to_json(self) -> dict[str, Any]:
        d = {"schema": 1, "unit": self.unit, "live": self.live, "ok": self.ok,
             "verdict": self.verdict.to_json(),
             "checks": [c.to_json() for c in self.checks], "chain": self.tree.to_json()}
        if self.cycle:
            d["cycle"] = [{"unit": u, "before": b, "source": why}
                          for u, b, why in self.cycle_steps()]
        return d

    def lines(self) -> list[str]:
        """One line per entry: names from the tree are escaped here, so a newline in a file
        name cannot start a line of its own."""
        v = self.verdict
        head = ("proven" if self.ok else "NOT proven") + f" [{v.cause}]: "
        out = [escape(head + (v.reason or (v.actual or "")))]
        if v.failed and v.hint:
            out.append(escape(f"    hint: {v.hint}"))
        if self.cycle:
            out.append("  the cycle, each unit ordered before the next:")
            out += [escape(f"    {u} < {b}  ({why})") for u, b, why in self.cycle_steps()]
        out += [f"  {c.line()}" for c in self.checks]
        out += ["", *map(escape, _draw(self.tree, "", True, root=True))]
        return out


def _draw(link: Link, prefix: str, last: bool, root: bool = False) -> list[str]:
    """systemd-analyze's layout: children of the top unit start at column 0."""
    if root:
        out, inner = [link.label()], ""
    else:
        out, inner = [f"{prefix}{'└' if last else '├'}─{link.label()}"], \
            prefix + ("  " if last else "│ ")
    for i, c in enumerate(link.children):
        out += _draw(c, inner, i == len(link.children) - 1)
    return out


def verdict_of(checks: list[CheckResult], proof_line: str) -> CheckResult:
    bad = next((c for c in checks if c.failed), None)
    if bad is not None:
        return bad
    first = checks[0]
    return CheckResult(first.check, first.subject, Status.PASSED, first.cause,
                       actual=proof_line, reason=proof_line)


# -- live ------------------------------------------------------------------------------------

def _since(t: int, boot: BootTimes) -> int | None:
    return t - boot.userspace if t >= boot.userspace and t > 0 else None


def _times(u: UnitState, boot: BootTimes) -> tuple[int | None, int | None]:
    return _since(u.inactive_exit, boot), _since(u.active_enter, boot)


def critical_chain(bus: Bus, unit: str, keep: tuple[str, ...] = ()) -> Link:
    """The chain of `unit`; units named in `keep` are shown whenever a parent lists them."""
    boot = bus.boot()
    seen: set[str] = set()

    def walk(name: str, depth: int) -> Link:
        seen.add(name)
        u = bus.unit(name)
        activating, activated = _times(u, boot)
        link = Link(name, activating, activated)
        bound = activating if activating is not None else activated
        if bound is None or depth >= MAX_DEPTH:
            return link
        deps = []
        for d in u.after:
            da = _times(bus.unit(d), boot)[1]
            if da is not None and da <= bound:
                deps.append((d, da))
        latest = max((da for _, da in deps), default=None)
        for d, da in sorted(deps, key=lambda x: x[1], reverse=True):
            if d not in seen and (da == latest or d in keep):
                link.children.append(walk(d, depth + 1))
        # A unit the proof is about is shown even when it never became active.
        for d in keep:
            if d in u.after and d not in seen and _times(bus.unit(d), boot)[1] is None:
                seen.add(d)
                state = bus.unit(d)
                link.children.append(Link(d, note=state.active_state + (
                    f", {state.result}" if state.result not in ("", "success") else "")
                    + ("" if state.condition_result or not state.condition_timestamp
                       else ", condition failed")))
        return link

    return walk(unit, 0)


def live_chain(bus: Bus, unit: str, checks: list[CheckResult]) -> Chain:
    proof_line = f"{MODULES_LOAD} finished before {SYSCTL} started, this boot"
    tree = critical_chain(bus, unit, keep=(MODULES_LOAD, SYSCTL))
    graph = next((c for c in checks if c.check == Check.BOOT_GRAPH), None)
    cycle = prove(BusGraph(bus)).cycle if graph is not None and \
        graph.cause is Cause.ORDERING_CYCLE else ()
    return Chain(unit, True, verdict_of(checks, proof_line), tuple(checks), tree, cycle)


# -- offline ---------------------------------------------------------------------------------

# The proof covers the work too: kmod inserts the modules, the units run their programs,
# the safety net is reached.
WORK = (Check.MODULE_INSERT, Check.UNIT_WORK, Check.SAFETY_NET)


def work_checks(ctx: Context) -> list[CheckResult]:
    from .specs import SPECS
    from .verify import run

    return run(ctx, [s for s in SPECS if s.check in WORK])


def offline_chain(ctx: Context, unit: str) -> Chain:
    root = ctx.root
    boot = FileGraph(ctx.unit_tree)
    checks = [proven(ctx.unit_tree, boot), *work_checks(ctx)]
    # A unit the boot does not load is loaded for the drawing, as `systemctl` would.
    graph = boot if unit in boot.ids else FileGraph(UnitTree(root), also=(unit,))
    proof = prove(boot)
    # unit < ... < systemd-sysctl, then the proof path down to systemd-modules-load.
    above = search(graph, SYSCTL, unit) if unit != SYSCTL else []
    top = Link(unit)
    at = top
    hops = [*reversed(above or []), *reversed(proof.edges)]
    for e in hops:
        at.children.append(Link(e.unit, note=e.source))
        at = at.children[0]
    if above is None:
        top.note = f"not ordered after {SYSCTL}"
    line = f"{' < '.join(proof.path)} in the unit files (not booted)"
    return Chain(unit, False, verdict_of(checks, line), tuple(checks), top, proof.cycle)


# -- the verb --------------------------------------------------------------------------------

def build_chain(ctx: Context, unit: str, *, offline: bool) -> Chain:
    """Live when a manager is reachable (the running system, a bus address or a given
    bus); offline from the tree's unit files with --root and no bus address."""
    if not UNIT_NAME.fullmatch(unit):
        raise NftuneError("not a unit name", key="UNIT", value=unit,
                          hint="give a full unit name, e.g. systemd-sysctl.service")
    if offline and not ctx.wants_bus:
        return offline_chain(ctx, unit)
    # The tree's own errors are errors, not "no bus": the configuration, and kernels or
    # modules-load.d files the boot checks cannot read (verify reports those instead).
    _ = ctx.config, ctx.kernels, ctx.listed  # read now, before any bus
    if ctx.problems:
        path, why = ctx.problems[0]
        raise NftuneError(why, path=ctx.root.show(path), exit_code=EXIT_FAILED)
    from .specs import SPECS
    from .verify import run

    checks = run(ctx, [s for s in SPECS if s.family == "boot"])
    lost = [c for c in checks if c.check == Check.BOOT]
    checks += work_checks(ctx)
    if lost:  # still show what the files say, under the no-bus verdict
        files = offline_chain(ctx, unit)
        return Chain(unit, False, lost[0], (lost[0], *files.checks), files.tree,
                     files.cycle)
    return live_chain(ctx.bus(), unit, checks)
