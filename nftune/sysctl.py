"""sysctl keys and sysctl.d files, with systemd-sysctl's own semantics.

A key is kept in canonical form: the path below /proc/sys with "/" separators
("net/netfilter/nf_conntrack_tcp_be_liberal"), exactly what systemd's sysctl_normalize()
produces, so keys from any file compare equal however they were written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from fnmatch import fnmatchcase

from .conffiles import WHITESPACE, ConfFile, list_conf_files, read_lines, stream_lines
from .errors import NftuneError
from .record import Record
from .root import Root
from .text import cut

# The kernel's keys nftune names itself, as /proc/sys paths: each spelled once.
BOOT_ID = "kernel/random/boot_id"
BE_LIBERAL = "net/netfilter/nf_conntrack_tcp_be_liberal"
CONNTRACK_MAX = "net/netfilter/nf_conntrack_max"
CONNTRACK_BUCKETS = "net/netfilter/nf_conntrack_buckets"

GLOB_CHARS = frozenset("*?[")
# One path component of a key nftune accepts: interface names may hold dots, never a
# leading "-" (systemd's ignore-failure prefix) and never glob or control characters.
COMPONENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@+-]*")
MAX_VALUE = 4096


def normalize(key: str) -> str:
    """systemd's sysctl_normalize(): if the first separator is ".", dots and slashes swap;
    then the path is simplified and a leading slash dropped."""
    key = key.strip(WHITESPACE)
    m = re.search(r"[./]", key)
    if m and m.group() == ".":
        head, tail = key[: m.start()], key[m.start():]
        key = head + tail.translate(str.maketrans("./", "/."))
    parts = [p for p in key.split("/") if p and p != "."]
    return "/".join(parts)


def display(key: str) -> str:
    """The familiar dotted spelling where it is unambiguous, else the slash form."""
    parts = key.split("/")
    return ".".join(parts) if not any("." in p for p in parts) else key


def validate_key(raw: str) -> str:
    """The canonical key for a key nftune is asked to manage; ValueError says why not."""
    if not raw or any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise ValueError("a sysctl key must be non-empty and free of control characters")
    if any(c.isspace() for c in raw):
        raise ValueError("a sysctl key cannot contain white space")
    if GLOB_CHARS & set(raw):
        raise ValueError("glob keys are not managed by nftune; name each key")
    if raw.startswith("-"):
        raise ValueError("the '-' (ignore failure) prefix would hide the very failure "
                         "nftune exists to prevent")
    if "=" in raw:
        raise ValueError("a sysctl key cannot contain '='")
    key = raw.lstrip("/")
    if key.startswith("proc/sys/"):
        key = key[len("proc/sys/"):]
    sep = re.search(r"[./]", key)
    if sep and any(p in ("", ".", "..") for p in key.split(sep.group())):
        raise ValueError("empty, '.' or '..' path component")
    key = normalize(key)
    parts = key.split("/")
    if len(parts) < 2:
        raise ValueError("a sysctl key names a file below /proc/sys, like net.core.somaxconn")
    for p in parts:
        if p == ".." or not COMPONENT.fullmatch(p):
            raise ValueError(f"invalid path component {cut(p)!r}")
    # Round trip: what we render must normalize back to the same key.
    if normalize(display(key)) != key:
        raise ValueError("this key cannot be written unambiguously")
    return key


def validate_value(raw: str) -> str:
    value = raw.strip(WHITESPACE)
    if not value.replace(" ", "").isprintable():  # C0, C1, DEL, separators, bidi controls
        raise ValueError("a sysctl value cannot contain control characters")
    if value.endswith("\\"):
        raise ValueError("a sysctl value cannot end with a backslash (line continuation)")
    if len(value) > MAX_VALUE:
        raise ValueError(f"a sysctl value is at most {MAX_VALUE} characters")
    return value


def same_value(a: str, b: str) -> bool:
    """Compare the way the kernel prints: vectors are tab-separated on read, any white
    space on write."""
    return a.split() == b.split()  # kernel parsers skip any white space between fields


def is_glob(key: str) -> bool:
    return "*" in key or "?" in key or "[" in key  # GLOB_CHARS, without building a set


def glob_matches(pattern: str, key: str) -> bool:
    """glob(3) over /proc/sys: a wildcard never crosses a '/'."""
    pp, kp = pattern.split("/"), key.split("/")
    return len(pp) == len(kp) and all(fnmatchcase(k, p) for p, k in zip(pp, kp, strict=True))


class Assignment(Record):
    """One line of a sysctl.d file."""

    key: str  # canonical; may be a glob
    value: str | None  # None: a "-key" line with no "=", which only shields from globs
    file: str  # in-tree path of the file as listed (not its symlink target)
    line: int
    ignore_failure: bool = False

    @property
    def source(self) -> str:
        return f"{self.file}:{self.line}"


def parse(text: str, file: str) -> list[Assignment]:
    """One sysctl.d file, as systemd-sysctl's parse_line() reads it."""
    return list(parse_lines(read_lines(text), file))


