"""kube-proxy on this node: its mode and conntrack settings, whether it will write a value
nftune manages, to another value, at its next start (nftune/kubeproxy/), and what keeps
INVALID segments from resetting its Service connections (kubeproxy/invalid.py)."""

from __future__ import annotations

from .. import sysctl
from ..attrs import read_attr
from ..context import Context
from ..errors import NftuneError
from ..kubeproxy.invalid import HINT, Mitigation, mitigation
from ..kubeproxy.model import NAME, KubeProxy
from ..result import Cause, Check, CheckResult, failed, passed, skipped
from ..sysctl import BE_LIBERAL, CONNTRACK_MAX


def kube_proxy(ctx: Context) -> list[CheckResult]:
    """Each trusted kube-proxy judged, the ones that cannot be read or are not trusted."""
    seen = ctx.kube_proxies
    out = [judged(ctx, kp) for kp in seen.found]
    out += [skipped(Check.KUBE_PROXY, f"{NAME}[{pid}]", Cause.UNREADABLE,
                    reason=f"its configuration cannot be read: {e}")
            for pid, e in seen.unreadable]
    if (line := seen.ignored_line()) is not None:
        out.append(skipped(Check.KUBE_PROXY, NAME, Cause.UNTRUSTED, reason=line))
    if not out:
        out.append(skipped(Check.KUBE_PROXY, NAME, Cause.NOT_APPLICABLE,
                           reason="no kube-proxy process runs on this node"))
    return out


def wanted(ctx: Context) -> tuple[int | None, int | None]:
    """The max and buckets nftune wants on this machine (None: not managed). A max under
    [Sysctl] counts as much as [Conntrack]'s."""
    from ..conntrack.machine import machine
    from ..conntrack.record import read_record
    from ..conntrack.size import needs_machine, size

    ct = ctx.config.conntrack
    sysctl_max = next((s.value for s in ctx.config.sysctls if s.key == CONNTRACK_MAX), None)
    fixed = int(sysctl_max) if sysctl_max is not None and sysctl_max.isdigit() else None
    if not ct.managed:
        return fixed, None
    if needs_machine(ct):
        sizing = read_record(ctx.root)
        if sizing is None:
            try:
                sizing = size(ct, machine(ctx.root))
            except NftuneError:
                return fixed, None
    else:
        sizing = size(ct, None)
    return sizing.max if sizing.max is not None else fixed, sizing.buckets


def conflicts(ctx: Context, kp: KubeProxy) -> list[str]:
    """What kube-proxy will write, at its next start, against nftune's values."""
    want_max, want_buckets = wanted(ctx)
    out = []
    if want_max is not None and kp.sets_max is not None and kp.sets_max != want_max:
        out.append(f"it sets nf_conntrack_max to {kp.sets_max}, nftune wants {want_max}")
    floor = kp.hashsize_floor
    if want_buckets is not None and floor is not None and floor > want_buckets:
        out.append(f"it raises hashsize to {floor}, above nftune's {want_buckets}")
    mine = {s.key: s.value.strip() for s in ctx.config.sysctls}
    liberal = mine.get(BE_LIBERAL)
    if kp.settings.be_liberal and liberal is not None and liberal != "1":
        out.append(f"its tcpBeLiberal sets nf_conntrack_tcp_be_liberal to 1, nftune wants "
                   f"{liberal}")
    for key, seconds in kp.settings.timeouts:
        if key in mine and mine[key] != str(seconds):
            out.append(f"it sets {sysctl.display(key)} to {seconds}, nftune wants {mine[key]}")
    return out


def invalid(ctx: Context, kp: KubeProxy) -> Mitigation:
    """What keeps INVALID segments from resetting this kube-proxy's Service traffic."""
    from ..sysctl import SysctlD

    root = ctx.root
    live = read_attr(root, root.proc_sys(BE_LIBERAL))
    # An admin's own line counts as much as nftune's. ctx.sysctld keeps nftune's keys'
    # lines, and every key's effective line when the node-wide view is gathered (whole).
    view = ctx.sysctld
    if any(s.key == BE_LIBERAL for s in ctx.config.sysctls):
        line = view.effective(BE_LIBERAL).winner
    elif view.node is not None and not view.node.cut:
        line = view.node.effective(BE_LIBERAL)
    else:
        line = ctx.memo("sysctld-be-liberal", lambda: SysctlD.load(root, [BE_LIBERAL])
                        ).effective(BE_LIBERAL).winner
    boot = (f"{root.show(line.file)}:{line.line}" if line is not None
            and sysctl.same_value(line.value or "", "1") else None)
    return mitigation(kp.mode, None if live is None else live.strip(), boot,
                      kp.settings.be_liberal)


def judged(ctx: Context, kp: KubeProxy) -> CheckResult:
    clash = conflicts(ctx, kp)
    guard = invalid(ctx, kp)
    if not guard.ok:
        also = f"; also: {'; '.join(clash)}" if clash else ""
        return failed(Check.KUBE_PROXY, kp.subject, Cause.INVALID_UNHANDLED,
                      actual=kp.mode, reason=f"{guard.text}{also} ({kp.summary()})",
                      hint=guard.hint or HINT)
    if clash:
        where = "in " + kp.source if kp.source != "flags" else "(--conntrack-max-per-core=0)"
        return failed(Check.KUBE_PROXY, kp.subject, Cause.KUBE_PROXY_CONFLICT,
                      actual=kp.mode, reason=f"{'; '.join(clash)} ({kp.summary()})",
                      hint=f"set conntrack.maxPerCore: 0 {where} to leave the table to "
                           "nftune (and make its other conntrack settings agree), or make "
                           "nftune's configuration agree with it")
    return passed(Check.KUBE_PROXY, kp.subject, actual=kp.mode,
                  reason=f"{kp.summary()}; {guard.text}")
