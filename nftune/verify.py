"""`nftune verify`: is this node (or image) right, and if not, why.

Static checks read the tree as the next boot will: modules-load.d, sysctl.d and udev rules
with systemd's precedence. Runtime checks read /sys and /proc/sys, only on the live system.
"""

from __future__ import annotations

import re

from . import __version__, rps, udev
from .artifacts import CONF_DIR, Kind, Layer, name_of, path_of
from .conffiles import ConfFile, read_lines, winner_for
from .config import Config, load
from .errors import NftuneError
from .fsio import is_ours
from .kernel import (
    RENAMED,
    Kernel,
    ListedModule,
    ModuleChoice,
    choose_all,
    listed_modules,
    load_kernels,
    running_kernel,
)
from .ordering import MODULES_LOAD, SYSCTL, FileGraph, prove
from .record import Record
from .result import Cause, CheckResult, Status, failed, passed, skipped
from .root import Root
from .sysctl import Assignment, SysctlD, display, same_value
from .units import UnitTree

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows it)
if TYPE_CHECKING:
    from typing import Any

    from .systemd import Bus


class BootFacts(Record):
    """What the boot checks (boot.py, only on a live system) need from the rest of verify."""

    config: Config
    choices: list[ModuleChoice]
    listed: list[ListedModule]  # modules-load.d lines as they are now
    running: Kernel | None  # the running kernel's module directory, when installed


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


def verify(root: Root, *, bus_address: str | None = None, bus: Bus | None = None) -> Report:
    """Every check. The boot checks talk to systemd: the given bus, else the one at
    bus_address, else the system bus when root is the running system."""
    config = load(root)
    problems: list[tuple[str, str]] = []  # tree files that cannot be read: path, why
    kernels = load_kernels(root, problems)
    picks = choose_all(config.modules, kernels)
    facts = _facts(root, config, kernels, picks, problems)
    choices, entries = facts.choices, facts.listed
    sysctld = SysctlD.load(root, [s.key for s in config.sysctls])
    problems += sysctld.unreadable
    results = [
        *check_module_names(root, kernels, picks, entries),
        *check_modules_load(root, choices, entries),
        *check_sysctl_boot(root, config, sysctld),
        *check_safety_net(root, config, choices),
        check_ordering(root, problems),
        check_order_dropin(root),
    ]
    results[:0] = [failed("file-readable", path, Cause.UNREADABLE,
                          reason=f"{root.show(path)}: {why}",
                          hint="systemd skips it or fails on it; remove it, or make it a "
                               "regular file") for path, why in problems]
    if bus is not None:
        from .boot import check_boot  # only a live check talks to systemd

        results += check_boot(bus, root, facts)
    elif root.live or bus_address:
        results += _boot_over_bus(root, bus_address, facts)
    else:
        results.append(skipped("boot-order", SYSCTL, Cause.NOT_LIVE, reason=_not_live(root)))
    if root.live:
        results += check_modules_loaded(root, kernels, choices)
        results += check_sysctl_values(root, config, sysctld)
        results += rps.checks(root, config)
    else:
        why = _not_live(root)
        results += [skipped("module-loaded", c.name, Cause.NOT_LIVE, reason=why)
                    for c in choices]
        results += [skipped("sysctl-value", s.display, Cause.NOT_LIVE, expected=s.value,
                            reason=why) for s in config.sysctls]
        results += rps.checks(root, config)
    return Report(str(root.path), root.live, tuple(results))


def _not_live(root: Root) -> str:
    return ("--root: not the running system" if not root.is_host
            else "systemd is not running (a chroot or an image build)")


def boot_facts(root: Root) -> BootFacts:
    config = load(root)
    kernels = load_kernels(root)
    return _facts(root, config, kernels, choose_all(config.modules, kernels))


def _facts(root: Root, config: Config, kernels: list[Kernel],
           picks: list[ModuleChoice | NftuneError],
           problems: list[tuple[str, str]] | None = None) -> BootFacts:
    choices = [c for c in picks if isinstance(c, ModuleChoice)]
    return BootFacts(config, choices, listed_modules(root, problems),
                     running_kernel(root, kernels)[1])


def _boot_over_bus(root: Root, address: str | None, facts: BootFacts) -> list[CheckResult]:
    try:
        from .boot import check_boot
        from .systemd import Systemd

        with Systemd(address) as bus:
            return check_boot(bus, root, facts)
    except NftuneError as e:
        return [no_bus(e)]


def no_bus(e: NftuneError) -> CheckResult:
    return failed("boot", "systemd", Cause.NO_BUS, reason=e.message, hint=e.hint)


# -- modules ----------------------------------------------------------------------------------