def parse_lines(lines: Iterable[tuple[int, str]], file: str) -> Iterator[Assignment]:
    for lineno, line in lines:
        if "=" in line:
            ignore = line.startswith("-")
            k, v = line[1 if ignore else 0:].split("=", 1)
            yield Assignment(normalize(k), v.strip(WHITESPACE), file, lineno, ignore)
        elif line.startswith("-"):
            yield Assignment(normalize(line[1:]), None, file, lineno, True)
        # Anything else is "not an assignment" and ignored by systemd too.


class Effective(Record):
    """Who decides a key's boot value, and every other line that touches it."""

    key: str
    winner: Assignment | None  # None: nothing sets the key
    losers: tuple[Assignment, ...]


def effective(assignments: Iterable[Assignment], key: str) -> Effective:
    """The assignment systemd-sysctl applies to `key`: the last explicit one in file order,
    else the last-inserted glob that matches (explicit keys always beat globs)."""
    explicit: list[Assignment] = []
    globs: list[Assignment] = []
    for a in assignments:
        if a.key == key:
            explicit.append(a)
        elif is_glob(a.key) and glob_matches(a.key, key):
            globs.append(a)
    if explicit:
        winner = _last_distinct(explicit)
        if winner.value is None:
            return Effective(key, None, tuple(explicit + globs))
        return Effective(key, winner, tuple(a for a in explicit + globs if a is not winner))
    # Each glob pattern is one entry; entries are written in insertion order, so the
    # pattern inserted last wins. A value-less glob only excludes, it never writes.
    by_pattern: dict[str, list[tuple[int, Assignment]]] = {}
    for i, a in enumerate(globs):
        by_pattern.setdefault(a.key, []).append((i, a))
    placed = [_last_distinct_indexed(entries) for entries in by_pattern.values()]
    writers = [(i, a) for i, a in placed if a.value is not None]
    if writers:
        winner = max(writers, key=lambda ia: ia[0])[1]
        return Effective(key, winner, tuple(a for a in globs if a is not winner))
    return Effective(key, None, tuple(globs))


def _last_distinct_indexed(entries: list[tuple[int, Assignment]]) -> tuple[int, Assignment]:
    # A repeat of the same value does not move an entry (systemd keeps the first one).
    winner = entries[0]
    for e in entries[1:]:
        if e[1].value != winner[1].value:
            winner = e
    return winner


def _last_distinct(assignments: list[Assignment]) -> Assignment:
    return _last_distinct_indexed(list(enumerate(assignments)))[1]


MAX_NODE_KEYS = 100_000  # the node-wide view's distinct keys; past it, not evaluated
MAX_NODE_GLOBS = 1_000
MAX_NODE_BYTES = 16 << 20  # of the keys and values it holds


def safe_key(key: str) -> bool:
    """A key that names a file under /proc/sys and nothing else: no `..`, no component
    systemd-sysctl would refuse (path_is_normalized()), so a read of it stays there."""
    return all(p != ".." and COMPONENT.fullmatch(p) for p in key.split("/"))


