"""modprobe.d as kmod reads it: which `options` a module gets when it loads, and which
file (or the kernel command line) has the last word on one parameter.

kmod's rules, kept by a differential test against `modprobe -c` (tests/test_modprobediff.py):
- *.conf files of /etc, /run, /usr/local/lib, /usr/lib and /lib/modprobe.d, sorted by
  name across the directories; of two files with one name, the earlier directory's wins
  (a /dev/null link or an empty file so hides the other); dot-files are skipped.
  Older kmod differs, as measured on Debian's: before 32, no /usr/lib/modprobe.d (it
  matters where /lib is not /usr/lib); before 29, no /usr/local/lib/modprobe.d; before
  33, *.alias files too; before 30, `a.b.c=1` on the command line is b.c for a.
- a backslash keeps the next character (one before a newline continues the line); a NUL
  ends a line; a line whose first character is '#' is a comment.
- `options MODULE PARAMS` adds PARAMS (the rest of the line, tabs made spaces) for MODULE
  ('-' and '_' are one outside brackets).
- every `options` entry of a module applies, in file order, then `MODULE.PARAM=VALUE` of
  the kernel command line: the kernel parses the concatenation left to right, so the last
  assignment of a parameter wins.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator

from .conffiles import ConfFile
from .errors import NftuneError
from .record import Record
from .root import LINK, Root, kind_of

CMDLINE = "/proc/cmdline"  # in-tree; "file" of the entries that come from it


class Command(Record):
    """One modprobe.d line of a kind kmod keeps besides `options`: blacklist, alias,
    install, remove or softdep (modprobe.blacklist= of the kernel command line is a
    blacklist whose line is 0)."""

    kind: str
    module: str  # '-' made '_'; for alias, the pattern looked up
    value: str  # the alias's module, the command, the softdep's text; "" for blacklist
    file: str
    line: int

    @property
    def source(self) -> str:
        return f"{self.file}:{self.line}" if self.line else "the kernel command line"


class Options(Record):
    """One `options` entry: a line of modprobe.d, or the kernel command line."""

    module: str  # '-' made '_'
    params: str  # as modprobe -c prints it
    file: str  # in-tree path, or CMDLINE
    line: int  # 0 for the kernel command line

    @property
    def source(self) -> str:
        return f"{self.file}:{self.line}" if self.line else "the kernel command line"


def underscores(name: str) -> str | None:
    """kmod's underscores(): '-' becomes '_' outside [...]; None for an unmatched bracket."""
    out = []
    depth = False
    for c in name:
        if c == "[":
            if depth:
                return None
            depth = True
        elif c == "]":
            if not depth:
                return None
            depth = False
        out.append("_" if c == "-" and not depth else c)
    return None if depth else "".join(out)


def _logical_lines(text: str, eof_byte: bool) -> Iterator[tuple[int, str]]:
    """kmod's freadline_wrapped(): a backslash keeps the next character as it is (a
    newline so continues the line; the backslash itself is dropped); a NUL ends the line's
    text. The number is the line's first physical line."""
    buf: list[str] = []
    n = start = 1
    i = 0
    while i < len(text):
        c = text[i]
        i += 1
        if c == "\\":
            if i == len(text):
                if eof_byte:
                    buf.append("\udcff")  # getc()'s EOF, stored as the byte 0xff
                break
            c = text[i]
            i += 1
            if c == "\n":
                n += 1
                continue
        elif c == "\n":
            yield start, "".join(buf).split("\0", 1)[0]
            buf = []
            n += 1
            start = n
            continue
        buf.append(c)
    if buf:
        yield start, "".join(buf).split("\0", 1)[0]


# kmod_config_parse(): the command, then strtok_r() on tabs and spaces; `install`,
# `remove`, `softdep` and `options` take the rest of the line after one separator.
_REST = re.compile(r"[\t ]*(options|install|remove|softdep)[\t ]+([^\t ]+)[\t ](.*)\Z", re.S)
_WORD = re.compile(r"[\t ]*(blacklist|alias)[\t ]+([^\t ]+)(?:[\t ]+([^\t ]+))?", re.S)


