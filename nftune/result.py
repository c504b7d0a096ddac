"""One result type for every check, and the closed set of causes it can name.

Console lines, JSON, the report, the journal, metrics and node-problem-detector's verdict
are all made from these objects, so they cannot disagree.
"""

from __future__ import annotations

from enum import StrEnum

from .record import Record
from .text import escape

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Status(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


class Check(StrEnum):
    """What is checked; CHECKS below documents each, specs.SPECS says what makes it."""

    FILE_READABLE = "file-readable"
    MODULE_EXISTS = "module-exists"
    MODULES_LOAD = "modules-load"
    SYSCTL_BOOT = "sysctl-boot"
    SAFETY_NET = "safety-net"
    ORDERING = "ordering"
    ORDER_DROPIN = "order-dropin"
    BOOT = "boot"
    BOOT_GRAPH = "boot-graph"
    UNIT_STATE = "unit-state"
    BOOT_ORDER = "boot-order"
    MODULE_TIMING = "module-timing"
    MODULE_INSERT = "module-insert"
    UNIT_WORK = "unit-work"
    MODULE_LOADED = "module-loaded"
    SYSCTL_VALUE = "sysctl-value"
    RPS = "rps"
    RFS = "rfs"
    RPS_NEW_DEVICES = "rps-new-devices"
    MODPROBE_OPTIONS = "modprobe-options"
    CONNTRACK_SIZE = "conntrack-size"
    KUBE_PROXY = "kube-proxy"
    NODE_SYSCTL = "node-sysctl"
    NODE_SYSCTL_VALUE = "node-sysctl-value"


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
    UNIT_MISSING = "unit-missing"
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
    MODPROBE_OVERRIDDEN = "modprobe-overridden"
    NOT_SIZED = "not-sized"
    TOO_LARGE = "too-large"
    KUBE_PROXY_CONFLICT = "kube-proxy-conflict"
    INVALID_UNHANDLED = "invalid-unhandled"
    LOST_AT_BOOT = "lost-at-boot"
    UNKNOWN_KEY = "unknown-key"
    TOO_MANY = "too-many"
    UNTRUSTED = "untrusted"
    NOT_APPLICABLE = "not-applicable"
    BLACKLISTED = "blacklisted"
    ALIASED = "aliased"
    INSTALL_COMMAND = "install-command"
    DEPENDENCY_MISSING = "dependency-missing"
    MODULES_DISABLED = "modules-disabled"
    EXEC_REPLACED = "exec-replaced"
    CONDITION_FAILED = "condition-failed"
    RUN_CLEARED = "run-cleared"
    NOT_EVALUATED = "not-evaluated"


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
    Cause.UNIT_MASKED: "a unit nftune relies on is masked, or systemd could not load it",
    Cause.UNIT_MISSING: "a unit nftune relies on is not installed (not found)",
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
    Cause.MODPROBE_OVERRIDDEN: "another modprobe.d file, or nf_conntrack.hashsize= on the "
                               "kernel command line, has the last word on the hash size",
    Cause.NOT_SIZED: "the running conntrack table is not the size [Conntrack] wants: "
                     "nftune-conntrack.service did not run, the module was loaded before "
                     "nftune's files applied (an initramfs), or something resized it",
    Cause.TOO_LARGE: "the conntrack table [Conntrack] sets takes more than MemoryShare= of "
                     "this machine's RAM at full size (hash buckets x 8 bytes + Max x the "
                     "entry's size)",
    Cause.KUBE_PROXY_CONFLICT: "kube-proxy will write a value nftune manages, to another "
                               "value, at its next start (nf_conntrack_max, hashsize, "
                               "or be_liberal through tcpBeLiberal)",
    Cause.INVALID_UNHANDLED: "nothing keeps INVALID segments from losing their NAT and "
                             "resetting Service connections: kube-proxy's mode has no drop "
                             "rule for them (IPVS, nftables from 1.30) or skipped it, and "
                             "nf_conntrack_tcp_be_liberal is not 1 from boot",
    Cause.LOST_AT_BOOT: "a sysctl.d line sets a key that a module makes, and nothing "
                        "loads that module before systemd-sysctl.service: the line is "
                        "dropped at boot, silently",
    Cause.UNKNOWN_KEY: "a sysctl.d line sets a key no measured kernel has (a typo, or a "
                       "kernel nftune's data does not cover)",
    Cause.TOO_MANY: "sysctl.d sets more keys, globs or bytes than nftune judges, or more "
                    "findings than it lists one by one, and some of them failed",
    Cause.UNTRUSTED: "processes named kube-proxy that nftune ignores and reads nothing of, "
                     "as none could itself write what it would claim: not in PID 1's "
                     "network and user namespaces, without CAP_NET_ADMIN, made privileged "
                     "by a setuid or file-capability program, a kernel thread, or exited",
    Cause.NOT_APPLICABLE: "nothing to check here: no kube-proxy runs on this node, "
                          "[Conntrack] does not set what the check is about, or modprobe.d "
                          "does not apply (nf_conntrack is built into the kernel)",
    Cause.BLACKLISTED: "a `blacklist` line of modprobe.d, or modprobe.blacklist= or "
                       "module_blacklist= on the kernel command line, names the module: "
                       "systemd-modules-load skips it",
    Cause.ALIASED: "a modprobe.d `alias` line matches the module's name, so kmod loads "
                   "what the alias names instead",
    Cause.INSTALL_COMMAND: "a modprobe.d `install` line for the module or a module it "
                           "depends on runs a command that does not insert it "
                           "(`/bin/true`, `/bin/false`)",
    Cause.DEPENDENCY_MISSING: "a module the module depends on (modules.dep) is not in the "
                              "tree, so inserting it fails",
    Cause.MODULES_DISABLED: "kernel.modules_disabled is 1: no module can be loaded until "
                            "the next boot",
    Cause.EXEC_REPLACED: "a drop-in resets or replaces the ExecStart= of "
                         "systemd-modules-load.service or systemd-sysctl.service, or gives "
                         "it arguments (config files, --prefix=) that leave nftune's file "
                         "or keys out",
    Cause.CONDITION_FAILED: "a Condition…= or Assert…= line of the unit fails on this tree, "
                            "so systemd skips (or fails) the unit at boot",
    Cause.RUN_CLEARED: "a udev rule for module events assigns RUN= or RUN:= so the safety "
                       "net's RUN+= never runs",
    Cause.NOT_EVALUATED: "nftune cannot tell: an install command it does not know, a "
                         "condition it cannot evaluate here, a udev rule whose match it "
                         "cannot decide; the subject names what",
}


