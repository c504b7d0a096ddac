"""The one door to systemd's D-Bus API. Only this module imports pystemd.

Each unit is read with one Properties.GetAll call on its object path (no introspection), and
one connection serves a whole run. Callers get plain typed values, never bytes or pystemd
objects. Timestamps are CLOCK_MONOTONIC microseconds; 0 means "never".
"""

from __future__ import annotations

import os

from .errors import EXIT_FAILED, NftuneError
from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol

DESTINATION = b"org.freedesktop.systemd1"
MANAGER_PATH = b"/org/freedesktop/systemd1"
UNIT_PATH = "/org/freedesktop/systemd1/unit/"
PROPERTIES = b"org.freedesktop.DBus.Properties"
NO_BUS_HINT = ("on a node, check that systemd is PID 1 and D-Bus runs; for a container give "
               "--bus-address unix:path=/proc/PID/root/run/dbus/system_bus_socket; "
               "for an image, use --root DIR for the offline proof")


class Condition(Record):
    """One Condition*= or Assert*= of a unit, and how it came out."""

    kind: str  # "ConditionCapability", "AssertPathExists", ...
    trigger: bool  # "|": any trigger condition may pass
    negate: bool
    param: str
    state: int  # > 0 passed, < 0 failed, 0 not checked

    def __str__(self) -> str:
        return f"{self.kind}={'|' * self.trigger}{'!' * self.negate}{self.param}"


class UnitState(Record):
    """A unit as the manager has it loaded, with this boot's timestamps."""

    name: str
    load_state: str  # loaded, not-found, masked, bad-setting, error
    unit_file_state: str = ""  # static, enabled, masked, ...
    active_state: str = "inactive"
    result: str = ""  # service result: success, exit-code, ...
    condition_result: bool = True
    conditions: tuple[Condition, ...] = ()
    after: tuple[str, ...] = ()  # systemd merges Before= of others into this list
    before: tuple[str, ...] = ()
    fragment_path: str = ""
    dropin_paths: tuple[str, ...] = ()
    condition_timestamp: int = 0
    inactive_exit: int = 0  # activation began
    active_enter: int = 0  # active (for a oneshot: after its process exited)
    exec_main_start: int = 0
    exec_main_exit: int = 0
    exec_main_pid: int = 0
    exec_main_code: int = 0  # CLD_EXITED=1, CLD_KILLED=2, ...
    exec_main_status: int = 0
    job: int = 0  # the id of a pending job; 0: none

    @property
    def found(self) -> bool:
        return self.load_state not in ("not-found", "")

    @property
    def masked(self) -> bool:
        return self.load_state == "masked" or self.unit_file_state.startswith("masked")

    @property
    def started(self) -> bool:
        """Had a start job this boot: it ran, was skipped by a condition, is active (a
        perpetual unit), or still waits."""
        return bool(self.inactive_exit or self.condition_timestamp or self.job) or \
            self.active_state not in ("inactive", "")

    @property
    def failed_conditions(self) -> tuple[Condition, ...]:
        return tuple(c for c in self.conditions if c.state < 0)

    @property
    def sources(self) -> str:
        return ", ".join((self.fragment_path, *self.dropin_paths)) or "no unit file"


class BootTimes(Record):
    """The manager's view of this boot: when userspace began and finished."""

    userspace: int  # monotonic: when the manager started
    userspace_realtime: int  # the same moment, in µs since the epoch
    finish: int  # 0 while the boot is not finished
    version: str = ""
    system_state: str = ""


if TYPE_CHECKING:  # a protocol is for the type checker only: typing costs every start
    class Bus(Protocol):
        """What nftune reads from a service manager; tests use a fake."""

        def unit(self, name: str) -> UnitState: ...

        def boot(self) -> BootTimes: ...


def unit_path(name: str) -> bytes:
    """sd-bus's label escaping: anything but [A-Za-z0-9] (and a leading digit) is _XX."""
    out = []
    for i, ch in enumerate(name):
        if ch.isascii() and (ch.isalpha() or (ch.isdigit() and i > 0)):
            out.append(ch)
        else:
            out.append("".join(f"_{b:02x}" for b in ch.encode()))
    return (UNIT_PATH + ("".join(out) or "_")).encode()


def _s(v: Any) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v or "")


def _names(v: Any) -> tuple[str, ...]:
    return tuple(_s(x) for x in v or ())


def _int(v: Any) -> int:
    return int(v or 0)