def parse_all(text: str, file: str, *,
              eof_byte: bool = False) -> tuple[list[Options], list[Command]]:
    """The `options` entries and the other commands of one modprobe.d file, in order.
    `eof_byte`: a backslash at the end of the file stores getc()'s EOF as a byte (kmod
    before 34). A line kmod finds a syntax error in is ignored, as kmod ignores it."""
    options: list[Options] = []
    commands: list[Command] = []
    for n, line in _logical_lines(text, eof_byte):
        if not line or line[0] == "#":
            continue
        if m := _REST.match(line):
            kind, module, rest = m.group(1), underscores(m.group(2)), m.group(3)
            if module is None or not rest:
                continue
            if kind == "options":
                options.append(Options(module, rest.replace("\t", " "), file, n))
            else:
                commands.append(Command(kind, module, rest, file, n))
        elif m := _WORD.match(line):
            kind, first, second = m.group(1), underscores(m.group(2)), m.group(3)
            if first is None:
                continue
            if kind == "blacklist":
                commands.append(Command(kind, first, "", file, n))
            elif second is not None and (target := underscores(second)) is not None:
                commands.append(Command(kind, first, target, file, n))
    return options, commands


def parse(text: str, file: str, *, eof_byte: bool = False) -> list[Options]:
    """The `options` entries of one modprobe.d file, in order."""
    return parse_all(text, file, eof_byte=eof_byte)[0]


def cmdline_blacklist(text: str) -> list[Command]:
    """kmod's modprobe.blacklist=a,b on the kernel command line (kmod takes the names as
    written: '-' is not made '_' here)."""
    out = []
    for word in text.split():
        if word.startswith("modprobe.blacklist="):
            out += [Command("blacklist", name, "", CMDLINE, 0)
                    for name in word.partition("=")[2].split(",") if name]
    return out


def parse_cmdline(text: str, *, dotted: bool = False) -> list[Options]:
    """`module.param[=value]` words of the kernel command line, as kmod takes them: the
    module is what comes before the first '.', and a second '.' before any '=' makes the
    word no option at all (`dotted`: before kmod 30 it is part of the parameter). Quoted
    words (values with spaces) are not modelled: nftune's parameter takes a number."""
    out = []
    for word in text.split():
        if '"' in word or word.startswith("modprobe.blacklist="):
            continue
        head, _, _ = word.partition("=")
        module, dot, param = head.partition(".")
        if not dot or ("." in param and not dotted):
            continue
        if (name := underscores(module)) is not None:
            out.append(Options(name, word[len(module) + 1:], CMDLINE, 0))
    return out


def _words(params: str) -> Iterator[str]:
    """The kernel's next_arg(): words split at white space outside double quotes."""
    word: list[str] = []
    quoted = False
    for c in params:
        if c == '"':
            quoted = not quoted
        elif c.isspace() and not quoted:
            if word:
                yield "".join(word)
            word = []
            continue
        word.append(c)
    if word:
        yield "".join(word)


def last_assignment(params: str, name: str) -> str | None:
    """The value the kernel keeps for `name` in one options string (the last one)."""
    value = None
    for word in _words(params):
        key, eq, v = word.partition("=")
        if eq and key.replace("-", "_") == name.replace("-", "_"):
            value = v
    return value


CURRENT = 34  # the rules of kmod 34, where the tree does not say which kmod it has


