"""RPS and RFS: spread receive processing over CPUs, decided on the machine that booted.

A node image is built once and booted on machines with other CPU counts, NUMA layouts and
NICs, so nothing here is rendered into a file: `nftune rps apply` (nftune-rps.service, at
boot, and the udev rule, for NICs and queues that appear later) reads sysfs and writes the
masks. Pure decisions (`decide`) are kept apart from reading and writing sysfs.

Why Mode=auto spreads only NICs with fewer receive queues than CPUs: with a queue per CPU
the NIC's own hashing (RSS) already spreads the load, and RPS only adds an inter-processor
interrupt per packet batch. Only physical NICs (a `device` link in sysfs) are chosen:
veths, bridges, tunnels and CNI devices never are.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Iterator

from .artifacts import RPS_UDEV_NAME as RULE_NAME
from .chase import on_kernel_fs
from .config import Config, RpsConfig
from .cpus import format_list, format_mask, parse_list
from .errors import EXIT_FAILED, NftuneError
from .fsio import At, read_attr, sync_attr
from .record import Record
from .result import Cause, CheckResult, failed, passed, skipped
from .root import Root

NET = "/sys/class/net"
CPU = "/sys/devices/system/cpu"
NODE = "/sys/devices/system/node"
FLOW_ENTRIES = "/proc/sys/net/core/rps_sock_flow_entries"
DEFAULT_MASK = "/proc/sys/net/core/rps_default_mask"
# Never chosen, whatever the globs say: virtual and CNI devices (they have no device link
# either; the names catch a virtual driver that fakes one).
NEVER = ("lo", "veth*", "cali*", "flannel*", "cni*", "cilium*", "vxlan*", "kube-ipvs0",
         "docker*", "tunl*", "tun*", "tap*", "br-*", "virbr*", "dummy*", "ip6tnl*", "gre*")
IFNAME = re.compile(r"[^/:\s]{1,15}")  # the kernel's dev_valid_name()
RX = re.compile(r"rx-([0-9]{1,6})")


def valid_ifname(name: str) -> bool:
    return bool(IFNAME.fullmatch(name)) and name not in (".", "..") and name.isprintable()


def pow2(n: int) -> int:
    """n rounded up to a power of two, as the kernel rounds RFS table sizes (0 stays 0)."""
    return 0 if n <= 0 else 1 << (n - 1).bit_length()


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


class Decision(Record):
    """Whether a NIC gets RPS, on which CPUs, and why."""

    nic: Nic
    selected: bool
    reason: str
    cpus: frozenset[int] = frozenset()
    mask: str = ""
    flow_cnt: int = 0  # per rx queue; 0 when RFS is off


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


class Write(Record):
    """One sysfs value set (or to set)."""

    path: str
    old: str | None
    new: str


class Applied(Record):
    """What `rps apply` wrote, or why it wrote nothing."""

    writes: tuple[Write, ...]
    skipped: str | None  # why nothing could be written (a read-only sysfs), or None


def _mask_int(text: str) -> int | None:
    """A hex mask's value (None if it is not one): cheaper than a set, per queue."""
    try:
        value = 0
        for group in text.split(","):
            value = (value << 32) | int(group, 16)
        return value
    except ValueError:
        return None


def _bits(cpus: frozenset[int]) -> int:
    return sum(1 << c for c in cpus)


def _sync(root: Root, path: str, new: str, same: Callable[[str], bool],
          write: bool, at: At | None = None) -> Write | None:
    old = sync_attr(root, path, new, same, write=write, at=at)
    return None if old is None else Write(path, old, new)


def _queues(root: Root, nic: Nic) -> Iterator[tuple[str, At | None]]:
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


def reconcile(root: Root, rps: RpsConfig, decisions: list[Decision], default: str | None,
              *, write: bool) -> list[Write]:
    """Every attribute whose live value differs from the decisions, written when `write`.
    Masks are compared as values, not text. A physical NIC nftune does not select keeps
    its masks, unless they are rps_default_mask's, which nftune set: those it clears."""
    writes: list[Write | None] = []
    current = read_attr(root, DEFAULT_MASK) if default else None
    inherited = _mask_int(current) if current else None
    for d in decisions:
        if not d.selected:
            if inherited and d.nic.physical:
                writes += [_sync(root, f"{NET}/{d.nic.name}/queues/{q}/rps_cpus", "0",
                                 lambda old: _mask_int(old) != inherited, write, at)
                           for q, at in _queues(root, d.nic)]
            continue
        bits, flows = _bits(d.cpus), str(d.flow_cnt)

        def same_mask(old: str, d: Decision = d, bits: int = bits) -> bool:
            return old == d.mask or _mask_int(old) == bits

        for q, at in _queues(root, d.nic):
            base = f"{NET}/{d.nic.name}/queues/{q}"
            writes.append(_sync(root, f"{base}/rps_cpus", d.mask, same_mask, write, at))
            writes.append(_sync(root, f"{base}/rps_flow_cnt", flows, flows.__eq__, write, at))
    if any(d.selected for d in decisions):
        entries = str(pow2(rps.flow_entries))
        writes.append(_sync(root, FLOW_ENTRIES, entries, entries.__eq__, write))
    if default is not None:
        want = _mask_int(default)
        writes.append(_sync(root, DEFAULT_MASK, default,
                            lambda old: _mask_int(old) == want, write))
    return [w for w in writes if w is not None]


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


