"""Every sysctl.d key on the node, not only nftune's: at the next
boot, does the key exist when systemd-sysctl applies it? A key a module makes is lost,
silently, when nothing loads that module first (nftune/sysctlkeys.py's measured data
says which module makes which key on each kernel series)."""

from __future__ import annotations

import stat

from .. import sysctl
from ..attrs import read_attr
from ..context import Context
from ..kernel import Kernel
from ..kmod import planners, verdict
from ..result import Cause, Check, CheckResult, Status, failed, passed
from ..root import Root
from ..sysctlkeys import KeyData, Origin, series_of
from ..text import cut

MAX_LISTED = 100  # findings listed one by one per check; the rest are counted in one line
MAX_SHOWN_VALUE = 256  # a node line's value as a result echoes it


def loads(ctx: Context) -> dict[str, dict[str, str]]:
    """Per kernel: each module that modules-load.d makes kmod insert (the listed ones and
    what they pull in), with the line that lists it."""
    root, kernels = ctx.root, ctx.kernels
    refused, kms = ctx.memo("kmod-planners", lambda: planners(root, kernels))
    out: dict[str, dict[str, str]] = {}
    for k, km in zip(kernels, kms, strict=True):
        got: dict[str, str] = {}
        for listed in ctx.listed:
            if listed.name in refused or verdict(root, km, listed.name,
                                                 refused).effect != "inserted":
                continue
            for step in km.plan(listed.name).steps:
                if step.action in ("insmod", "builtin"):
                    got.setdefault(step.module, f"{root.show(listed.file)}:{listed.line}")
        out[k.version] = got
    return out


def named(key: str) -> str:
    """A node key as a result's subject: a line may be a megabyte long."""
    return cut(sysctl.display(key), MAX_SHOWN_VALUE)


class Echo:
    """A node line's value as a result may echo it: cut, and never from a file that only
    root may read (a key's secret, set in a private file, stays out of every report)."""

    def __init__(self, root: Root) -> None:
        self.root = root
        self.private: dict[str, bool] = {}

    def __call__(self, line: sysctl.Assignment) -> str | None:
        if line.value is None:
            return None
        if line.file not in self.private:
            st = self.root.stat(line.file)
            self.private[line.file] = st is None or not st.st_mode & stat.S_IROTH
        return None if self.private[line.file] else cut(line.value, MAX_SHOWN_VALUE)


def shown(ctx: Context, line: sysctl.Assignment) -> str | None:
    return ctx.memo("node-sysctl-echo", lambda: Echo(ctx.root))(line)


def listed(check: Check, out: list[CheckResult]) -> list[CheckResult]:
    """At most MAX_LISTED findings one by one; the rest in one line, failed if one is."""
    if len(out) <= MAX_LISTED:
        return out
    rest = out[MAX_LISTED:]
    bad = sum(r.failed for r in rest)
    reason = (f"{len(rest)} more line{'s' * (len(rest) != 1)} not listed one by one, "
              f"{bad} of them failed")
    subject = "sysctl.d (not listed)"  # each result's subject is its own metric series
    summary = failed(check, subject, Cause.TOO_MANY, reason=reason,
                     hint="fix the lines listed, then run verify again") if bad else \
        passed(check, subject, reason=reason)
    return [*out[:MAX_LISTED], summary]


