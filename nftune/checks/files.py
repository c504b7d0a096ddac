"""The boot files as the next boot reads them: every module exists in every kernel and is
listed in modules-load.d, nftune's sysctl.d value wins at boot, the udev safety net is in
place, and every file systemd reads can be read."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .. import udev
from ..artifacts import Kind, Layer, is_ours, name_of, path_of
from ..conffiles import list_conf_files, read_lines
from ..context import Context
from ..errors import NftuneError
from ..kernel import RENAMED, ModuleChoice
from ..result import Cause, Check, CheckResult, failed, passed, skipped
from ..root import Root
from ..sysctl import Assignment, display, same_value
from .owned import file_reason, own_file


def module_exists(ctx: Context) -> list[CheckResult]:
    """Every configured module, and every modules-load.d entry, exists in every installed
    kernel: a missing name is never loaded, and older systemd fails
    systemd-modules-load.service as a whole for it."""
    root, kernels, picks, entries = ctx.root, ctx.kernels, ctx.picks, ctx.listed
    if not kernels:
        return [skipped(Check.MODULE_EXISTS, "modules-load.d", Cause.NO_KERNEL,
                        reason=f"no kernel under {root.show('/lib/modules')}")]
    out = []
    for p in picks:
        if isinstance(p, NftuneError):
            out.append(failed(Check.MODULE_EXISTS, str(p.value), Cause.MODULE_MISSING,
                              reason=p.message, hint=p.hint, source=p.location()))
        else:
            where = "built into" if p.builtin_everywhere else "in"
            out.append(passed(Check.MODULE_EXISTS, p.name,
                              reason=f"{where} every installed kernel ({len(kernels)})"))
    configured = {p.name for p in picks if isinstance(p, ModuleChoice)}
    for e in entries:
        lacking = [k.version for k in kernels if not k.has(e.name)]
        if e.name not in configured and lacking:
            renamed = RENAMED.get(e.name)
            out.append(failed(
                Check.MODULE_EXISTS, e.name, Cause.MODULE_MISSING, source=f"{e.file}:{e.line}",
                reason=f"listed in {root.show(e.file)}:{e.line} but not in kernel "
                       f"{', '.join(lacking)}; systemd-modules-load.service cannot load it",
                hint="remove the line" + (f" ({e.name} became part of {renamed} in Linux "
                                          "4.19)" if renamed else "")))
    return out


def modules_load(ctx: Context) -> list[CheckResult]:
    """Each module to load is listed in a modules-load.d file systemd reads."""
    root, entries = ctx.root, ctx.listed
    dirs = root.conf_dirs("modules-load.d")
    own, own_cause = own_file(root, dirs, name_of(Kind.MODULES_LOAD))
    out = []
    for c in ctx.choices:
        if c.builtin_everywhere:
            out.append(passed(Check.MODULES_LOAD, c.name, reason="built in: no entry needed"))
            continue
        hit = next((e for e in entries if e.name == c.name), None)
        if hit:
            out.append(passed(Check.MODULES_LOAD, c.name, source=f"{hit.file}:{hit.line}",
                              reason=f"listed in {root.show(hit.file)}"))
        elif own_cause:
            out.append(failed(Check.MODULES_LOAD, c.name, own_cause,
                              reason=file_reason(root, own, own_cause, "modules-load.d file"),
                              hint="remove the masking file, then run 'nftune apply'"
                              if own_cause is Cause.FILE_MASKED else "run 'nftune apply'"))
        else:
            out.append(failed(Check.MODULES_LOAD, c.name, Cause.NOT_LISTED,
                              reason=f"not listed in {root.show(own.path) if own else ''}",
                              hint="run 'nftune apply' to re-render it"))
    return out


def sysctl_boot(ctx: Context) -> list[CheckResult]:
    """The value systemd-sysctl will apply at boot is nftune's: no later file overrides it."""
    root, config, sysctld = ctx.root, ctx.config, ctx.sysctld
    ours = {f.path for f in sysctld.files if f.readable and is_ours(root, f.path)}
    own_path = path_of(Layer.ADMIN, Kind.SYSCTL, config.sysctl_priority)
    own, own_cause = own_file(root, root.conf_dirs("sysctl.d"),
                               name_of(Kind.SYSCTL, config.sysctl_priority))
    out = []
    for s in config.sysctls:
        eff = sysctld.effective(s.key)
        w = eff.winner
        if w is None:
            negated = next((a for a in reversed(eff.losers) if a.key == s.key
                            and a.value is None and a.file not in ours), None)
            if negated:
                out.append(failed(Check.SYSCTL_BOOT, s.display, Cause.OVERRIDDEN_BY_FILE,
                                  expected=s.value, source=negated.source,
                                  reason=f"'-{display(s.key)}' in {root.show(negated.source)} "
                                         "removes the setting",
                                  hint="delete that line"))
            else:
                cause = own_cause or Cause.FILE_STALE
                out.append(failed(Check.SYSCTL_BOOT, s.display, cause, expected=s.value,
                                  reason=file_reason(root, own, cause, "sysctl.d file")
                                  if own_cause else "nftune's sysctl.d file does not set it",
                                  hint="run 'nftune apply'"))
            continue
        if w.file in ours:
            if same_value(w.value or "", s.value):
                out.append(passed(Check.SYSCTL_BOOT, s.display, expected=s.value, actual=w.value,
                                  source=w.source))
            else:
                out.append(failed(Check.SYSCTL_BOOT, s.display, Cause.FILE_STALE,
                                  expected=s.value, actual=w.value, source=w.source,
                                  reason=f"{root.show(w.file)} is older than the configuration",
                                  hint="run 'nftune apply'"))
        elif same_value(w.value or "", s.value):
            out.append(passed(Check.SYSCTL_BOOT, s.display, expected=s.value, actual=w.value,
                              source=w.source, reason=f"also set by {root.show(w.source)}"))
        else:
            out.append(_overridden(root, s.display, s.value, w, own_path,
                                   "it sorts after nftune's file, so its value wins at boot"))
            continue
        # `sysctl --system` (procps) also reads /etc/sysctl.conf, last, when no link does.
        p = sysctld.effective_procps(s.key).winner
        if p is not None and p.file == "/etc/sysctl.conf" and not same_value(p.value or "",
                                                                           s.value):
            out[-1] = _overridden(root, s.display, s.value, p, own_path,
                                  "'sysctl --system' applies /etc/sysctl.conf after sysctl.d")
    return out


