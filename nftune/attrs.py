"""Kernel attributes (sysfs, /proc/sys): short text, read whole, and written with one
write() when they differ (they cannot be replaced atomically)."""

from __future__ import annotations

import os
from collections.abc import Callable

from .chase import on_kernel_fs
from .errors import EXIT_FAILED, NftuneError
from .root import Root

# Where attributes are opened from: a directory's descriptor from root.directory(), whether
# it is on sysfs or procfs (chase.on_kernel_fs()), and, on those, the subdirectory below it
# that holds the attribute ("rx-0/"; they hold no links a tree could have made).
At = tuple[int, bool, str]


def _open_attr(root: Root, path: str, flags: int, at: At | None) -> int | None:
    if at is None:
        with root.directory(path.rpartition("/")[0] or "/") as d:
            return None if d is None else _open_attr(root, path, flags,
                                                      (d, on_kernel_fs(d), ""))
    dirfd, kernel, below = at
    leaf = path.rpartition("/")[2]
    if kernel:  # sysfs or procfs hold no device node: opened at once (8192 queues)
        try:
            return os.open(below + leaf, flags | os.O_NONBLOCK | os.O_NOCTTY | os.O_NOFOLLOW
                           | os.O_CLOEXEC, dir_fd=dirfd)
        except FileNotFoundError:
            return None
    return root.open_file(leaf, flags, at=dirfd)


def read_attr(root: Root, path: str, *, at: At | None = None) -> str | None:
    """A kernel attribute's text (they are short), or None when it cannot be read. `at`:
    the attribute's directory, when reading many in one."""
    text = _read_attr(root, path, at)
    if root.watch is not None:
        root.watch.read(path, text)
    return text


def _read_attr(root: Root, path: str, at: At | None) -> str | None:
    try:
        fd = _open_attr(root, path, os.O_RDONLY, at)
    except (OSError, NftuneError):
        return None
    if fd is None:
        return None
    try:
        return os.read(fd, 4096).decode("ascii", "replace").strip()
    except OSError:
        return None
    finally:
        os.close(fd)


def sync_attr(root: Root, path: str, new: str, same: Callable[[str], bool], *,
              write: bool = True, at: At | None = None) -> str | None:
    """A kernel attribute: read it and, unless `same(old)`, write `new` with one write()
    (sysfs and /proc/sys cannot be replaced atomically; one open serves both). Returns the
    old value when it differed (and was written, with `write`), None when it did not or
    the attribute does not exist in this kernel. `at`: as for read_attr()."""
    try:
        fd = _open_attr(root, path, os.O_RDWR if write else os.O_RDONLY, at)
    except OSError as e:
        raise NftuneError(f"cannot open: {e.strerror}", path=root.show(path),
                          exit_code=EXIT_FAILED) from e
    if fd is None:
        return None
    try:
        old = os.read(fd, 4096).decode("ascii", "replace").strip()
        if same(old):
            return None
        if write:
            os.pwrite(fd, new.encode() + b"\n", 0)
        return old
    except OSError as e:
        raise NftuneError(f"cannot write {new!r}: {e.strerror}", path=root.show(path),
                          exit_code=EXIT_FAILED) from e
    finally:
        os.close(fd)
