"""What systemd-modules-load.service and systemd-sysctl.service will run at boot: their
effective ExecStart= and Condition…=/Assert…= lines after every drop-in, as systemd's
load_fragment.c reads them, and what those lines mean for nftune's file and keys.

Held to systemd by tests/unitdiff.py (`systemctl show -p ExecStart -p ConditionResult`
in the booted container). The rules:
- an empty `ExecStart=` resets the list; each other line appends its commands (a lone ";"
  separates two). A command's leading "@", "-", ":", "+", "!" change how it runs; "-"
  makes its failure ignored, "@" makes the second word argv[0].
- an empty `Condition…=` resets all of the unit's conditions, an empty `Assert…=` all its
  asserts. A value's leading "|" makes it a trigger, then "!" negates it. The unit's
  conditions hold when every non-trigger holds and, if there are triggers, one does.
- systemd-modules-load with file arguments reads only those files; systemd-sysctl also
  takes --prefix= (several are ORed; a key matches by whole path components after the
  same normalization as sysctl.d's keys, so "/proc/sys/…" never matches anything).
"""

from __future__ import annotations

import re
import stat

from . import ini
from .errors import NftuneError
from .record import Record
from .root import Root
from .sysctl import normalize
from .units import UnitFile

PREFIXES = "@-:+!"
CURRENT = 257  # the rules of this systemd where the tree does not say
# conf-files' hidden_or_backup_file(): what ConditionDirectoryNotEmpty= does not count.
_BACKUP = (".rpmnew", ".rpmsave", ".rpmorig", ".dpkg-old", ".dpkg-new", ".dpkg-tmp",
           ".dpkg-dist", ".dpkg-bak", ".dpkg-backup", ".dpkg-remove", ".ucf-new", ".ucf-old",
           ".ucf-dist", ".swp", ".bak", ".old", ".new", "~")
_IGNORED = ("lost+found", "aquota.user", "aquota.group")
_CAPS = ("CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
         "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
         "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
         "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
         "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
         "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
         "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE")

EVERY_CAPABILITY = frozenset(f"CAP_{n}" for n in _CAPS)
# [Service] settings that can take from the program what its work needs: kernel modules,
# /proc/sys, root, capabilities, system calls, the file system it sees.
SANDBOX = ("ProtectKernelModules", "ProtectKernelTunables", "CapabilityBoundingSet",
           "SystemCallFilter", "User", "DynamicUser", "PrivateUsers", "ReadOnlyPaths",
           "InaccessiblePaths", "RootDirectory", "RootImage", "TemporaryFileSystem",
           "BindPaths", "BindReadOnlyPaths", "ProcSubset", "ProtectProc")


class Command(Record):
    """One command of ExecStart=, as `systemctl show` lists it."""

    path: str
    argv: tuple[str, ...]
    ignore: bool  # "-": a failure does not fail the unit
    source: str  # file:line


class Condition(Record):
    kind: str  # "ConditionPathExists", "AssertCapability", ...
    trigger: bool
    negate: bool
    param: str
    source: str

    def __str__(self) -> str:
        return f"{self.kind}={'|' if self.trigger else ''}{'!' if self.negate else ''}" \
               f"{self.param}"


class Body(Record):
    """A unit's ExecStart= and conditions after every drop-in."""

    unit: str
    exec_start: tuple[Command, ...]
    conditions: tuple[Condition, ...]
    asserts: tuple[Condition, ...]
    reset: str = ""  # the last line that reset ExecStart=
    before: tuple[Command, ...] = ()  # ExecCondition=, then ExecStartPre=
    sandbox: tuple[tuple[str, str, str], ...] = ()  # (key, value, file:line) in effect
    unparsed: str = ""  # a line nftune does not read (quoting, escapes)


def _prefixes(word: str) -> tuple[str, str]:
    """config_parse_exec()'s prefix loop: each of "-", "@", ":", "+" once, "!" or "!!"
    once; what follows is the path."""
    seen = ""
    i = 0
    while i < len(word):
        c = word[i]
        if c == "!" and "!" not in seen:
            i += 2 if word[i:i + 2] == "!!" else 1
        elif c in "-@:+" and c not in seen:
            i += 1
        else:
            break
        seen += c
    return seen, word[i:]


def _commands(value: str, source: str) -> list[Command] | None:
    """The commands of one ExecStart= line; a line systemd ignores (an empty path, a
    relative path with a "/") gives none. None: quoting or escapes, which nftune does not
    read (the unit is then not evaluated)."""
    if set(value) & set("\"'"):
        return None
    out: list[Command] = []
    part: list[str] = []
    for w in [*value.split(), ";"]:
        if w != ";":
            part.append(w)
            continue
        if part:
            flags, path = _prefixes(part[0])
            if not path or ("/" in path and not path.startswith("/")):
                return out  # systemd: "ignoring" the rest of the line
            rest = part[1:]
            argv = (tuple(rest) if rest else (path,)) if "@" in flags else (path, *rest)
            out.append(Command(path, argv, "-" in flags, source))
        part = []
    return out


