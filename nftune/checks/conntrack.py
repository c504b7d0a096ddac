"""The conntrack table's size ([Conntrack]): which modprobe.d file has the last word on
nf_conntrack's hash size (kmod's precedence, nftune/modprobe.py), and whether the running
table has the size nftune wants."""

from __future__ import annotations

from ..artifacts import Kind, Layer, is_ours, path_of
from ..conntrack.machine import live, machine_or_none
from ..conntrack.record import read_record
from ..conntrack.size import (
    STATED_ENTRY,
    Sizing,
    gib,
    needs_machine,
    over_share,
    size,
    smallest_machine,
    static_buckets,
)
from ..context import Context
from ..modprobe import CMDLINE, ModprobeD
from ..result import Cause, Check, CheckResult, failed, passed, skipped

MODULE = "nf_conntrack"
INITRAMFS = ("initrd.img-", "initramfs-")  # Debian's and dracut's names in /boot


def own_file(ctx: Context) -> str:
    """nftune's modprobe.d file for nf_conntrack: this boot's under /run for auto sizing."""
    kind, layer = (Kind.RUN_MODPROBE, Layer.RUNTIME) if needs_machine(ctx.config.conntrack) \
        else (Kind.MODPROBE, Layer.ADMIN)
    return path_of(layer, kind, ctx.config.sysctl_priority)


def modprobe_options(ctx: Context) -> list[CheckResult]:
    return [_modprobe_options(ctx)]


def _modprobe_options(ctx: Context) -> CheckResult:
    """nftune's `options nf_conntrack hashsize=` is the one modprobe applies."""
    root, ct = ctx.root, ctx.config.conntrack
    subject = f"{MODULE} hashsize"
    own = own_file(ctx)
    view = ModprobeD.load(root, cmdline=root.live)
    if view.unreadable:  # what it sets is unknown; a FIFO would even block modprobe
        path, why = view.unreadable[0]
        return failed(Check.MODPROBE_OPTIONS, subject, Cause.UNREADABLE, source=path,
                      reason=f"{root.show(path)}: {why}: modprobe reads it at every load",
                      hint="make it a regular file, or remove it")
    wanted = static_buckets(ct)
    if wanted is None:
        record = read_record(root)
        wanted = record.buckets if record is not None else None
    found = view.winner(MODULE, "hashsize")
    expected = None if wanted is None else str(wanted)
    if found is None or found[0].file != own:
        if not root.exists(own):
            return failed(Check.MODPROBE_OPTIONS, subject, Cause.FILE_MISSING,
                          expected=expected, reason=f"{root.show(own)} does not exist",
                          hint="run 'nftune apply'" if not needs_machine(ct) else
                          "nftune-conntrack.service did not run this boot")
        winner, value = found if found is not None else (None, None)
        where = winner.source if winner is not None else "nothing"
        shown = root.show(winner.file) + f":{winner.line}" if winner and winner.line \
            else where
        return failed(Check.MODPROBE_OPTIONS, subject, Cause.MODPROBE_OVERRIDDEN,
                      expected=expected, actual=value, source=where,
                      reason=f"{shown} sets hashsize last; {root.show(own)} does not win",
                      hint="remove that hashsize= (modprobe applies every options line of "
                           "a module in file-name order, then the kernel command line; "
                           "the last one wins)")
    entry, value = found
    if not is_ours(root, own):
        return failed(Check.MODPROBE_OPTIONS, subject, Cause.FILE_MASKED, expected=expected,
                      actual=value, source=entry.source,
                      reason=f"{root.show(own)} wins, but nftune did not write it",
                      hint="remove it, then run 'nftune apply'")
    if expected is not None and (not value.isdigit() or int(value) != int(expected)):
        return failed(Check.MODPROBE_OPTIONS, subject, Cause.FILE_STALE, expected=expected,
                      actual=value, source=entry.source,
                      reason=f"{root.show(own)}:{entry.line} sets another hash size",
                      hint="run 'nftune apply'" if not needs_machine(ct) else
                      "run 'nftune apply' to size the table again")
    reason = f"{root.show(own)}:{entry.line} wins"
    if (stale := _stale_initramfs(ctx, own)) and not needs_machine(ct):
        reason += (f"; {root.show(stale)} is older: if it loads {MODULE}, its copy of "
                   "modprobe.d decides (update-initramfs -u, or dracut -f)")
    return passed(Check.MODPROBE_OPTIONS, subject, expected=expected, actual=value,
                  source=entry.source, reason=reason)


def built_in(ctx: Context) -> str | None:
    """Why modprobe.d does not apply: nf_conntrack is built into the running kernel (on
    the live system) or into every installed one (an image); None when it is a module."""
    return ctx.memo("conntrack-built-in", lambda: _built_in(ctx))


