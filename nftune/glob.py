"""fnmatch(3) as kmod and udev call it (flags 0): "*", "?", brackets negated by "!" or
"^", and a backslash that makes the next character literal. Python's fnmatch differs on
the last two, so a pattern of modprobe.d or a udev rule is matched here. A character class
("[[:alpha:]]"), an escape inside brackets and an unterminated bracket are not read: the
answer is None, "cannot tell". Held to glibc's fnmatch() by tests/test_inputs.py."""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=4096)
def _compile(pattern: str) -> re.Pattern[str] | None:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        i += 1
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "\\":
            if i == len(pattern):
                return None  # a trailing backslash: not read
            out.append(re.escape(pattern[i]))
            i += 1
        elif c == "[":
            end = i + (1 if pattern[i:i + 1] in ("!", "^") else 0)
            end += 1 if pattern[end:end + 1] == "]" else 0  # a leading "]" is literal
            end = pattern.find("]", end)
            if end < 0:
                return None  # unterminated: glibc's answer depends on its version
            body = pattern[i:end]
            if "[:" in body or "[=" in body or "[." in body or "\\" in body:
                return None
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            items: list[str] = []
            j = 0
            while j < len(body):
                if j + 2 < len(body) and body[j + 1] == "-":  # a range; a reversed one
                    a, b = body[j], body[j + 2]             # holds nothing
                    if a <= b:
                        items.append(f"{re.escape(a)}-{re.escape(b)}")
                    j += 3
                else:
                    items.append(re.escape(body[j]))
                    j += 1
            chars = "".join(items)
            out.append(f"[{'^' if negate else ''}{chars}]" if chars else
                       ("." if negate else "(?!)"))
            i = end + 1
        else:
            out.append(re.escape(c))
    return re.compile("".join(out), re.S)


def match(name: str, pattern: str) -> bool | None:
    """Whether `name` matches `pattern` as fnmatch(pattern, name, 0) says; None when the
    pattern holds what nftune does not read."""
    rx = _compile(pattern)
    return None if rx is None else rx.fullmatch(name) is not None
