"""systemd's drop-in directories: which file of a name wins, and in which order files apply."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator

from .errors import EXIT_FAILED, NftuneError
from .record import Record
from .root import FILE, LINK, Root, kind_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

COMMENTS = ("#", ";")
WHITESPACE = " \t\n\r"  # systemd's; str.strip() would also eat other control characters
_EOL = re.compile("\r\n|[\r\n\0]")


def split_lines(text: str) -> list[str]:
    """Lines as systemd's read_line() ends them: at \\n, \\r, \\r\\n or NUL."""
    lines = _EOL.split(text)
    return lines[:-1] if lines and lines[-1] == "" else lines


class ConfFile(Record):
    """The file that wins for one name across the directories of a .d/ search path."""

    name: str
    path: str  # the in-tree path that wins for this name
    masked: bool  # a symlink to /dev/null (or an empty file): contributes nothing
    problem: str | None = None  # why this entry cannot be read (a FIFO, a symlink loop)

    @property
    def readable(self) -> bool:
        return not self.masked and self.problem is None


def list_conf_files(root: Root, dirs: list[str], suffix: str) -> list[ConfFile]:
    """conf_files_list(): one file per name, the first directory wins; sorted by name.
    Entries that are not regular files (a FIFO, a directory, a symlink loop) take no part
    in precedence, as systemd skips them, and are listed with their problem."""
    found: dict[str, tuple[str, bool]] = {}
    problems: list[ConfFile] = []
    for d in dirs:
        for name, kind in sorted(root.listdir(d).items()):
            if not name.endswith(suffix) or name.startswith("."):
                continue
            path = f"{d}/{name}"
            if kind == LINK and root.is_masked(path):
                found.setdefault(name, (path, True))
                continue
            try:
                st = root.stat(path) if kind in (LINK, FILE) else root.lstat(path)
            except OSError as e:
                problems.append(ConfFile(name, path, False, f"cannot read: {e.strerror}"))
                continue
            if st is None:
                if kind == LINK and root.is_loop(path):
                    problems.append(ConfFile(name, path, False, "a symlink loop"))
                continue  # dangling, or gone meanwhile
            if not stat.S_ISREG(st.st_mode):
                problems.append(ConfFile(name, path, False,
                                         f"{kind_of(st.st_mode)}, not a regular file"))
                continue
            found.setdefault(name, (path, st.st_size == 0))
    out = [ConfFile(name, *found[name]) for name in sorted(found)]
    return sorted(out + problems, key=lambda f: f.name)


def winner_for(root: Root, dirs: list[str], name: str) -> ConfFile | None:
    """The file systemd reads for one name, if any (or the entry that cannot be read)."""
    suffix = name[name.rfind("."):]
    files = [f for f in list_conf_files(root, dirs, suffix) if f.name == name]
    return next((f for f in files if f.problem is None), files[0] if files else None)


def _content(lines: Iterator[str]) -> Iterator[tuple[int, str]]:
    for n, line in enumerate(lines, 1):
        s = line.strip(WHITESPACE)
        if s and not s.startswith(COMMENTS):
            yield n, s


def read_lines(text: str) -> Iterator[tuple[int, str]]:
    """Stripped, non-empty, non-comment lines with their 1-based numbers."""
    return _content(iter(split_lines(text)))


LONG_LINE_MAX = 1 << 20  # systemd's read_line() limit: a longer line ends the file


def stream_lines(f: BinaryIO, path: str) -> Iterator[tuple[int, str]]:
    """read_lines() over an open file, in bounded memory: a 50 MB sysctl.d file costs one
    chunk and one line at a time. A line longer than LONG_LINE_MAX ends the file, as in
    systemd (what came before it still applies): NftuneError."""
    return _content(_raw_lines(f, path))


_EOL_B = re.compile(rb"\r\n|[\r\n\0]")


def _raw_lines(f: BinaryIO, path: str) -> Iterator[str]:
    tail = b""
    while True:
        chunk = f.read(1 << 16)
        if not chunk:
            if tail:
                yield tail.decode("utf-8", "replace")
            return
        buf = tail + chunk
        hold = buf.endswith(b"\r")  # a "\r\n" may straddle two chunks
        parts = _EOL_B.split(buf[:-1] if hold else buf)
        tail = parts.pop() + (b"\r" if hold else b"")
        for p in parts:
            yield p.decode("utf-8", "replace")
        if len(tail) > LONG_LINE_MAX:
            raise NftuneError(f"a line is longer than {LONG_LINE_MAX} bytes: systemd stops "
                              "reading the file there", path=path, exit_code=EXIT_FAILED)