def _built_in(ctx: Context) -> str | None:
    root = ctx.root
    if root.live:
        release, kernel = ctx.running
        builtin = kernel.has(MODULE) == "builtin" if kernel is not None else \
            root.is_dir(f"/sys/module/{MODULE}") and \
            not root.exists(f"/sys/module/{MODULE}/initstate")
        where = f"the running kernel ({release})"
    else:
        builtin = bool(ctx.kernels) and all(k.has(MODULE) == "builtin" for k in ctx.kernels)
        where = "every installed kernel (" + ", ".join(k.version for k in ctx.kernels) + ")"
    if not builtin:
        return None
    reason = (f"{MODULE} is built into {where}: modprobe.d never applies to it; "
              "nftune-conntrack.service sets the hash size through "
              f"/sys/module/{MODULE}/parameters/hashsize at boot")
    view = ModprobeD.load(root, cmdline=root.live)
    found = view.winner(MODULE, "hashsize")
    if found is not None and found[0].file == CMDLINE:
        reason += (f"; the kernel command line's {MODULE}.hashsize={found[1]} sets it "
                   "first, at the kernel's start")
    return reason


def _stale_initramfs(ctx: Context, own: str) -> str | None:
    """An initramfs in /boot older than nftune's modprobe.d file."""
    root = ctx.root
    mine = root.stat(own)
    if mine is None:
        return None
    for name in sorted(root.listdir("/boot")):
        if name.startswith(INITRAMFS):
            st = root.stat(f"/boot/{name}")
            if st is not None and st.st_mtime < mine.st_mtime:
                return f"/boot/{name}"
    return None


def offline_note(ctx: Context) -> str:
    """For an image: the RAM below which the table would not fit."""
    ct = ctx.config.conntrack
    if not needs_machine(ct) and (ram := smallest_machine(size(ct, None), ct.memory_share)):
        return (f"; a machine with less than {gib(ram)} of RAM would give this "
                f"table more than MemoryShare={ct.memory_share}% of it at full size "
                f"({STATED_ENTRY} B an entry; verify on the node checks it)")
    return ""


def conntrack_size(ctx: Context) -> list[CheckResult]:
    return [_conntrack_size(ctx)]


def _conntrack_size(ctx: Context) -> CheckResult:
    """The running table has the wanted max and buckets, and fits this machine."""
    root, ct = ctx.root, ctx.config.conntrack
    wanted: Sizing | None
    if needs_machine(ct):
        wanted = read_record(root)
        if wanted is None:
            return failed(Check.CONNTRACK_SIZE, MODULE, Cause.NOT_SIZED,
                          reason="nftune-conntrack.service did not size the table this boot",
                          hint="systemctl status nftune-conntrack.service; 'nftune apply' "
                               "sizes it now")
    else:
        wanted = size(ct, None)
    have = live(root)
    expected = _pair(wanted.max, wanted.buckets)
    facts = machine_or_none(root)
    if facts is not None and (large := over_share(wanted, facts, ct.memory_share)):
        return failed(Check.CONNTRACK_SIZE, MODULE, Cause.TOO_LARGE, expected=expected,
                      reason=large, hint="lower [Conntrack] Max= or Buckets=, raise "
                      "MemoryShare=, or use Max=auto, which sizes the table for each machine")
    if have.max is None:
        return skipped(Check.CONNTRACK_SIZE, MODULE, Cause.NOT_LOADED, expected=expected,
                       reason=f"{MODULE} is not loaded (see module-loaded)")
    actual = _pair(have.max if wanted.max is not None else None,
                   have.buckets if wanted.buckets is not None else None)
    if actual == expected:
        return passed(Check.CONNTRACK_SIZE, MODULE, expected=expected, actual=actual,
                      reason=wanted.how())
    hint = "run 'nftune apply' to resize it now"
    if wanted.buckets is not None and have.buckets != wanted.buckets and \
            (stale := _stale_initramfs(ctx, own_file(ctx))):
        hint = (f"{root.show(stale)} predates nftune's modprobe.d file: an initramfs that "
                f"loads {MODULE} uses its own copy (update-initramfs -u, or dracut -f); "
                + hint)
    return failed(Check.CONNTRACK_SIZE, MODULE, Cause.NOT_SIZED, expected=expected,
                  actual=actual, reason=f"the running table is not the wanted size "
                  f"({wanted.how()}): set after boot, or the module loaded before nftune's "
                  "files applied", hint=hint)


def _pair(mx: int | None, buckets: int | None) -> str:
    return ", ".join(p for p in (mx is not None and f"max {mx}",
                                 buckets is not None and f"buckets {buckets}") if p)
