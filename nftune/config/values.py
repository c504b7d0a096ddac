"""How each setting's value is read, shown and written as JSON: the parsers the settings
table (nftune/config/__init__.py) is made of."""

from __future__ import annotations

import re
from collections.abc import Callable

from .. import sysctl
from ..errors import NftuneError
from ..ini import Entry
from ..record import Record
from ..text import cut
from .model import AUTO, MAX_MEMORY_SHARE, ModuleSpec, Size, SysctlSpec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

BUILTIN = "(built-in defaults)"
MODULE_NAME = re.compile(r"[A-Za-z0-9_-]{1,55}")
# An interface glob: what a Linux interface name may hold (no "/", ":" or white space),
# plus fnmatch's "*", "?" and "[...]".
IFACE_GLOB = re.compile(r"[A-Za-z0-9_.@*?\[\]!-]{1,64}")
MAX_FLOW_ENTRIES = 1 << 29  # the kernel refuses a larger rps_sock_flow_entries
IN_TREE_PATH = re.compile(r"[A-Za-z0-9_./@+-]{1,255}")  # no spaces, quotes or specifiers
# PrometheusDirectory= becomes ReadWritePaths= of a sandboxed service: never a directory
# that would make the system, its configuration or the kernel's interfaces writable.
SANDBOX_OPENERS = frozenset(["", "/etc", "/usr", "/var", "/var/lib", "/run", "/boot", "/opt",
                             "/srv", "/home", "/root", "/tmp", "/var/tmp", "/bin", "/sbin",
                             "/lib", "/lib64", "/usr/local", "/proc", "/sys", "/dev"])
SANDBOX_TREES = ("/proc/", "/sys/", "/dev/", "/boot/", "/etc/", "/usr/", "/bin/", "/sbin/",
                 "/lib/", "/lib64/")


class Parser(Record):
    """How a setting's value is read, shown, and written as JSON. `read` gets the value so
    far (lists add to it) and returns the new one, or raises NftuneError."""

    read: Callable[[Entry, Any], Any]
    show: Callable[[Any], str] = str
    json: Callable[[Any], Any] = lambda v: v
    initial: Any = None  # before the built-in defaults: what a list starts from


def _bad(entry: Entry, message: str, hint: str) -> NftuneError:
    return NftuneError(message, path=entry.origin.file, line=entry.origin.line,
                       key=entry.key, value=entry.value, hint=hint)


def yes_no(hint: str) -> Parser:
    def read(e: Entry, _: Any) -> bool:
        if e.value not in ("yes", "no"):
            raise _bad(e, f"{e.key} must be yes or no", hint)
        return e.value == "yes"

    return Parser(read, lambda v: "yes" if v else "no")


def number(low: int, high: int, message: str, hint: str) -> Parser:
    """A whole number in ASCII digits within [low, high] (int() alone would take other
    scripts' digits, and fail on a very long number)."""
    def read(e: Entry, _: Any) -> int:
        if not re.fullmatch(r"[0-9]{1,10}", e.value) or not low <= int(e.value) <= high:
            raise _bad(e, message, hint)
        return int(e.value)

    return Parser(read)


def one_of(values: tuple[str, ...], hint: str) -> Parser:
    def read(e: Entry, _: Any) -> str:
        if e.value not in values:
            words = ", ".join(values[:-1]) + f" or {values[-1]}"
            raise _bad(e, f"{e.key} must be {words}", hint)
        return e.value

    return Parser(read)


def matching(pattern: str, message: str, hint: str) -> Parser:
    def read(e: Entry, _: Any) -> str:
        if not re.fullmatch(pattern, e.value):
            raise _bad(e, message, hint)
        return e.value

    return Parser(read)


def words(item: Callable[[Entry, str], Any], key: Callable[[Any], Any] = lambda v: v,
          show: Callable[[Any], str] = str) -> Parser:
    """A list, as in unit files: each assignment adds its words (systemd's white space,
    not str.split()'s), an empty one resets; a word already there is not added again."""
    def read(e: Entry, so_far: tuple[Any, ...]) -> tuple[Any, ...]:
        if not e.value:
            return ()
        out = list(so_far)
        for word in re.split(r"[ \t]+", e.value):
            value = item(e, word)
            if all(key(v) != key(value) for v in out):
                out.append(value)
        return tuple(out)

    return Parser(read, lambda v: " ".join(map(show, v)), list, ())


