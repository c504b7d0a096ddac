"""Which kernel modules the installed kernels have, and which name to load for each
configured module.

A listed module that is missing is never loaded (and older systemd fails
systemd-modules-load.service as a whole for it), so a name is rendered only when every
installed kernel has it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .attrs import read_attr
from .conffiles import list_conf_files, stream_lines
from .config import ModuleSpec
from .errors import EXIT_FAILED, NftuneError
from .record import Record
from .root import Root

_KO_SUFFIXES = (".ko", ".ko.xz", ".ko.gz", ".ko.zst")
# Known renames, for hints: these were folded into nf_conntrack in Linux 4.19.
RENAMED = {"nf_conntrack_ipv4": "nf_conntrack", "nf_conntrack_ipv6": "nf_conntrack",
           "nf_defrag_ipv4": "nf_conntrack"}


def modname(path: str) -> str:
    """"kernel/net/netfilter/nf_conntrack.ko.xz" -> "nf_conntrack" ('-' and '_' are one).
    String operations only: modules.dep has thousands of lines."""
    base = path[path.rfind("/") + 1:]
    for suffix in _KO_SUFFIXES:
        if base.endswith(suffix):
            base = base[:-len(suffix)]
            break
    return base.replace("-", "_")


class Kernel(Record):
    """One installed kernel's module directory: its modules and built-ins."""

    version: str
    path: str  # in-tree module directory
    modules: frozenset[str]
    builtin: frozenset[str]
    # modules.dep: module -> (its path in the directory, its dependencies' paths as written)
    deps: Mapping[str, tuple[str, str]] = MappingProxyType({})

    def has(self, name: str) -> str | None:
        """"module", "builtin" or None. Aliases are not followed: /sys/module and
        verification know a module by its real name."""
        if name in self.modules:
            return "module"
        if name in self.builtin:
            return "builtin"
        return None


def _deps(text: str) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for line in text.split("\n"):
        path, colon, deps = line.partition(":")
        if colon:
            out.setdefault(modname(path.strip()), (path.strip(), deps))
    return out


def _read(root: Root, path: str) -> list[str]:
    return (root.read_text(path) or "").splitlines()


def kernel_dirs(root: Root) -> list[str]:
    """Every installed kernel's module directory (/lib/modules and /usr/lib/modules)."""
    seen: set[str] = set()
    out = []
    for base in ("/usr/lib/modules", "/lib/modules"):
        try:
            kernels = sorted(root.listdir(base))
        except OSError as e:
            raise NftuneError(f"cannot list the installed kernels: {e.strerror}",
                              path=root.show(base), exit_code=EXIT_FAILED,
                              hint="a service sandbox with ProtectKernelModules=yes "
                                   "hides this directory") from e
        for k in kernels:
            path = f"{base}/{k}"
            real = root.chase(path)
            if real in seen or not root.is_dir(path):
                continue
            seen.add(real)
            if root.exists(f"{path}/modules.dep") or root.exists(f"{path}/modules.builtin"):
                out.append(path)
    return out


Problem = tuple[str, str]  # an in-tree path that cannot be read, and why


def read_kernels(root: Root, *, strict: bool = False) -> tuple[list[Kernel], list[Problem]]:
    """Every installed kernel whose module lists can be read, and those that cannot
    (verify reports them and goes on); with `strict`, the first that cannot is an error."""
    kernels: list[Kernel] = []
    problems: list[Problem] = []
    for d in kernel_dirs(root):
        try:
            deps = _deps(root.read_text(f"{d}/modules.dep") or "")
            modules = frozenset(deps)
            builtin = frozenset(modname(line) for line in _read(root, f"{d}/modules.builtin")
                                if line.strip())
        except NftuneError as e:
            if strict:
                raise
            problems.append((e.path or d, e.message))
            continue
        kernels.append(Kernel(d.rsplit("/", 1)[-1], d, modules, builtin,
                              MappingProxyType(deps)))
    return kernels, problems


def load_kernels(root: Root) -> list[Kernel]:
    """Every installed kernel; one whose module lists cannot be read is an error."""
    return read_kernels(root, strict=True)[0]


