"""The files nftune generates: their names and where each layer puts them.

Two layers, as systemd intends:
  vendor  /usr/lib/...  rendered from the built-in defaults when the package is built;
  admin   /etc/...      rendered by `nftune apply` from the defaults plus /etc/nftune.
An /etc file of the same name masks the /usr/lib one, so the admin layer always wins and
`nftune clean` falls back to the package defaults.
"""

from __future__ import annotations

import re
from enum import StrEnum
from fnmatch import fnmatchcase

from .config import DEFAULT_SYSCTL_PRIORITY
from .paths import STATE_DIR, WRITTEN
from .record import Record
from .root import Root
from .treewrite import TEMP_INFIX, TEMP_PREFIX


class Layer(StrEnum):
    ADMIN = "admin"
    VENDOR = "vendor"
    RUNTIME = "runtime"  # /run: what nftune-conntrack.service sizes for the booted machine


class Kind(StrEnum):
    MODULES_LOAD = "modules-load"
    SYSCTL = "sysctl"
    SYSCTL_MASK = "sysctl-mask"  # an admin-layer stand-in hiding a vendor sysctl file
    UDEV = "udev"
    SYSCTL_ORDER = "sysctl-order"  # a drop-in ordering systemd-sysctl after modules-load
    RPS_UDEV = "rps-udev"  # RPS for NICs and receive queues that appear after boot
    TIMER_DROPIN = "timer-dropin"  # [Verify] Interval= other than the unit's 5 minutes
    GATE_DROPIN = "gate-dropin"  # [Verify] Gate=yes: kubelet waits for a passing verify
    VERIFY_DROPIN = "verify-dropin"  # [Verify] Gate=, Repair=: Before=; the sandbox
    MODPROBE = "modprobe"  # [Conntrack] Buckets= as a number: hashsize at module load
    CONNTRACK_DROPIN = "conntrack-dropin"  # auto sizing: nftune-conntrack.service at boot
    RUN_SYSCTL = "run-sysctl"  # runtime layer: Max=auto's nf_conntrack_max for this boot
    RUN_MODPROBE = "run-modprobe"  # runtime layer: Buckets=auto's hashsize for this boot


BASE = {Layer.ADMIN: "/etc", Layer.VENDOR: "/usr/lib", Layer.RUNTIME: "/run"}
PRIORITY = "NN"  # in a name: the sysctl.d priority ([Files] SysctlPriority=)


class Generated(Record):
    """One file nftune generates. Every one starts with fsio.MARKER, nftune's header: that
    first line is what makes a file nftune's to replace or remove."""

    kind: Kind
    directory: str  # under BASE[layer]: /etc (admin), /usr/lib (vendor), /run (runtime)
    name: str  # PRIORITY stands for the sysctl.d priority
    template: str  # in nftune/templates/
    owned: str  # a glob of the names nftune may own there (what `clean` and purge match)
    # It names the package's units or binary, so it must go when the package does (a
    # kubelet drop-in requiring a removed unit keeps kubelet down); the others keep the
    # node right without nftune and stay until purge.
    dependent: bool = False