def unit_from_properties(name: str, p: dict[bytes, Any]) -> UnitState:
    conditions = tuple(Condition(_s(c[0]), bool(c[1]), bool(c[2]), _s(c[3]), int(c[4]))
                       for c in p.get(b"Conditions") or ())
    return UnitState(
        name=name,
        load_state=_s(p.get(b"LoadState")),
        unit_file_state=_s(p.get(b"UnitFileState")),
        active_state=_s(p.get(b"ActiveState")),
        result=_s(p.get(b"Result")),
        condition_result=bool(p.get(b"ConditionResult", True)),
        conditions=conditions,
        after=_names(p.get(b"After")),
        before=_names(p.get(b"Before")),
        fragment_path=_s(p.get(b"FragmentPath")),
        dropin_paths=_names(p.get(b"DropInPaths")),
        condition_timestamp=_int(p.get(b"ConditionTimestampMonotonic")),
        inactive_exit=_int(p.get(b"InactiveExitTimestampMonotonic")),
        active_enter=_int(p.get(b"ActiveEnterTimestampMonotonic")),
        exec_main_start=_int(p.get(b"ExecMainStartTimestampMonotonic")),
        exec_main_exit=_int(p.get(b"ExecMainExitTimestampMonotonic")),
        exec_main_pid=_int(p.get(b"ExecMainPID")),
        exec_main_code=_int(p.get(b"ExecMainCode")),
        exec_main_status=_int(p.get(b"ExecMainStatus")),
        job=_int((p.get(b"Job") or (0,))[0]),
    )


def _pystemd() -> tuple[Any, Any]:
    """pystemd's Cython bus and its errors, without running pystemd's package __init__:
    that imports the whole high-level API (introspection through lxml, psutil), none of
    which nftune uses. The package is entered as a bare module over its own directory,
    so only dbuslib, dbusexc and utils are ever imported."""
    import sys

    stand_in = None
    if "pystemd" not in sys.modules:
        import importlib.util
        import types

        spec = importlib.util.find_spec("pystemd")
        if spec is None or spec.submodule_search_locations is None:
            raise NftuneError("pystemd is not installed", exit_code=EXIT_FAILED,
                              hint="pip install pystemd (it needs libsystemd-dev, "
                                   "pkg-config and gcc)")
        stand_in = types.ModuleType("pystemd")
        stand_in.__path__ = list(spec.submodule_search_locations)
        stand_in.__package__ = "pystemd"
        sys.modules["pystemd"] = stand_in
    try:
        from pystemd import dbusexc, dbuslib
    except ImportError as e:  # a partial install, or libsystemd.so.0 missing
        if stand_in is not None and sys.modules.get("pystemd") is stand_in:
            del sys.modules["pystemd"]
        raise NftuneError(f"pystemd cannot be loaded: {e}", exit_code=EXIT_FAILED,
                          hint="reinstall pystemd, and check that libsystemd.so.0 is "
                               "installed") from e
    return dbuslib, dbusexc


class Systemd:
    """One connection to a service manager; every unit is fetched at most once."""

    def __init__(self, address: str | None = None) -> None:
        self.address = address  # None: the system bus
        self._bus: Any = None
        self._units: dict[str, UnitState] = {}
        self._boot: BootTimes | None = None

    def where(self) -> str:
        return self.address or "the system bus"

    def __enter__(self) -> Systemd:
        lib, exc = _pystemd()
        bus = lib.DBusAddress(self.address.encode()) if self.address else lib.DBus()
        try:
            bus.open()
        except exc.DBusBaseError as e:
            raise self._error("cannot connect to", e) from e
        self._bus = bus
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._bus is not None:
            self._bus.close()
            self._bus = None

    def _error(self, what: str, e: Any) -> NftuneError:
        """pystemd's errors carry a negative errno and D-Bus's own message."""
        detail = getattr(e, "err_message", "") or str(e)
        errno = abs(getattr(e, "errno", 0) or 0)
        if errno:
            detail += f" ({os.strerror(errno)})"
        return NftuneError(f"{what} systemd on {self.where()}: {detail}", key="--bus-address",
                           value=self.address, hint=NO_BUS_HINT, exit_code=EXIT_FAILED)

    def _call(self, path: bytes, method: bytes, *args: bytes) -> Any:
        exc = _pystemd()[1]
        if self._bus is None:
            raise NftuneError("not connected", exit_code=EXIT_FAILED)
        try:
            reply = self._bus.call_method(DESTINATION, path, PROPERTIES, method,
                                          [(ord("s"), a) for a in args])
        except exc.DBusBaseError as e:
            raise self._error("cannot read properties from", e) from e
        return reply.body

    def _get_all(self, path: bytes, interface: bytes) -> dict[bytes, Any]:
        body = self._call(path, b"GetAll", interface)
        return body if isinstance(body, dict) else {}

    def unit(self, name: str) -> UnitState:
        if name not in self._units:
            # An empty interface name returns every interface's properties in one reply;
            # systemd loads a unit that is asked for by path, so not-found is an answer too.
            self._units[name] = unit_from_properties(name, self._get_all(unit_path(name), b""))
        return self._units[name]

    def boot(self) -> BootTimes:
        if self._boot is None:
            p = self._get_all(MANAGER_PATH, b"org.freedesktop.systemd1.Manager")
            self._boot = BootTimes(
                userspace=_int(p.get(b"UserspaceTimestampMonotonic")),
                userspace_realtime=_int(p.get(b"UserspaceTimestamp")),
                finish=_int(p.get(b"FinishTimestampMonotonic")),
                version=_s(p.get(b"Version")),
                system_state=_s(p.get(b"SystemState")),
            )
        return self._boot