def apply(root: Root, config: Config, only: list[str] | None = None) -> Applied:
    """Decide on this machine and write what differs. `only`: these interfaces (udev)."""
    rps = config.rps
    if rps.mode == "off":
        return Applied((), "Mode=off")
    if not has_sysfs(root):
        return Applied((), NO_SYSFS)
    machine = read_machine(root)
    decisions = decide(rps, machine, read_nics(root, only))
    default = default_mask(rps, machine)
    if why := read_only(root):
        pending = reconcile(root, rps, decisions, default, write=False)
        return Applied((), why if pending else None)
    return Applied(tuple(reconcile(root, rps, decisions, default, write=True)), None)


class QueueState(Record):
    """One receive queue: the wanted and the actual mask."""

    queue: str
    wanted: str | None  # the mask nftune wants; None when the NIC is not selected
    actual: str | None
    flow_cnt: str | None
    ok: bool


def queue_states(root: Root, d: Decision) -> list[QueueState]:
    out = []
    for q, at in _queues(root, d.nic):
        base = f"{NET}/{d.nic.name}/queues/{q}"
        actual = read_attr(root, f"{base}/rps_cpus", at=at)
        flows = read_attr(root, f"{base}/rps_flow_cnt", at=at)
        ok = not d.selected or (actual is not None and _mask_int(actual) == _bits(d.cpus)
                                and (flows is None or flows == str(d.flow_cnt)))
        out.append(QueueState(q, d.mask if d.selected else None, actual, flows, ok))
    return out


def checks(root: Root, config: Config) -> list[CheckResult]:
    """verify's RPS checks: each selected NIC's queues, the RFS table, and what covers
    devices created later."""
    rps = config.rps
    if rps.mode == "off":
        return [skipped("rps", "RPS", Cause.OK, reason="Mode=off: nftune leaves RPS alone")]
    if not root.live or not has_sysfs(root):
        return [skipped("rps", "RPS", Cause.NOT_LIVE,
                        reason="masks are decided on the running machine at boot"
                        if not root.live else NO_SYSFS)]
    try:
        machine = read_machine(root)
        decisions = decide(rps, machine, read_nics(root))
    except NftuneError as e:  # one check fails; verify's other checks still run
        return [failed("rps", "RPS", Cause.NOT_APPLIED, reason=str(e), hint=e.hint)]
    ro = read_only(root)
    results = []
    for d in decisions:
        if not d.selected:
            continue
        states = queue_states(root, d)
        want = f"rps_cpus={d.mask} rps_flow_cnt={d.flow_cnt}"
        bad = [s for s in states if not s.ok]
        if not bad:
            results.append(passed("rps", d.nic.name, expected=want, actual=want,
                                  reason=d.reason))
            continue
        got = f"rps_cpus={bad[0].actual} rps_flow_cnt={bad[0].flow_cnt}"
        where = f"{len(bad)} of {len(states)} rx queues, first {bad[0].queue}"
        if ro:
            results.append(skipped("rps", d.nic.name, Cause.READ_ONLY, expected=want,
                                   actual=got, reason=f"{ro}: {where} not set"))
        else:
            results.append(failed("rps", d.nic.name, Cause.NOT_APPLIED, expected=want,
                                  actual=got, reason=where,
                                  hint="systemctl status nftune-rps.service; "
                                       "nftune rps apply sets it now"))
    if any(d.selected for d in decisions) and rps.flow_entries:
        entries = str(pow2(rps.flow_entries))
        now = read_attr(root, FLOW_ENTRIES)
        if now == entries:
            results.append(passed("rfs", "net.core.rps_sock_flow_entries", expected=entries,
                                  actual=now))
        else:
            results.append(failed("rfs", "net.core.rps_sock_flow_entries", Cause.NOT_APPLIED,
                                  expected=entries, actual=now,
                                  hint="nftune rps apply sets it now"))
    if not results:
        results.append(passed("rps", "RPS", reason="no NIC here needs RPS (nftune rps show "
                                                   "says why for each)"))
    return [*results, check_new_devices(root, rps, machine, ro)]


