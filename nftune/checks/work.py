"""The work of the boot, not only its order: kmod will insert each listed module, and the
two units will run the programs that load modules and apply sysctl.d."""

from __future__ import annotations

from ..artifacts import Kind, name_of
from ..context import Context
from ..kmod import KernelData, Kmod, Verdict, kernel_blacklist, verdict
from ..modprobe import ModprobeD
from ..ordering import MODULES_LOAD, SYSCTL
from ..result import Cause, Check, CheckResult, failed, passed, skipped
from ..root import Root
from ..unitwork import EVERY_CAPABILITY, Body, Facts, body, holds, prefix_matches, prefix_of
from .container import CONDITION_HINTS
from .owned import own_file

# An image is checked for the machine it boots on, not for a container.
MACHINE = Facts(None, EVERY_CAPABILITY, False, (("/proc/sys", True),))

CAUSES = {"blacklisted": Cause.BLACKLISTED, "aliased": Cause.ALIASED,
          "install-command": Cause.INSTALL_COMMAND,
          "dependency-missing": Cause.DEPENDENCY_MISSING,
          "module-missing": Cause.MODULE_MISSING, "opaque": Cause.NOT_EVALUATED,
          "unread": Cause.NOT_EVALUATED}
HINTS = {
    "blacklisted": "delete the blacklist line (systemd-modules-load honours it; a late "
                   "'modprobe' does not, so the value is lost at boot)",
    "aliased": "delete the alias line, or make it name another alias",
    "install-command": "delete the install line, or make it "
                       "'install MODULE /sbin/modprobe --ignore-install MODULE $CMDLINE_OPTS'",
    "dependency-missing": "reinstall the kernel's modules package, then run depmod",
    "module-missing": "see the module-exists check",
    "opaque": "make sure the command inserts the module, or replace it with "
              "'/sbin/modprobe --ignore-install MODULE $CMDLINE_OPTS'",
    "unread": "see the line named: nftune reads what kmod does, and cannot read this",
}


def module_insert(ctx: Context) -> list[CheckResult]:
    """kmod will insert each module nftune lists, in every installed kernel."""
    root, kernels = ctx.root, ctx.kernels
    todo = [c for c in ctx.choices if c.listed]
    if not todo:
        return []
    if not kernels:
        return [skipped(Check.MODULE_INSERT, c.name, Cause.NO_KERNEL,
                        reason=f"no kernel under {root.show('/lib/modules')}") for c in todo]
    view = ModprobeD.load(root, cmdline=root.live)
    if view.unreadable:
        path, why = view.unreadable[0]
        return [failed(Check.MODULE_INSERT, c.name, Cause.UNREADABLE, source=path,
                       reason=f"kmod reads {root.show(path)}, and it cannot be read: {why}",
                       hint="make it a regular file, or remove it") for c in todo]
    # kmod reads only the binary index depmod writes beside modules.dep.
    unindexed = [k for k in kernels if not root.is_file(f"{k.path}/modules.dep.bin")]
    if unindexed:
        where = f"{unindexed[0].path}/modules.dep.bin"
        return [failed(Check.MODULE_INSERT, c.name, Cause.MODULE_MISSING, source=where,
                       reason=f"kmod reads {root.show(where)}, which is missing: it finds "
                              "no module of kernel " + unindexed[0].version,
                       hint=f"run 'depmod {unindexed[0].version}'") for c in todo]
    refused = kernel_blacklist(view.cmdline)
    planners = [Kmod(view, KernelData(root, k), every_step=False) for k in kernels]
    out = []
    for c in todo:
        if c.name in refused:
            out.append(failed(Check.MODULE_INSERT, c.name, Cause.BLACKLISTED,
                              source="the kernel command line",
                              reason="module_blacklist= on the kernel command line names "
                                     "it: the kernel refuses to load it",
                              hint="remove it from module_blacklist= in the boot "
                                   "loader's configuration"))
            continue
        verdicts = [verdict(root, km, c.name, frozenset(refused)) for km in planners]
        problems = [p for km in planners for p in km.data.problems]
        if problems:
            path, why = problems[0]
            out.append(failed(Check.MODULE_INSERT, c.name, Cause.UNREADABLE, source=path,
                              reason=f"{root.show(path)} cannot be read: {why}"))
            continue
        out.append(_result(ctx, c.name, verdicts))
    return out