def body(root: Root, unit: UnitFile) -> Body:
    """The unit's ExecStart= and conditions from its fragment and drop-ins, in order."""
    execs: list[Command] = []
    conds: list[Condition] = []
    asserts: list[Condition] = []
    reset = unparsed = ""
    pre: dict[str, list[Command]] = {"ExecCondition": [], "ExecStartPre": []}
    sandbox: dict[str, tuple[str, str]] = {}
    for path in (unit.fragment, *unit.dropins):
        if path is None:
            continue
        try:
            text = root.read_text(path) or ""
        except NftuneError:  # the unit tree reports unreadable files
            continue
        for e in ini.parse(text, path, strict=False):
            src = str(e.origin)
            if e.section == "Service" and e.key in ("ExecStart", "ExecCondition",
                                                    "ExecStartPre"):
                cmds = execs if e.key == "ExecStart" else pre[e.key]
                if not e.value.strip():
                    cmds.clear()
                    reset = src if e.key == "ExecStart" else reset
                elif (got := _commands(e.value, src)) is None:
                    unparsed = unparsed or src
                else:
                    cmds += got
            elif e.section == "Service" and e.key in SANDBOX:
                sandbox.pop(e.key, None)
                if e.value.strip():
                    sandbox[e.key] = (e.value.strip(), src)
            elif e.section == "Unit" and e.key.startswith(("Condition", "Assert")):
                found = conds if e.key.startswith("Condition") else asserts
                value = e.value.strip()
                if not value:
                    found.clear()
                    continue
                trigger = value.startswith("|")
                value = value[1:].lstrip() if trigger else value
                negate = value.startswith("!")
                value = value[1:].lstrip() if negate else value
                found.append(Condition(e.key, trigger, negate, value, src))
    return Body(unit.name, tuple(execs), tuple(conds), tuple(asserts), reset,
                (*pre["ExecCondition"], *pre["ExecStartPre"]),
                tuple((k, v, src) for k, (v, src) in sandbox.items()), unparsed)


# -- conditions --------------------------------------------------------------------------------

class Facts(Record):
    """What the conditions that are not about the tree's files need; None: not known (an
    image, not the machine it will boot on)."""

    cmdline: str | None = None
    capabilities: frozenset[str] | None = None  # PID 1's bounding set, "CAP_…" names
    container: bool | None = None
    # The mounts /proc/sys is under, and whether each is read-write, as PID 1 sees them
    # (nftune's own service has /proc/sys read-only: its view is not systemd's); None: not
    # known.
    proc_sys: tuple[tuple[str, bool], ...] | None = None

    def writable(self, path: str) -> bool | None:
        """Whether `path` is on a read-write mount, by the longest mount point above it."""
        hits = [(p, rw) for p, rw in self.proc_sys or ()
                if p == "/" or path.rstrip("/") == p or path.startswith(p + "/")]
        return max(hits, key=lambda h: len(h[0]))[1] if hits else None

    @classmethod
    def of(cls, root: Root) -> Facts:
        """The running system's, when `root` is live; else nothing is known. In a container
        systemd's proc_cmdline() reads its PID 1's command line, not the kernel's."""
        if not root.live:
            return cls()
        container = root.exists("/run/systemd/container")
        try:
            if container:
                cmdline = (root.read_text("/proc/1/cmdline") or "").replace("\0", " ")
            else:
                cmdline = root.read_text("/proc/cmdline") or ""
            status = root.read_text("/proc/1/status") or ""
        except NftuneError:  # then these stay unknown
            return cls(container=container)
        try:
            mounts = mounts_of(root.read_text("/proc/1/mountinfo") or "")
        except NftuneError:
            mounts = None
        m = re.search(r"^CapBnd:\s*([0-9a-f]+)$", status, re.M)
        caps = None
        if m:
            bits = int(m.group(1), 16)
            caps = frozenset(f"CAP_{n}" for i, n in enumerate(_CAPS) if bits >> i & 1)
        return cls(cmdline.strip(), caps, container, mounts)


def mounts_of(text: str) -> tuple[tuple[str, bool], ...] | None:
    """PID 1's mounts at or above /proc/sys and below it, from /proc/1/mountinfo; a later
    mount on one point hides an earlier one."""
    found: dict[str, bool] = {}
    for line in text.splitlines():
        f = line.split(" ")
        if len(f) < 6:
            continue
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), f[4])
        if point in ("/", "/proc") or point == "/proc/sys" or point.startswith("/proc/sys/"):
            found.pop(point, None)
            found[point] = "ro" not in f[5].split(",")
    return tuple(found.items()) or None


