"""Where a verify result goes besides stdout, in nftune-verify.service's order: repairs
first (they change the results), then the report file, the journal, Prometheus."""

from __future__ import annotations

import contextlib
import os

from .context import Context
from .errors import NftuneError
from .record import Record
from .root import Root
from .verify import Findings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .repair import Repair


class Outputs(Record):
    """What the command line asked for; `service` is what nftune-verify.service runs:
    the report and the journal, plus repair and Prometheus as [Verify] says."""

    repair: bool = False
    report: bool = False
    journal: bool = False
    prometheus: str | None = None  # --prometheus DIR: the operator's own path
    service: bool = False


def publish(ctx: Context, report: Findings, out: Outputs, started: float,
            tell: Callable[[Repair], object]) -> Findings:
    """The report as repaired; each repair is told as soon as it is made, before a write
    that may fail."""
    import time

    root, verify_config = ctx.root, ctx.config.verify
    entries: list[dict[str, str]] = []
    if out.repair or (out.service and verify_config.repair):
        from . import journal, repair

        results, repairs = repair.repair(ctx, report.results, time.time())
        report = report._replace(results=results)
        for r in repairs:
            tell(r)
            entries.append(journal.repair_fields(r.key, r.old, r.new))
    finished, duration = time.time(), time.monotonic() - started
    if out.report or out.service:
        from . import report as report_file

        report_file.write(root, report_file.document(report.to_json(), root, finished,
                                                     duration))
    asked = out.journal or out.service
    if entries or (asked and not report.ok):
        from . import journal  # and the socket: only when there is something to send

        if asked:
            entries += [journal.failure_fields(r) for r in report.results if r.failed]
            journal.send(root, entries)
        else:  # a repair by hand changed the node: the journal hears of it, where it runs
            with contextlib.suppress(NftuneError):  # not asked for: the terminal said it
                journal.send(root, entries)
    # --prometheus DIR is the operator's own path; the config's PrometheusDirectory= is a
    # path in the tree, like every path the tree's files name.
    target = (Root(os.path.abspath(out.prometheus)), "/") if out.prometheus else \
        (root, verify_config.prometheus_dir) if out.service and \
        verify_config.prometheus_dir else None
    if target:
        from . import prometheus
        from .attrs import read_attr

        sysctls = ctx.config.sysctls
        live = {s.display: read_attr(root, root.proc_sys(s.key)) if root.live else None
                for s in sysctls}
        prometheus.write(*target, prometheus.render(
            report.results, live, {s.display: s.value for s in sysctls}, finished,
            duration))
    return report