def check_module_names(root: Root, kernels: list[Kernel], picks: list[ModuleChoice | NftuneError],
                       entries: list[ListedModule]) -> list[CheckResult]:
    """Every configured module, and every modules-load.d entry, exists in every installed
    kernel: a missing name is never loaded, and older systemd fails
    systemd-modules-load.service as a whole for it."""
    if not kernels:
        return [skipped("module-exists", "modules-load.d", Cause.NO_KERNEL,
                        reason=f"no kernel under {root.show('/lib/modules')}")]
    out = []
    for p in picks:
        if isinstance(p, NftuneError):
            out.append(failed("module-exists", str(p.value), Cause.MODULE_MISSING,
                              reason=p.message, hint=p.hint, source=p.location()))
        else:
            where = "built into" if p.builtin_everywhere else "in"
            out.append(passed("module-exists", p.name,
                              reason=f"{where} every installed kernel ({len(kernels)})"))
    configured = {p.name for p in picks if isinstance(p, ModuleChoice)}
    for e in entries:
        lacking = [k.version for k in kernels if not k.has(e.name)]
        if e.name not in configured and lacking:
            renamed = RENAMED.get(e.name)
            out.append(failed(
                "module-exists", e.name, Cause.MODULE_MISSING, source=f"{e.file}:{e.line}",
                reason=f"listed in {root.show(e.file)}:{e.line} but not in kernel "
                       f"{', '.join(lacking)}; systemd-modules-load.service cannot load it",
                hint="remove the line" + (f" ({e.name} became part of {renamed} in Linux "
                                          "4.19)" if renamed else "")))
    return out


def _own_file(root: Root, dirs: list[str], name: str) -> tuple[ConfFile | None, Cause | None]:
    """nftune's file of this name as systemd sees it, or the cause it is not in effect."""
    f = winner_for(root, dirs, name)
    if f is None:
        return None, Cause.FILE_MISSING
    if f.problem:
        return f, Cause.UNREADABLE
    if f.masked or not is_ours(root, f.path):
        return f, Cause.FILE_MASKED
    return f, None


def _file_reason(root: Root, f: ConfFile | None, cause: Cause, name: str) -> str:
    if cause is Cause.FILE_MISSING or f is None:
        return f"nftune's {name} is not installed"
    if f.problem:
        return f"nftune's {name} {root.show(f.path)} cannot be read: {f.problem}"
    what = "masked by" if f.masked else "hidden by"
    return f"nftune's {name} is {what} {root.show(f.path)}"


def check_modules_load(root: Root, choices: list[ModuleChoice],
                       entries: list[ListedModule]) -> list[CheckResult]:
    """Each module to load is listed in a modules-load.d file systemd reads."""
    dirs = root.conf_dirs("modules-load.d")
    own, own_cause = _own_file(root, dirs, name_of(Kind.MODULES_LOAD))
    out = []
    for c in choices:
        if c.builtin_everywhere:
            out.append(passed("modules-load", c.name, reason="built in: no entry needed"))
            continue
        hit = next((e for e in entries if e.name == c.name), None)
        if hit:
            out.append(passed("modules-load", c.name, source=f"{hit.file}:{hit.line}",
                              reason=f"listed in {root.show(hit.file)}"))
        elif own_cause:
            out.append(failed("modules-load", c.name, own_cause,
                              reason=_file_reason(root, own, own_cause, "modules-load.d file"),
                              hint="remove the masking file, then run 'nftune apply'"
                              if own_cause is Cause.FILE_MASKED else "run 'nftune apply'"))
        else:
            out.append(failed("modules-load", c.name, Cause.NOT_LISTED,
                              reason=f"not listed in {root.show(own.path) if own else ''}",
                              hint="run 'nftune apply' to re-render it"))
    return out


# -- sysctl -----------------------------------------------------------------------------------

