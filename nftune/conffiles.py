"""systemd's drop-in directories: which file of a name wins, and in which order files apply."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .root import Root

COMMENTS = ("#", ";")
WHITESPACE = " \t\n\r"  # systemd's; str.strip() would also eat other control characters
_EOL = re.compile("\r\n|[\r\n\0]")


def split_lines(text: str) -> list[str]:
    """Lines as systemd's read_line() ends them: at \\n, \\r, \\r\\n or NUL."""
    lines = _EOL.split(text)
    return lines[:-1] if lines and lines[-1] == "" else lines


@dataclass(frozen=True)
class ConfFile:
    name: str
    path: str  # the in-tree path that wins for this name
    masked: bool  # a symlink to /dev/null (or an empty file): contributes nothing
    shadows: tuple[str, ...] = ()  # same-name files it hides, lower in precedence


def list_conf_files(root: Root, dirs: list[str], suffix: str) -> list[ConfFile]:
    """conf_files_list(): one file per name, the first directory wins; sorted by name."""
    found: dict[str, list[str]] = {}
    for d in dirs:
        host = root.host(d)
        if not host.is_dir():
            continue
        for entry in host.iterdir():
            name = entry.name
            if not name.endswith(suffix) or name.startswith("."):
                continue
            path = f"{d}/{name}"
            if not (root.is_masked(path) or root.host(root.chase(path)).is_file()):
                continue
            found.setdefault(name, []).append(path)
    out = []
    for name in sorted(found):
        winner, *rest = found[name]
        masked = root.is_masked(winner) or root.host(root.chase(winner)).stat().st_size == 0
        out.append(ConfFile(name, winner, masked, tuple(rest)))
    return out


def winner_for(root: Root, dirs: list[str], name: str) -> ConfFile | None:
    """The file systemd reads for one name, if any."""
    suffix = name[name.rfind("."):]
    return next((f for f in list_conf_files(root, dirs, suffix) if f.name == name), None)


def read_lines(text: str) -> Iterator[tuple[int, str]]:
    """Stripped, non-empty, non-comment lines with their 1-based numbers."""
    for n, line in enumerate(split_lines(text), 1):
        s = line.strip(WHITESPACE)
        if s and not s.startswith(COMMENTS):
            yield n, s