def check_new_devices(root: Root, rps: RpsConfig, machine: Machine,
                      ro: str | None) -> CheckResult:
    """What gives devices created after boot their masks: the kernel's rps_default_mask
    (6.3+), or the udev rule alone."""
    subject = "devices created later"
    rule = udev_rule(root)
    if rule is None:
        return failed("rps-new-devices", subject, Cause.FILE_MISSING,
                      expected=RULE_NAME, actual=None,
                      reason="no udev rule sets RPS on NICs and queues that appear later",
                      hint="nftune apply installs it")
    want = default_mask(rps, machine)
    if want is None:
        why = ("the kernel has no rps_default_mask (before 6.3)" if not machine.has_default_mask
               else "NUMA: one mask is not right for every NIC")
        return passed("rps-new-devices", subject, expected="udev", actual="udev",
                      reason=f"the udev rule {rule}; {why}")
    got = read_attr(root, DEFAULT_MASK)
    if got is not None and _mask_int(got) == _mask_int(want):
        return passed("rps-new-devices", subject, expected=f"rps_default_mask={want}",
                      actual=f"rps_default_mask={got}",
                      reason=f"the kernel's rps_default_mask, then the udev rule {rule}")
    if ro:
        return skipped("rps-new-devices", subject, Cause.READ_ONLY,
                       expected=f"rps_default_mask={want}", actual=f"rps_default_mask={got}",
                       reason=ro)
    return failed("rps-new-devices", subject, Cause.NOT_APPLIED,
                  expected=f"rps_default_mask={want}", actual=f"rps_default_mask={got}",
                  hint="nftune rps apply sets it now")


def udev_rule(root: Root) -> str | None:
    """nftune's RPS rule as udev finds it (the first of its name on udev's search path)."""
    for d in root.conf_dirs("udev/rules.d"):
        path = f"{d}/{RULE_NAME}"
        if root.is_file(path) and not root.is_masked(path):
            return path
    return None


class View(Record):
    """`nftune rps show`: every interface, its queues, and why."""

    mode: str
    machine: Machine | None
    default: str | None
    decisions: tuple[tuple[Decision, tuple[QueueState, ...]], ...]
    note: str | None = None

    def lines(self) -> list[str]:
        if self.machine is None:
            return [f"rps: {self.note}"]
        m = self.machine
        out = [f"mode: {self.mode}; online CPUs: {format_list(set(m.online))}"
               + (f"; isolated: {format_list(set(m.isolated))}" if m.isolated else "")
               + "; devices created later: "
               + (f"rps_default_mask={self.default} and the udev rule" if self.default
                  else "the udev rule")]
        if self.note:
            out.append(f"note: {self.note}")
        rows = [("INTERFACE", "QUEUE", "WANTED", "ACTUAL", "FLOW_CNT", "NUMA", "")]
        for d, states in self.decisions:
            numa = str(d.nic.numa_node) if d.nic.numa_node >= 0 else "-"
            verdict = ("selected: " if d.selected else "skipped: ") + d.reason
            if not states:
                rows.append((d.nic.name, "-", "-", "-", "-", numa, verdict))
            for i, q in enumerate(states):
                rows.append((d.nic.name if i == 0 else "", q.queue, q.wanted or "-",
                             (q.actual or "-") + ("" if q.ok else " (!)"), q.flow_cnt or "-",
                             numa if i == 0 else "", verdict if i == 0 else ""))
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        out += ["  ".join(c.ljust(w) for c, w in zip(r[:6], widths, strict=True)) + "  " + r[6]
                for r in rows]
        return [line.rstrip() for line in out]

    def to_json(self) -> dict[str, object]:
        m = self.machine
        return {
            "schema": 1,
            "mode": self.mode,
            "note": self.note,
            "online_cpus": format_list(set(m.online)) if m else None,
            "isolated_cpus": format_list(set(m.isolated)) if m else None,
            "rps_default_mask": self.default,
            "new_devices": None if m is None else ("rps_default_mask" if self.default
                                                   else "udev"),
            "interfaces": [{
                "name": d.nic.name, "selected": d.selected, "reason": d.reason,
                "physical": d.nic.physical,
                "numa_node": d.nic.numa_node, "cpus": format_list(set(d.cpus)),
                "mask": d.mask or None, "flow_cnt": d.flow_cnt if d.selected else None,
                "queues": [{"queue": q.queue, "wanted": q.wanted, "actual": q.actual,
                            "flow_cnt": q.flow_cnt, "ok": q.ok} for q in states],
            } for d, states in self.decisions],
        }


def show(root: Root, config: Config) -> View:
    rps = config.rps
    if not has_sysfs(root):
        return View(rps.mode, None, None, (), NO_SYSFS)
    machine = read_machine(root)
    note = None
    try:
        decisions = decide(rps, machine, read_nics(root))
    except NftuneError as e:  # show what is there, and say why nothing is chosen
        decisions = [Decision(n, False, "CPUs= is not valid here") for n in read_nics(root)]
        note = str(e)
    if rps.mode == "off":
        decisions = [Decision(d.nic, False, "Mode=off") for d in decisions]
    return View(rps.mode, machine, default_mask(rps, machine) if rps.mode != "off" else None,
                tuple((d, tuple(queue_states(root, d))) for d in decisions), note)
