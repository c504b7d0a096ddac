"""Unit names as systemd parses them: which names are valid, a mount unit's path, an
instance's template, and the names whose directories apply to a unit."""

from __future__ import annotations

import re

UNIT_NAME = re.compile(r"[A-Za-z0-9:_.\\@-]+\.(service|target|socket|mount|path|timer|slice|"
                        r"scope|device|swap|automount)")
NAME_MAX = 255  # UNIT_NAME_MAX - 1: systemd rejects a longer unit name


def valid_name(name: str) -> bool:
    """unit_name_is_valid(), as far as the graph needs: a unit file name systemd accepts."""
    return len(name) <= NAME_MAX and name.count("@") <= 1 and \
        UNIT_NAME.fullmatch(name) is not None


def mount_path(name: str) -> str | None:
    """unit_name_to_path() for a .mount name: "srv-my\\x2ddata.mount" -> "/srv/my-data"."""
    stem = name[:-len(".mount")]
    if stem == "-":
        return "/"
    out, i = bytearray(), 0
    while i < len(stem):
        if stem.startswith("\\x", i) and len(stem) >= i + 4:
            try:
                out.append(int(stem[i + 2:i + 4], 16))
            except ValueError:
                return None
            i += 4
        else:
            out += b"/" if stem[i] == "-" else stem[i].encode()
            i += 1
    return "/" + out.decode("utf-8", "surrogateescape")


def template_of(name: str) -> str | None:
    """foo@bar.service -> foo@.service; None for a name that is not an instance."""
    head, at, rest = name.partition("@")
    if not at:
        return None
    instance, dot, suffix = rest.rpartition(".")
    return f"{head}@.{suffix}" if instance and dot else None


def _name_dirs(name: str, dashed: frozenset[str] | None = None) -> tuple[str, ...]:
    """The names whose directories apply to `name`, most specific first, as
    unit_file_find_dirs() recurses: the name, its template, then the name cut at its last
    inner dash (a-b-c.service, a-b-.service, a-.service; foo-bar@x.service, foo-@x.service).
    With `dashed` (the "a-" prefixes of the tree's dashed directories), cuts that no
    directory can match are not made: a long name has many."""
    out = [name]
    if t := template_of(name):
        out += _name_dirs(t, dashed)
    stem, _, suffix = name.rpartition(".")
    prefix, at, instance = stem.partition("@")
    p = prefix[:-1] if prefix.endswith("-") else prefix
    dash = p.rfind("-")
    if dash > 0 and (dashed is None or any(f"{p[:dash]}-".startswith(x) for x in dashed)):
        base = p[:dash]
        out += _name_dirs(f"{base}-@{instance}.{suffix}" if at and instance
                          else f"{base}-.{suffix}", dashed)
    return tuple(out)


def _kind(name: str) -> str:
    _, at, rest = name.partition("@")
    if not at:
        return "plain"
    return "template" if rest.startswith(".") else "instance"
