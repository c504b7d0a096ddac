"""The running kernel: each module is loaded, each sysctl has nftune's value (and, when
not, whether a file or a change at runtime is why)."""

from __future__ import annotations

from .. import udev
from ..attrs import read_attr
from ..context import Context
from ..errors import NftuneError
from ..result import Cause, Check, CheckResult, failed, passed, skipped
from ..sysctl import same_value
from .container import set_now


def module_loaded(ctx: Context) -> list[CheckResult]:
    root = ctx.root
    release, running = ctx.running
    out = []
    for c in ctx.choices:
        if root.exists(root.sys_module(c.name)):
            out.append(passed(Check.MODULE_LOADED, c.name, actual="loaded"))
        elif running and running.has(c.name) == "builtin":
            out.append(passed(Check.MODULE_LOADED, c.name, actual="built in"))
        elif running and not running.has(c.name):
            out.append(failed(Check.MODULE_LOADED, c.name, Cause.MODULE_MISSING, actual="missing",
                              expected="loaded", reason=f"not in the running kernel {release}"))
        elif (read_attr(root, root.proc_sys("kernel/modules_disabled")) or "0").strip() == "1":
            out.append(failed(Check.MODULE_LOADED, c.name, Cause.MODULES_DISABLED,
                              expected="loaded", actual="not loaded",
                              reason="kernel.modules_disabled is 1: the kernel loads no "
                                     "module until the next boot, nor will the safety net",
                              hint="reboot, and find what sets kernel.modules_disabled "
                                   "before the module is loaded"))
        else:
            out.append(failed(Check.MODULE_LOADED, c.name, Cause.NOT_LOADED, expected="loaded",
                              actual="not loaded",
                              reason=f"{root.sys_module(c.name)} does not exist",
                              hint="run 'nftune apply' to load it now"))
    return out


def sysctl_value(ctx: Context) -> list[CheckResult]:
    root, config = ctx.root, ctx.config
    out = []
    for s in config.sysctls:
        path = root.proc_sys(s.key)
        try:
            text = root.read_text(path)
        except NftuneError as e:
            out.append(skipped(Check.SYSCTL_VALUE, s.display, Cause.UNREADABLE, expected=s.value,
                               reason=f"cannot read {path}: {e.message}"))
            continue
        if text is None:
            module = udev.module_for_key(s.key)
            if module and not root.exists(root.sys_module(module)):
                out.append(failed(Check.SYSCTL_VALUE, s.display, Cause.NOT_LOADED,
                                  expected=s.value, reason=f"{path} does not exist: "
                                  f"{module} is not loaded", hint=f"modprobe {module}"))
            else:
                out.append(failed(Check.SYSCTL_VALUE, s.display, Cause.KEY_MISSING,
                                  expected=s.value, reason=f"{path} does not exist",
                                  hint="check the key name for this kernel"))
            continue
        live = text.strip()
        if same_value(live, s.value):
            out.append(passed(Check.SYSCTL_VALUE, s.display, expected=s.value, actual=live))
            continue
        boot = ctx.sysctld.effective(s.key).winner
        if boot is not None and not same_value(boot.value or "", s.value):
            out.append(failed(Check.SYSCTL_VALUE, s.display, Cause.OVERRIDDEN_BY_FILE,
                              expected=s.value, actual=live, source=boot.source,
                              reason=f"{root.show(boot.source)} sets {boot.value!r}",
                              hint="see the sysctl-boot check"))
        else:
            out.append(failed(Check.SYSCTL_VALUE, s.display, Cause.CHANGED_AT_RUNTIME,
                              expected=s.value, actual=live,
                              reason="sysctl.d sets the value, but the live value differs: "
                                     "set after boot, or the module loaded late",
                              hint=set_now(ctx, "run 'nftune apply' to set it now")))
    return out
