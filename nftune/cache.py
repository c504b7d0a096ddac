"""The boot checks' results, kept for this boot (paths.BOOT_CHECKS) with a fingerprint of
everything they read, so a timer run does only the runtime work.

While the boot checks run, the tree (Root.watch) notes every path it opens, as what it
resolved to (device, inode, size, mtime and ctime: more than systemd's NeedDaemonReload
compares) or the error it gave, and every kernel attribute read, as its text. A later run
takes the results only when every path resolves to the same and every attribute reads the
same, the boot ID and nftune's version are the same, and the file is one root wrote and
nobody else could have: anything else, and the checks run again.

What is not a file is fixed for a boot once it has finished: the manager's view of how
this boot went, and this boot's journal. A run before the boot finished (the service's at
boot) keeps nothing; a run that could not reach the manager keeps nothing.

On /proc, /sys and /dev only what an entry is counts: the sandboxed service mounts its own
of each on every run, with new inodes and times.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import time

from . import __version__
from . import chase as _chase
from .artifacts import BOOT_CHECKS, RUN_DIR
from .attrs import read_attr
from .errors import NftuneError
from .fsio import parse_json
from .report import boot_id
from .result import Cause, Check, CheckResult, Status
from .treewrite import ensure_dir, write_atomic

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .context import Context
    from .root import Root

SCHEMA = 1
MAX_BYTES = 4 << 20  # 29 KiB in the test container: 132 unit files, their directories
MAX_ENTRIES = 50_000
MAX_TEXT = 64 << 10  # a result's field, an attribute's text, a path
_FLAGS = os.O_NOFOLLOW | os.O_DIRECTORY  # what changes what an open resolves to
# The kernel's file systems, and /dev: a service's own mount of each (PrivateDevices=,
# ProtectProc=) has new inodes and times on every run. Only what an entry is counts there;
# the values read from them are fingerprinted as text.
KERNEL_FS = frozenset({"proc", "sys", "dev"})
FIELDS = ("check", "subject", "status", "cause", "expected", "actual", "reason", "hint",
          "source")

State = list[int]  # [errno] when it failed; [0, mode] on KERNEL_FS; else the six below


def state(path: str, seen: os.stat_result | int) -> State:
    if isinstance(seen, int):
        return [seen]
    st = seen
    if path.split("/", 2)[1] in KERNEL_FS:
        return [0, st.st_mode]
    return [st.st_dev, st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


class Watch:
    """What a run read of the tree, noted by Root.open() and fsio.read_attr()."""

    def __init__(self) -> None:
        self.paths: dict[tuple[str, int], State] = {}
        self.values: dict[str, str | None] = {}

    def opened(self, path: str, flags: int, seen: os.stat_result | int) -> None:
        self.paths.setdefault((path, flags & _FLAGS), state(path, seen))

    def read(self, path: str, text: str | None) -> None:
        self.values.setdefault(path, text)


class Kept:
    """The results a cache holds, and when they were proven."""

    def __init__(self, results: list[CheckResult], proven: float) -> None:
        self.results = results
        self.proven = proven


def usable(ctx: Context) -> bool:
    """Only the running system's own checks are kept: never an image's, never another
    manager's."""
    return ctx.root.live and not ctx.bus_address


def prepare(ctx: Context) -> Watch | None:
    """A Watch for a run whose boot checks will be kept, the cache's directory made first
    (making it later would change what the checks saw of /run); None when not kept."""
    if not usable(ctx):
        return None
    with contextlib.suppress(NftuneError):
        ensure_dir(ctx.root, RUN_DIR)
    return Watch()


def save(ctx: Context, watch: Watch, results: list[CheckResult], proven: float) -> None:
    """Keep this run's boot checks; a cache that cannot be written is only slower."""
    root = ctx.root
    bid = boot_id(root)
    if bid is None or any(r.cause is Cause.NO_BUS for r in results):
        return
    doc = {"schema": SCHEMA, "nftune": __version__, "boot_id": bid, "proven": proven,
           "paths": [[p, f, s] for (p, f), s in watch.paths.items()],
           "values": [[p, t] for p, t in watch.values.items()],
           "results": [[_field(getattr(r, f)) for f in FIELDS] for r in results]}
    with contextlib.suppress(NftuneError, OSError):  # only slower next time
        write_atomic(root, BOOT_CHECKS, (json.dumps(doc) + "\n").encode(), 0o640)