def _module(e: Entry, word: str) -> ModuleSpec:
    alts = tuple(a.replace("-", "_") for a in word.split("|"))
    for a in alts:
        if not MODULE_NAME.fullmatch(a):
            raise _bad(e, f"invalid module name {cut(a)!r}",
                       "module names are letters, digits, '_' and '-' (at most 55); "
                       "separate alternatives with '|' and modules with spaces")
    return ModuleSpec(alts, e.origin)


def _glob(e: Entry, word: str) -> str:
    if not IFACE_GLOB.fullmatch(word) or word in (".", ".."):
        raise _bad(e, f"invalid interface name or glob {cut(word)!r}",
                   "interface names hold letters, digits and '_.@-'; globs add "
                   "'*', '?' and '[...]'; separate them with spaces")
    return word


def _sysctl(e: Entry, so_far: dict[str, SysctlSpec]) -> dict[str, SysctlSpec]:
    try:
        key = sysctl.validate_key(e.key)
    except ValueError as err:
        raise _bad(e, f"invalid sysctl key: {err}",
                   "use a key as sysctl(8) shows it, like net.netfilter.nf_conntrack_max") \
            from None
    out = {k: v for k, v in so_far.items() if k != key}  # re-added: file order follows
    if not e.value:  # an empty assignment stops managing the key
        return out
    try:
        value = sysctl.validate_value(e.value)
    except ValueError as err:
        raise _bad(e, f"invalid sysctl value: {err}", "write the value as sysctl(8) "
                   "takes it; vectors are separated by spaces") from None
    out[key] = SysctlSpec(key, value, e.origin)
    return out


def _size(name: str, high: int, hint: str) -> Parser:
    """A table size: empty (nftune leaves it alone), auto, or a number in the kernel's range."""
    def read(e: Entry, _: Any) -> Size:
        if e.value in ("", AUTO):
            return Size(auto=e.value == AUTO, origin=e.origin)
        if not re.fullmatch(r"[0-9]{1,10}", e.value) or not 1 <= int(e.value) <= high:
            raise _bad(e, f"{name} must be auto or a number from 1 to {high}", hint)
        return Size(int(e.value), origin=e.origin)

    return Parser(read, str, lambda v: v.json())


def _share(e: Entry, _: Any) -> int:
    value = e.value.removesuffix("%")
    if not re.fullmatch(r"[0-9]{1,3}", value) or int(value) > MAX_MEMORY_SHARE:
        raise _bad(e, f"MemoryShare must be a percentage from 0 to {MAX_MEMORY_SHARE}",
                   "the share of RAM the table may take with Max=auto, e.g. MemoryShare=5%; "
                   "0: no cap")
    return int(value)


def _cpus(e: Entry, _: Any) -> frozenset[int] | None:
    from ..cpus import parse_list

    hint = "write CPUs=auto, or a list such as 0-3,8"
    if e.value == "auto":
        return None
    try:
        cpus = parse_list(e.value)
    except ValueError as err:
        raise _bad(e, f"invalid CPU list: {err}", hint) from None
    if not cpus:
        raise _bad(e, "the CPU list is empty", hint)
    return cpus


def _show_cpus(cpus: frozenset[int] | None) -> str:
    from ..cpus import format_list

    return "auto" if cpus is None else format_list(set(cpus))


def _directory(e: Entry, _: Any) -> str | None:
    hint = ("node_exporter's --collector.textfile.directory, e.g. "
            "/var/lib/prometheus/node-exporter; empty: no metrics file")
    if e.value and (not e.value.startswith("/") or not IN_TREE_PATH.fullmatch(e.value)
                    or "/../" in e.value + "/" or "/./" in e.value + "/"
                    or "//" in e.value):
        raise _bad(e, "PrometheusDirectory must be an absolute, plain directory path", hint)
    path = e.value.rstrip("/")
    if e.value and (path in SANDBOX_OPENERS or path.startswith(SANDBOX_TREES)):
        raise _bad(e, "PrometheusDirectory would open nftune-verify.service's sandbox "
                      "(ReadWritePaths=)", "use a directory of its own, " + hint)
    return path or None
