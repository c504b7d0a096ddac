"""One run's state, loaded once and passed to every check: the tree, its configuration,
kernels and module choices, the sysctl.d view, the service manager (opened on first use)
and the one way to run a program. Tests build it with a fake bus and runner; nothing
else is patched."""

from __future__ import annotations

from functools import cached_property

from .config import Config, load
from .errors import NftuneError
from .root import Root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .kernel import Kernel, ListedModule, ModuleChoice
    from .kubeproxy.model import Survey
    from .run import Completed
    from .sysctl import SysctlD
    from .systemd import Bus
    from .units import UnitTree

    Runner = Callable[..., Completed]  # run.run's signature
    BusFactory = Callable[[str | None], Bus]  # an address (None: the system bus) -> a bus
    from typing import TypeVar

    T = TypeVar("T")


def refuse(argv: list[str], **_: object) -> Completed:
    """The runner of a context built without one: running a program is then a bug."""
    raise NftuneError(f"no runner given: would run {' '.join(argv)}")


class Context:
    """Everything a run reads more than once. Each part is read on first use, at most
    once, and keeps the tree files it could not read: `problems` gathers them from the
    parts read so far (the file-readable check)."""

    def __init__(self, root: Root, *, runner: Runner = refuse,
                 bus_factory: BusFactory | None = None, bus_address: str | None = None,
                 config: Config | None = None) -> None:
        self.root = root
        if config is not None:  # a caller that has one (a test): the tree's is not read
            self.__dict__["config"] = config
        self.runner = runner
        self.bus_address = bus_address
        self._bus_factory = bus_factory
        self._bus: Bus | None = None
        self._bus_error: NftuneError | None = None
        self._close: Callable[[], object] | None = None
        self._memo: dict[str, object] = {}

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, argv: list[str], *, check: bool = True, timeout: float = 60) -> Completed:
        return self.runner(argv, check=check, timeout=timeout)

    @cached_property
    def config(self) -> Config:
        return load(self.root)

    # The kernel and sysctl.d modules are imported on first use: `rps apply` (a udev event
    # per queue) needs neither.
    @cached_property
    def kernels(self) -> list[Kernel]:
        from .kernel import read_kernels

        kernels, self._kernel_problems = read_kernels(self.root)
        return kernels

    @cached_property
    def picks(self) -> list[ModuleChoice | NftuneError]:
        """Each Load= entry's module, or why no alternative exists."""
        from .kernel import choose_all

        specs = self.config.modules
        if self.config.auto_load:
            from .autoload import expand

            specs = expand(self, specs)
        return choose_all(specs, self.kernels)

    @cached_property
    def choices(self) -> list[ModuleChoice]:
        return [c for c in self.picks if not isinstance(c, NftuneError)]

    @cached_property
    def listed(self) -> list[ListedModule]:
        """modules-load.d's entries as they are now."""
        from .kernel import listed_modules

        listed, self._listed_problems = listed_modules(self.root)
        return listed

    @cached_property
    def running(self) -> tuple[str, Kernel | None]:
        """The running kernel's release, and its module directory when installed."""
        from .kernel import running_kernel

        return running_kernel(self.root, self.kernels)

    @cached_property
    def sysctld(self) -> SysctlD:
        from .sysctl import SysctlD

        # The node-wide view: for the node-sysctl checks, and for Load=auto.
        return SysctlD.load(self.root, [s.key for s in self.config.sysctls],
                            node=self.config.verify.node_sysctl != "no"
                            or self.config.auto_load)

    @cached_property
    def unit_tree(self) -> UnitTree:
        """The unit files the next boot loads, read as systemd reads them."""
        from .units import UnitTree

        return UnitTree(self.root)

    @property
    def problems(self) -> list[tuple[str, str]]:
        """(in-tree path, why) of every file the parts read so far could not read, in one
        order whatever the order of reading."""
        d = self.__dict__
        return [*(d.get("_kernel_problems") or ()),
                *(d.get("_listed_problems") or ()),
                *(d["sysctld"].unreadable if "sysctld" in d else ()),
                *(d["unit_tree"].problems if "unit_tree" in d else ())]

    def memo(self, name: str, make: Callable[[], T]) -> T:
        """A value several checks share (the bus's view of this boot, RPS's decisions),
        made on first use."""
        if name not in self._memo:
            self._memo[name] = make()
        return self._memo[name]  # type: ignore[return-value]

    @cached_property
    def kube_proxies(self) -> Survey:
        """Every process named kube-proxy (the running system only): the check and a
        contested repair both ask."""
        from .kubeproxy.discover import survey

        return survey(self.root)

    @property
    def wants_bus(self) -> bool:
        """The bus checks run: on the running system, with an address, or a given bus."""
        return self.root.live or bool(self.bus_address) or self._bus_factory is not None

    def bus(self) -> Bus:
        """The service manager, connected on first use; NftuneError (no-bus) when it
        cannot be reached, the same error on every later call."""
        if self._bus is None and self._bus_error is None:
            try:
                if self._bus_factory is not None:
                    self._bus = self._bus_factory(self.bus_address)
                else:
                    from .systemd import Systemd  # only a live run loads pystemd

                    manager = Systemd(self.bus_address)
                    self._bus = manager.__enter__()
                    self._close = manager.close
            except NftuneError as e:
                self._bus_error = e
        if self._bus_error is not None:
            raise self._bus_error
        assert self._bus is not None
        return self._bus

    def close(self) -> None:
        if self._close is not None:
            self._close()
            self._close = None
