"""The dependencies systemd's system manager adds to a unit on its own, each with the rule
that adds it (the function in systemd's src/core/ named in the reason).

Pure: a unit's own settings in, (kind, other unit, reason) out. What depends on other units
(a target ordered after what it pulls in, mount prefixes) is added by the graph builder.
"""

from __future__ import annotations

from .unitnames import mount_path
from .units import UnitFile, words

SYSINIT, BASIC, SHUTDOWN = "sysinit.target", "basic.target", "shutdown.target"
CGROUP_TYPES = ("service", "socket", "mount", "swap", "scope")  # units in a slice
PERPETUAL = ("-.slice", "init.scope", "-.mount")

Implicit = tuple[str, str, str]  # kind, other unit, reason


def _two(kinds: tuple[str, str], other: str, why: str) -> list[Implicit]:
    return [(k, other, why) for k in kinds]


def default_deps(u: UnitFile, version: int) -> list[Implicit]:
    """What DefaultDependencies=yes adds, per unit type (*_add_default_dependencies)."""
    t = u.type
    why = f"DefaultDependencies=yes ({t}_add_default_dependencies)"
    out: list[Implicit] = []
    if t in ("service", "socket", "timer", "path"):
        out += _two(("Requires", "After"), SYSINIT, why)
        if t == "service":
            out.append(("After", BASIC, why))
        out += _two(("Conflicts", "Before"), SHUTDOWN, why)
        if t in ("socket", "timer", "path"):
            out.append(("Before", f"{t}s.target", why))
        if t == "timer" and u.setting("OnCalendar"):
            out.append(("After", "time-sync.target", why))
            if version >= 248:
                out.append(("After", "time-set.target", why))
    elif t in ("target", "slice"):
        if u.name != SHUTDOWN:
            out += _two(("Conflicts", "Before"), SHUTDOWN, why)
    elif t == "mount":
        out += _mount_defaults(u, why)
    elif t == "swap":  # nothing inside a container; a node is not one
        out += _two(("Conflicts", "Before"), "umount.target", why)
        out.append(("Before", "swap.target", why))
    elif t == "automount":
        out += _two(("Conflicts", "Before"), "umount.target", why)
        out += [("Before", "local-fs.target", why), ("After", "local-fs-pre.target", why)]
    elif t == "scope":
        out += _two(("Conflicts", "Before"), SHUTDOWN, why)
    return out


EXTRINSIC = ("/", "/usr", "/etc")
EXTRINSIC_UNDER = ("/run/initramfs", "/proc", "/sys", "/dev")


def extrinsic(where: str) -> bool:
    """fstab_is_extrinsic(): mounts systemd never unmounts get no default dependencies."""
    w = "/" + "/".join(x for x in where.split("/") if x)
    return w in EXTRINSIC or any(w == p or w.startswith(p + "/") for p in EXTRINSIC_UNDER)


NETWORK_FS = ("afs", "ceph", "cifs", "smb3", "smbfs", "sshfs", "ncpfs", "ncp", "nfs", "nfs4",
              "gfs", "gfs2", "glusterfs", "gpfs", "pvfs2", "ocfs2", "lustre", "davfs")


def where(u: UnitFile) -> str:
    """Where= of a mount or automount, else the path its name stands for."""
    return u.setting("Where") or mount_path(u.name.rpartition(".")[0] + ".mount") or "/"


def _mount_defaults(u: UnitFile, why: str) -> list[Implicit]:
    if extrinsic(where(u)):
        return []
    opts = u.setting("Options").split(",")
    fstype = u.setting("Type").removeprefix("fuse.")  # fstype_is_network()
    network = "_netdev" in opts or fstype in NETWORK_FS
    out: list[Implicit] = _two(("Conflicts", "Before"), "umount.target", why)
    if network:
        out += [("After", "remote-fs-pre.target", why), ("After", "network.target", why),
                ("Wants", "network-online.target", why),
                ("After", "network-online.target", why)]
        if "nofail" not in opts:
            out.append(("Before", "remote-fs.target", why))
    else:
        out.append(("After", "local-fs-pre.target", why))
        if "nofail" not in opts:
            out.append(("Before", "local-fs.target", why))
    if u.setting("Type") == "tmpfs":
        out.append(("After", "swap.target", why))
    return out


def _journal(v: str) -> bool:
    return v.startswith(("journal", "kmsg"))


def default_slice(u: UnitFile) -> str:
    """unit_set_default_slice(): an instance in its template's system-PREFIX.slice."""
    if u.name in PERPETUAL or (u.type == "mount" and extrinsic(where(u))):
        return "-.slice"
    head, at, _ = u.name.partition("@")
    if at:
        return f"system-{head.replace('-', chr(92) + 'x2d')}.slice"
    return "system.slice"


