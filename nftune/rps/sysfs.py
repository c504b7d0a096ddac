"""What sysfs says about this machine's CPUs and NICs, for RPS; nothing here writes."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from ..artifacts import RPS_UDEV_NAME
from ..attrs import At, read_attr
from ..chase import on_kernel_fs
from ..cpus import bits, mask_value, parse_list
from ..errors import EXIT_FAILED, NftuneError
from ..record import Record
from ..root import Root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .decide import Decision

NET = "/sys/class/net"
CPU = "/sys/devices/system/cpu"
NODE = "/sys/devices/system/node"
FLOW_ENTRIES = "/proc/sys/net/core/rps_sock_flow_entries"
DEFAULT_MASK = "/proc/sys/net/core/rps_default_mask"
IFNAME = re.compile(r"[^/:\s]{1,15}")  # the kernel's dev_valid_name()
RX = re.compile(r"rx-([0-9]{1,6})")


def valid_ifname(name: str) -> bool:
    return bool(IFNAME.fullmatch(name)) and name not in (".", "..") and name.isprintable()


class Machine(Record):
    """What the running kernel says about CPUs and RPS."""

    online: frozenset[int]
    nbits: int  # possible CPUs: the width of every mask the kernel prints
    isolated: frozenset[int]  # isolcpus= and nohz_full=
    nodes: dict[int, frozenset[int]]  # NUMA node -> its CPUs
    has_default_mask: bool  # net.core.rps_default_mask (kernel 6.3+)


class Nic(Record):
    """A network interface as sysfs shows it."""

    name: str
    physical: bool  # a device link in sysfs
    numa_node: int  # -1: none
    rx: tuple[str, ...]  # "rx-0", ... in queue order


def _cpulist(root: Root, path: str) -> frozenset[int]:
    text = read_attr(root, path)
    # Without nohz_full= on its command line, kernel 6.1 prints that list as "(null)".
    if text is None or text == "(null)":
        return frozenset()
    try:
        return parse_list(text)
    except ValueError as e:
        raise NftuneError(f"cannot read the CPU list: {e}", path=root.show(path),
                          exit_code=EXIT_FAILED) from None


def read_machine(root: Root) -> Machine:
    if read_attr(root, f"{CPU}/online") is None:
        raise NftuneError("cannot read the online CPUs", path=root.show(f"{CPU}/online"),
                          exit_code=EXIT_FAILED, hint="is sysfs mounted?")
    online = _cpulist(root, f"{CPU}/online")
    if not online:
        raise NftuneError("no online CPU", path=root.show(f"{CPU}/online"),
                          exit_code=EXIT_FAILED, hint="is this sysfs the machine's?")
    possible = _cpulist(root, f"{CPU}/possible") or online
    isolated = _cpulist(root, f"{CPU}/isolated") | _cpulist(root, f"{CPU}/nohz_full")
    nodes = {}
    for name in root.listdir(NODE):
        m = re.fullmatch(r"node(\d{1,6})", name)
        if m:
            nodes[int(m.group(1))] = _cpulist(root, f"{NODE}/{name}/cpulist")
    return Machine(online, max(possible | online) + 1, isolated, nodes,
                   root.exists(DEFAULT_MASK))


def read_nics(root: Root, only: list[str] | None = None) -> list[Nic]:
    names = only if only is not None else sorted(root.listdir(NET))
    nics = []
    for name in names:
        base = f"{NET}/{name}"
        if not valid_ifname(name) or not root.is_dir(base):
            continue  # renamed or gone meanwhile: the udev rule sees its new name
        rx = sorted((q for q in root.listdir(f"{base}/queues") if RX.fullmatch(q)),
                    key=lambda q: int(q[3:]))
        node = read_attr(root, f"{base}/device/numa_node")
        nics.append(Nic(name, root.exists(f"{base}/device"),
                        int(node) if node and re.fullmatch(r"-?[0-9]{1,6}", node) else -1,
                        tuple(rx)))
    return nics


def parse_devpath(devpath: str) -> tuple[str, str]:
    """A receive queue's udev DEVPATH (/devices/.../net/NAME/queues/rx-N): the NIC's net
    directory and the name the NIC had when the queue appeared."""
    parts = devpath.split("/")
    if (len(parts) < 6 or parts[:2] != ["", "devices"] or parts[-2] != "queues"
            or parts[-4] != "net" or not RX.fullmatch(parts[-1])
            or not valid_ifname(parts[-3])
            or any(p in ("", ".", "..") or not p.isprintable() for p in parts[1:])):
        raise NftuneError("not a receive queue's device path", key="--devpath", value=devpath,
                          hint="udev passes $devpath, like "
                               "/devices/pci0000:00/0000:00:03.0/virtio0/net/eth1/queues/rx-0")
    return "/".join(parts[:-3]), parts[-3]


def interfaces_at(root: Root, devpath: str) -> list[str]:
    """The NIC a queue's DEVPATH belongs to, by its name now. udev runs a queue's event
    after the NIC's own, which may have renamed it (eth0 -> enp1s0), so the path can hold
    the old name; the device's net/ directory holds the new one."""
    net_dir, name = parse_devpath(devpath)
    if root.is_dir(f"/sys{net_dir}/{name}"):
        return [name]
    return sorted(n for n in root.listdir(f"/sys{net_dir}") if valid_ifname(n))


