"""Resolve a path inside a directory file descriptor and never leave it: systemd's chase()
with CHASE_PREFIX_ROOT. Symlinks are followed one component at a time, an absolute target
starts again at the root, and ".." stops at the root.

The kernel does it in one call where it has openat2() (Linux 5.6+) with RESOLVE_IN_ROOT.
Elsewhere `walk()` does the same from directory file descriptors opened with O_NOFOLLOW.
Both hand back a file descriptor, so nothing can swap a component between check and use.
"""

from __future__ import annotations

import errno
import os
import stat
import sys

MAX_SYMLINK_HOPS = 40  # the kernel's and systemd's CHASE_MAX
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
SYS_OPENAT2 = 437  # the same number on every architecture (the unified syscall table)
_PATH = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()


class _Libc:
    """openat2(2) through libc's syscall(), and fstatfs(2); ctypes is imported on first use
    only."""

    def __init__(self) -> None:
        import ctypes

        class OpenHow(ctypes.Structure):
            _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                        ("resolve", ctypes.c_uint64)]

        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.syscall
        fn.restype = ctypes.c_long
        fn.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p,
                       ctypes.c_size_t]
        self._ctypes, self._how_t, self._fn, self._fstatfs = ctypes, OpenHow, fn, libc.fstatfs
        self._size = ctypes.sizeof(OpenHow)
        # One open_how per (flags, mode): the kernel only reads it, and nftune opens
        # thousands of sysfs files with the same few flags.
        self._hows: dict[tuple[int, int], tuple[object, int]] = {}

    def openat2(self, dirfd: int, path: bytes, flags: int, mode: int) -> int:
        """A file descriptor, or -errno."""
        how = self._hows.get((flags, mode))
        if how is None:
            struct = self._how_t(flags, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
            how = self._hows[(flags, mode)] = (struct, self._ctypes.addressof(struct))
        fd: int = self._fn(SYS_OPENAT2, dirfd, path, how[1], self._size)
        return fd if fd >= 0 else -self._ctypes.get_errno()

    def fs_type(self, fd: int) -> int | None:
        """fstatfs(2)'s f_type (the first member of struct statfs on 64-bit Linux)."""
        buf = self._ctypes.create_string_buffer(256)
        if self._fstatfs(fd, buf) != 0:
            return None
        return int(self._ctypes.c_long.from_buffer(buf).value)


_libc: _Libc | None = None
_tried = False  # ctypes was tried: _libc None means it cannot be had
_use_openat2 = True  # False: the kernel (or a seccomp filter) has no openat2, or a test


def _lib() -> _Libc | None:
    global _libc, _tried
    if not _tried:
        _tried = True
        try:
            _libc = _Libc()
        except (ImportError, OSError, AttributeError):
            _libc = None
    return _libc


SYSFS_MAGIC, PROC_SUPER_MAGIC = 0x62656572, 0x9FA0
# The kernel's own file systems: a tree cannot put a device node in them.
KERNEL_FS = {SYSFS_MAGIC, PROC_SUPER_MAGIC}


# File systems that store files (linux/magic.h): ext2-4, XFS, btrfs, tmpfs, ramfs,
# overlayfs, squashfs, erofs, f2fs, vfat, bcachefs and ZFS. Reading a file there has no
# effect and cannot block. Not procfs, sysfs, tracefs, debugfs, securityfs, configfs,
# cgroupfs, bpffs or efivarfs (kernel interfaces, some with effects on read), nor FUSE or
# network file systems (a process or a server decides when a read returns).
STORAGE_FS = frozenset([0xEF53, 0x58465342, 0x9123683E, 0x01021994, 0x858458F6, 0x794C7630,
                        0x73717368, 0xE0F5E1E2, 0xF2F52010, 0x4D44, 0xCA451A4E, 0x2FC12FC1])


def on_kernel_fs(fd: int) -> bool:
    """Whether the directory `fd` is on sysfs or procfs (False when it cannot be told)."""
    lib = _lib()
    return lib is not None and lib.fs_type(fd) in KERNEL_FS


def on_storage_fs(fd: int) -> bool:
    """Whether `fd` is on a file system of STORAGE_FS (False when it cannot be told)."""
    lib = _lib()
    return lib is not None and lib.fs_type(fd) in STORAGE_FS


def openat2_in_use() -> bool:
    return _use_openat2 and _lib() is not None


def disable_openat2() -> None:
    """Use the walk only (tests run both; a kernel without openat2 does it by itself)."""
    global _use_openat2
    _use_openat2 = False


def enable_openat2() -> None:
    global _use_openat2
    _use_openat2 = True


def open_in(rootfd: int, path: str, flags: int, mode: int = 0) -> int:
    """Open `path` (in-tree, absolute or relative) under the root `rootfd`."""
    lib = _lib() if _use_openat2 else None
    if lib is None:
        return walk(rootfd, path, flags, mode)
    name = path.lstrip("/").encode(_FS_ENCODING, _FS_ERRORS) or b"."  # os.fsencode, faster
    flags |= os.O_CLOEXEC
    mode = mode if flags & os.O_CREAT else 0
    fd = lib.openat2(rootfd, name, flags, mode)
    tries = 1
    while fd < 0:
        err = -fd
        if err == errno.ENOSYS:
            disable_openat2()  # no openat2 here (an old kernel, seccomp): walk from now on
            return walk(rootfd, path, flags, mode)
        if err == errno.EPERM:  # a seccomp filter, or the file itself: the walk tells
            return walk(rootfd, path, flags, mode)
        if err != errno.EAGAIN or tries == 8:  # EAGAIN: a rename raced with ".."
            raise OSError(err, os.strerror(err), path)
        fd = lib.openat2(rootfd, name, flags, mode)
        tries += 1
    return fd


def walk(rootfd: int, path: str, flags: int, mode: int = 0) -> int:
    """The portable resolver: returns the open file descriptor. O_NOFOLLOW in `flags`
    applies to the last component, as in open(2)."""
    todo = [p for p in reversed(path.split("/")) if p and p != "."]
    stack = [os.dup(rootfd)]  # the directories resolved so far, the root first
    hops = 0
    try:
        while todo:
            name = todo.pop()
            if name == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            cur = stack[-1]
            last = not todo
            try:
                if last and not flags & os.O_PATH:
                    fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=cur)
                else:
                    fd = os.open(name, _PATH, dir_fd=cur)
            except OSError as e:
                # A symlink at the end fails O_NOFOLLOW with ELOOP, or with ENOTDIR when
                # O_DIRECTORY is asked for too: follow it below.
                if not (last and e.errno in (errno.ELOOP, errno.ENOTDIR) and stat.S_ISLNK(
                        os.stat(name, dir_fd=cur, follow_symlinks=False).st_mode)):
                    raise OSError(e.errno, e.strerror, path) from None
                fd = -1
            if fd >= 0:
                st = os.fstat(fd)
                if not stat.S_ISLNK(st.st_mode):
                    if last:
                        if flags & os.O_DIRECTORY and not stat.S_ISDIR(st.st_mode):
                            os.close(fd)
                            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
                        return fd
                    if not stat.S_ISDIR(st.st_mode):
                        os.close(fd)
                        raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
                    stack.append(fd)
                    continue
                os.close(fd)
            # A symlink: follow it inside the root, unless the caller said O_NOFOLLOW.
            if last and flags & os.O_NOFOLLOW:
                if flags & os.O_PATH:
                    return os.open(name, _PATH, dir_fd=cur)
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
            target = os.readlink(name, dir_fd=cur)
            if target.startswith("/"):
                while len(stack) > 1:
                    os.close(stack.pop())
            todo += [p for p in reversed(target.split("/")) if p and p != "."]
        # The path ends at a directory on the stack (empty, ".", "..", or a link to it).
        return os.open(".", (flags & ~os.O_NOFOLLOW) | os.O_CLOEXEC, dir_fd=stack[-1])
    finally:
        for fd in stack:
            os.close(fd)


def reopen(pfd: int, flags: int) -> int | None:
    """The very file an O_PATH descriptor holds, opened for I/O through /proc/self/fd
    (which names the inode, not a path); None without /proc (a bare chroot)."""
    try:
        return os.open(f"/proc/self/fd/{pfd}", flags)
    except FileNotFoundError:
        if os.path.isdir("/proc/self/fd"):
            raise
        return None
