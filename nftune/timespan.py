"""Time spans as systemd-analyze prints them ("+1.234s", "@1min 2.5s"). Pure."""

from __future__ import annotations


def fmt_span(us: int) -> str:
    if us < 1000:
        return f"{us}us"
    if us < 1_000_000:
        return f"{us // 1000}ms"
    if us < 60_000_000:
        return f"{us / 1e6:.3f}".rstrip("0").rstrip(".") + "s"
    minutes, rest = divmod(us, 60_000_000)
    return f"{minutes}min {fmt_span(rest)}"
