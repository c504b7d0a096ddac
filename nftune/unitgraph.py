"""The unit graph systemd's system manager loads at boot, built from a tree's unit files:
the units default.target pulls in and every unit they name (a name in any dependency makes
systemd load that unit), with the dependencies systemd adds on its own (implicit.py), a
target's default ordering after what it pulls in, and the mounts of RequiresMountsFor=.
"""

from __future__ import annotations

from collections import deque

from .errors import NftuneError
from .implicit import PERPETUAL, default_deps, extras, mounts_for
from .root import Root
from .unitnames import NAME_MAX, mount_path, valid_name
from .units import MOUNT_KEYS, UnitFile, UnitTree

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

# What a target is ordered after by default (target_add_default_dependencies).
TARGET_PULLS = ("Wants", "Requires", "Requisite", "BindsTo", "PartOf", "Upholds")
NEWER = ("Upholds", "OnSuccess")  # dependency settings from systemd 249
# What makes the boot transaction start a unit too (transaction_add_job_and_dependencies).
JOB_PULLS = ("Wants", "Requires", "Requisite", "BindsTo", "Upholds")

DEFAULT_TARGET = "default.target"
PATH_MAX = 4096
# systemd's own generators: what they make (gettys, cryptsetup, …) stays out of the two
# units' neighbourhood unless named; fstab and SysV scripts, their inputs, are looked at
# below. Any other generator (a package's) is named as not modelled.
_QUIET_GENERATORS = {"systemd-getty-generator", "systemd-gpt-auto-generator",
                     "systemd-hibernate-resume-generator", "systemd-system-update-generator",
                     "systemd-cryptsetup-generator", "systemd-veritysetup-generator",
                     "systemd-integritysetup-generator", "systemd-bless-boot-generator",
                     "systemd-tpm2-generator", "systemd-ssh-generator",
                     "systemd-rc-local-generator", "systemd-run-generator",
                     "systemd-debug-generator", "systemd-import-generator",
                     "systemd-factory-reset-generator", "systemd-sysv-generator",
                     "systemd-fstab-generator"}


if TYPE_CHECKING:  # for the type checker only
    class Sink(Protocol):
        def add_unit(self, uid: str, state: str, names: list[str], source: str) -> None: ...

        def add_after(self, uid: str, other: str, why: str) -> None: ...

        def is_after(self, uid: str, other: str) -> bool: ...

        def set_jobs(self, jobs: set[str]) -> None: ...


def unmodelled(root: Root, tree: UnitTree) -> tuple[str, ...]:
    """What could add units at boot that no file shows: generators other than systemd's
    own, SysV scripts without a unit, and mounts from /etc/fstab."""
    out: list[str] = []
    for d in ("/etc/systemd/system-generators", "/run/systemd/system-generators",
              "/usr/local/lib/systemd/system-generators", "/usr/lib/systemd/system-generators",
              "/lib/systemd/system-generators"):
        try:
            names = root.listdir(d) if root.is_dir(d) else {}
        except OSError:
            continue
        out += [f"generator {d}/{n}" for n in sorted(names)
                if n not in _QUIET_GENERATORS and not root.is_masked(f"{d}/{n}")]
    try:
        fstab = root.read_text("/etc/fstab") or ""
    except NftuneError:
        fstab = ""
    if any(line.split() and not line.lstrip().startswith("#") for line in fstab.splitlines()):
        out.append("mounts from /etc/fstab (systemd-fstab-generator)")
    out += [f"SysV script /etc/init.d/{n} (systemd-sysv-generator)" for n in _sysv(root, tree)]
    return tuple(dict.fromkeys(out))


def _sysv(root: Root, tree: UnitTree) -> list[str]:
    """Init scripts with no native unit of the same name: the generator makes units of them
    (systemd before 258)."""
    try:
        scripts = root.listdir("/etc/init.d") if root.is_dir("/etc/init.d") else {}
    except OSError:
        return []
    names = set(tree.names())
    return sorted(n for n in scripts if not n.startswith(".") and n not in ("README", "rc",
                  "rcS", "skeleton", "functions") and f"{n}.service" not in names
                  and tree.resolve(f"{n}.service") == f"{n}.service")


