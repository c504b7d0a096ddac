"""kube-proxy, seen from the node: its processes, their flags and KubeProxyConfiguration
(read through /proc/PID/root, so a containerized kube-proxy's own files), and what each
will write to the conntrack table at its next start.

kube-proxy's rules (cmd/kube-proxy and pkg/proxy/apis/config, v1alpha1):
- with --config FILE, the file decides and the other flags are ignored; without it, the
  flags do (--proxy-mode, --conntrack-max-per-core, --conntrack-min,
  --conntrack-tcp-be-liberal);
- mode "" is iptables on Linux; also ipvs (deprecated from 1.35) and nftables;
- at its start it sets nf_conntrack_max to max(min, maxPerCore x CPUs) when that differs
  (maxPerCore 0: it leaves the table alone; defaults 32768 and 131072; 1.36 caps the
  per-CPU part at 1048576), and raises hashsize to max / 4 when it is smaller (never
  lowers it; skipped when its /sys is read-only);
- tcpBeLiberal (1.29+) sets nf_conntrack_tcp_be_liberal=1, and iptables mode then skips
  its INVALID drop rule (invalid.py);
  tcpEstablishedTimeout (24h) and tcpCloseWaitTimeout (1h), and udpTimeout and
  udpStreamTimeout when not 0, are written to their sysctls.
"""

from __future__ import annotations

from ..sysctl import BE_LIBERAL, CONNTRACK_MAX

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..context import Context


def writer_of(ctx: Context, key: str) -> str | None:
    """A running kube-proxy that writes this sysctl at its start, for a contested value."""
    if not ctx.root.live:
        return None
    for kp in ctx.kube_proxies.found:
        if key == BE_LIBERAL and kp.settings.be_liberal:
            return f"{kp.subject} (conntrack.tcpBeLiberal, {kp.source})"
        if key == CONNTRACK_MAX and kp.sets_max is not None:
            return (f"{kp.subject} (conntrack.maxPerCore {kp.settings.max_per_core}, "
                    f"{kp.source})")
        if key in dict(kp.settings.timeouts):
            return f"{kp.subject} (its conntrack timeouts, {kp.source})"
    return None