class NodeLines:
    """Every key's effective line, gathered while the files are read (once, for every
    check): systemd keeps the first of equal values (a later '-' on it counts), and a
    different one replaces it and moves to the end (the order globs are written in)."""

    def __init__(self) -> None:
        self.keys: dict[str, Assignment] = {}
        self.globs: dict[str, Assignment] = {}
        self.cut = False  # more distinct keys, globs or bytes than the bounds
        self._bytes = 0

    def add(self, a: Assignment) -> None:
        into, bound = (self.globs, MAX_NODE_GLOBS) if is_glob(a.key) else \
            (self.keys, MAX_NODE_KEYS)
        have = into.get(a.key)
        if have is not None and have.value == a.value:
            if a.ignore_failure and not have.ignore_failure:  # systemd ORs the '-' in
                into[a.key] = have._replace(ignore_failure=True)
            return
        size = len(a.key) + len(a.value or "")
        held = self._bytes - (0 if have is None else len(have.key) + len(have.value or ""))
        if (have is None and len(into) >= bound) or held + size > MAX_NODE_BYTES:
            self.cut = True
            return
        if have is not None:
            del into[a.key]
        into[a.key] = a
        self._bytes = held + size

    def effective(self, key: str) -> Assignment | None:
        """The line systemd-sysctl writes to `key` (as sysctl.effective()): its own line,
        else the last glob placed that matches and writes."""
        if key in self.keys:
            return self.keys[key]
        found = None
        for pattern, a in self.globs.items():
            if a.value is not None and glob_matches(pattern, key):
                found = a
        return found


class SysctlD(Record):
    """All of sysctl.d as the next boot will read it (the lines that touch the keys asked
    about: a 50 MB file costs no more memory than a small one), and, when asked, every
    key's effective line for the node-wide checks (bounded by MAX_NODE_KEYS)."""

    files: tuple[ConfFile, ...]
    assignments: tuple[Assignment, ...]
    # /etc/sysctl.conf when no sysctl.d link reads it: `sysctl --system` applies it last.
    procps_only: tuple[Assignment, ...]
    unreadable: tuple[tuple[str, str], ...] = ()  # (in-tree path, why): systemd skips it
    node: NodeLines | None = None

    @classmethod
    def load(cls, root: Root, keys: Iterable[str] | None = None,
             node: bool = False) -> SysctlD:
        """`keys`: canonical keys to keep lines for (None: every line); `node`: gather
        every key's effective line too."""
        wanted = None if keys is None else frozenset(keys)
        files = tuple(list_conf_files(root, root.conf_dirs("sysctl.d"), ".conf"))
        unreadable = [(f.path, f.problem) for f in files if f.problem]
        assignments: list[Assignment] = []
        lines = NodeLines() if node else None
        for f in files:
            if f.readable and (why := _read(root, f.path, wanted, assignments, lines)):
                unreadable.append((f.path, why))
        procps: list[Assignment] = []
        conf = root.chase("/etc/sysctl.conf")
        if (root.is_file(conf) and not any(root.chase(f.path) == conf for f in files)
                and (why := _read(root, "/etc/sysctl.conf", wanted, procps))):
            unreadable.append(("/etc/sysctl.conf", why))
        return cls(files, tuple(assignments), tuple(procps), tuple(unreadable), lines)

    def effective(self, key: str) -> Effective:
        return effective(self.assignments, key)

    def effective_procps(self, key: str) -> Effective:
        return effective([*self.assignments, *self.procps_only], key)


def _read(root: Root, path: str, wanted: frozenset[str] | None,
          into: list[Assignment], lines: NodeLines | None = None) -> str | None:
    """Append the file's assignments to the keys in `wanted` (and every one to `lines`);
    why it could not be read (to the end), or None."""
    try:
        with root.reader(path) as f:
            if f is None:
                return None
            for a in parse_lines(stream_lines(f, root.show(path)), path):
                if lines is not None:
                    lines.add(a)
                if wanted is None or a.key in wanted or (
                        is_glob(a.key) and any(glob_matches(a.key, k) for k in wanted)):
                    into.append(a)
    except NftuneError as e:
        return e.message
    return None
