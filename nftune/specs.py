"""Every check as data: what makes it (a function of nftune/checks/), what it needs to be
made, and how long its answer holds. verify.py's runner reads this table alone: a check
whose need is missing is skipped here, with one cause, and no check decides it again.

Cadence: a `boot` check's inputs hold until the next boot or until a file it read changes
(the boot files, the unit graph, this boot as the manager and the journal saw it), so a
timer run may take its result from the cache (nftune/cache.py); a `runtime` check reads
what can change at any time (values, loaded modules, masks, processes) and always runs.
"""

from __future__ import annotations

from enum import StrEnum

from .errors import NftuneError
from .record import Record
from .result import Cause, Check

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .context import Context
    from .result import CheckResult


class Cadence(StrEnum):
    BOOT = "boot"
    RUNTIME = "runtime"


class Need(Record):
    """Something a check needs; when it is missing the check is skipped with `cause`."""

    name: str
    met: Callable[[Context], bool]
    cause: Cause
    why: Callable[[Context], str]
    silent: bool = False  # another check reports it (no-bus): the others say nothing
    fails: bool = False  # its absence is the check's failure, not a skip
    hint: Callable[[Context], str | None] = lambda ctx: None


class Spec(Record):
    check: Check
    family: str  # the module of nftune/checks/ that makes it
    function: str  # its function there: (Context) -> list[CheckResult]
    needs: tuple[Need, ...]
    cadence: Cadence
    # Who a skip names, with fields for each result (expected=…; note= is added to the
    # reason); None: a skip is silent.
    named: Callable[[Context], list[tuple[str, dict[str, Any]]]] | None = None
    reasons: tuple[tuple[str, str], ...] = ()  # (need, reason) where the need's is not right

    def make(self, ctx: Context) -> list[CheckResult]:
        module = __import__(f"nftune.checks.{self.family}", fromlist=[self.function])
        return getattr(module, self.function)(ctx)  # type: ignore[no-any-return]


# -- needs ------------------------------------------------------------------------------------

def not_live(ctx: Context) -> str:
    if not ctx.root.is_host:
        return "--root: not the running system"
    return ctx.root.why_not_live or "not the running system"


def _buckets_unset(ctx: Context) -> str:
    return "Buckets= is not set: nftune leaves the hash size alone"


def _built_in(ctx: Context) -> bool:
    from .checks.conntrack import built_in

    return built_in(ctx) is None


def _built_in_why(ctx: Context) -> str:
    from .checks.conntrack import built_in

    return built_in(ctx) or ""


def _sized_here(ctx: Context) -> bool:
    from .conntrack.size import needs_machine

    return ctx.root.live or not needs_machine(ctx.config.conntrack)


def _sized_at_boot(ctx: Context) -> str:
    from .checks.conntrack import own_file

    return f"Buckets=auto: nftune-conntrack.service writes {own_file(ctx)} at boot"


def _no_sysfs(ctx: Context) -> str:
    from .rps.sysfs import NO_SYSFS

    return NO_SYSFS


def _has_sysfs(ctx: Context) -> bool:
    from .rps.sysfs import has_sysfs

    return has_sysfs(ctx.root)


def _rps_decided(ctx: Context) -> bool:
    from .checks.rps import decided

    return not isinstance(decided(ctx), Exception)


def _lost(ctx: Context) -> NftuneError | None:
    from .checks.boot import answered

    s = answered(ctx)
    return s if isinstance(s, NftuneError) else None


LIVE = Need("live", lambda ctx: ctx.root.live, Cause.NOT_LIVE, not_live)
BUS_WANTED = Need("bus-wanted", lambda ctx: ctx.wants_bus, Cause.NOT_LIVE, not_live)
BUS = Need("bus", lambda ctx: _lost(ctx) is None, Cause.NO_BUS,
           lambda ctx: str(_lost(ctx)), silent=True)  # the boot check says no-bus
# The boot check's own: the manager cannot be reached (auth, no systemd1), so the other
# checks of this boot cannot be made.
BUS_REACHED = BUS._replace(silent=False, fails=True,
                           why=lambda ctx: getattr(_lost(ctx), "message", ""),
                           hint=lambda ctx: getattr(_lost(ctx), "hint", None))
CONNTRACK = Need("conntrack", lambda ctx: ctx.config.conntrack.managed, Cause.NOT_APPLICABLE,
                 lambda ctx: "[Conntrack] is not set", silent=True)
BUCKETS = Need("buckets", lambda ctx: ctx.config.conntrack.buckets.managed,
               Cause.NOT_APPLICABLE, _buckets_unset)
