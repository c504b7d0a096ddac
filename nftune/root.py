"""Root: every path nftune reads or writes, relative to the tree it works on.

Paths inside the tree are absolute strings ("/etc/sysctl.d"); `root.host()` maps them to the
real filesystem. Nothing else in nftune builds a path from "/etc" or "/proc" on its own, so
tests run on tmp trees and image builds work offline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .errors import NftuneError

# systemd's configuration search path, highest precedence first (/lib for split-usr).
CONF_BASES = ("/etc", "/run", "/usr/local/lib", "/usr/lib", "/lib")
MAX_SYMLINK_HOPS = 40


def _in_chroot() -> bool:
    """Like systemd's running_in_chroot(): "/" is not PID 1's root. An image build's chroot
    may have the build host's /run mounted, so /run/systemd/system alone does not tell."""
    try:
        ours, init = os.stat("/"), os.stat("/proc/1/root")
    except PermissionError:
        return False  # not root: cannot tell, and cannot change the kernel anyway
    except OSError:
        return True  # no /proc: not a booted system
    return (ours.st_dev, ours.st_ino) != (init.st_dev, init.st_ino)


@dataclass(frozen=True)
class Root:
    path: Path
    live: bool = False  # the running system: its /proc, /sys and systemd may be used

    @classmethod
    def from_arg(cls, arg: str | None) -> Root:
        """The host ("/", live when systemd runs) or an image tree given with --root."""
        if arg is not None:
            p = Path(arg)
            if not p.is_dir():
                raise NftuneError(
                    "not a directory", path=arg, key="--root",
                    hint="give the top of an image tree, for example --root /mnt/image",
                )
            # Not resolve(): it would follow /proc/PID/root, a container's root, to "/".
            if not os.path.samefile(p, "/"):
                return cls(Path(os.path.abspath(p)), live=False)
        host = cls(Path("/"))
        return cls(Path("/"), live=host.systemd_running() and not _in_chroot())

    @property
    def is_host(self) -> bool:
        return self.path == Path("/")

    def host(self, path: str) -> Path:
        """The real path of an in-tree absolute path."""
        return self.path / path.lstrip("/")

    @cached_property
    def _prefix(self) -> str:
        return "" if self.is_host else str(self.path)

    def host_str(self, path: str) -> str:
        """root.host() as a string, for loops over thousands of sysfs files (no pathlib)."""
        return self._prefix + path

    def show(self, path: str) -> str:
        """How to name an in-tree path to the user."""
        return path if self.is_host else f"{self.path}{path}"

    def systemd_running(self) -> bool:
        # sd_booted(3): this directory exists only while systemd is PID 1.
        return self.host("/run/systemd/system").is_dir()

    def chase(self, path: str) -> str:
        """Resolve symlinks as if chrooted into the tree; returns the in-tree path."""
        todo = [p for p in path.split("/") if p]
        done: list[str] = []
        hops = 0
        while todo:
            name = todo.pop(0)
            if name == ".":
                continue
            if name == "..":
                if done:
                    done.pop()
                continue
            host = self.host("/" + "/".join([*done, name]))
            if host.is_symlink():
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise NftuneError("too many levels of symbolic links", path=str(host),
                                      exit_code=3)
                target = os.readlink(host)
                if target.startswith("/"):
                    done = []
                todo[:0] = [p for p in target.split("/") if p]
            else:
                done.append(name)
        return "/" + "/".join(done)

    def read_text(self, path: str) -> str:
        """A file's text, following symlinks inside the tree (never out of it)."""
        return self.host(self.chase(path)).read_text(errors="replace")

    def is_masked(self, path: str) -> bool:
        """systemd's masking: a symlink to /dev/null."""
        return self.host(path).is_symlink() and self.chase(path) == "/dev/null"

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

    def config_files(self) -> list[str]:
        """nftune's own config: the main file, then drop-ins in name order (later wins)."""
        files = ["/etc/nftune/nftune.conf"]
        dropins = self.host("/etc/nftune/nftune.conf.d")
        if dropins.is_dir():
            files += sorted(f"/etc/nftune/nftune.conf.d/{p.name}" for p in dropins.iterdir()
                            if p.name.endswith(".conf") and not p.name.startswith("."))
        return [f for f in files if self.host(f).is_file()]

    def kernel_dirs(self) -> list[str]:
        """Every installed kernel's module directory (/lib/modules and /usr/lib/modules)."""
        seen: set[str] = set()
        out = []
        for base in ("/usr/lib/modules", "/lib/modules"):
            d = self.host(base)
            if not d.is_dir():
                continue
            try:
                kernels = sorted(d.iterdir())
            except OSError as e:
                raise NftuneError(f"cannot list the installed kernels: {e.strerror}",
                                  path=self.show(base), exit_code=3,
                                  hint="a service sandbox with ProtectKernelModules=yes "
                                       "hides this directory") from e
            for k in kernels:
                path = f"{base}/{k.name}"
                real = self.chase(path)
                if real in seen or not k.is_dir():
                    continue
                seen.add(real)
                if (k / "modules.dep").exists() or (k / "modules.builtin").exists():
                    out.append(path)
        return out

    def proc_sys(self, key_path: str) -> str:
        return f"/proc/sys/{key_path}"

    def sys_module(self, name: str) -> str:
        return f"/sys/module/{name}"

    state_dir = "/var/lib/nftune"
    state_file = "/var/lib/nftune/state.json"
