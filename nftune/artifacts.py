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

from .config import DEFAULT_SYSCTL_PRIORITY
from .record import Record
from .root import TEMP_INFIX, TEMP_PREFIX, Root


class Layer(StrEnum):
    ADMIN = "admin"
    VENDOR = "vendor"


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


BASE = {Layer.ADMIN: "/etc", Layer.VENDOR: "/usr/lib"}
CONF_DIR = {Kind.MODULES_LOAD: "modules-load.d", Kind.SYSCTL: "sysctl.d",
            Kind.SYSCTL_MASK: "sysctl.d", Kind.UDEV: "udev/rules.d",
            Kind.RPS_UDEV: "udev/rules.d",
            Kind.TIMER_DROPIN: "systemd/system/nftune-verify.timer.d",
            Kind.GATE_DROPIN: "systemd/system/kubelet.service.d",
            Kind.VERIFY_DROPIN: "systemd/system/nftune-verify.service.d",
            Kind.SYSCTL_ORDER: "systemd/system/systemd-sysctl.service.d"}
MODULES_LOAD_NAME = "nftune.conf"
UDEV_NAME = "90-nftune.rules"
RPS_UDEV_NAME = "90-nftune-rps.rules"
# What nftune-verify.service runs before with Gate=yes or Repair=yes: the units that start pods.
KUBE_UNITS = "kubelet.service containerd.service"
NFTUNE_BIN = "/usr/sbin/nftune"  # where the packages install nftune; udev runs it there
DROPIN_NAME = "nftune.conf"
# Names nftune may own; anything else in these directories is never looked at for removal.
OWNED_NAME = {
    "modules-load.d": re.compile(r"nftune\.conf"),
    "sysctl.d": re.compile(r"[0-9]{2}-nftune\.conf"),
    "udev/rules.d": re.compile(r"[0-9]{2}-nftune(-rps)?\.rules"),
    "systemd/system/systemd-sysctl.service.d": re.compile(r"nftune\.conf"),
    "systemd/system/nftune-verify.timer.d": re.compile(r"nftune\.conf"),
    "systemd/system/kubelet.service.d": re.compile(r"nftune-gate\.conf"),
    "systemd/system/nftune-verify.service.d": re.compile(r"nftune\.conf"),
}
GATE_NAME = "nftune-gate.conf"


def sysctl_name(priority: str) -> str:
    return f"{priority}-nftune.conf"


def name_of(kind: Kind, priority: str = DEFAULT_SYSCTL_PRIORITY) -> str:
    if kind is Kind.MODULES_LOAD:
        return MODULES_LOAD_NAME
    if kind is Kind.UDEV:
        return UDEV_NAME
    if kind is Kind.RPS_UDEV:
        return RPS_UDEV_NAME
    if kind in (Kind.SYSCTL_ORDER, Kind.TIMER_DROPIN, Kind.VERIFY_DROPIN):
        return DROPIN_NAME
    if kind is Kind.GATE_DROPIN:
        return GATE_NAME
    if kind is Kind.SYSCTL_MASK:
        return sysctl_name(DEFAULT_SYSCTL_PRIORITY)
    return sysctl_name(priority)


def path_of(layer: Layer, kind: Kind, priority: str) -> str:
    return f"{BASE[layer]}/{CONF_DIR[kind]}/{name_of(kind, priority)}"


class Artifact(Record):
    """One generated file: its kind, in-tree path, text and mode."""

    kind: Kind
    path: str  # in-tree
    content: str
    mode: int = 0o644


def managed_dirs(layer: Layer) -> frozenset[str]:
    """The directories this layer writes in."""
    return frozenset(f"{BASE[layer]}/{d}" for d in OWNED_NAME)


def owned_candidates(root: Root, layer: Layer) -> list[str]:
    """Files in this layer's directories whose names nftune uses (ownership is then
    decided by the header)."""
    out = []
    for conf_dir, pattern in OWNED_NAME.items():
        d = f"{BASE[layer]}/{conf_dir}"
        out += [f"{d}/{n}" for n in sorted(root.listdir(d)) if pattern.fullmatch(n)]
    return out


_TEMP = re.compile(re.escape(TEMP_PREFIX) + r"(.+)" + re.escape(TEMP_INFIX) + r"[0-9]+")


def temp_leftovers(root: Root, layer: Layer) -> list[str]:
    """Temp files of nftune's own names that a killed run left in this layer's
    directories (and beside the state file)."""
    out = []
    places = [*((f"{BASE[layer]}/{d}", p) for d, p in OWNED_NAME.items()),
              (root.state_dir, re.compile(re.escape(root.state_file.rsplit("/", 1)[1])))]
    for d, pattern in places:
        for n in sorted(root.listdir(d)):
            m = _TEMP.fullmatch(n)
            if m and pattern.fullmatch(m.group(1)):
                out.append(f"{d}/{n}")
    return out