def _result(ctx: Context, module: str, verdicts: list[Verdict]) -> CheckResult:
    root = ctx.root
    bad = [v for v in verdicts if v.effect == "blocked"]
    unknown = [v for v in verdicts if v.effect == "unknown"]
    if not bad and not unknown:
        built = all(v.why == "built in" for v in verdicts)
        return passed(Check.MODULE_INSERT, module,
                      reason="built in" if built else
                      f"kmod inserts it, with its dependencies, in every installed kernel "
                      f"({len(verdicts)})")
    first = (bad or unknown)[0]
    where = root.show(first.source) if first.source and first.source.startswith("/") \
        else first.source
    kernels = [v.kernel for v in (bad or unknown)]
    which = "" if len(kernels) == len(verdicts) and len(verdicts) == 1 else \
        f" (kernel {', '.join(kernels)})"
    reason = first.why.replace(first.source or "\0", where or "") + which
    if where and where not in reason:
        reason += f": {where}"
    hint = HINTS[first.kind].replace("MODULE", module)
    if first.source == "the kernel command line":
        hint = "remove it from modprobe.blacklist= in the boot loader's configuration"
    make = failed if bad else skipped
    return make(Check.MODULE_INSERT, module, CAUSES[first.kind], source=first.source,
                reason=reason, hint=hint)


# -- the two units -------------------------------------------------------------------------------

PROGRAMS = {MODULES_LOAD: "systemd-modules-load", SYSCTL: "systemd-sysctl"}
PROGRAM_DIRS = ("/lib/systemd", "/usr/lib/systemd")
NO_WORK = {"-h", "--help", "--version", "--cat-config", "--tldr"}
FINE = {"--no-pager", "--strict"}


def unit_work(ctx: Context) -> list[CheckResult]:
    """Each unit's effective ExecStart= runs its program on nftune's file and keys, and its
    conditions hold on this tree."""
    root = ctx.root
    facts = Facts.of(root) if root.live else MACHINE
    out = []
    for unit, program in PROGRAMS.items():
        u = ctx.unit_tree.load(unit)
        if not u.loaded:
            continue  # the ordering check names a unit that is masked, missing or refused
        b = body(root, u)
        r = _exec(ctx, b, program) or _conditions(ctx, b, facts)
        out.append(r)
    return out


