"""The unit graph the next boot loads, from the unit files: systemd-modules-load is ordered
before systemd-sysctl, and nftune's drop-in that keeps it so is in effect."""

from __future__ import annotations

from ..artifacts import FILES, Kind, name_of
from ..context import Context
from ..ordering import MODULES_LOAD, SYSCTL, FileGraph, prove
from ..result import Cause, Check, CheckResult, failed, passed, skipped
from ..units import UnitTree
from .owned import file_reason, own_file


def ordering(ctx: Context) -> list[CheckResult]:
    """From the unit files the next boot loads: modules-load is ordered before sysctl."""
    return [proven(ctx.unit_tree)]


def proven(tree: UnitTree, graph: FileGraph | None = None) -> CheckResult:
    """The ordering check's result for the tree's units (`graph`: built from them)."""
    subject = SYSCTL
    if not any(tree.load(u).found for u in (MODULES_LOAD, SYSCTL)):
        return skipped(Check.ORDERING, subject, Cause.UNIT_MISSING,
                       reason="systemd's units are not installed in this tree")
    proof = prove(graph or FileGraph(tree))
    unsure = (f"; not modelled, so not part of this proof: {', '.join(proof.unmodelled)}"
              if proof.unmodelled else "")
    if proof.cause is Cause.OK:
        # An admin's empty After= meant to reset the list; say that it did not.
        empty = [e for u in (MODULES_LOAD, SYSCTL) for e in tree.load(u).empty]
        note = (f" (the empty {', '.join(empty)} resets nothing: systemd ignores an empty "
                "dependency assignment)") if empty else ""
        return passed(Check.ORDERING, subject, actual=" < ".join(proof.path),
                      source=proof.source,
                      reason=f"ordered after {MODULES_LOAD}{note}{unsure}")
    unloadable = "cannot be loaded" in proof.reason
    hint = {Cause.UNIT_MASKED: "make it a readable unit file, or break the alias loop (see "
                               "file-readable)" if unloadable else
            "unmask it: systemctl unmask (or remove the /dev/null link)",
            Cause.UNIT_MISSING: "install systemd's unit (the systemd package)",
            Cause.ORDERING_CYCLE: "remove one edge of the cycle: an After= or Before= line "
                                  "named above, or DefaultDependencies=no on a unit that "
                                  "must run before sysinit.target"}.get(
        proof.cause, "restore After=systemd-modules-load.service in systemd-sysctl.service")
    return failed(Check.ORDERING, subject, proof.cause, reason=proof.reason + unsure,
                  source=proof.source, hint=hint)


def order_dropin(ctx: Context) -> list[CheckResult]:
    """nftune's drop-in keeps the ordering whatever the distribution's unit says."""
    root = ctx.root
    name = name_of(Kind.SYSCTL_ORDER)
    own, cause = own_file(root, root.conf_dirs(FILES[Kind.SYSCTL_ORDER].directory), name)
    subject = f"{SYSCTL}.d/{name}"
    if cause:
        return [failed(Check.ORDER_DROPIN, subject, cause,
                       reason=file_reason(root, own, cause, "drop-in"),
                       hint="run 'nftune apply'")]
    return [passed(Check.ORDER_DROPIN, subject, actual="in effect",
                   source=own.path if own else None)]