def _overridden(root: Root, key: str, want: str, by: Assignment, own: str,
                why: str) -> CheckResult:
    target = root.chase(by.file)
    link = f" (a link to {target})" if target != by.file else ""
    return failed(Check.SYSCTL_BOOT, key, Cause.OVERRIDDEN_BY_FILE, expected=want, actual=by.value,
                  source=by.source, reason=f"overridden by {root.show(by.source)}{link}: {why}",
                  hint=f"remove or change that line, or set the value in /etc/nftune/ "
                       f"(nftune's file is {own})")


_RUN = re.compile(r'RUN\+="([^"]*)"')


def _rule_present(text: str, module: str, prefixes: tuple[str, ...]) -> int:
    """The line of the rule for `module` on "add" that re-applies every prefix; 0: none."""
    want = {f"--prefix=/{p}" for p in prefixes}
    for n, line in read_lines(text):
        run = _RUN.search(line)
        if (run and f'KERNEL=="{module}"' in line and 'SUBSYSTEM=="module"' in line
                and 'ACTION=="add"' in line and want <= set(run.group(1).split())):
            return n
    return 0


def _rules_files(root: Root, dirs: list[str]) -> tuple[list[str], str | None]:
    """Every rules file udev reads, in its order; or the first that is not a regular file,
    and why."""
    out = []
    for f in list_conf_files(root, dirs, ".rules"):
        if f.problem:
            return [], f"{root.show(f.path)}: {f.problem}"
        if f.readable:
            out.append(f.path)
    return out, None


def _texts(root: Root, paths: list[str]) -> Iterator[tuple[str, str]]:
    """Each file's text in turn (one in memory at a time); a file udev ignores as a whole
    (a line of 16 KiB or more) has none. NftuneError: one cannot be read."""
    for path in paths:
        text = root.read_text(path) or ""
        yield path, "" if udev.long_line(text) else text


def safety_net(ctx: Context) -> list[CheckResult]:
    """nftune's udev rule re-applies the sysctls of a module loaded after boot."""
    root = ctx.root
    trees: dict[str, tuple[str, ...]] = {}
    if ctx.config.auto_load:  # only then: verify's import budget
        from ..autoload import auto_trees

        trees = auto_trees(ctx)
    rules = udev.rules(ctx.config, ctx.choices, trees)
    if not rules:
        return []
    dirs = root.conf_dirs("udev/rules.d")
    name = name_of(Kind.UDEV)
    own, cause = own_file(root, dirs, name)
    text = ""
    if own and not cause:
        try:
            text = root.read_text(own.path) or ""
        except NftuneError as e:
            own, cause = own._replace(problem=e.message), Cause.UNREADABLE
    if own and not cause and (long := udev.long_line(text)):
        own, cause = own._replace(problem=long), Cause.UNREADABLE
    out = []
    files: list[str] | None = None
    problem: str | None = None
    for r in rules:
        want = " ".join(f"--prefix=/{p}" for p in r.prefixes)
        if cause:
            out.append(failed(Check.SAFETY_NET, r.module, cause, expected=want,
                              reason=file_reason(root, own, cause, "udev rule"),
                              hint="run 'nftune apply'"))
        elif own and (n := _rule_present(text, r.module, r.prefixes)):
            if files is None:
                files, problem = _rules_files(root, dirs)
            if problem:
                out.append(failed(Check.SAFETY_NET, r.module, Cause.UNREADABLE,
                                  expected=want, reason=f"udev reads {problem}"))
                continue
            try:
                b = udev.run_blocker(_texts(root, files), own.path, r.module)
            except NftuneError as e:
                out.append(failed(Check.SAFETY_NET, r.module, Cause.UNREADABLE,
                                  expected=want, reason=f"udev reads {e.path}: {e.message}"))
                continue
            if b is None:
                out.append(passed(Check.SAFETY_NET, r.module, actual=want,
                                  source=f"{own.path}:{n}"))
            else:
                make = failed if b.certain else skipped
                out.append(make(Check.SAFETY_NET, r.module,
                                Cause.RUN_CLEARED if b.certain else Cause.NOT_EVALUATED,
                                expected=want, source=b.source,
                                reason=f"{root.show(b.source)}: {b.why}"
                                + ("" if b.certain else " if it matches; nftune cannot "
                                   "evaluate all of its match keys"),
                                hint="change that line to RUN+="))
        else:
            out.append(failed(Check.SAFETY_NET, r.module, Cause.FILE_STALE, expected=want,
                              reason=f"no rule for {r.module} in {name}",
                              hint="run 'nftune apply'"))
    return out
