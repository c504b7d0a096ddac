"""`nftune verify`: is this node (or image) right, and if not, why. One runner walks the
checks as specs.SPECS lists them: it skips a check whose need is missing (one cause per
need), runs the others over one Context, and gathers the files no check could read in one
pass at the end. With `cached`, the boot checks come from this boot's cache when nothing
they read has changed (cache.py): a timer run then does only the runtime work.

The boot checks read the tree as the next boot will (modules-load.d, sysctl.d, udev rules
and the unit graph, with systemd's precedence) and this boot as the manager saw it; the
runtime checks read /sys and /proc/sys, only on the live system.
"""

from __future__ import annotations

from . import __version__
from .context import Context
from .errors import NftuneError
from .record import Record
from .result import Cause, Check, CheckResult, Status, failed, skipped
from .specs import SPECS, Cadence, Spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any


class Findings(Record):
    """Every check's result for one tree."""

    root: str
    live: bool
    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return not any(r.failed for r in self.results)

    def only(self, checks: list[str]) -> Findings:
        known = {r.check for r in self.results}
        if unknown := [c for c in checks if c not in known]:
            raise NftuneError("no such check", key="--check", value=unknown[0],
                              hint="checks here: " + ", ".join(sorted(known)))
        return Findings(self.root, self.live,
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
        proven = [r.proven for r in self.results if r.cached and r.proven is not None]
        if proven:
            import time

            out.append(f"verify: the boot checks are this boot's, proven at "
                       f"{time.strftime('%H:%M:%S', time.localtime(min(proven)))}: no file "
                       "they read has changed since (without --cached they run again)")
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


def file_readable(ctx: Context, problems: list[tuple[str, str]]) -> list[CheckResult]:
    """One failure per tree file that systemd or nftune could not read (gathered from
    the context once every other check has run)."""
    root = ctx.root
    return [failed(Check.FILE_READABLE, path, Cause.UNREADABLE,
                   reason=f"{root.show(path)}: {why}",
                   hint="systemd skips it or fails on it; remove it, or make it a "
                        "regular file") for path, why in problems]


def outcome(ctx: Context, spec: Spec) -> list[CheckResult]:
    """The check's results, or the skip its first missing need makes (a silent need, or a
    check that names no subject, says nothing)."""
    for need in spec.needs:
        if need.met(ctx):
            continue
        if need.silent or spec.named is None:
            return []
        reason = dict(spec.reasons).get(need.name) or need.why(ctx)
        make = failed if need.fails else skipped
        out = []
        for subject, fields in spec.named(ctx):
            extra = dict(fields)
            note = extra.pop("note", "")
            if need.fails:
                extra["hint"] = need.hint(ctx)
            out.append(make(spec.check, subject, need.cause, reason=reason + note, **extra))
        return out
    return spec.make(ctx)


def run(ctx: Context, specs: Iterable[Spec] = SPECS) -> list[CheckResult]:
    """These checks' results in order, the unreadable files first."""
    results = [r for spec in specs for r in outcome(ctx, spec)]
    return [*file_readable(ctx, ctx.problems), *results]


def verify(ctx: Context, *, cached: bool = False) -> Findings:
    """Every check, in the order the report lists them. With `cached`, the boot checks
    are taken from this boot's cache when nothing they read has changed, and kept there
    when they had to run (a run without it writes nothing)."""
    kept = None
    if cached and ctx.root.live:  # a plain run neither imports nor reads the cache
        from . import cache

        kept = cache.load(ctx) if cache.usable(ctx) else None
    boot = [s for s in SPECS if s.cadence is Cadence.BOOT]
    by_check: dict[Check, list[CheckResult]] = {}
    if kept is None:
        by_check.update(_boot_checks(ctx, boot, keep=cached))
        unreadable = file_readable(ctx, ctx.problems)
    else:
        unreadable = [r for r in kept.results if r.check == Check.FILE_READABLE]
        for r in kept.results:
            by_check.setdefault(r.check, []).append(r)
    for spec in SPECS:
        if spec.cadence is Cadence.RUNTIME:
            by_check[spec.check] = outcome(ctx, spec)
    # What the runtime checks read first (a cached run) and could not read.
    known = {r.subject for r in unreadable}
    unreadable += [r for r in file_readable(ctx, ctx.problems) if r.subject not in known]
    results = [*unreadable, *(r for spec in SPECS for r in by_check.get(spec.check, ()))]
    return Findings(ctx.root.path, ctx.root.live, tuple(results))


def _boot_checks(ctx: Context, specs: list[Spec], *,
                 keep: bool) -> dict[Check, list[CheckResult]]:
    """The boot checks run now; with `keep`, on the running system, kept with what they
    read."""
    import time

    watch = None
    if keep and ctx.root.live:
        from . import cache

        watch = cache.prepare(ctx)
    proven = time.time()
    ctx.root.watch = watch
    try:
        out = {spec.check: outcome(ctx, spec) for spec in specs}
        problems = ctx.problems
    finally:
        ctx.root.watch = None
    if watch is not None and _settled(ctx):
        from . import cache

        results = [*file_readable(ctx, problems), *(r for rs in out.values() for r in rs)]
        cache.save(ctx, watch, results, proven)
    return out


def _settled(ctx: Context) -> bool:
    """This boot's facts are final: the manager reached it and has finished booting (a
    unit may still run before that, so the run at boot is not kept)."""
    from .checks.boot import answered

    seen = answered(ctx)
    return not isinstance(seen, NftuneError) and seen.boot.finish > 0