class ModuleChoice(Record):
    """The module chosen for one Load= entry (the first alternative every kernel has)."""

    spec: ModuleSpec
    name: str  # the alternative chosen
    builtin_everywhere: bool  # no modules-load.d entry needed

    @property
    def listed(self) -> bool:
        return not self.builtin_everywhere


def choose(spec: ModuleSpec, kernels: list[Kernel]) -> ModuleChoice | NftuneError:
    """The first alternative every installed kernel has, or the error that explains why
    there is none. With no kernel installed nothing can be checked: the first is taken."""
    if not kernels:
        return ModuleChoice(spec, spec.alternatives[0], False)
    for alt in spec.alternatives:
        kinds = [k.has(alt) for k in kernels]
        if all(kinds):
            return ModuleChoice(spec, alt, all(x == "builtin" for x in kinds))
    return missing_error(spec, kernels)


def choose_all(specs: tuple[ModuleSpec, ...],
               kernels: list[Kernel]) -> list[ModuleChoice | NftuneError]:
    """choose() for each spec; a module reached twice (a|b and b) is listed once."""
    out: list[ModuleChoice | NftuneError] = []
    seen: set[str] = set()
    for spec in specs:
        c = choose(spec, kernels)
        if isinstance(c, ModuleChoice):
            if c.name in seen:
                continue
            seen.add(c.name)
        out.append(c)
    return out


def choose_strict(specs: tuple[ModuleSpec, ...],
                  kernels: list[Kernel]) -> list[ModuleChoice]:
    """Like choose_all(), but the first module no alternative of which exists is an error."""
    out = []
    for c in choose_all(specs, kernels):
        if isinstance(c, NftuneError):
            raise c
        out.append(c)
    return out


def missing_error(spec: ModuleSpec, kernels: list[Kernel]) -> NftuneError:
    lacking = [k for k in kernels if not any(k.has(a) for a in spec.alternatives)]
    where = ", ".join(f"{k.version} ({k.path})" for k in lacking[:3])
    if len(lacking) > 3:
        where += f" and {len(lacking) - 3} more"
    if lacking:
        msg = f"module {spec.name} is not in installed kernel {where}"
    else:
        msg = f"no alternative of {spec.name} is in every installed kernel"
    renamed = [RENAMED[a] for a in spec.alternatives if a in RENAMED]
    hint = ("a missing module is never loaded, and older systemd fails "
            "systemd-modules-load.service as a whole; "
            + (f"{spec.alternatives[0]} was merged into {renamed[0]} in Linux 4.19: use "
               f"Load={renamed[0]}" if renamed else
               "remove it, or list alternatives as Load=a|b"))
    return NftuneError(msg, path=spec.origin.file, line=spec.origin.line,
                       key="Load", value=spec.name, hint=hint)


class ListedModule(Record):
    """One modules-load.d line as systemd-modules-load reads it."""

    name: str
    file: str
    line: int

    @property
    def source(self) -> str:
        return f"{self.file}:{self.line}"


def listed_modules(root: Root) -> tuple[list[ListedModule], list[Problem]]:
    """modules-load.d's entries, and the files that cannot be read."""
    out: list[ListedModule] = []
    problems: list[Problem] = []
    for f in list_conf_files(root, root.conf_dirs("modules-load.d"), ".conf"):
        try:
            if f.problem:
                raise NftuneError(f.problem, path=f.path, exit_code=EXIT_FAILED)
            if f.readable:
                with root.reader(f.path) as fh:
                    if fh is not None:
                        out += [ListedModule(modname(s), f.path, n)
                                for n, s in stream_lines(fh, root.show(f.path))]
        except NftuneError as e:
            problems.append((f.path, e.message))
    return out, problems


def running_kernel(root: Root, kernels: list[Kernel]) -> tuple[str, Kernel | None]:
    """The running kernel's release, and its module directory in the tree if installed."""
    release = read_attr(root, root.proc_sys("kernel/osrelease")) or ""
    return release, next((k for k in kernels if k.version == release), None)
