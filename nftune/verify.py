"""`nftune verify`: is this node (or image) right, and if not, why. The checks live in
nftune/checks/, a module per family; this runs them in order over one Context.

Static checks read the tree as the next boot will: modules-load.d, sysctl.d and udev rules
with systemd's precedence. Runtime checks read /sys and /proc/sys, only on the live system.
"""

from __future__ import annotations

from . import __version__
from .checks import files, not_live, ordering, rps, runtime
from .context import Context
from .errors import NftuneError
from .ordering import SYSCTL
from .record import Record
from .result import Cause, Check, CheckResult, Status, skipped

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows it)
if TYPE_CHECKING:
    from typing import Any


class Report(Record):
    """Every check's result for one tree."""

    root: str
    live: bool
    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return not any(r.failed for r in self.results)

    def only(self, checks: list[str]) -> Report:
        known = {r.check for r in self.results}
        if unknown := [c for c in checks if c not in known]:
            raise NftuneError("no such check", key="--check", value=unknown[0],
                              hint="checks here: " + ", ".join(sorted(known)))
        return Report(self.root, self.live,
                      tuple(r for r in self.results if r.check in checks))

    def count(self, status: Status) -> int:
        return sum(r.status is status for r in self.results)

    def lines(self) -> list[str]:
        """One line per check (and its hint when it failed), then the counts."""
        out = []
        for r in self.results:
            out.append(r.line())
            if r.failed and r.hint:
                out.append(f"    hint: {r.hint}")
        counts = ", ".join(f"{self.count(s)} {s}" for s in Status)
        return [*out, f"verify: {len(self.results)} checks: {counts}"]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": 1,
            "nftune": __version__,
            "root": self.root,
            "live": self.live,
            "ok": self.ok,
            "counts": {str(s): self.count(s) for s in Status},
            "checks": [r.to_json() for r in self.results],
        }


def verify(ctx: Context) -> Report:
    """Every check, in the order the report lists them. The bus checks talk to the
    context's service manager; the tree's unreadable files come first."""
    results = [*files.checks(ctx), *ordering.checks(ctx)]
    results[:0] = files.unreadable(ctx)
    if ctx.wants_bus:
        from .checks import boot  # only a live check talks to systemd

        results += boot.checks(ctx)
    else:
        results.append(skipped(Check.BOOT_ORDER, SYSCTL, Cause.NOT_LIVE,
                               reason=not_live(ctx.root)))
    results += runtime.checks(ctx)
    if ctx.config.conntrack.managed:
        from .checks import conntrack  # only a node that sizes the table

        results += conntrack.checks(ctx)
    if ctx.root.live:
        from .checks import kubeproxy  # reads /proc; YAML only when there is a kube-proxy

        results += kubeproxy.checks(ctx)
    else:
        results.append(skipped(Check.KUBE_PROXY, "kube-proxy", Cause.NOT_LIVE,
                               reason=not_live(ctx.root)))
    results += rps.checks(ctx)
    return Report(ctx.root.path, ctx.root.live, tuple(results))
