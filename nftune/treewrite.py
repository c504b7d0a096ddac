"""Writes to a tree (a Root): every write, rename, unlink, mkdir and rmdir acts on the
last component from its parent's descriptor (resolved in the tree by Root.parent()) and
never follows it; a file is replaced atomically (a temp file beside it, fsync, rename,
fsync of the directory). Code that only reads a tree never imports this."""

from __future__ import annotations

import contextlib
import errno
import os

from .artifacts import TEMP_INFIX, TEMP_PREFIX
from .errors import EXIT_FAILED, NftuneError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .root import Root

_MISSING = (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG)


def write_atomic(root: Root, path: str, data: bytes, mode: int) -> None:
    """Whole or absent: a temp file in the same directory, every byte written, fsync,
    rename over the target, fsync the directory. On any error the old file is as it
    was, the temp file is gone, and the NftuneError names the file and why."""
    try:
        with root.parent(path, os.O_RDONLY) as (dfd, name):
            tmp = temp_name(name)
            made = False
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                             | os.O_CLOEXEC, mode, dir_fd=dfd)
                made = True
                try:
                    os.fchmod(fd, mode)  # the umask must not narrow it
                    view = memoryview(data)
                    while view:  # a short write is not an error: write the rest
                        view = view[os.write(fd, view):]
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            except OSError as e:
                if made:  # only nftune's own temp file: one in the way is not its
                    with contextlib.suppress(OSError):
                        os.unlink(tmp, dir_fd=dfd)
                raise NftuneError(f"cannot write: {e.strerror}", path=root.show(path),
                                  exit_code=EXIT_FAILED,
                                  hint=_write_hint(e, dfd, len(data))) from None
            os.fsync(dfd)
    except OSError as e:
        raise NftuneError(f"cannot write: {e.strerror}", path=root.show(path),
                          exit_code=EXIT_FAILED, hint=_write_hint(e, None, 0)) from None

def unlink(root: Root, path: str) -> None:
    """Remove the entry itself (a symlink, never its target), and fsync the directory."""
    with root.parent(path, os.O_RDONLY) as (dfd, name):
        os.unlink(name, dir_fd=dfd)
        os.fsync(dfd)

def mkdir(root: Root, path: str, mode: int) -> None:
    with root.parent(path) as (dfd, name):
        os.mkdir(name, mode, dir_fd=dfd)
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                     dir_fd=dfd)
        try:
            os.fchmod(fd, mode)  # the umask must not narrow it
        finally:
            os.close(fd)

def ensure_dir(root: Root, path: str, mode: int = 0o755) -> None:
    """`mkdir -p` inside the tree; NftuneError when it cannot be made."""
    parts = path.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        d = "/" + "/".join(parts[:i])
        if root.is_dir(d):
            continue
        try:
            mkdir(root, d, mode)
        except OSError as e:
            raise NftuneError(f"cannot create the directory: {e.strerror}",
                              path=root.show(d), exit_code=EXIT_FAILED,
                              hint=_write_hint(e, None, 0)) from None

def rmdir(root: Root, path: str) -> None:
    with root.parent(path) as (dfd, name):
        os.rmdir(name, dir_fd=dfd)



def temp_name(name: str) -> str:
    """The temp file beside `name` while it is written; a killed run can leave one."""
    return f"{TEMP_PREFIX}{name}{TEMP_INFIX}{os.getpid()}"


def _write_hint(e: OSError, dfd: int | None, size: int) -> str | None:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        what = "no space left" if e.errno == errno.ENOSPC else "the disk quota is used up"
        if dfd is not None:
            with contextlib.suppress(OSError):
                vfs = os.fstatvfs(dfd)
                return (f"{what} on the file system of this directory: {size} bytes needed, "
                        f"{vfs.f_bavail * vfs.f_frsize} free; free some space and run "
                        "nftune again (the old file is unchanged)")
        return f"{what}; free some space and run nftune again (the old file is unchanged)"
    if e.errno == errno.EROFS:
        return "the file system is mounted read-only; remount it read-write, or build " \
               "the image with --root on a writable copy"
    if e.errno == errno.EIO:
        return "an I/O error: check the disk (dmesg); the old file is unchanged"
    if e.errno == errno.ENAMETOOLONG:
        return "the path is longer than the system allows"
    if e.errno in _MISSING:
        return "a directory on the way is missing or is not a directory"
    return None
