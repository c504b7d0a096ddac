"""Text from the tree shown to a person: names and values are data, never terminal control.

escape() does what systemd's cescape() does for systemctl's output: C0 and C1 controls and
DEL become C escapes (\\n, \\x1b), and bytes that are not UTF-8 (Python's surrogateescape)
\\xNN, so any string prints in any locale and none can move the cursor or fake a line.
Line and paragraph separators and bidirectional overrides are escaped too.
"""

from __future__ import annotations

_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\a": "\\a", "\b": "\\b", "\f": "\\f",
          "\v": "\\v"}
# U+2028/2029 (line/paragraph separators), bidi embeddings, overrides and isolates.
_FORMAT = frozenset([0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def _char(c: str) -> str:
    o = ord(c)
    if c in _NAMED:
        return _NAMED[c]
    if 0xDC80 <= o <= 0xDCFF:  # an undecodable byte (surrogateescape)
        return f"\\x{o - 0xDC00:02x}"
    if o < 0x20 or 0x7F <= o < 0xA0:
        return f"\\x{o:02x}"
    if 0xD800 <= o <= 0xDFFF or o in _FORMAT:  # unprintable, or reorders the line
        return f"\\u{o:04x}"
    return c


def escape(text: str) -> str:
    """Printable as-is, or escaped the way systemctl escapes."""
    if text.isprintable():  # the common case, without a per-character loop
        return text
    return "".join(_char(c) for c in text)


def cut(text: str, limit: int = 80) -> str:
    """An echoed value, short enough to read; the cut is marked."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
