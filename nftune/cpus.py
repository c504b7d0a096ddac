"""CPU sets in the kernel's two notations: lists ("0-3,8", as in
/sys/devices/system/cpu/online) and hex masks ("1,ffffffff", as in rps_cpus). Pure."""

from __future__ import annotations

import re

from .text import cut

CHUNK = 32  # the kernel prints masks in comma-separated 32-bit groups
MAX_CPUS = 8192  # CONFIG_NR_CPUS's largest value on x86-64
_RANGE = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?")  # ASCII digits: int() takes others
_MASK = re.compile(r"[0-9a-fA-F]{1,8}(?:,[0-9a-fA-F]{1,8})*")


def parse_list(text: str) -> frozenset[int]:
    """'0-3,8' -> {0, 1, 2, 3, 8}; an empty text is the empty set. Raises ValueError."""
    text = text.strip()
    if not text:
        return frozenset()
    cpus: set[int] = set()
    for part in text.split(","):
        m = _RANGE.fullmatch(part.strip())
        if not m:
            raise ValueError(f"{cut(part.strip())!r} is not a CPU number or range like 0-3")
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) is not None else first
        if last < first:
            raise ValueError(f"the range {part.strip()!r} runs backwards")
        if last >= MAX_CPUS:
            raise ValueError(f"CPU {last} is beyond the largest possible ({MAX_CPUS - 1})")
        cpus.update(range(first, last + 1))
    return frozenset(cpus)


def format_list(cpus: frozenset[int] | set[int]) -> str:
    """{0, 1, 2, 3, 8} -> '0-3,8', as the kernel prints lists."""
    out: list[str] = []
    run: list[int] = []
    for c in sorted(cpus):
        if run and c == run[-1] + 1:
            run.append(c)
            continue
        if run:
            out.append(_span(run))
        run = [c]
    if run:
        out.append(_span(run))
    return ",".join(out)


def _span(run: list[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}"


def format_mask(cpus: frozenset[int] | set[int], nbits: int) -> str:
    """The mask as the kernel prints a bitmap of `nbits` CPUs (its possible CPUs): 32-bit
    groups, highest first, the first one only as wide as its bits need."""
    if nbits < 1:
        raise ValueError("a mask needs at least one bit")
    if cpus and max(cpus) >= nbits:
        raise ValueError(f"CPU {max(cpus)} does not fit a mask of {nbits} CPUs")
    value = bits(cpus)
    groups = []
    top = (nbits - 1) // CHUNK
    for g in range(top, -1, -1):
        used = nbits - g * CHUNK if g == top else CHUNK
        width = (used + 3) // 4
        groups.append(f"{(value >> (g * CHUNK)) & 0xFFFFFFFF:0{width}x}")
    return ",".join(groups)


def mask_value(text: str) -> int | None:
    """'1,ffffffff' -> 0x1ffffffff; None when it is not a mask. An int, not a set: RPS
    compares one per receive queue."""
    text = text.strip()
    if not _MASK.fullmatch(text):
        return None
    value = 0
    for group in text.split(","):
        value = (value << CHUNK) | int(group, 16)
    return value


def bits(cpus: frozenset[int] | set[int]) -> int:
    """{0, 3} -> 0b1001: the value of the mask of these CPUs."""
    return sum(1 << c for c in cpus)