def _specifiers(value: str, uid: str) -> str | None:
    """The unit specifiers a dependency may use (%n %N %p %i %%); None for others."""
    if "%" not in value:
        return value
    stem = uid.rpartition(".")[0]
    prefix, _, instance = stem.partition("@")
    table = {"n": uid, "N": stem, "p": prefix, "i": instance, "%": "%"}
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c == "%":
            if i + 1 >= len(value) or value[i + 1] not in table:
                return None
            out.append(table[value[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _under(path: str, mounts: dict[str, str]) -> list[str]:
    """The mount units of the tree whose mount point is `path` or one of its parents
    (PATH_FOREACH_PREFIX_MORE). A mount unit's name is at most 255 characters, so only
    prefixes that short can be mount points: a long path from a file costs no more."""
    out = ["-.mount"]
    prefix = ""
    for part in path.split("/"):
        if not part:
            continue
        prefix += "/" + part
        if len(prefix) > NAME_MAX:
            break
        if prefix in mounts:
            out.append(mounts[prefix])
    return out


def build(g: Sink, tree: UnitTree, version: int, also: tuple[str, ...] = ()) -> None:
    units: dict[str, UnitFile] = {}
    edges: list[tuple[str, str, str, str]] = []  # kind, unit, other, why
    pulls: dict[str, list[tuple[str, str]]] = {}  # unit -> (pulled unit, why)
    mounts = {"/": "-.mount"}
    for n in tree.names():
        if n.endswith(".mount") and (where := mount_path(n)) is not None:
            mounts[where] = n
    queue = deque([DEFAULT_TARGET, "systemd-modules-load.service", "systemd-sysctl.service",
                   *PERPETUAL, *also])
    while queue:
        uid = tree.resolve(queue.popleft())
        if uid in units:
            continue
        u = units[uid] = tree.load(uid)
        where = ", ".join(f for f in (u.fragment, *u.dropins) if f) or "not found"
        g.add_unit(uid, u.state, list(u.aliases),
                   f"{where}: {u.error}" if u.error else where)
        if not u.loaded:
            continue
        found: list[tuple[str, str, str]] = [
            (kind, d.unit, d.source) for kind, ds in u.deps.items()
            if kind not in MOUNT_KEYS and (version >= 249 or kind not in NEWER)
            for d in ds]
        if u.default_dependencies:
            found += default_deps(u, version)
        found += extras(u, version)
        paths = [(kind, d.unit, f"{kind}={d.unit} at {d.source}")
                 for kind in MOUNT_KEYS for d in u.deps.get(kind, ())
                 if version >= 256 or kind == "RequiresMountsFor"]
        paths += [(k, p, f"{why} needs {p} mounted (unit_add_mount_dependencies)")
                  for k, p, why in mounts_for(u, version)]
        for kind, path, why in dict.fromkeys(paths):
            if not path.startswith("/") or len(path) > PATH_MAX:
                continue  # systemd refuses such a path
            for m in _under(path, mounts):
                if m == uid or not (m == "-.mount" or tree.load(m).loaded):
                    continue
                found.append(("After", m, why))
                if tree.load(m).found:
                    found.append(("Requires" if kind == "RequiresMountsFor" else "Wants",
                                  m, why))
        for kind, name, why in found:
            other = _specifiers(name, uid)
            if other is None or not valid_name(other):
                continue  # systemd logs and ignores a name it cannot use
            other = tree.resolve(other)
            if other == uid:
                continue
            edges.append((kind, uid, other, why))
            if kind in TARGET_PULLS:
                pulls.setdefault(uid, []).append((other, why))
            queue.append(other)
    # Ordering binds only units the boot starts: a unit with no start job orders nothing,
    # not even transitively (systemd waits for jobs, not for units). A partial tree with no
    # default.target to start from is taken whole.
    top = units.get(tree.resolve(DEFAULT_TARGET))
    if top is not None and top.loaded:
        pulled: dict[str, list[str]] = {}
        for kind, uid, other, _ in edges:
            if kind in JOB_PULLS:
                pulled.setdefault(uid, []).append(other)
        g.set_jobs(start_jobs({u for u, f in units.items() if f.loaded}, pulled,
                              [top.name, *(tree.resolve(a) for a in also)]))
    for kind, uid, other, why in edges:
        if kind == "After":
            g.add_after(uid, other, why)
        elif kind == "Before" and not other.endswith(".device"):  # systemd drops those
            g.add_after(other, uid, why)
    # target_add_default_dependencies / unit_add_default_target_dependency: a target is
    # ordered after what it pulls in, when both have default dependencies, both are loaded,
    # and the target is not already ordered before it.
    for uid, u in units.items():
        if u.type != "target" or not u.loaded or not u.default_dependencies:
            continue
        for other, why in pulls.get(uid, ()):
            o = units.get(other)
            if o is None or not o.loaded or not o.default_dependencies or \
                    g.is_after(other, uid):
                continue
            g.add_after(uid, other, f"{uid} pulls in {other} ({why}); a target is ordered "
                        "after what it pulls in (target_add_default_dependencies)")


def start_jobs(loaded: set[str], pulled: dict[str, list[str]], start: list[str]) -> set[str]:
    """The units a transaction that starts `start` gets start jobs for: what they pull in
    (`pulled`: Wants=, Requires=, … of each unit), transitively, that is loaded (a masked or
    missing unit gets no job)."""
    jobs: set[str] = set()
    todo = list(start)
    while todo:
        uid = todo.pop()
        if uid in jobs or uid not in loaded:
            continue
        jobs.add(uid)
        todo += pulled.get(uid, ())
    return jobs