def queues(root: Root, nic: Nic) -> Iterator[tuple[str, At | None]]:
    """Each receive queue and where its attributes are opened from (None: by path). The
    queues directory is resolved in the tree once. On sysfs the attributes are opened from
    it at once; elsewhere (a tree's fake sysfs) each queue's directory is opened in it
    without following a link and each attribute type-checked: 8192 queues cost no path
    walk each."""
    with root.directory(f"{NET}/{nic.name}/queues") as queues:
        if queues is not None and on_kernel_fs(queues):
            for q in nic.rx:
                yield q, (queues, True, f"{q}/")
            return
        for q in nic.rx:
            try:
                fd = None if queues is None else \
                    Root.open_at(queues, q, os.O_PATH | os.O_DIRECTORY)
            except OSError:
                fd = None  # gone meanwhile, or a link: the path says what it is
            try:
                yield q, None if fd is None else (fd, False, "")
            finally:
                if fd is not None:
                    os.close(fd)


def read_only(root: Root) -> str | None:
    """Why RPS cannot be set here: sysfs (or /proc/sys) mounted read-only, as in a
    container."""
    for path in (NET, "/proc/sys/net"):
        try:
            fd = root.open(path, os.O_PATH)
        except OSError:
            continue
        try:
            if os.fstatvfs(fd).f_flag & os.ST_RDONLY:
                return f"{path} is read-only (a container?)"
        finally:
            os.close(fd)
    return None


NO_SYSFS = "no sysfs in this tree: RPS is set at boot, on the machine that boots"


def has_sysfs(root: Root) -> bool:
    return root.is_file(f"{CPU}/online")


def udev_rule(root: Root) -> str | None:
    """nftune's RPS rule as udev finds it (the first of its name on udev's search path)."""
    for d in root.conf_dirs("udev/rules.d"):
        path = f"{d}/{RPS_UDEV_NAME}"
        if root.is_file(path) and not root.is_masked(path):
            return path
    return None


class QueueState(Record):
    """One receive queue: the wanted and the actual mask."""

    queue: str
    wanted: str | None  # the mask nftune wants; None when the NIC is not selected
    actual: str | None
    flow_cnt: str | None
    ok: bool


def queue_states(root: Root, d: Decision) -> list[QueueState]:
    """Each receive queue of the decision's NIC: what it has, and whether that is right."""
    out = []
    for q, at in queues(root, d.nic):
        base = f"{NET}/{d.nic.name}/queues/{q}"
        actual = read_attr(root, f"{base}/rps_cpus", at=at)
        flows = read_attr(root, f"{base}/rps_flow_cnt", at=at)
        ok = not d.selected or (actual is not None and mask_value(actual) == bits(d.cpus)
                                and (flows is None or flows == str(d.flow_cnt)))
        out.append(QueueState(q, d.mask if d.selected else None, actual, flows, ok))
    return out
