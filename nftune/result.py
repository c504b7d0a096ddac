"""One result type for every check, and the closed set of causes it can name.

Console lines, JSON and (later) metrics and node-problem-detector output are all rendered
from these objects, so they cannot disagree.
"""

from __future__ import annotations

from enum import StrEnum

from .record import Record
from .text import escape

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows it)
if TYPE_CHECKING:
    from typing import Any


class Status(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


class Cause(StrEnum):
    OK = "ok"
    NOT_LISTED = "not-listed"
    MODULE_MISSING = "module-missing"
    NOT_LOADED = "not-loaded"
    KEY_MISSING = "key-missing"
    MODULES_LOAD_FAILED = "modules-load-failed"
    MODULES_LOAD_SKIPPED = "modules-load-skipped"
    SYSCTL_SKIPPED = "sysctl-skipped"
    SYSCTL_FAILED = "sysctl-failed"
    NOT_RUN = "not-run"
    ORDERING_BROKEN = "ordering-broken"
    ORDERING_CYCLE = "ordering-cycle"
    UNIT_MASKED = "unit-masked"
    LOADED_LATE = "loaded-late"
    OVERRIDDEN_BY_FILE = "overridden-by-file"
    CHANGED_AT_RUNTIME = "changed-at-runtime"
    FILE_MISSING = "file-missing"
    FILE_MASKED = "file-masked"
    FILE_STALE = "file-stale"
    NO_BUS = "no-bus"
    NO_KERNEL = "no-kernel"
    NOT_LIVE = "not-live"
    NOT_APPLIED = "not-applied"
    CONTESTED = "contested"
    READ_ONLY = "read-only"
    UNREADABLE = "unreadable"


# The documentation of every cause; the man page and README are generated from the same text.
CAUSES: dict[Cause, str] = {
    Cause.OK: "the check passed",
    Cause.NOT_LISTED: "a module is not listed in any modules-load.d file that systemd reads",
    Cause.MODULE_MISSING: "a module is neither a module nor built into an installed kernel",
    Cause.NOT_LOADED: "a module is not loaded in the running kernel",
    Cause.KEY_MISSING: "a sysctl key does not exist in the running kernel",
    Cause.MODULES_LOAD_FAILED: "systemd-modules-load.service failed this boot, or could not "
                               "load a listed module (systemd 252 logs a missing module "
                               "and still succeeds)",
    Cause.MODULES_LOAD_SKIPPED: "systemd-modules-load.service was skipped by a condition",
    Cause.SYSCTL_SKIPPED: "systemd-sysctl.service was skipped by a condition",
    Cause.SYSCTL_FAILED: "systemd-sysctl.service failed this boot",
    Cause.NOT_RUN: "a unit nftune relies on did not run this boot: nothing started it, "
                   "or the boot has not got that far",
    Cause.ORDERING_BROKEN: "systemd-sysctl.service is not ordered after "
                           "systemd-modules-load.service, or this boot it started before "
                           "systemd-modules-load.service finished",
    Cause.ORDERING_CYCLE: "systemd-modules-load.service or systemd-sysctl.service is on an "
                          "ordering cycle (systemd deletes a job on the cycle at boot, "
                          "which can be theirs), or was deleted to break one this boot",
    Cause.UNIT_MASKED: "a unit nftune relies on is masked or not found",
    Cause.LOADED_LATE: "a module was loaded after systemd-sysctl.service applied sysctl.d",
    Cause.OVERRIDDEN_BY_FILE: "another sysctl.d file (or /etc/sysctl.conf) sets the key "
                              "later, to another value",
    Cause.CHANGED_AT_RUNTIME: "the live value differs from what sysctl.d sets at boot",
    Cause.FILE_MISSING: "a file nftune generates is not installed",
    Cause.FILE_MASKED: "a file nftune generates is masked (/dev/null) or hidden by a "
                       "same-name file nftune did not write",
    Cause.FILE_STALE: "a file nftune generated no longer matches the configuration",
    Cause.NO_BUS: "systemd's D-Bus API could not be reached",
    Cause.NO_KERNEL: "no kernel is installed in the tree to check module names against",
    Cause.NOT_LIVE: "a runtime check was not made: not the running system",
    Cause.NOT_APPLIED: "an RPS or RFS value nftune computes for this machine is not in "
                       "effect: nftune-rps.service did not run, or something changed it",
    Cause.CONTESTED: "a sysctl nftune put back (Repair=yes) was changed again within one "
                     "interval: another tool sets it, and nftune stopped repairing it",
    Cause.READ_ONLY: "sysfs or /proc/sys is read-only here (a container): RPS cannot be set",
    Cause.UNREADABLE: "a file systemd or nftune reads is not a regular file (a FIFO, a "
                      "directory, a symlink loop) or cannot be read; udev cannot read a "
                      "rules file with a line of 16 KiB or more",
}


class CheckResult(Record):
    """One check's outcome on one subject; every output is made from it."""

    check: str  # what is checked: "sysctl-value", "module-loaded", ...
    subject: str  # of what: a key, a module, a file
    status: Status
    cause: Cause
    expected: str | None = None
    actual: str | None = None
    reason: str = ""
    hint: str | None = None
    source: str | None = None  # file:line that decides the outcome, when there is one

    @property
    def failed(self) -> bool:
        return self.status is Status.FAILED

    def to_json(self) -> dict[str, Any]:
        d = self._asdict()
        d["status"] = str(self.status)
        d["cause"] = str(self.cause)
        return d

    def line(self) -> str:
        """`failed: sysctl-value net.x = '0', expected '1' (changed-at-runtime): why`"""
        text = f"{self.status}: {self.check} {self.subject}"
        if self.actual is not None:
            text += f" = {self.actual!r}"
            if self.status is Status.FAILED and self.expected is not None:
                text += f", expected {self.expected!r}"
        elif self.expected is not None:
            text += f", expected {self.expected!r}"
        if self.cause is not Cause.OK:
            text += f" [{self.cause}]"
        if self.reason:
            text += f": {self.reason}"
        return escape(text)  # names from the tree never move the cursor or fake a line


def passed(check: str, subject: str, **kw: Any) -> CheckResult:
    return CheckResult(check, subject, Status.PASSED, Cause.OK, **kw)


def failed(check: str, subject: str, cause: Cause, **kw: Any) -> CheckResult:
    return CheckResult(check, subject, Status.FAILED, cause, **kw)


def skipped(check: str, subject: str, cause: Cause, **kw: Any) -> CheckResult:
    return CheckResult(check, subject, Status.SKIPPED, cause, **kw)
