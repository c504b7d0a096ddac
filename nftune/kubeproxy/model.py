"""What nftune knows of a kube-proxy: its settings, what it writes at its next start, and
the survey of every process of that name."""

from __future__ import annotations

from ..errors import NftuneError
from ..record import Record

NAME = "kube-proxy"
MODES = ("iptables", "ipvs", "nftables")


class Gone(Exception):
    """The process exited while it was read."""


class Untrusted(Exception):
    """A process that calls itself kube-proxy, but could not itself write the values it
    would claim: nftune reads nothing else of it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# kube-proxy's conntrack timeouts: (config field, flag, sysctl, default seconds; 0: leaves it)
TIMEOUTS = (
    ("tcpEstablishedTimeout", "conntrack-tcp-timeout-established",
     "net/netfilter/nf_conntrack_tcp_timeout_established", 86400),
    ("tcpCloseWaitTimeout", "conntrack-tcp-timeout-close-wait",
     "net/netfilter/nf_conntrack_tcp_timeout_close_wait", 3600),
    ("udpTimeout", "conntrack-udp-timeout", "net/netfilter/nf_conntrack_udp_timeout", 0),
    ("udpStreamTimeout", "conntrack-udp-timeout-stream",
     "net/netfilter/nf_conntrack_udp_timeout_stream", 0),
)


class Settings(Record):
    """kube-proxy's effective proxy mode and conntrack settings."""

    mode: str
    max_per_core: int
    minimum: int
    be_liberal: bool
    timeouts: tuple[tuple[str, int], ...]  # (sysctl key, seconds) it writes


class KubeProxy(Record):
    """One running kube-proxy and what it does at its next start."""

    pid: int
    source: str  # where the settings come from: "flags", or the config file in its root
    settings: Settings
    cpus: int  # its CPU affinity: Go's runtime.NumCPU()

    @property
    def subject(self) -> str:
        return f"{NAME}[{self.pid}]"

    @property
    def mode(self) -> str:
        return self.settings.mode

    @property
    def sets_max(self) -> int | None:
        """nf_conntrack_max at its next start (None: left alone), as 1.36 caps it."""
        from ..conntrack.size import kube_proxy_max  # only a kube-proxy found asks

        s = self.settings
        return kube_proxy_max(self.cpus, s.max_per_core, s.minimum)

    @property
    def sets_max_before_cap(self) -> int | None:
        """What a kube-proxy before 1.36 sets, when the cap changes it (else None)."""
        from ..conntrack.size import kube_proxy_max

        s = self.settings
        old = kube_proxy_max(self.cpus, s.max_per_core, s.minimum, cap=None)
        return old if old != self.sets_max else None

    @property
    def hashsize_floor(self) -> int | None:
        """It raises hashsize to at least this at its next start."""
        m = self.sets_max
        return None if m is None else m // 4

    def summary(self) -> str:
        s = self.settings
        parts = [f"mode {s.mode}", f"settings from {self.source}"]
        if self.sets_max is None:
            parts.append("conntrack.maxPerCore 0: leaves the table alone")
        else:
            parts.append(f"at its start: nf_conntrack_max {self.sets_max} (maxPerCore "
                         f"{s.max_per_core} x {self.cpus} CPUs, min {s.minimum}), "
                         f"hashsize at least {self.hashsize_floor}")
        if (old := self.sets_max_before_cap) is not None:
            from ..conntrack.size import KUBE_PROXY_CAP

            parts.append(f"before kube-proxy 1.36 (no cap at {KUBE_PROXY_CAP}): {old}")
        parts.append(f"tcpBeLiberal {'true' if s.be_liberal else 'false'}")
        return "; ".join(parts)


class Survey(Record):
    """Every process named kube-proxy: those that could be kube-proxy, read; the others
    by why they were not (a reason of REASONS -> their PIDs)."""

    found: tuple[KubeProxy, ...]
    unreadable: tuple[tuple[int, NftuneError], ...]  # trusted, but its settings unreadable
    ignored: tuple[tuple[str, tuple[int, ...]], ...]

    def ignored_line(self) -> str | None:
        """One line: how many were ignored and why; None when none was."""
        if not self.ignored:
            return None
        n = sum(len(p) for _, p in self.ignored)
        parts = []
        for reason, pids_ in self.ignored:
            shown = ", ".join(map(str, pids_[:5])) + (", …" if len(pids_) > 5 else "")
            parts.append(f"{reason}: {len(pids_)} (PID{'s' * (len(pids_) > 1)} {shown})")
        return (f"{n} process{'es' * (n != 1)} named {NAME} ignored, as none could itself "
                f"write what it would claim: {'; '.join(parts)}")
