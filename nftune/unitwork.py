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

import os
import re
import stat
from contextlib import suppress

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
_CAPS = ("CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
         "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
         "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
         "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
         "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
         "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
         "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE")

EVERY_CAPABILITY = frozenset(f"CAP_{n}" for n in _CAPS)


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


def _split(value: str) -> list[str]:
    """extract_first_word() with quotes and backslashes, enough for command lines."""
    out: list[str] = []
    word: list[str] | None = None
    quote = ""
    i = 0
    while i < len(value):
        c = value[i]
        i += 1
        if quote:
            if c == quote:
                quote = ""
            elif c == "\\" and i < len(value):
                word = (word or []) + [value[i]]
                i += 1
            else:
                word = (word or []) + [c]
        elif c in " \t\n":
            if word is not None:
                out.append("".join(word))
            word = None
        elif c in "\"'":
            quote = c
            word = word or []
        elif c == "\\" and i < len(value):
            word = (word or []) + [value[i]]
            i += 1
        else:
            word = (word or []) + [c]
    if word is not None:
        out.append("".join(word))
    return out


def _commands(value: str, source: str) -> list[Command]:
    out = []
    words = _split(value)
    while words:
        if ";" in words:
            at = words.index(";")
            part, words = words[:at], words[at + 1:]
        else:
            part, words = words, []
        if not part:
            continue
        head = part[0]
        flags = head[:len(head) - len(head.lstrip(PREFIXES))]
        first = head[len(flags):]
        rest = part[1:]
        if not first:
            if not rest:
                continue
            first, rest = rest[0], rest[1:]
        argv = (tuple(rest) if rest else (first,)) if "@" in flags else (first, *rest)
        out.append(Command(first, argv, "-" in flags, source))
    return out


def body(root: Root, unit: UnitFile) -> Body:
    """The unit's ExecStart= and conditions from its fragment and drop-ins, in order."""
    execs: list[Command] = []
    conds: list[Condition] = []
    asserts: list[Condition] = []
    reset = ""
    for path in (unit.fragment, *unit.dropins):
        if path is None:
            continue
        try:
            text = root.read_text(path) or ""
        except NftuneError:  # the unit tree reports unreadable files
            continue
        for e in ini.parse(text, path, strict=False):
            src = str(e.origin)
            if e.section == "Service" and e.key == "ExecStart":
                if not e.value.strip():
                    execs, reset = [], src
                else:
                    execs += _commands(e.value, src)
            elif e.section == "Unit" and e.key.startswith(("Condition", "Assert")):
                into = conds if e.key.startswith("Condition") else asserts
                value = e.value.strip()
                if not value:
                    into.clear()
                    continue
                trigger = value.startswith("|")
                value = value[1:].lstrip() if trigger else value
                negate = value.startswith("!")
                value = value[1:].lstrip() if negate else value
                into.append(Condition(e.key, trigger, negate, value, src))
    return Body(unit.name, tuple(execs), tuple(conds), tuple(asserts), reset)


# -- conditions --------------------------------------------------------------------------------

class Facts(Record):
    """What the conditions that are not about the tree's files need; None: not known (an
    image, not the machine it will boot on)."""

    cmdline: str | None = None
    capabilities: frozenset[str] | None = None  # PID 1's bounding set, "CAP_…" names
    container: bool | None = None
    # Whether paths under /proc/sys are writable, longest prefix first wins; None: ask the
    # running system (fstatvfs), or not known.
    proc_sys: tuple[tuple[str, bool], ...] | None = None

    def writable(self, root: Root, path: str) -> bool | None:
        if self.proc_sys is not None:
            hits = [(p, rw) for p, rw in self.proc_sys
                    if path.rstrip("/") == p or path.startswith(p + "/")]
            return max(hits)[1] if hits else None
        if not root.live:
            return None
        with suppress(OSError):
            fd = root.open(path, os.O_PATH)
            try:
                return not os.fstatvfs(fd).f_flag & os.ST_RDONLY
            finally:
                os.close(fd)
        return None

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
        m = re.search(r"^CapBnd:\s*([0-9a-f]+)$", status, re.M)
        caps = None
        if m:
            bits = int(m.group(1), 16)
            caps = frozenset(f"CAP_{n}" for i, n in enumerate(_CAPS) if bits >> i & 1)
        return cls(cmdline.strip(), caps, container)


def _dir_not_empty(root: Root, path: str, version: int) -> bool:
    """Before v250 an existing path that is no directory counts as not empty (ENOTDIR
    was not excluded: condition_test_directory_not_empty())."""
    if not root.is_dir(path):
        return version < 250 and root.exists(path)
    try:
        names = root.listdir(path)
    except OSError:
        return version < 250
    return any(not n.startswith(".") and not n.endswith(_BACKUP) for n in names)


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
        if not p.startswith("/"):
            return None
        if p.startswith(("/run/", "/proc/", "/sys/", "/dev/", "/tmp/")) or p in (
                "/run", "/proc", "/sys", "/dev", "/tmp"):
            if kind == "PathIsReadWrite" and p.rstrip("/").startswith("/proc/sys"):
                value = facts.writable(root, p)
            elif root.live and kind != "PathIsReadWrite":
                value = _path_test(root, kind, p, version)
            if value is None:
                return None
        else:
            value = _path_test(root, kind, p, version)
            if value is None:
                return None
    elif kind == "KernelCommandLine":
        if facts.cmdline is None:
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