def _judge(ctx: Context, line: sysctl.Assignment, origin: Origin,
           kernels: list[tuple[Kernel, str | None]],
           loaded: dict[str, dict[str, str]]) -> CheckResult | None:
    """The key's verdict on each kernel (with its measured series); None when every
    kernel's core has it (counted, not listed)."""
    subject = named(line.key)
    where = f"{ctx.root.show(line.file)}:{line.line}"
    why = []
    for k, s in kernels:
        if s is None:
            why.append(f"kernel {k.version} is older than every measured one, not judged")
            continue
        if s in origin.core:
            continue
        module = dict(origin.modules).get(s)
        if module is None and line.ignore_failure:
            why.append(f"kernel {k.version} lacks the key, and the line's '-' asks "
                       "systemd-sysctl to skip it there")
            continue
        if module is None:  # another series has it, this kernel's not
            return failed(Check.NODE_SYSCTL, subject, Cause.UNKNOWN_KEY, source=line.source,
                          expected=shown(ctx, line),
                          reason=f"{where} sets a key kernel {k.version} does not have "
                                 "(of the measured series, only "
                                 f"{', '.join(sorted({*origin.core, *dict(origin.modules)}))} "
                                 f"has it, not {s})",
                          hint="drop the line, or make it '-' prefixed for kernels that "
                               "lack the key")
        if module in k.builtin:
            why.append(f"{module} is built into {k.version}")
            continue
        if module in loaded.get(k.version, {}):
            why.append(f"{module} is loaded first ({loaded[k.version][module]})")
            continue
        if line.ignore_failure:
            why.append(f"nothing loads {module} first in kernel {k.version}, so the key is "
                       "missing when systemd-sysctl runs; the line's '-' asks it to skip "
                       "the key then")
            continue
        return failed(Check.NODE_SYSCTL, subject, Cause.LOST_AT_BOOT, source=line.source,
                      expected=shown(ctx, line),
                      reason=f"{where} sets it, but {module} makes the key and nothing "
                             f"loads {module} before systemd-sysctl.service in kernel "
                             f"{k.version}: the line is dropped at boot, silently",
                      hint=f"list {module} in a modules-load.d file of your own "
                           f"(/etc/modules-load.d/{module}.conf), or add auto to nftune's "
                           "[Modules] Load= and run 'nftune apply'")
    if not why:
        return None
    return passed(Check.NODE_SYSCTL, subject, expected=shown(ctx, line), source=line.source,
                  reason="; ".join(why))


MAX_GLOBS = 200  # each glob is matched against every key a kernel has


def _glob(ctx: Context, line: sysctl.Assignment, data: KeyData, kernels: list[Kernel],
          known: list[str], loaded: dict[str, dict[str, str]]) -> CheckResult:
    """systemd-sysctl writes a glob to the keys that exist as it runs: the module keys it
    matches are missed when their module is not loaded first."""
    subject = named(line.key)
    where = f"{ctx.root.show(line.file)}:{line.line}"
    matched = False
    by_series: dict[str, tuple[list[str], dict[str, str]]] = {}
    for k in kernels:
        s = series_of(k.version, known)
        if s is None:
            continue
        if s not in by_series:
            by_series[s] = data.matching(s, line.key)
        core, made = by_series[s]
        matched = matched or bool(core or made)
        missed = sorted({m for m in made.values() if m not in k.builtin
                         and m not in loaded.get(k.version, {})})
        if missed and not core and not line.ignore_failure:
            return failed(Check.NODE_SYSCTL, subject, Cause.LOST_AT_BOOT, source=line.source,
                          expected=shown(ctx, line),
                          reason=f"{where} sets a glob that matches only keys "
                                 f"{', '.join(missed)} makes, and nothing loads "
                                 f"{'it' if len(missed) == 1 else 'them'} before "
                                 f"systemd-sysctl.service in kernel {k.version}: the line "
                                 "writes nothing at boot",
                          hint=f"list {missed[0]} in a modules-load.d file of your own "
                               f"(/etc/modules-load.d/{missed[0]}.conf), or add auto to "
                               "nftune's [Modules] Load= and run 'nftune apply'")
    if not matched and not line.ignore_failure:
        return failed(Check.NODE_SYSCTL, subject, Cause.UNKNOWN_KEY, source=line.source,
                      expected=shown(ctx, line),
                      reason=f"{where} sets a glob that matches no key any measured kernel "
                             f"has ({', '.join(known)})",
                      hint="check the pattern against /proc/sys")
    return passed(Check.NODE_SYSCTL, subject, expected=shown(ctx, line), source=line.source,
                  reason="the glob matches keys that exist at boot")