# The one list of generated files: artifacts, render, clean, the .deb's postrm and the
# .rpm's %files follow it (tests/test_packaging.py holds the packaging to it).
FILES: dict[Kind, Generated] = {g.kind: g for g in (
    Generated(Kind.MODULES_LOAD, "modules-load.d", "nftune.conf", "modules-load.conf.j2",
              "nftune.conf"),
    Generated(Kind.SYSCTL, "sysctl.d", f"{PRIORITY}-nftune.conf", "sysctl.conf.j2",
              "[0-9][0-9]-nftune.conf"),
    # An admin-layer stand-in with the vendor file's name: it hides that file when
    # SysctlPriority= moves nftune's own.
    Generated(Kind.SYSCTL_MASK, "sysctl.d", f"{DEFAULT_SYSCTL_PRIORITY}-nftune.conf",
              "sysctl-mask.conf.j2", "[0-9][0-9]-nftune.conf"),
    Generated(Kind.UDEV, "udev/rules.d", "90-nftune.rules", "udev.rules.j2",
              "[0-9][0-9]-nftune.rules"),
    Generated(Kind.SYSCTL_ORDER, "systemd/system/systemd-sysctl.service.d", "nftune.conf",
              "sysctl-order.conf.j2", "nftune.conf"),
    Generated(Kind.RPS_UDEV, "udev/rules.d", "90-nftune-rps.rules", "rps.rules.j2",
              "[0-9][0-9]-nftune-rps.rules", dependent=True),
    Generated(Kind.TIMER_DROPIN, "systemd/system/nftune-verify.timer.d", "nftune.conf",
              "verify-timer.conf.j2", "nftune.conf", dependent=True),
    Generated(Kind.GATE_DROPIN, "systemd/system/kubelet.service.d", "nftune-gate.conf",
              "kubelet-gate.conf.j2", "nftune-gate.conf", dependent=True),
    Generated(Kind.VERIFY_DROPIN, "systemd/system/nftune-verify.service.d", "nftune.conf",
              "verify-service.conf.j2", "nftune.conf", dependent=True),
    Generated(Kind.MODPROBE, "modprobe.d", "nftune.conf", "modprobe.conf.j2", "nftune.conf"),
    Generated(Kind.CONNTRACK_DROPIN, "systemd/system/systemd-modules-load.service.d",
              "nftune-conntrack.conf", "conntrack-dropin.conf.j2", "nftune-conntrack.conf",
              dependent=True),
    # Their own names: an admin-layer file of nftune's must not hide this boot's sizing.
    Generated(Kind.RUN_SYSCTL, "sysctl.d", f"{PRIORITY}-nftune-conntrack.conf",
              "sysctl.conf.j2", "[0-9][0-9]-nftune-conntrack.conf"),
    Generated(Kind.RUN_MODPROBE, "modprobe.d", "nftune-conntrack.conf", "modprobe.conf.j2",
              "nftune-conntrack.conf"),
)}
RUNTIME_KINDS = frozenset([Kind.RUN_SYSCTL, Kind.RUN_MODPROBE])
# Names nftune may own, per directory; anything else there is never looked at for removal.
OWNED: dict[str, tuple[str, ...]] = {
    d: tuple(dict.fromkeys(g.owned for g in FILES.values() if g.directory == d))
    for d in dict.fromkeys(g.directory for g in FILES.values())}
RPS_UDEV_NAME = FILES[Kind.RPS_UDEV].name
# What nftune-verify.service runs before with Gate=yes or Repair=yes: the units that start pods.
KUBE_UNITS = "kubelet.service containerd.service"
NFTUNE_BIN = "/usr/sbin/nftune"  # where the packages install nftune; udev runs it there


def name_of(kind: Kind, priority: str = DEFAULT_SYSCTL_PRIORITY) -> str:
    return FILES[kind].name.replace(PRIORITY, priority)


def path_of(layer: Layer, kind: Kind, priority: str) -> str:
    return f"{BASE[layer]}/{FILES[kind].directory}/{name_of(kind, priority)}"


def owned(directory: str, name: str) -> bool:
    return any(fnmatchcase(name, glob) for glob in OWNED[directory])


class Artifact(Record):
    """One generated file: its kind, in-tree path, text and mode."""

    kind: Kind
    path: str  # in-tree
    content: str
    mode: int = 0o644


def managed_dirs(layer: Layer) -> frozenset[str]:
    """The directories this layer writes in."""
    return frozenset(f"{BASE[layer]}/{d}" for d in OWNED)


def is_dependent(path: str) -> bool:
    """Whether the generated file at this in-tree path names the package's units or
    binary (Generated.dependent)."""
    directory, _, name = path.rpartition("/")
    return any(g.dependent and fnmatchcase(name, g.owned) and
               directory.endswith("/" + g.directory) for g in FILES.values())


def owned_candidates(root: Root, layer: Layer) -> list[str]:
    """Files in this layer's directories whose names nftune uses (ownership is then
    decided by the header). The runtime layer holds only the runtime kinds."""
    out = []
    for conf_dir in OWNED:
        d = f"{BASE[layer]}/{conf_dir}"
        out += [f"{d}/{n}" for n in sorted(root.listdir(d)) if owned(conf_dir, n)
                and (layer is not Layer.RUNTIME or any(
                    g.directory == conf_dir and fnmatchcase(n, g.owned)
                    for k, g in FILES.items() if k in RUNTIME_KINDS))]
    return out


_TEMP = re.compile(re.escape(TEMP_PREFIX) + r"(.+)" + re.escape(TEMP_INFIX) + r"[0-9]+")


def temp_leftovers(root: Root, layer: Layer) -> list[str]:
    """Temp files of nftune's own names that a killed run left in this layer's
    directories (and beside the state file)."""
    out = []
    state = WRITTEN.rsplit("/", 1)[1]
    places = [*((f"{BASE[layer]}/{d}", d) for d in OWNED), (STATE_DIR, None)]
    for d, conf_dir in places:
        for n in sorted(root.listdir(d)):
            m = _TEMP.fullmatch(n)
            if m and (owned(conf_dir, m.group(1)) if conf_dir else m.group(1) == state):
                out.append(f"{d}/{n}")
    return out
