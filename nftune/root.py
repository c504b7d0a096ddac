"""Root: the one way nftune reaches a file, and it never leaves the tree.

Paths inside the tree are absolute strings ("/etc/sysctl.d"). Every read, write, rename,
unlink, mkdir and rmdir resolves them under the tree's top directory the way systemd's
chase() does with CHASE_PREFIX_ROOT (see chase.py): a symlink, absolute or "../"-relative,
anywhere in the path stays inside the tree. Writes and removals act on the last component
from its parent's file descriptor and never follow it. The live system is the root "/",
through the same code. Nothing else in nftune builds a path from "/etc" or "/proc" on its
own, so tests run on tmp trees and image builds work offline.

Only regular files are opened as files: a FIFO, socket, device or directory where a file
is expected is an error naming it, never a hang, and a device node is never opened.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import weakref
from collections.abc import Iterator
from functools import cached_property

from . import chase as _chase
from .errors import EXIT_FAILED, NftuneError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

    from .cache import Watch

# systemd's configuration search path, highest precedence first (/lib for split-usr).
CONF_BASES = ("/etc", "/run", "/usr/local/lib", "/usr/lib", "/lib")
MAX_SYMLINK_HOPS = _chase.MAX_SYMLINK_HOPS
_MISSING = (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG)  # cannot exist
MAX_FILE = 16 << 20  # what nftune reads whole: configs, unit files, modules.dep, its state
_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a device",
          stat.S_IFBLK: "a device", stat.S_IFDIR: "a directory", stat.S_IFLNK: "a symlink"}
# Entry types of listdir(): what the directory entry itself is (symlinks not followed).
LINK, DIR, FILE, OTHER = "link", "dir", "file", "other"


def _in_chroot() -> bool | None:
    """Like systemd's running_in_chroot(): "/" is not PID 1's root. An image build's chroot
    may have the build host's /run mounted, so /run/systemd/system alone does not tell.
    None: it cannot be told (/proc/1/root refused, as to a process without CAP_SYS_PTRACE
    in some sandboxed build hosts, or to a user)."""
    try:
        ours, init = os.stat("/"), os.stat("/proc/1/root")
    except PermissionError:
        return None
    except OSError:
        return True  # no /proc: not a booted system
    return (ours.st_dev, ours.st_ino) != (init.st_dev, init.st_ino)


def kind_of(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


class Root:
    """The tree nftune works on; every path goes through it."""

    def __init__(self, path: str | os.PathLike[str], live: bool = False) -> None:
        # A string, not a pathlib.Path: pathlib (with urllib and ipaddress) would cost
        # every run's start, and the tree's paths are strings throughout.
        self.path = os.fspath(path)
        self.live = live  # the running system: its /proc, /sys and systemd may be used
        self.watch: Watch | None = None  # while set, every path opened is noted (cache.py)
        self.undecided: str | None = None  # why "/" was not taken as live, when unclear
        self.why_not_live: str | None = None  # for "/" not taken as live: why not

    def __repr__(self) -> str:
        return f"Root({self.path!r}, live={self.live})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Root) and (self.path, self.live) == (other.path, other.live)

    def __hash__(self) -> int:
        return hash((self.path, self.live))

    @classmethod
    def from_arg(cls, arg: str | None, live: bool = False) -> Root:
        """The host ("/", live when systemd runs and "/" is PID 1's root) or an image tree
        given with --root. `live` (--live): "/" is the running system even where that
        cannot be told; `undecided` then, or else, says why it was not taken as one."""
        if arg is not None:
            hint = "give the top of an image tree, for example --root /mnt/image"
            if not arg:
                raise NftuneError("an empty path is not a tree", key="--root", hint=hint)
            if not os.path.isdir(arg):
                raise NftuneError("not a directory", path=arg, key="--root", hint=hint)
            # Not realpath(): it would follow /proc/PID/root, a container's root, to "/".
            if not os.path.samefile(arg, "/"):
                return cls(os.path.abspath(arg), live=False)
        host = cls("/")
        hint = "--live only settles what nftune cannot tell; leave it out here"
        if not host.systemd_running():
            host.why_not_live = "systemd is not running (a chroot or an image build)"
        elif (chroot := _in_chroot()) is None:
            if live:
                return cls("/", live=True)
            host.undecided = ("cannot tell whether / is the running system (/proc/1/root "
                              "refused): taken as an image tree, nothing live is touched; "
                              "--live says it is")
            host.why_not_live = ("cannot tell whether / is the running system (/proc/1/root "
                                 "refused); --live says it is")
        elif chroot:
            host.why_not_live = "a chroot: / is not PID 1's root"
        else:
            host.live = True
        if live and not host.live:
            raise NftuneError(f"not the running system: {host.why_not_live}", key="--live",
                              hint=hint)
        return host

    @cached_property
    def fd(self) -> int:
        """The tree's top directory, opened once: every path resolves from it."""
        fd = os.open(self.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        weakref.finalize(self, os.close, fd)
        return fd

    @property
    def is_host(self) -> bool:
        return self.path == "/"

    def show(self, path: str) -> str:
        """How to name an in-tree path to the user."""
        return path if self.is_host else f"{self.path}{path}"

    def systemd_running(self) -> bool:
        # sd_booted(3): this directory exists only while systemd is PID 1.
        return self.is_dir("/run/systemd/system")

    # -- resolving ----------------------------------------------------------------------------

    def open(self, path: str, flags: int = os.O_RDONLY, mode: int = 0) -> int:
        """A file descriptor for an in-tree path, resolved inside the tree; OSError as
        open(2) fails."""
        if self.watch is None:
            return _chase.open_in(self.fd, path, flags, mode)
        try:
            fd = _chase.open_in(self.fd, path, flags, mode)
        except OSError as e:
            self.watch.opened(path, flags, e.errno or 0)
            raise
        self.watch.opened(path, flags, os.fstat(fd))
        return fd

    @contextlib.contextmanager
    def parent(self, path: str, flags: int = os.O_PATH) -> Iterator[tuple[int, str]]:
        """The parent directory (resolved in the tree) and the last name, which is never
        followed by the operations that use it."""
        head, _, name = path.rstrip("/").rpartition("/")
        if name in ("", ".", ".."):
            raise OSError(errno.EINVAL, "not a file name", path)
        fd = self.open(head or "/", flags | os.O_DIRECTORY)
        try:
            yield fd, name
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def directory(self, path: str) -> Iterator[int | None]:
        """A directory resolved in the tree, to open many names in it with open_at() (sysfs:
        thousands of queue attributes); None when it is missing."""
        try:
            fd = self.open(path, os.O_PATH | os.O_DIRECTORY)
        except OSError as e:
            if e.errno not in (*_MISSING, errno.ELOOP):
                raise
            yield None
            return
        try:
            yield fd
        finally:
            os.close(fd)

    @staticmethod
    def open_at(dirfd: int, name: str, flags: int) -> int:
        """One name in a directory from directory(): a single component, and a symlink is
        never followed (ELOOP), so it stays where the directory is."""
        if "/" in name or name in ("", ".", ".."):
            raise OSError(errno.EINVAL, "not a file name", name)
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)

    def chase(self, path: str) -> str:
        """The in-tree path that `path` resolves to, as if chrooted into the tree; missing
        components (CHASE_NONEXISTENT) and a symlink loop are kept as written. For naming
        and comparing paths: opening goes through open(). Each directory on the way is
        held open, so each component costs one fstatat() below it, not a walk from the
        top."""
        todo = [p for p in reversed(path.split("/")) if p and p != "."]
        done: list[str] = []
        held = [self.fd]  # held[i]: the directory "/" + "/".join(done[:i]), while all are
        hops = 0
        try:
            while todo:
                name = todo.pop()
                if name == "..":
                    if done:
                        done.pop()
                        if len(held) > len(done) + 1:
                            os.close(held.pop())
                    continue
                st = None
                if len(held) == len(done) + 1:  # else a component above is missing
                    try:
                        st = os.stat(name, dir_fd=held[-1], follow_symlinks=False)
                    except OSError as e:
                        if e.errno not in _MISSING:
                            raise
                if st is None or not stat.S_ISLNK(st.st_mode):
                    done.append(name)
                    if st is not None and stat.S_ISDIR(st.st_mode):
                        with contextlib.suppress(OSError):  # replaced meanwhile: missing
                            held.append(os.open(name, os.O_PATH | os.O_DIRECTORY
                                                | os.O_NOFOLLOW | os.O_CLOEXEC,
                                                dir_fd=held[-1]))
                    continue
                hops += 1
                if hops > MAX_SYMLINK_HOPS:  # a loop: named as written from here on
                    return "/" + "/".join([*done, name, *reversed(todo)])
                target = os.readlink(name, dir_fd=held[-1])
                if target.startswith("/"):
                    done = []
                    while len(held) > 1:
                        os.close(held.pop())
                todo += [p for p in reversed(target.split("/")) if p and p != "."]
            return "/" + "/".join(done)
        finally:
            for fd in held[1:]:
                os.close(fd)

    # -- metadata -----------------------------------------------------------------------------

    def stat(self, path: str) -> os.stat_result | None:
        """What `path` resolves to; None when it does not exist (or loops)."""
        try:
            fd = self.open(path, os.O_PATH)
        except OSError as e:
            if e.errno in (*_MISSING, errno.ELOOP):
                return None
            raise
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    def lstat(self, path: str) -> os.stat_result | None:
        """The last component itself (a symlink is not followed); None when missing."""
        try:
            with self.parent(path) as (fd, name):
                return os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError as e:
            if e.errno in (*_MISSING, errno.ELOOP, errno.EINVAL):
                return None
            raise

    def readlink(self, path: str) -> str:
        with self.parent(path) as (fd, name):
            return os.readlink(name, dir_fd=fd)

    def is_loop(self, path: str) -> bool:
        try:
            os.close(self.open(path, os.O_PATH))
        except OSError as e:
            return e.errno == errno.ELOOP
        return False

    def exists(self, path: str) -> bool:
        return self.stat(path) is not None

    def is_dir(self, path: str) -> bool:
        st = self.stat(path)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def is_file(self, path: str) -> bool:
        st = self.stat(path)
        return st is not None and stat.S_ISREG(st.st_mode)

    def is_symlink(self, path: str) -> bool:
        st = self.lstat(path)
        return st is not None and stat.S_ISLNK(st.st_mode)

    def is_masked(self, path: str) -> bool:
        """systemd's masking: a symlink to /dev/null."""
        return self.is_symlink(path) and self.chase(path) == "/dev/null"

    def listdir(self, path: str) -> dict[str, str]:
        """A directory's entries and what each entry itself is (LINK, DIR, FILE, OTHER);
        {} when it is missing or not a directory."""
        try:
            fd = self.open(path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as e:
            if e.errno in (*_MISSING, errno.ELOOP):
                return {}
            raise
        out = {}
        try:
            with os.scandir(fd) as it:  # reads a duplicate of fd
                for entry in it:
                    out[entry.name] = (LINK if entry.is_symlink() else
                                       DIR if entry.is_dir(follow_symlinks=False) else
                                       FILE if entry.is_file(follow_symlinks=False) else OTHER)
        finally:
            os.close(fd)
        return out

    # -- reading ------------------------------------------------------------------------------

    def open_file(self, path: str, flags: int, *, follow: bool = True,
                  at: int | None = None, storage_only: bool = False) -> int | None:
        """A regular file opened with `flags`; None when it does not exist. Anything else
        (a FIFO, a socket, a device, a directory, a symlink loop, no permission; a symlink
        at all unless `follow`) is an NftuneError naming the path. The type is checked on
        an O_PATH descriptor before the file itself is opened, so a device node in a tree
        is never opened (opening some has effects: a watchdog arms, a tape rewinds) and a
        FIFO never blocks. `at`: the file's directory from directory(), `path` then only
        names it. `storage_only`: the file must be on a file system that stores files
        (chase.STORAGE_FS), told before it is opened: a read of procfs, sysfs, tracefs,
        FUSE or a network file system can have effects or block."""
        flags |= os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        nofollow = 0 if follow else os.O_NOFOLLOW
        try:
            pfd = Root.open_at(at, path.rpartition("/")[2], os.O_PATH) if at is not None \
                else self.open(path, os.O_PATH | nofollow)
        except OSError as e:
            if e.errno in _MISSING:
                return None
            raise NftuneError(f"cannot open: {e.strerror}", path=self.show(path),
                              exit_code=EXIT_FAILED) from None
        try:
            st = os.fstat(pfd)
            if not stat.S_ISREG(st.st_mode):
                raise NftuneError(f"{kind_of(st.st_mode)}, not a regular file",
                                  path=self.show(path), exit_code=EXIT_FAILED,
                                  hint="nftune reads only regular files here; remove it or "
                                       "replace it with a file")
            if storage_only and not _chase.on_storage_fs(pfd):
                raise NftuneError("not on a file system that stores files (procfs, sysfs, "
                                  "tracefs, FUSE, a network file system…)",
                                  path=self.show(path), exit_code=EXIT_FAILED)
            fd = _chase.reopen(pfd, flags)
            if fd is None:  # no /proc: open it again, and make sure it is the same file
                fd = Root.open_at(at, path.rpartition("/")[2], flags) if at is not None \
                    else self.open(path, flags | nofollow)
                again = os.fstat(fd)
                if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino):
                    os.close(fd)
                    raise OSError(errno.ESTALE, "replaced while it was opened")
            return fd
        except OSError as e:
            raise NftuneError(f"cannot open: {e.strerror}", path=self.show(path),
                              exit_code=EXIT_FAILED) from None
        finally:
            os.close(pfd)

    @contextlib.contextmanager
    def reader(self, path: str, *, follow: bool = True,
               storage_only: bool = False) -> Iterator[BinaryIO | None]:
        """open_file() for reading, as a file object."""
        fd = self.open_file(path, os.O_RDONLY, follow=follow, storage_only=storage_only)
        if fd is None:
            yield None
            return
        with os.fdopen(fd, "rb", buffering=0) as f:
            yield f

    def read_bytes(self, path: str, limit: int = MAX_FILE) -> bytes | None:
        """A whole file, at most `limit` bytes (a bigger one is an error: nothing nftune
        reads whole is that big, and a tree can hold a sparse file of any size)."""
        with self.reader(path) as f:
            if f is None:
                return None
            try:
                chunks: list[bytes] = []
                size = 0
                # In chunks: procfs refuses one read of the whole limit (ENOMEM).
                while size <= limit and (chunk := f.read(1 << 16)):
                    chunks.append(chunk)
                    size += len(chunk)
                data = b"".join(chunks)
            except OSError as e:
                raise NftuneError(f"cannot read: {e.strerror}", path=self.show(path),
                                  exit_code=EXIT_FAILED) from None
        if len(data) > limit:
            raise NftuneError(f"larger than {limit} bytes", path=self.show(path),
                              exit_code=EXIT_FAILED, hint="is this the file it should be?")
        return data

    def read_text(self, path: str) -> str | None:
        """A file's text (undecodable bytes replaced), None when it does not exist."""
        data = self.read_bytes(path)
        return None if data is None else data.decode("utf-8", "replace")

    # -- search paths -------------------------------------------------------------------------

    def conf_dirs(self, name: str) -> list[str]:
        """`name` (sysctl.d, modules-load.d, udev/rules.d) under systemd's search path,
        highest precedence first; /lib is dropped where it is a link to /usr/lib."""
        seen: set[str] = set()
        dirs = []
        for base in CONF_BASES:
            d = f"{base}/{name}"
            real = self.chase(d)
            if real not in seen:
                seen.add(real)
                dirs.append(d)
        return dirs

    def proc_sys(self, key_path: str) -> str:
        return f"/proc/sys/{key_path}"

    def sys_module(self, name: str) -> str:
        return f"/sys/module/{name}"