def node_sysctl(ctx: Context) -> list[CheckResult]:
    mode = ctx.config.verify.node_sysctl
    if mode == "no":
        return []
    data = ctx.memo("sysctl-keys", KeyData.load)
    root = ctx.root
    node = ctx.sysctld.node
    assert node is not None  # NodeSysctl= is not "no"
    managed = {s.key for s in ctx.config.sysctls}
    known = sorted(data.kernels)
    kernels = ctx.kernels
    series = [(k, series_of(k.version, known)) for k in kernels]
    loaded: dict[str, dict[str, str]] | None = None
    out = []
    core = 0
    for key, line in node.keys.items():
        if key in managed or line.value is None:
            continue
        origin = data.origin(key)
        if origin is None and line.ignore_failure:
            out.append(passed(Check.NODE_SYSCTL, named(key), expected=shown(ctx, line),
                              source=line.source,
                              reason=f"{root.show(line.file)}:{line.line} sets a key no "
                                     "measured kernel has; its '-' asks systemd-sysctl to "
                                     "skip it where it is missing"))
            continue
        if origin is None:
            near = data.nearest(key)
            out.append(failed(
                Check.NODE_SYSCTL, named(key), Cause.UNKNOWN_KEY,
                source=line.source, expected=shown(ctx, line),
                reason=f"{root.show(line.file)}:{line.line} sets a key no measured kernel "
                       f"has ({', '.join(known)})",
                hint=f"did you mean {sysctl.display(near)}?" if near else
                     "check the key's name in the kernel's documentation"))
            continue
        if loaded is None:
            loaded = loads(ctx)
        if (r := _judge(ctx, line, origin, series, loaded)) is None:
            core += 1
        else:
            out.append(r)
    globs = [a for a in node.globs.values() if a.value is not None]
    for line in globs[:MAX_GLOBS]:
        if loaded is None:
            loaded = loads(ctx)
        out.append(_glob(ctx, line, data, kernels, known, loaded))
    out = listed(Check.NODE_SYSCTL, out)
    if node.cut or len(globs) > MAX_GLOBS:
        out.append(failed(
            Check.NODE_SYSCTL, "sysctl.d (past the bounds)", Cause.TOO_MANY,
            reason=f"sysctl.d sets more than nftune judges ({sysctl.MAX_NODE_KEYS:,} "
                   f"distinct keys, {sysctl.MAX_NODE_GLOBS:,} globs read, {MAX_GLOBS} "
                   f"globs judged, {sysctl.MAX_NODE_BYTES >> 20} MiB): the lines past "
                   "that are not judged",
            hint="remove the lines that set nothing this node needs, or set "
                 "[Verify] NodeSysctl=no"))
    if core:
        out.append(passed(Check.NODE_SYSCTL, "sysctl.d",
                          reason=f"{core} other key{'s' * (core != 1)} the core kernel has"))
    if mode == "report":  # [Verify] NodeSysctl=report: listed, never failed
        out = [r._replace(status=Status.PASSED, reason=f"{r.reason} (reported: "
                          f"NodeSysctl=report)") if r.failed else r for r in out]
    return out


def node_sysctl_value(ctx: Context) -> list[CheckResult]:
    """The running kernel against sysctl.d, for the keys nftune does not manage: a value
    that differs is reported (changed-at-runtime), never failed and never repaired."""
    if ctx.config.verify.node_sysctl == "no":
        return []
    root = ctx.root
    node = ctx.sysctld.node
    assert node is not None  # NodeSysctl= is not "no"
    managed = {s.key for s in ctx.config.sysctls}
    out = []
    same = 0
    for key, line in node.keys.items():
        # Named as systemd-sysctl would write it: a line's `..` never leads the read out
        # of /proc/sys.
        if key in managed or line.value is None or not sysctl.safe_key(key):
            continue
        path = root.proc_sys(key)
        text = read_attr(root, path)
        if text is None:
            continue  # node-sysctl says why the key is missing
        if sysctl.same_value(text, line.value):
            same += 1
            continue
        st = root.stat(path)
        if st is None or not st.st_mode & stat.S_IROTH:
            # Readable by root only (tcp_fastopen_key): a report must not carry it.
            expected, actual, note = None, None, "; neither value is shown, as the key is " \
                "readable by root only"
        else:
            expected, actual, note = shown(ctx, line), cut(" ".join(text.split()),
                                                      MAX_SHOWN_VALUE), ""
        out.append(CheckResult(
            Check.NODE_SYSCTL_VALUE, named(key), Status.PASSED,
            Cause.CHANGED_AT_RUNTIME, expected=expected, actual=actual, source=line.source,
            reason=f"{root.show(line.file)}:{line.line} sets it; the running value differs "
                   f"(set after boot; nftune reports it and leaves it alone){note}"))
    out = listed(Check.NODE_SYSCTL_VALUE, out)
    out.append(passed(Check.NODE_SYSCTL_VALUE, "sysctl.d",
                      reason=f"{same} other key{'s' * (same != 1)} have their sysctl.d value"))
    return out