def _exec(ctx: Context, b: Body, program: str) -> CheckResult | None:
    root = ctx.root
    cmds = b.exec_start
    shown = root.show
    if b.unparsed:
        return skipped(Check.UNIT_WORK, b.unit, Cause.NOT_EVALUATED, source=b.unparsed,
                       reason=f"{shown(b.unparsed)} quotes or escapes a command line, "
                              "which nftune does not read")
    at = next((i for i, c in enumerate(cmds) if c.path.rpartition("/")[2] == program), None)
    kind = ctx.unit_tree.load(b.unit).setting("Type") or "simple"
    if len(cmds) > 1 and kind != "oneshot":
        return failed(Check.UNIT_WORK, b.unit, Cause.EXEC_REPLACED, source=cmds[-1].source,
                      reason=f"Type={kind} with {len(cmds)} ExecStart= commands (the last "
                             f"at {shown(cmds[-1].source)}): systemd refuses to load the unit",
                      hint="delete the added ExecStart=")
    if not cmds:  # ExecStop= alone keeps the unit loaded
        return failed(Check.UNIT_WORK, b.unit, Cause.EXEC_REPLACED, source=b.reset or None,
                      expected=program, reason="it has no ExecStart= left"
                      + (f" ({shown(b.reset)} resets it)" if b.reset else ""),
                      hint="delete the drop-in that resets ExecStart=")
    if at is None:
        c = cmds[-1]
        return failed(Check.UNIT_WORK, b.unit, Cause.EXEC_REPLACED, source=c.source,
                      expected=program, actual=" ".join(c.argv),
                      reason=f"ExecStart= runs {', '.join(x.path for x in cmds)}, not "
                             f"{program} ({shown(c.source)}"
                             + (f"; {shown(b.reset)} resets it" if b.reset else "") + ")",
                      hint="delete the drop-in that replaces ExecStart=")
    cmd = cmds[at]
    if not root.is_file(cmd.path):
        return failed(Check.UNIT_WORK, b.unit, Cause.EXEC_REPLACED, source=cmd.source,
                      reason=f"ExecStart= runs {cmd.path} ({shown(cmd.source)}), which is "
                             "not in the tree", hint="point it at the installed program")
    if _chase(root, cmd.path) not in {_chase(root, f"{d}/{program}") for d in PROGRAM_DIRS}:
        return skipped(Check.UNIT_WORK, b.unit, Cause.NOT_EVALUATED, source=cmd.source,
                       reason=f"ExecStart= runs {cmd.path} ({shown(cmd.source)}), which is "
                              f"not systemd's {program}")
    for c in (*b.before, *cmds[:at]):
        name = c.path.rpartition("/")[2]
        if c.ignore:
            continue
        if (c.path.startswith("/") and not root.is_file(c.path)) or name == "false":
            what = "does not exist" if name != "false" else "fails"
            return failed(Check.UNIT_WORK, b.unit, Cause.EXEC_REPLACED, source=c.source,
                          reason=f"{c.path} runs first ({shown(c.source)}) and {what}, so "
                                 f"the unit stops before {program}",
                          hint="delete that line, or prefix the command with '-'")
        if name == "true":
            continue
        return skipped(Check.UNIT_WORK, b.unit, Cause.NOT_EVALUATED, source=c.source,
                       reason=f"{c.path} runs first ({shown(c.source)}); nftune cannot "
                              f"tell whether it succeeds, and {program} runs only if it does")
    for key, value, src in b.sandbox:
        broken = (((key == "ProtectKernelModules" and program == "systemd-modules-load")
                  or (key == "ProtectKernelTunables" and program == "systemd-sysctl")) and \
            value.lower() in ("yes", "true", "1", "on")) or \
            (key == "User" and value not in ("root", "0")) or \
            (key == "DynamicUser" and value.lower() in ("yes", "true", "1", "on"))
        if broken:
            return failed(Check.UNIT_WORK, b.unit, Cause.EXEC_REPLACED, source=src,
                          reason=f"{key}={value} ({shown(src)}) takes from {program} what "
                                 "its work needs", hint=f"delete {key}=")
        return skipped(Check.UNIT_WORK, b.unit, Cause.NOT_EVALUATED, source=src,
                       reason=f"{key}={value} ({shown(src)}) sandboxes {program}; nftune "
                              "cannot tell whether it still does its work")
    args = list(cmd.argv[1:])
    prefixes: list[str] = []
    files: list[str] = []
    while args:
        a = args.pop(0)
        if a == "--prefix" and args and program == "systemd-sysctl":
            prefixes.append(prefix_of(args.pop(0)))
        elif a.startswith("--prefix=") and program == "systemd-sysctl":
            prefixes.append(prefix_of(a.partition("=")[2]))
        elif a in NO_WORK:
            return failed(Check.UNIT_WORK, b.unit, Cause.EXEC_REPLACED, source=cmd.source,
                          reason=f"{program} {a} ({shown(cmd.source)}) does no work",
                          hint=f"remove {a}")
        elif a in FINE and program == "systemd-sysctl":
            continue
        elif a.startswith("-"):
            return failed(Check.UNIT_WORK, b.unit, Cause.EXEC_REPLACED, source=cmd.source,
                          reason=f"{program} does not take {a} ({shown(cmd.source)}): it "
                                 "exits with an error", hint=f"remove {a}")
        else:
            files.append(a)
    own = name_of(Kind.MODULES_LOAD) if program == "systemd-modules-load" else \
        name_of(Kind.SYSCTL, ctx.config.sysctl_priority)
    at_own, _ = own_file(root, root.conf_dirs(
        "modules-load.d" if program == "systemd-modules-load" else "sysctl.d"), own)
    # A name is searched for in the configuration directories; a path is opened as it is.
    if files and not any(f == own or (at_own is not None and f.startswith("/")
                                      and _chase(root, f) == _chase(root, at_own.path))
                         for f in files):
        return failed(Check.UNIT_WORK, b.unit, Cause.EXEC_REPLACED, source=cmd.source,
                      reason=f"{program} is given files to read ({shown(cmd.source)}): it "
                             f"reads only {', '.join(files)}, not nftune's {own}",
                      hint="remove the file arguments")
    if prefixes:
        out = [s.display for s in ctx.config.sysctls if not prefix_matches(s.key, prefixes)]
        if out:
            return failed(Check.UNIT_WORK, b.unit, Cause.EXEC_REPLACED, source=cmd.source,
                          reason=f"--prefix= ({shown(cmd.source)}) leaves out "
                                 f"{', '.join(out)}: systemd-sysctl applies only keys under "
                                 f"{', '.join('/' + p for p in prefixes)}",
                          hint="remove --prefix= from ExecStart=")
    return None


