"""A systemd-style INI reader: [Section], Key=Value, # and ; comments, trailing-backslash
continuation. Every assignment keeps its file and line for error messages."""

from __future__ import annotations

from .conffiles import LONG_LINE_MAX, WHITESPACE, split_lines
from .errors import NftuneError
from .record import Record
from .text import cut


class Origin(Record):
    """Where a value came from: file and line (0: a built-in default)."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


class Entry(Record):
    """One key = value line of an INI file, with its section and origin."""

    section: str
    key: str
    value: str
    origin: Origin


def parse(text: str, file: str, *, strict: bool = True) -> list[Entry]:
    """Entries in file order. Strict (nftune's own config): a malformed line is an error.
    Lenient (unit files): it is skipped, as systemd logs and ignores it."""
    entries: list[Entry] = []
    section: str | None = None
    lines = split_lines(text)
    i = 0
    while i < len(lines):
        start = i + 1
        line = lines[i].strip(WHITESPACE)
        i += 1
        if not line or line.startswith(("#", ";")):
            continue
        if line.endswith("\\") and i < len(lines):  # continuation, as in unit files
            parts, size = [line[:-1]], len(line)
            while i < len(lines) and size <= LONG_LINE_MAX:
                more = lines[i].strip(WHITESPACE)
                i += 1
                parts.append(more[:-1] if more.endswith("\\") else more)
                size += len(more) + 1
                if not more.endswith("\\"):
                    break
            if size > LONG_LINE_MAX:  # systemd's read_line() gives up: the file ends here
                if strict:
                    raise NftuneError("line too long", path=file, line=start,
                                      hint=f"keep a continued line under {LONG_LINE_MAX} bytes")
                break
            line = " ".join(parts)
        problem: NftuneError | None = None
        if line.startswith("["):
            if line.endswith("]") and len(line) > 2:
                section = line[1:-1].strip(WHITESPACE)
                continue
            problem = NftuneError("malformed section header", path=file, line=start,
                                  hint="write it as [Section]")
        elif "=" not in line:
            problem = NftuneError(f"not an assignment: {cut(line)!r}", path=file, line=start,
                                  hint="write settings as Key=Value")
        else:
            key, value = (s.strip(WHITESPACE) for s in line.split("=", 1))
            if section is None:
                problem = NftuneError("assignment outside of any section", path=file,
                                      line=start, key=key, value=value,
                                      hint="put it under a [Section] header")
            elif not key:
                problem = NftuneError("empty key", path=file, line=start, value=value,
                                      hint="write settings as Key=Value")
            else:
                entries.append(Entry(section, key, value, Origin(file, start)))
        if problem and strict:
            raise problem
    return entries
