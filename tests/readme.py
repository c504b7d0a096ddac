"""The documents' examples as tests read them: their indented shell blocks, and the shape of an
output line (its numbers free), so a test holds what a user is shown to what nftune prints."""

from __future__ import annotations

import re
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
README = TOP / "README.md"


def documents() -> list[Path]:
    """The README and the deep dives it links to."""
    return [README, *sorted((TOP / "docs").glob("*.md"))]


def shell_blocks(text: str | None = None) -> list[list[str]]:
    """Each indented (4-space) block outside fences that follows a blank line: commands,
    and the output shown under a `# ` prompt."""
    lines = (README.read_text() if text is None else text).split("\n")
    blocks: list[list[str]] = []
    fenced = False
    current: list[str] | None = None
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fenced, current = not fenced, None
            continue
        if not fenced and line.startswith("    ") and (current is not None or
                                                        lines[i - 1] == ""):
            if current is None:
                current = []
                blocks.append(current)
            current.append(line[4:])
        else:
            current = None
    return blocks


def every_block() -> list[tuple[Path, list[str]]]:
    """Each document's shell blocks, with the document."""
    return [(doc, b) for doc in documents() for b in shell_blocks(doc.read_text())]


def block(first: str) -> list[str]:
    """The block of any document whose first line is `first`."""
    found = [b for _, b in every_block() if b[0] == first]
    assert len(found) == 1, f"the documents have {len(found)} blocks starting {first!r}"
    return found[0]


def command(line: str) -> str:
    """A command line without its trailing `# comment`."""
    return re.sub(r"\s+#.*$", "", line)


SPAN = r"\d+(?:\.\d+)?(?:us|ms|s|min)\b"  # a time as systemd prints it: 111ms, 2.665s


def shape(line: str) -> re.Pattern[str]:
    """A README output line as a pattern: every number in it may be another number, and
    every time span another span (a slower boot prints @1.2s where the README has @111ms)."""
    parts = re.split(rf"({SPAN}|\d+)", line)
    return re.compile("".join(
        re.escape(p) if i % 2 == 0 else (SPAN if re.fullmatch(SPAN, p) else r"\d+")
        for i, p in enumerate(parts)))