def extras(u: UnitFile, version: int) -> list[Implicit]:
    """Dependencies added whatever DefaultDependencies= says (unit_add_slice_dependencies,
    unit_add_exec_dependencies, the trigger relations, service_add_extras)."""
    t, out = u.type, []
    if t in CGROUP_TYPES and u.name != "-.slice":
        slice_ = u.setting("Slice") or default_slice(u)
        out += _two(("Requires", "After"), slice_,
                    "the unit's slice (unit_add_slice_dependencies)")
    if t == "slice" and u.name != "-.slice":
        parent = u.name[:-len(".slice")].rpartition("-")[0]
        out += _two(("Requires", "After"), f"{parent}.slice" if parent else "-.slice",
                    "the parent slice (slice_add_parent_slice)")
    runs = t in ("service", "mount", "swap") or (t == "socket" and any(
        k.startswith("Exec") for k in u.settings))
    if runs and u.name != "-.mount":
        out_ = u.setting("StandardOutput", "journal")
        err = u.setting("StandardError", "inherit")
        if _journal(out_) or _journal(err):  # an inherited stderr follows stdout
            out.append(("After", "systemd-journald.socket",
                        "output to the journal (unit_add_exec_dependencies)"))
        if u.yes("PrivateTmp", False):
            why = "PrivateTmp=yes (unit_add_exec_dependencies)"
            out.append(("After", "systemd-tmpfiles-setup.service", why))
            if 248 <= version < 256:
                out += _two(("Wants", "After"), "tmp.mount", why)
        if any(u.setting(k) for k in ("StateDirectory", "CacheDirectory", "LogsDirectory")):
            out.append(("After", "systemd-remount-fs.service",
                        "a state, cache or logs directory (unit_add_exec_dependencies)"))
    accepts = t == "socket" and u.yes("Accept", False)  # per-connection instances only
    if t in ("socket", "timer", "path", "automount") and not accepts:
        other = {"socket": u.setting("Service"), "timer": u.setting("Unit"),
                 "path": u.setting("Unit")}.get(t) or \
            u.name.rpartition(".")[0] + (".mount" if t == "automount" else ".service")
        out.append(("Before", other, f"the {t} triggers {other}"))
    if t == "service":
        bus = u.setting("BusName")
        kind = u.setting("Type") or ("dbus" if bus else "")
        if kind == "dbus" and (bus or version < 248):
            out += _two(("Requires", "After"), "dbus.socket",
                        "a D-Bus service (service_add_extras)")
        for s in words(u.setting("Sockets")):
            out += _two(("Wants", "After"), s, "Sockets= (service_add_extras)")
    return out


def mounts_for(u: UnitFile, version: int) -> list[tuple[str, str, str]]:
    """Paths whose mounts the unit needs, besides RequiresMountsFor=: (kind, path, why)."""
    out: list[tuple[str, str, str]] = []
    if u.type in ("service", "socket", "mount", "swap"):
        wd = u.setting("WorkingDirectory")
        if wd.startswith("/"):
            out.append(("RequiresMountsFor", wd, "WorkingDirectory="))
        for key, base in (("RuntimeDirectory", "/run"), ("StateDirectory", "/var/lib"),
                          ("CacheDirectory", "/var/cache"), ("LogsDirectory", "/var/log"),
                          ("ConfigurationDirectory", "/etc")):
            for d in words(u.setting(key)):
                out.append(("RequiresMountsFor", f"{base}/{d.split(':')[0]}", f"{key}="))
        if u.yes("PrivateTmp", False):
            tmp = ("/var/tmp",) if 248 <= version < 256 else ("/tmp", "/var/tmp")
            kind = "WantsMountsFor" if version >= 256 else "RequiresMountsFor"
            out += [(kind, p, "PrivateTmp=yes") for p in tmp]
    if u.type in ("mount", "automount") and (w := where(u)).strip("/"):
        out.append(("RequiresMountsFor", w.rstrip("/").rpartition("/")[0] or "/",
                    "the mount point's parent (mount_add_mount_dependencies)"))
    if u.type == "timer" and u.yes("Persistent", False):
        out.append(("RequiresMountsFor", "/var/lib/systemd/timers", "Persistent=yes"))
    if u.type == "socket":
        for key in ("ListenStream", "ListenDatagram", "ListenSequentialPacket", "ListenFIFO"):
            out += [("RequiresMountsFor", v, f"{key}= (socket_add_mount_dependencies)")
                    for v in words(u.setting(key)) if v.startswith("/")]
    return out