def _field(v: object) -> str | None:
    return None if v is None else str(v)


def load(ctx: Context) -> Kept | None:
    """The kept results when nothing they read has changed; None otherwise."""
    root = ctx.root
    doc = _read(ctx)
    if doc is None:
        return None
    paths, values = doc["paths"], doc["values"]
    again = _stat_host if root.is_host else _stat_in(root)
    if any(again(path, flags) != was for path, flags, was in paths):
        return None
    if any(read_attr(root, path) != text for path, text in values):
        return None
    proven = doc["proven"]
    results = [CheckResult(Check(c), s, Status(st), Cause(ca), e, a, r or "", h, so,
                           cached=True, proven=proven)
               for c, s, st, ca, e, a, r, h, so in doc["results"]]
    return Kept(results, proven)


def _stat_host(path: str, flags: int) -> State:
    """What `path` resolves to on the host, as Root.open() with `flags` resolved it: on
    "/" a path resolves the same without openat2(), at a tenth of its cost."""
    try:
        st = os.stat(path, follow_symlinks=not flags & os.O_NOFOLLOW)
    except OSError as e:
        return state(path, e.errno or 0)
    if flags & os.O_DIRECTORY and not stat.S_ISDIR(st.st_mode):
        return state(path, errno.ENOTDIR)
    return state(path, st)


def _stat_in(root: Root) -> Callable[[str, int], State]:
    def again(path: str, flags: int) -> State:
        try:
            fd = _chase.open_in(root.fd, path, os.O_PATH | flags)
        except OSError as e:
            return state(path, e.errno or 0)
        try:
            return state(path, os.fstat(fd))
        finally:
            os.close(fd)

    return again


def _read(ctx: Context) -> dict[str, Any] | None:
    """The cache as this boot's root wrote it, every field of the right type; None for
    anything else (missing, another boot or version, written by someone else, damaged)."""
    root = ctx.root
    try:
        fd = root.open_file(BOOT_CHECKS, os.O_RDONLY, follow=False)
        if fd is None:
            return None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_uid != os.geteuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) \
                    or st.st_size > MAX_BYTES:
                return None
            doc = parse_json(f.read(MAX_BYTES + 1))
    except (NftuneError, OSError, ValueError):
        return None
    if not (isinstance(doc, dict) and doc.get("schema") == SCHEMA
            and doc.get("nftune") == __version__):
        return None
    bid, proven = boot_id(root), doc.get("proven")
    if bid is None or doc.get("boot_id") != bid or type(proven) is not float \
            or not _this_boot(root, proven):
        return None
    ok = (_rows(doc.get("paths"), lambda r: len(r) == 3 and _text(r[0]) and type(r[1]) is int
                and type(r[2]) is list and 1 <= len(r[2]) <= 6
                and all(type(n) is int for n in r[2]))
          and _rows(doc.get("values"), lambda r: len(r) == 2 and _text(r[0])
                    and (r[1] is None or _text(r[1])))
          and _rows(doc.get("results"), _result))
    return doc if ok else None


def _this_boot(root: Root, proven: float) -> bool:
    """Proven since this boot began, and not in the future."""
    uptime = read_attr(root, "/proc/uptime")
    try:
        began = time.time() - float((uptime or "").split()[0])
    except (ValueError, IndexError):
        return False
    return began - 5 <= proven <= time.time() + 5


def _text(v: object) -> bool:
    return type(v) is str and len(v) <= MAX_TEXT


def _rows(rows: object, ok: Any) -> bool:
    return type(rows) is list and len(rows) <= MAX_ENTRIES and all(
        type(r) is list and ok(r) for r in rows)


def _result(r: list[Any]) -> bool:
    from .specs import BOOT_CHECKS as checks

    return (len(r) == len(FIELDS) and all(v is None or _text(v) for v in r)
            and r[0] in {str(c) for c in checks} and r[1] is not None
            and r[2] in {str(s) for s in Status} and r[3] in {str(c) for c in Cause})