MODULAR = Need("modular", _built_in, Cause.NOT_APPLICABLE, _built_in_why)
SIZED_HERE = Need("sized-here", _sized_here, Cause.NOT_LIVE, _sized_at_boot)
RPS_ON = Need("rps-on", lambda ctx: ctx.config.rps.mode != "off", Cause.OK,
              lambda ctx: "Mode=off: nftune leaves RPS alone")
SYSFS = Need("sysfs", _has_sysfs, Cause.NOT_LIVE, _no_sysfs)
RPS_DECIDED = Need("rps-decided", _rps_decided, Cause.NOT_APPLIED, lambda ctx: "",
                   silent=True)  # the rps check says why


# -- who a skip names ------------------------------------------------------------------------

def _sysctl_subject(ctx: Context) -> list[tuple[str, dict[str, Any]]]:
    return [("systemd-sysctl.service", {})]


def _modules(ctx: Context) -> list[tuple[str, dict[str, Any]]]:
    return [(c.name, {}) for c in ctx.choices]


def _sysctls(ctx: Context) -> list[tuple[str, dict[str, Any]]]:
    return [(s.display, {"expected": s.value}) for s in ctx.config.sysctls]


def _one(subject: str) -> Callable[[Context], list[tuple[str, dict[str, Any]]]]:
    return lambda ctx: [(subject, {})]


def _conntrack_table(ctx: Context) -> list[tuple[str, dict[str, Any]]]:
    from .checks.conntrack import MODULE, offline_note

    return [(MODULE, {"note": offline_note(ctx)})]


def _spec(check: Check, family: str, function: str, needs: tuple[Need, ...],
          cadence: Cadence, **kw: Any) -> Spec:
    return Spec(check, family, function, needs, cadence, **kw)


B, R = Cadence.BOOT, Cadence.RUNTIME
_BOOT = (BUS_WANTED, BUS)
_RPS = (RPS_ON, LIVE, SYSFS)

# In the order the report lists them; file-readable is gathered last and listed first.
SPECS: tuple[Spec, ...] = (
    _spec(Check.MODULE_EXISTS, "files", "module_exists", (), B),
    _spec(Check.MODULES_LOAD, "files", "modules_load", (), B),
    _spec(Check.MODULE_INSERT, "work", "module_insert", (), B),
    _spec(Check.SYSCTL_BOOT, "files", "sysctl_boot", (), B),
    _spec(Check.SAFETY_NET, "files", "safety_net", (), B),
    _spec(Check.ORDERING, "ordering", "ordering", (), B),
    _spec(Check.ORDER_DROPIN, "ordering", "order_dropin", (), B),
    _spec(Check.UNIT_WORK, "work", "unit_work", (), B),
    _spec(Check.BOOT, "boot", "reached", (BUS_WANTED._replace(silent=True), BUS_REACHED), B,
          named=_one("systemd")),
    _spec(Check.BOOT_GRAPH, "boot", "boot_graph", _BOOT, B),
    _spec(Check.UNIT_STATE, "boot", "unit_state", _BOOT, B),
    _spec(Check.BOOT_ORDER, "boot", "boot_order", _BOOT, B, named=_sysctl_subject),
    _spec(Check.MODULE_TIMING, "boot", "module_timing", (*_BOOT, LIVE), B),
    _spec(Check.MODULE_LOADED, "runtime", "module_loaded", (LIVE,), R, named=_modules),
    _spec(Check.SYSCTL_VALUE, "runtime", "sysctl_value", (LIVE,), R, named=_sysctls),
    _spec(Check.MODPROBE_OPTIONS, "conntrack", "modprobe_options",
          (CONNTRACK, BUCKETS, MODULAR, SIZED_HERE), B, named=_one("nf_conntrack hashsize")),
    _spec(Check.CONNTRACK_SIZE, "conntrack", "conntrack_size", (CONNTRACK, LIVE), R,
          named=_conntrack_table),
    _spec(Check.KUBE_PROXY, "kubeproxy", "kube_proxy", (LIVE,), R, named=_one("kube-proxy")),
    _spec(Check.NODE_SYSCTL, "nodesysctl", "node_sysctl", (), B),
    _spec(Check.NODE_SYSCTL_VALUE, "nodesysctl", "node_sysctl_value", (LIVE,), R),
    _spec(Check.RPS, "rps", "rps", _RPS, R, named=_one("RPS"),
          reasons=(("live", "masks are decided on the running machine at boot"),)),
    _spec(Check.RFS, "rps", "rfs", (*_RPS, RPS_DECIDED), R),
    _spec(Check.RPS_NEW_DEVICES, "rps", "new_devices", (*_RPS, RPS_DECIDED), R),
)
BOOT_CHECKS = frozenset(s.check for s in SPECS if s.cadence is Cadence.BOOT) | {
    Check.FILE_READABLE}