class CheckDoc(Record):
    """A check's documentation: the README, nftune(8) and the metrics' help are made from it."""

    family: str  # the module of nftune/checks/ that makes it ("verify": the runner)
    needs: str  # "tree": the files alone; "bus": a service manager; "live": /proc and /sys
    text: str  # what passes


CHECKS: dict[Check, CheckDoc] = {
    Check.FILE_READABLE: CheckDoc(
        "verify", "tree",
        "reported only when it fails: a file of the tree that systemd and `verify` read (a "
        "sysctl.d or modules-load.d entry, a unit file or drop-in, a kernel's `modules.dep`) "
        "is not a regular file, is a symlink loop, or cannot be read; the subject names it, "
        "and the other checks still run"),
    Check.MODULE_EXISTS: CheckDoc(
        "files", "tree",
        "each configured module, and every modules-load.d entry, exists (as a module or "
        "built in) in every installed kernel"),
    Check.MODULES_LOAD: CheckDoc(
        "files", "tree",
        "each module is listed in a modules-load.d file systemd reads (built-in modules need "
        "no entry)"),
    Check.SYSCTL_BOOT: CheckDoc(
        "files", "tree",
        "the value systemd-sysctl applies at boot is nftune's: no later sysctl.d file, "
        "`-key` line, glob or `/etc/sysctl.conf` (also when only `sysctl --system` reads it) "
        "overrides it"),
    Check.SAFETY_NET: CheckDoc(
        "files", "tree", "the udev rule re-applies each module's sysctl subtree"),
    Check.ORDERING: CheckDoc(
        "ordering", "tree",
        "in the unit graph the next boot loads, built from the unit files as systemd builds "
        "it (see docs/proof.md), systemd-modules-load.service is ordered before "
        "systemd-sysctl.service, directly or through other units, and neither is on an "
        "ordering cycle (`ordering-cycle`, every unit and edge named: systemd deletes a job "
        "on a cycle at boot)"),
    Check.ORDER_DROPIN: CheckDoc(
        "ordering", "tree", "nftune's drop-in for systemd-sysctl.service is in effect"),
    Check.BOOT: CheckDoc(
        "boot", "bus",
        "reported only when it fails: systemd's D-Bus API cannot be reached (`no-bus`), so "
        "the other bus checks cannot be made"),
    Check.BOOT_GRAPH: CheckDoc(
        "boot", "bus",
        "the same proof over the units systemd loaded this boot (D-Bus), following units "
        "that had a start job this boot (and the two units themselves), a cycle named the "
        "same way, with the manager's \"deleted to break ordering cycle\" line from this "
        "boot's journal when it is there"),
    Check.UNIT_STATE: CheckDoc(
        "boot", "bus",
        "systemd-modules-load and systemd-sysctl both ran this boot: installed "
        "(`unit-missing`), not masked (`unit-masked`), no condition failed "
        "(`ConditionCapability=CAP_SYS_MODULE` in a container), did not fail, and every "
        "listed module was loaded (the journal names a module that failed); a unit whose "
        "job systemd deleted to break an ordering cycle is `ordering-cycle` (from the "
        "journal's line, or, where the journal lost it as a container's does, from the unit "
        "being on a cycle and never started)"),
    Check.BOOT_ORDER: CheckDoc(
        "boot", "bus",
        "systemd-modules-load's process exited before systemd-sysctl's started (monotonic "
        "timestamps)"),
    Check.MODULE_TIMING: CheckDoc(
        "boot", "live",
        "each module was there when systemd-sysctl applied sysctl.d: built in, or listed at "
        "boot and loaded by systemd-modules-load in time. A module loaded later is "
        "`loaded-late`, with whether its values were re-applied since (nftune's udev rule "
        "does that); `Couldn't write` lines of systemd-sysctl in the journal are evidence. "
        "Listed only after this boot began (a fresh install): skipped until the next boot"),
    Check.MODULE_INSERT: CheckDoc(
        "work", "tree",
        "kmod will insert each listed module when systemd-modules-load asks for it, by "
        "kmod's own rules (see docs/proof.md): the name is not taken by an "
        "`alias` line, the module is not blacklisted (modprobe.d; live, also "
        "`modprobe.blacklist=` and `module_blacklist=` on the kernel command line), no "
        "`install` command of it or of a module in its dependency chain (modules.dep, "
        "with the softdeps that decide whether kmod runs the command) replaces the "
        "insertion, and every module of the chain is in the tree, in every installed "
        "kernel. An install command that runs `modprobe --ignore-install` of the same "
        "module loads it; any other command nftune does not know is `not-evaluated`"),
    Check.UNIT_WORK: CheckDoc(
        "work", "tree",
        "systemd-modules-load.service and systemd-sysctl.service will do the work: their "
        "effective `ExecStart=` after every drop-in runs the real program (no reset to "
        "another command, no arguments that leave nftune's file or keys out, such as "
        "`--prefix=`), and their `Condition…=`/`Assert…=` lines hold on this tree (paths "
        "and directories; live, also the kernel command line, capabilities and "
        "containers); a condition nftune cannot evaluate is named, `not-evaluated`"),
    Check.MODULE_LOADED: CheckDoc(
        "runtime", "live",
        "`/sys/module/NAME` exists, or the module is built into the running kernel"),
    Check.SYSCTL_VALUE: CheckDoc(
        "runtime", "live",
        "the live value under `/proc/sys` equals the wanted one, compared as the kernel "
        "prints it; with repair on (`repair.py`), a value changed at runtime is put "
        "back, and one changed again within an interval is `contested`"),
    Check.RPS: CheckDoc(
        "rps", "live",
        "each chosen NIC: every receive queue's `rps_cpus` and `rps_flow_cnt` equal what "
        "nftune computes for this machine (expected and actual, and how many queues differ)"),
    Check.RFS: CheckDoc(
        "rps", "live",
        "`net.core.rps_sock_flow_entries` is `FlowEntries` rounded up to a power of two "
        "(when a NIC is chosen and RFS is on)"),
    Check.RPS_NEW_DEVICES: CheckDoc(
        "rps", "live",
        "what gives NICs created later their masks is in force: the udev rule, and "
        "`net.core.rps_default_mask` where nftune uses it (kernel 6.3+)"),
    Check.MODPROBE_OPTIONS: CheckDoc(
        "conntrack", "tree",
        "with `[Conntrack] Buckets=`: nftune's `options nf_conntrack hashsize=` is the one "
        "modprobe applies, by kmod's own precedence (files sorted by name across "
        "/etc, /run, /usr/local/lib and /usr/lib/modprobe.d, every options line in order, "
        "then the kernel command line; the last assignment wins); an initramfs older than "
        "nftune's file is named. Where nf_conntrack is built into the kernel, modprobe.d "
        "never applies: skipped, naming `nf_conntrack.hashsize=` on the kernel command "
        "line (nftune-conntrack.service sets the size through sysfs at boot)"),
    Check.CONNTRACK_SIZE: CheckDoc(
        "conntrack", "live",
        "with `[Conntrack]`: the running table's `nf_conntrack_max` and "
        "`nf_conntrack_buckets` are the wanted ones (for auto sizing, what "
        "nftune-conntrack.service decided this boot), and the table fits `MemoryShare=` "
        "of this machine's RAM (`too-large`); on an image, the RAM below which it would "
        "not is named"),
    Check.NODE_SYSCTL: CheckDoc(
        "nodesysctl", "tree",
        "every other key sysctl.d sets (its effective line) exists when systemd-sysctl "
        "applies it at the next boot: the core kernel has it, its module is built in, or "
        "modules-load.d makes kmod load its module first (`lost-at-boot` when nothing "
        "does; `unknown-key` when no measured kernel has it, naming the nearest key)"),
    Check.NODE_SYSCTL_VALUE: CheckDoc(
        "nodesysctl", "live",
        "informational: each other key sysctl.d sets, against the running kernel; a value "
        "that differs is listed as `changed-at-runtime` with the line that sets it, never "
        "failed and never repaired (nftune repairs only its own keys)"),
    Check.KUBE_PROXY: CheckDoc(
        "kubeproxy", "live",
        "each running kube-proxy (a process of that name that could itself write what it "
        "claims: in PID 1's network and user namespaces, with CAP_NET_ADMIN, not made "
        "privileged by a setuid or file-capability program; any other is ignored, "
        "`untrusted`), with its flags and its `--config` KubeProxyConfiguration "
        "read through `/proc/PID/root`: its mode, its conntrack settings, what it "
        "writes at its next start, and what keeps INVALID segments from resetting its "
        "Service connections in that mode (be_liberal from boot, kube-proxy's own "
        "tcpBeLiberal, or iptables mode's drop rule). Failed when nothing does "
        "(`invalid-unhandled`: IPVS or nftables mode without be_liberal=1) or when it would "
        "write a value nftune manages to another value (`kube-proxy-conflict`); else "
        "passed, or skipped when there is none or its configuration cannot be read"),
}


class CheckResult(Record):
    """One check's outcome on one subject; every output is made from it."""

    check: Check
    subject: str  # of what: a key, a module, a file
    status: Status
    cause: Cause
    expected: str | None = None
    actual: str | None = None
    reason: str = ""
    hint: str | None = None
    source: str | None = None  # file:line that decides the outcome, when there is one
    cached: bool = False  # taken from this boot's cache of the boot checks (cache.py)
    proven: float | None = None  # when a cached result was made (Unix time)

    @property
    def failed(self) -> bool:
        return self.status is Status.FAILED

    def to_json(self) -> dict[str, Any]:
        d = self._asdict()
        d["check"] = str(self.check)
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


def passed(check: Check, subject: str, **kw: Any) -> CheckResult:
    return CheckResult(check, subject, Status.PASSED, Cause.OK, **kw)


def failed(check: Check, subject: str, cause: Cause, **kw: Any) -> CheckResult:
    return CheckResult(check, subject, Status.FAILED, cause, **kw)


def skipped(check: Check, subject: str, cause: Cause, **kw: Any) -> CheckResult:
    return CheckResult(check, subject, Status.SKIPPED, cause, **kw)