def _dir_not_empty(root: Root, path: str, version: int) -> bool:
    """Before v250 an existing path that is no directory counts as not empty (ENOTDIR
    was not excluded: condition_test_directory_not_empty())."""
    if not root.is_dir(path):
        return version < 250 and root.exists(path)
    try:
        names = root.listdir(path)
    except OSError:
        return version < 250
    return any(not n.startswith(".") and not n.endswith(_BACKUP) and n not in _IGNORED
               for n in names)


def _cmdline(line: str, param: str) -> bool:
    """ConditionKernelCommandLine=: a word equal to it, or, without "=", a word that is
    it followed by "="."""
    return any(w == param or ("=" not in param and w.startswith(param + "=")) for w in line.split())


def evaluate(root: Root, c: Condition, facts: Facts, version: int = CURRENT) -> bool | None:
    """The condition's value on this tree (its negation applied), or None when nftune
    cannot evaluate it here."""
    kind = c.kind.removeprefix("Condition").removeprefix("Assert")
    p = c.param
    value: bool | None = None
    if kind.startswith("Path") or kind in ("DirectoryNotEmpty", "FileNotEmpty",
                                           "FileIsExecutable"):
        if not p.startswith("/") or "%" in p:  # specifiers are not expanded here
            return None
        try:
            real = root.chase(p)  # /var/run/x is /run/x
        except OSError:  # EACCES in nftune's own sandbox: what systemd sees is not known
            return None
        if real.startswith(("/run/", "/proc/", "/sys/", "/dev/", "/tmp/")) or real in (
                "/run", "/proc", "/sys", "/dev", "/tmp"):
            if kind == "PathIsReadWrite" and p.rstrip("/").startswith("/proc/sys"):
                value = facts.writable(p)
            elif root.live and kind != "PathIsReadWrite":
                value = _path_test(root, kind, p, version)
            if value is None:
                return None
        else:
            value = _path_test(root, kind, p, version)
            if value is None:
                return None
    elif kind == "KernelCommandLine":
        if facts.cmdline is None or '"' in facts.cmdline:  # quoted words: not read
            return None
        value = _cmdline(facts.cmdline, p)
    elif kind == "Capability":
        if facts.capabilities is None:
            return None
        value = p in facts.capabilities
    elif kind == "Virtualization" and p == "container" and facts.container is not None:
        value = facts.container  # vm, or a named hypervisor: not evaluated
    else:
        return None
    return value != c.negate


def _path_test(root: Root, kind: str, p: str, version: int) -> bool | None:
    try:
        return _test(root, kind, p, version)
    except OSError:  # EPERM, EACCES: what systemd would see is not known
        return None


def _test(root: Root, kind: str, p: str, version: int) -> bool | None:
    if kind == "PathExists":
        return root.exists(p)
    if kind == "PathIsDirectory":
        return root.is_dir(p)
    if kind == "PathIsSymbolicLink":
        return root.is_symlink(p)
    if kind == "DirectoryNotEmpty":
        return _dir_not_empty(root, p, version)
    st = root.stat(p) if root.exists(p) else None
    if kind == "FileNotEmpty":
        return st is not None and stat.S_ISREG(st.st_mode) and st.st_size > 0
    if kind == "FileIsExecutable":
        return st is not None and stat.S_ISREG(st.st_mode) and bool(st.st_mode & 0o111)
    return None


class Outcome(Record):
    """A condition list's result: True, False, or None (it turns on what nftune cannot
    evaluate), the line that decides a False, and what was not evaluated."""

    value: bool | None
    decides: Condition | None
    unknown: tuple[Condition, ...]


def holds(root: Root, conds: tuple[Condition, ...], facts: Facts,
          version: int = CURRENT) -> Outcome:
    """condition_test_list(): every non-trigger holds, and one trigger if any."""
    values = [(c, evaluate(root, c, facts, version)) for c in conds]
    unknown = tuple(c for c, v in values if v is None)
    plain = [(c, v) for c, v in values if not c.trigger]
    triggers = [(c, v) for c, v in values if c.trigger]
    if (bad := next((c for c, v in plain if v is False), None)) is not None:
        return Outcome(False, bad, unknown)
    if any(v is None for _, v in plain):
        return Outcome(None, None, unknown)
    if triggers and not any(v for _, v in triggers):
        if any(v is None for _, v in triggers):
            return Outcome(None, None, unknown)
        return Outcome(False, triggers[0][0], unknown)
    return Outcome(True, None, unknown)


# -- what the commands do ------------------------------------------------------------------------

def prefix_matches(key: str, prefixes: list[str]) -> bool:
    """systemd-sysctl --prefix=: whole path components of the normalized key."""
    parts = key.split("/")
    for p in prefixes:
        want = [x for x in p.split("/") if x]
        if want and parts[:len(want)] == want:
            return True
    return False


def prefix_of(arg: str) -> str:
    """--prefix=/net/ipv4 as systemd-sysctl keeps it; "/proc/sys/net" stays "proc/sys/net"
    (normalize() keeps the leading "proc", which no key has)."""
    return normalize(arg)
