"""Hints for a node that is a container sharing its host's kernel (kind, nspawn without
privileges): there the kernel's values are the host's to set, and "set it now" would fail."""

from __future__ import annotations

from ..context import Context

ON_HOST = ("a container sharing its host's kernel (/proc/sys/net is read-only here): set it "
           "on the host, where nftune belongs; nothing here can")


# A condition of systemd's two units that a container fails, and what to do instead.
CONDITION_HINTS = {
    "ConditionCapability": "the manager lacks the capability: a container? Load the modules "
                           "on the host, or give the container CAP_SYS_MODULE",
    "ConditionPathIsReadWrite": "the path is read-only: a container sharing the host's "
                                "network namespace? Set the sysctls on the host",
}


def set_now(ctx: Context, hint: str) -> str:
    """`hint`, or ON_HOST in a container (systemd says so) whose PID 1 sees /proc/sys/net
    read-only (on an image tree nothing is known of PID 1: `hint`)."""
    from ..unitwork import Facts

    facts = ctx.memo("unit-facts", lambda: Facts.of(ctx.root))
    return ON_HOST if facts.container and facts.writable("/proc/sys/net") is False else hint
