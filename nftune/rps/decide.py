"""Pure: which NICs get RPS, on which CPUs, with which RFS share, and why."""

from __future__ import annotations

import fnmatch

from ..config import RpsConfig
from ..cpus import format_list, format_mask
from ..errors import NftuneError
from ..record import Record
from .sysfs import Machine, Nic

# Never chosen, whatever the globs say: virtual and CNI devices (they have no device link
# either; the names catch a virtual driver that fakes one).
NEVER = ("lo", "veth*", "cali*", "flannel*", "cni*", "cilium*", "vxlan*", "kube-ipvs0",
         "docker*", "tunl*", "tun*", "tap*", "br-*", "virbr*", "dummy*", "ip6tnl*", "gre*")
def pow2(n: int) -> int:
    """n rounded up to a power of two, as the kernel rounds RFS table sizes (0 stays 0)."""
    return 0 if n <= 0 else 1 << (n - 1).bit_length()


class Decision(Record):
    """Whether a NIC gets RPS, on which CPUs, and why."""

    nic: Nic
    selected: bool
    reason: str
    cpus: frozenset[int] = frozenset()
    mask: str = ""
    flow_cnt: int = 0  # per rx queue; 0 when RFS is off


def _cpus_for(rps: RpsConfig, machine: Machine, nic: Nic) -> tuple[frozenset[int], str]:
    """The CPUs that process this NIC's packets, and where they come from."""
    if rps.cpus is not None:
        cpus, why = rps.cpus, "CPUs="
    elif nic.numa_node >= 0 and machine.nodes.get(nic.numa_node, frozenset()) & machine.online:
        cpus, why = machine.nodes[nic.numa_node] & machine.online, f"NUMA node {nic.numa_node}"
    else:
        cpus, why = machine.online, "all online CPUs"
    if rps.exclude_isolated and cpus & machine.isolated:
        cpus, why = cpus - machine.isolated, why + " less isolated CPUs"
    return cpus, why


def check_cpus(rps: RpsConfig, machine: Machine) -> None:
    """CPUs= may name only CPUs this machine has online."""
    if rps.cpus is None or rps.cpus <= machine.online:
        return
    bad = sorted(rps.cpus - machine.online)
    origin = rps.cpus_origin
    raise NftuneError(
        f"CPU {format_list(set(bad))} is offline or does not exist on this machine",
        path=origin.file if origin else None, line=origin.line if origin else None,
        key="CPUs", value=format_list(set(rps.cpus)),
        hint=f"online CPUs here: {format_list(set(machine.online))}; or write CPUs=auto")


def decide(rps: RpsConfig, machine: Machine, nics: list[Nic]) -> list[Decision]:
    """Pure: which NICs get RPS, on which CPUs, with which RFS share, and why."""
    check_cpus(rps, machine)
    out = []
    for nic in nics:
        def skip(reason: str, nic: Nic = nic) -> Decision:
            return Decision(nic, False, reason)

        if never := next((g for g in NEVER if fnmatch.fnmatchcase(nic.name, g)), None):
            out.append(skip(f"never: a virtual or CNI interface ({never})"))
        elif not nic.physical:
            out.append(skip("virtual: no device link in sysfs"))
        elif not nic.rx:
            out.append(skip("no receive queues in sysfs"))
        elif rps.interfaces and not any(fnmatch.fnmatchcase(nic.name, g)
                                        for g in rps.interfaces):
            out.append(skip(f"not in Interfaces={' '.join(rps.interfaces)}"))
        elif excl := next((g for g in rps.exclude if fnmatch.fnmatchcase(nic.name, g)), None):
            out.append(skip(f"excluded by ExcludeInterfaces={excl}"))
        else:
            cpus, where = _cpus_for(rps, machine, nic)
            n = len(nic.rx)
            if not cpus:
                out.append(skip(f"no CPU left: {where}"))
            elif rps.mode == "auto" and n >= len(cpus):
                out.append(skip(f"{n} rx queues for {len(cpus)} CPUs: the NIC spreads "
                                "the load itself (Mode=auto)"))
            else:
                why = (f"{n} rx queue{'s' if n > 1 else ''} for {len(cpus)} CPUs"
                       if rps.mode == "auto" else "Mode=on")
                out.append(Decision(nic, True, f"{why}; {where}", cpus,
                                    format_mask(cpus, machine.nbits),
                                    pow2(-(-pow2(rps.flow_entries) // n))))
    return out


def default_mask(rps: RpsConfig, machine: Machine) -> str | None:
    """What net.core.rps_default_mask should be, or None where nftune leaves it alone: the
    kernel lacks it (before 6.3), or one mask is not right for every NIC (several NUMA
    nodes with CPUs and CPUs=auto). The kernel gives it to every device created later,
    before any packet arrives; the udev rule then clears it from virtual devices (without
    a process) and lets nftune decide for physical ones."""
    if not machine.has_default_mask:
        return None
    if rps.cpus is None and sum(1 for c in machine.nodes.values() if c & machine.online) > 1:
        return None
    cpus, _ = _cpus_for(rps, machine, Nic("", True, -1, ()))
    return format_mask(cpus, machine.nbits) if cpus else None