def _chase(root: Root, path: str) -> str | None:
    """The path resolved in the tree; None when it cannot be (EACCES in a sandbox)."""
    try:
        return root.chase(path)
    except OSError:
        return None


def _condition_hint(unit: str, kind: str, source: str) -> str:
    """For a line of the unit as systemd ships it, what a container lacks; for an admin's
    own line, to delete it."""
    path = source.rpartition(":")[0]
    if path in (f"/lib/systemd/system/{unit}", f"/usr/lib/systemd/system/{unit}"):
        return CONDITION_HINTS.get(kind.replace("Assert", "Condition", 1), "delete that line")
    return "delete that line"


def _conditions(ctx: Context, b: Body, facts: Facts) -> CheckResult:
    root = ctx.root
    for conds, verb in ((b.conditions, "skips"), (b.asserts, "fails")):
        o = holds(root, conds, facts, ctx.unit_tree.version)
        if o.value is False and o.decides is not None:
            c = o.decides
            what = "no trigger condition holds, the first being" if c.trigger else "fails:"
            return failed(Check.UNIT_WORK, b.unit, Cause.CONDITION_FAILED, source=c.source,
                          reason=f"{what} {c} ({root.show(c.source)}): systemd {verb} the "
                                 "unit at boot",
                          hint=_condition_hint(b.unit, c.kind, c.source))
        if o.value is None:
            return skipped(Check.UNIT_WORK, b.unit, Cause.NOT_EVALUATED,
                           source=o.unknown[0].source,
                           reason="its conditions turn on what nftune cannot evaluate here: "
                                  + ", ".join(f"{c} ({root.show(c.source)})"
                                              for c in o.unknown))
    cmd = next(c for c in b.exec_start if c.path.rpartition("/")[2] == PROGRAMS[b.unit])
    note = "" if root.live else "; assuming a machine's boot (every capability, /proc/sys " \
                                "writable, not a container)"
    return passed(Check.UNIT_WORK, b.unit, actual=" ".join(cmd.argv), source=cmd.source,
                  reason=f"runs {' '.join(cmd.argv)} and its conditions hold{note}")