def check_sysctl_boot(root: Root, config: Config, sysctld: SysctlD) -> list[CheckResult]:
    """The value systemd-sysctl will apply at boot is nftune's: no later file overrides it."""
    ours = {f.path for f in sysctld.files if f.readable and is_ours(root, f.path)}
    own_path = path_of(Layer.ADMIN, Kind.SYSCTL, config.sysctl_priority)
    own, own_cause = _own_file(root, root.conf_dirs("sysctl.d"),
                               name_of(Kind.SYSCTL, config.sysctl_priority))
    out = []
    for s in config.sysctls:
        eff = sysctld.resolve(s.key)
        w = eff.winner
        if w is None:
            negated = next((a for a in reversed(eff.losers) if a.key == s.key
                            and a.value is None and a.file not in ours), None)
            if negated:
                out.append(failed("sysctl-boot", s.display, Cause.OVERRIDDEN_BY_FILE,
                                  expected=s.value, source=negated.where,
                                  reason=f"'-{display(s.key)}' in {root.show(negated.where)} "
                                         "removes the setting",
                                  hint="delete that line"))
            else:
                cause = own_cause or Cause.FILE_STALE
                out.append(failed("sysctl-boot", s.display, cause, expected=s.value,
                                  reason=_file_reason(root, own, cause, "sysctl.d file")
                                  if own_cause else "nftune's sysctl.d file does not set it",
                                  hint="run 'nftune apply'"))
            continue
        if w.file in ours:
            if same_value(w.value or "", s.value):
                out.append(passed("sysctl-boot", s.display, expected=s.value, actual=w.value,
                                  source=w.where))
            else:
                out.append(failed("sysctl-boot", s.display, Cause.FILE_STALE,
                                  expected=s.value, actual=w.value, source=w.where,
                                  reason=f"{root.show(w.file)} is older than the configuration",
                                  hint="run 'nftune apply'"))
        elif same_value(w.value or "", s.value):
            out.append(passed("sysctl-boot", s.display, expected=s.value, actual=w.value,
                              source=w.where, reason=f"also set by {root.show(w.where)}"))
        else:
            out.append(_overridden(root, s.display, s.value, w, own_path,
                                   "it sorts after nftune's file, so its value wins at boot"))
            continue
        # `sysctl --system` (procps) also reads /etc/sysctl.conf, last, when no link does.
        p = sysctld.resolve_procps(s.key).winner
        if p is not None and p.file == "/etc/sysctl.conf" and not same_value(p.value or "",
                                                                           s.value):
            out[-1] = _overridden(root, s.display, s.value, p, own_path,
                                  "'sysctl --system' applies /etc/sysctl.conf after sysctl.d")
    return out


def _overridden(root: Root, key: str, want: str, by: Assignment, own: str,
                why: str) -> CheckResult:
    target = root.chase(by.file)
    link = f" (a link to {target})" if target != by.file else ""
    return failed("sysctl-boot", key, Cause.OVERRIDDEN_BY_FILE, expected=want, actual=by.value,
                  source=by.where, reason=f"overridden by {root.show(by.where)}{link}: {why}",
                  hint=f"remove or change that line, or set the value in /etc/nftune/ "
                       f"(nftune's file is {own})")


def check_sysctl_values(root: Root, config: Config, sysctld: SysctlD) -> list[CheckResult]:
    out = []
    for s in config.sysctls:
        path = root.proc_sys(s.key)
        try:
            text = root.read_text(path)
        except NftuneError as e:
            out.append(skipped("sysctl-value", s.display, Cause.NOT_LIVE, expected=s.value,
                               reason=f"cannot read {path}: {e.message}"))
            continue
        if text is None:
            module = udev.module_for_key(s.key)
            if module and not root.exists(root.sys_module(module)):
                out.append(failed("sysctl-value", s.display, Cause.NOT_LOADED,
                                  expected=s.value, reason=f"{path} does not exist: "
                                  f"{module} is not loaded", hint=f"modprobe {module}"))
            else:
                out.append(failed("sysctl-value", s.display, Cause.KEY_MISSING,
                                  expected=s.value, reason=f"{path} does not exist",
                                  hint="check the key name for this kernel"))
            continue
        live = text.strip()
        if same_value(live, s.value):
            out.append(passed("sysctl-value", s.display, expected=s.value, actual=live))
            continue
        boot = sysctld.resolve(s.key).winner
        if boot is not None and not same_value(boot.value or "", s.value):
            out.append(failed("sysctl-value", s.display, Cause.OVERRIDDEN_BY_FILE,
                              expected=s.value, actual=live, source=boot.where,
                              reason=f"{root.show(boot.where)} sets {boot.value!r}",
                              hint="see the sysctl-boot check"))
        else:
            out.append(failed("sysctl-value", s.display, Cause.CHANGED_AT_RUNTIME,
                              expected=s.value, actual=live,
                              reason="sysctl.d sets the value, but the live value differs: "
                                     "set after boot, or the module loaded late",
                              hint="run 'nftune apply' to set it now"))
    return out


def check_modules_loaded(root: Root, kernels: list[Kernel],
                         choices: list[ModuleChoice]) -> list[CheckResult]:
    release, running = running_kernel(root, kernels)
    out = []
    for c in choices:
        if root.exists(root.sys_module(c.name)):
            out.append(passed("module-loaded", c.name, actual="loaded"))
        elif running and running.has(c.name) == "builtin":
            out.append(passed("module-loaded", c.name, actual="built in"))
        elif running and not running.has(c.name):
            out.append(failed("module-loaded", c.name, Cause.MODULE_MISSING, actual="missing",
                              expected="loaded", reason=f"not in the running kernel {release}"))
        else:
            out.append(failed("module-loaded", c.name, Cause.NOT_LOADED, expected="loaded",
                              actual="not loaded",
                              reason=f"{root.sys_module(c.name)} does not exist",
                              hint="run 'nftune apply' to load it now"))
    return out


