"""A fake of nftune.systemd's Bus: units and boot times as a real manager reports them.
mypy holds it to the Bus protocol (tests/run type-checks this file)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from nftune.systemd import BootTimes, Condition, UnitState

if TYPE_CHECKING:
    from nftune.systemd import Bus

ML, SC = "systemd-modules-load.service", "systemd-sysctl.service"
T0 = 5_000_000  # monotonic µs when userspace began


class FakeBus:
    def __init__(self, units: dict[str, UnitState], boot: BootTimes) -> None:
        self.units = units
        self._boot = boot

    def unit(self, name: str) -> UnitState:
        return self.units.get(name, UnitState(name, "not-found"))

    def boot(self) -> BootTimes:
        return self._boot

    def change(self, name: str, **fields: Any) -> FakeBus:
        self.units[name] = self.units[name]._replace(**fields)
        return self


def ran(name: str, start_ms: int, took_ms: int, after: tuple[str, ...] = (),
        **fields: Any) -> UnitState:
    """A oneshot that ran from T0+start_ms for took_ms, successfully."""
    start = T0 + start_ms * 1000
    end = start + took_ms * 1000
    base: dict[str, Any] = dict(
        load_state="loaded", unit_file_state="static", active_state="active",
        result="success", condition_timestamp=start,
        inactive_exit=start, exec_main_start=start + 50, exec_main_exit=end - 50,
        active_enter=end, exec_main_pid=100 + start_ms, exec_main_code=1,
        fragment_path=f"/usr/lib/systemd/system/{name}", after=after)
    base.update(fields)
    return UnitState(name, **base)


def skipped(name: str, condition: Condition, after: tuple[str, ...] = ()) -> UnitState:
    return UnitState(name, "loaded", "static", "inactive", "success",
                     condition_result=False, conditions=(condition,), after=after,
                     condition_timestamp=T0 + 90_000,
                     fragment_path=f"/usr/lib/systemd/system/{name}")


def healthy(booted_at: float | None = None) -> FakeBus:
    """Debian 12's order: journald socket, then modules-load, then sysctl."""
    realtime = int((booted_at if booted_at is not None else time.time() + 3600) * 1e6)
    units = {
        "-.slice": ran("-.slice", 0, 0),
        "systemd-journald.socket": ran("systemd-journald.socket", 60, 0, ("-.slice",)),
        ML: ran(ML, 100, 10, ("systemd-journald.socket", "-.slice")),
        SC: ran(SC, 120, 5, ("-.slice", ML, "systemd-journald.socket")),
        "sysinit.target": ran("sysinit.target", 300, 0, (SC, ML)),
    }
    return FakeBus(units, BootTimes(T0, realtime, T0 + 900_000, "252", "running"))


CAP = Condition("ConditionCapability", False, False, "CAP_SYS_MODULE", -1)
RW = Condition("ConditionPathIsReadWrite", False, False, "/proc/sys/net/", -1)


if TYPE_CHECKING:
    _: Bus = FakeBus({}, BootTimes(T0, 0, 0, "252", "running"))  # FakeBus is a Bus