def list_files(root: Root, dirs: list[str], suffixes: tuple[str, ...],
               version: int = CURRENT) -> list[ConfFile]:
    """kmod's conf_files_list(): one entry per name, the first directory's; sorted by name.
    A directory is passed over. An entry that cannot be stat()ed (a dangling symlink, a
    loop) is passed over by kmod 34; before, kmod used the stat of the entry it looked at
    last (in readdir order): after a directory it is passed over, else it takes its name
    and hides the same name in later directories, reading nothing. A FIFO or a device
    would be read, and block kmod: it is listed with its problem."""
    found: dict[str, ConfFile] = {}
    last_dir = False  # what kmod < 34's stale struct stat says
    for d in dirs:
        for name, kind in root.listdir(d).items():  # readdir order, as kmod sees it
            if name.startswith(".") or not name.endswith(suffixes):
                continue
            path = f"{d}/{name}"
            if kind == LINK and root.is_masked(path):  # kmod reads /dev/null: nothing
                last_dir = False
                found.setdefault(name, ConfFile(name, path, True))
                continue
            problem: str | None = None
            try:
                st = root.stat(path)
            except OSError as e:
                st, problem = None, f"cannot read: {e.strerror}"
            if st is None:
                if version >= 34 or last_dir or name in found:
                    continue
                found[name] = ConfFile(name, path, True, problem)
                continue
            last_dir = stat.S_ISDIR(st.st_mode)
            if last_dir or name in found:
                continue
            if not stat.S_ISREG(st.st_mode):
                found[name] = ConfFile(name, path, False,
                                       f"{kind_of(st.st_mode)}, not a regular file")
            else:
                found[name] = ConfFile(name, path, st.st_size == 0)
    return [found[n] for n in sorted(found)]


def kmod_version(root: Root) -> int | None:
    """kmod's major version from the tree's dpkg database; None when unknown (then the
    current rules apply: every directory, .conf files only)."""
    try:
        status = root.read_bytes("/var/lib/dpkg/status") or b""
    except NftuneError:
        return None
    # The stanza's own lines only: one search from its start, never a scan per match.
    if status.startswith(b"Package: kmod\n"):
        at = 0
    elif (at := status.find(b"\nPackage: kmod\n") + 1) == 0:
        return None
    end = status.find(b"\n\n", at)
    stanza = status[at:end if end >= 0 else len(status)]
    m = re.search(rb"^Version: (?:[0-9]+:)?([0-9]+)", stanza, re.M)
    return int(m.group(1)) if m else None


class ModprobeD(Record):
    """All of modprobe.d as the next load of a module reads it."""

    files: tuple[ConfFile, ...]
    options: tuple[Options, ...]  # every entry, files in order, then the command line
    unreadable: tuple[tuple[str, str], ...] = ()
    commands: tuple[Command, ...] = ()  # files in order, then the command line's blacklist
    version: int = CURRENT
    cmdline: str = ""  # the running kernel's command line, when it was read

    @classmethod
    def load(cls, root: Root, *, cmdline: bool) -> ModprobeD:
        """`cmdline`: read /proc/cmdline too (the running system's)."""
        version = kmod_version(root) or CURRENT
        dirs = root.conf_dirs("modprobe.d")
        skip = set()
        if version < 32 and "/lib/modprobe.d" in dirs:
            skip.add("/usr/lib/modprobe.d")  # split /usr: kmod < 32 reads /lib only
        if version < 29:
            skip.add("/usr/local/lib/modprobe.d")
        dirs = [d for d in dirs if d not in skip]
        suffixes = (".conf", ".alias") if version < 33 else (".conf",)
        files = tuple(list_files(root, dirs, suffixes, version))
        unreadable = [(f.path, f.problem or "") for f in files if f.problem]
        options: list[Options] = []
        commands: list[Command] = []
        line = ""
        if cmdline:
            try:
                line = root.read_text(CMDLINE) or ""
            except NftuneError as e:
                unreadable.append((CMDLINE, e.message))
        for f in files:
            if not f.readable:
                continue
            try:
                raw = root.read_bytes(f.path)
            except NftuneError as e:
                unreadable.append((f.path, e.message))
                continue
            o, c = parse_all((raw or b"").decode("utf-8", "surrogateescape"), f.path,
                             eof_byte=version < 34)
            options += o
            commands += c
        if cmdline:
            commands += cmdline_blacklist(line)
            options += parse_cmdline(line, dotted=version < 30)
        return cls(files, tuple(options), tuple(unreadable), tuple(commands), version, line)

    def winner(self, module: str, param: str) -> tuple[Options, str] | None:
        """The entry whose assignment of `param` the kernel keeps, and its value."""
        found = None
        for o in self.options:
            if o.module == module and (v := last_assignment(o.params, param)) is not None:
                found = (o, v)
        return found