# -- unit graph ------------------------------------------------------------------------------

def check_ordering(root: Root, problems: list[tuple[str, str]] | None = None,
                   graph: FileGraph | None = None) -> CheckResult:
    """From the unit files the next boot loads: modules-load is ordered before sysctl.
    Unit files that cannot be read are added to `problems`."""
    tree = graph.tree if graph is not None else UnitTree(root)
    try:
        return _check_ordering(tree, graph)
    finally:
        if problems is not None:
            problems += tree.problems


def _check_ordering(tree: UnitTree, graph: FileGraph | None = None) -> CheckResult:
    subject = SYSCTL
    if not any(tree.load(u).found for u in (MODULES_LOAD, SYSCTL)):
        return skipped("ordering", subject, Cause.UNIT_MASKED,
                       reason="systemd's units are not installed in this tree")
    proof = prove(graph or FileGraph(tree))
    unsure = (f"; not modelled, so not part of this proof: {', '.join(proof.unmodelled)}"
              if proof.unmodelled else "")
    if proof.cause is Cause.OK:
        # An admin's empty After= meant to reset the list; say that it did not.
        empty = [e for u in (MODULES_LOAD, SYSCTL) for e in tree.load(u).empty]
        note = (f" (the empty {', '.join(empty)} resets nothing: systemd ignores an empty "
                "dependency assignment)") if empty else ""
        return passed("ordering", subject, actual=" < ".join(proof.path),
                      source=proof.source,
                      reason=f"ordered after {MODULES_LOAD}{note}{unsure}")
    unloadable = "cannot be loaded" in proof.reason
    hint = {Cause.UNIT_MASKED: "make it a readable unit file, or break the alias loop (see "
                               "file-readable)" if unloadable else
            "unmask it: systemctl unmask (or remove the /dev/null link)",
            Cause.ORDERING_CYCLE: "remove one edge of the cycle: an After= or Before= line "
                                  "named above, or DefaultDependencies=no on a unit that "
                                  "must run before sysinit.target"}.get(
        proof.cause, "restore After=systemd-modules-load.service in systemd-sysctl.service")
    return failed("ordering", subject, proof.cause, reason=proof.reason + unsure,
                  source=proof.source, hint=hint)


def check_order_dropin(root: Root) -> CheckResult:
    """nftune's drop-in keeps the ordering whatever the distribution's unit says."""
    name = name_of(Kind.SYSCTL_ORDER)
    own, cause = _own_file(root, root.conf_dirs(CONF_DIR[Kind.SYSCTL_ORDER]), name)
    subject = f"{SYSCTL}.d/{name}"
    if cause:
        return failed("order-dropin", subject, cause,
                      reason=_file_reason(root, own, cause, "drop-in"),
                      hint="run 'nftune apply'")
    return passed("order-dropin", subject, actual="in effect",
                  source=own.path if own else None)


# -- udev -------------------------------------------------------------------------------------

_RUN = re.compile(r'RUN\+="([^"]*)"')


def _rule_present(text: str, module: str, prefixes: tuple[str, ...]) -> bool:
    """A rule for `module` on "add" that re-applies every prefix."""
    want = {f"--prefix=/{p}" for p in prefixes}
    for _, line in read_lines(text):
        run = _RUN.search(line)
        if (run and f'KERNEL=="{module}"' in line and 'SUBSYSTEM=="module"' in line
                and 'ACTION=="add"' in line and want <= set(run.group(1).split())):
            return True
    return False


def check_safety_net(root: Root, config: Config,
                     choices: list[ModuleChoice]) -> list[CheckResult]:
    rules = udev.rules(config, choices)
    if not rules:
        return []
    dirs = root.conf_dirs("udev/rules.d")
    name = name_of(Kind.UDEV)
    own, cause = _own_file(root, dirs, name)
    text = ""
    if own and not cause:
        try:
            text = root.read_text(own.path) or ""
        except NftuneError as e:
            own, cause = own._replace(problem=e.message), Cause.UNREADABLE
    if own and not cause and (long := udev.long_line(text)):
        own, cause = own._replace(problem=long), Cause.UNREADABLE
    out = []
    for r in rules:
        want = " ".join(f"--prefix=/{p}" for p in r.prefixes)
        if cause:
            out.append(failed("safety-net", r.module, cause, expected=want,
                              reason=_file_reason(root, own, cause, "udev rule"),
                              hint="run 'nftune apply'"))
        elif _rule_present(text, r.module, r.prefixes):
            out.append(passed("safety-net", r.module, actual=want,
                              source=own.path if own else None))
        else:
            out.append(failed("safety-net", r.module, Cause.FILE_STALE, expected=want,
                              reason=f"no rule for {r.module} in {name}",
                              hint="run 'nftune apply'"))
    return out
