"""The offline graph proof, on unit trees shaped like Debian's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import LIB, SYSCTL_UNIT, add_units, ordering, write

from nftune.context import Context
from nftune.ordering import FileGraph, prove
from nftune.result import Cause, Status
from nftune.root import Root
from nftune.units import UnitTree


@pytest.fixture
def units(tree: Path) -> Path:
    add_units(tree)
    return tree


def test_vendor_units_prove_the_ordering(units: Path) -> None:
    p = prove(FileGraph(UnitTree(Root(units))))
    assert p.cause is Cause.OK
    assert p.path == ("systemd-modules-load.service", "systemd-sysctl.service")
    assert p.source == f"{LIB}/systemd-sysctl.service:5"
    r = ordering(Context(Root(units)))
    assert r.status is Status.PASSED


def test_masked_modules_load(units: Path) -> None:
    (units / "etc/systemd/system").mkdir(parents=True)
    os.symlink("/dev/null", units / "etc/systemd/system/systemd-modules-load.service")
    p = prove(FileGraph(UnitTree(Root(units))))
    assert (p.cause, p.source) == (Cause.UNIT_MASKED,
                                   "/etc/systemd/system/systemd-modules-load.service")


def test_fragment_replaced_in_etc_without_the_ordering(units: Path) -> None:
    write(units, "/etc/systemd/system/systemd-sysctl.service",
          SYSCTL_UNIT.replace("After=systemd-modules-load.service\n", ""))
    p = prove(FileGraph(UnitTree(Root(units))))
    assert p.cause is Cause.ORDERING_BROKEN
    assert "/etc/systemd/system/systemd-sysctl.service" in p.reason
    r = ordering(Context(Root(units)))
    assert (r.status, r.cause) == (Status.FAILED, Cause.ORDERING_BROKEN)


def test_empty_after_in_a_dropin_does_not_reset(units: Path) -> None:
    # systemd ignores an empty dependency assignment (config_parse_unit_deps).
    write(units, "/etc/systemd/system/systemd-sysctl.service.d/zz.conf", "[Unit]\nAfter=\n")
    assert prove(FileGraph(UnitTree(Root(units)))).cause is Cause.OK
    r = ordering(Context(Root(units)))
    assert r.status is Status.PASSED
    assert r.reason.endswith("(the empty After= at /etc/systemd/system/systemd-sysctl.service.d/"
                             "zz.conf:2 resets nothing: systemd ignores an empty dependency "
                             "assignment)")


def test_a_cycle_names_the_dropin_that_closes_it(units: Path) -> None:
    dropin = "/etc/systemd/system/systemd-modules-load.service.d/50-local.conf"
    write(units, dropin, "[Unit]\nAfter=sysinit.target\n")
    p = prove(FileGraph(UnitTree(Root(units))))
    assert p.cause is Cause.ORDERING_CYCLE
    assert f"{dropin}:2" in {e.source for e in p.cycle}
    assert "ordering cycle" in p.reason and "sysinit.target" in p.reason


def test_dropin_restores_the_ordering_and_masked_dropins_do_not_apply(units: Path) -> None:
    write(units, "/etc/systemd/system/systemd-sysctl.service",
          SYSCTL_UNIT.replace("After=systemd-modules-load.service\n", ""))
    write(units, f"{LIB}/systemd-sysctl.service.d/50-nftune.conf",
          "[Unit]\nAfter=systemd-modules-load.service\n")
    p = prove(FileGraph(UnitTree(Root(units))))
    assert (p.cause, p.source) == (Cause.OK,
                                   f"{LIB}/systemd-sysctl.service.d/50-nftune.conf:2")
    (units / "etc/systemd/system/systemd-sysctl.service.d").mkdir(parents=True)
    os.symlink("/dev/null", units / "etc/systemd/system/systemd-sysctl.service.d/50-nftune.conf")
    assert prove(FileGraph(UnitTree(Root(units)))).cause is Cause.ORDERING_BROKEN


def test_transitive_through_before_of_another_unit(units: Path) -> None:
    write(units, "/etc/systemd/system/systemd-sysctl.service",
          SYSCTL_UNIT.replace("After=systemd-modules-load.service", "After=early.target"))
    write(units, f"{LIB}/early.target", "[Unit]\n")
    write(units, "/etc/systemd/system/systemd-modules-load.service.d/x.conf",
          "[Unit]\nBefore=early.target\n")
    p = prove(FileGraph(UnitTree(Root(units))))
    assert p.path == ("systemd-modules-load.service", "early.target", "systemd-sysctl.service")


def test_dashed_prefix_and_type_dropin_directories(tree: Path) -> None:
    add_units(tree)
    for d in ("systemd-sysctl.service.d", "systemd-.service.d", "service.d"):
        write(tree, f"/etc/systemd/system/{d}/x-{d}.conf", "[Unit]\n")
    write(tree, "/etc/systemd/system/systemd-modules-load.service.d/no.conf", "[Unit]\n")
    unit = UnitTree(Root(tree)).load("systemd-sysctl.service")
    assert sorted(p.rsplit("/", 2)[1] for p in unit.dropins) == [
        "service.d", "systemd-.service.d", "systemd-sysctl.service.d"]


def test_no_systemd_in_the_tree_is_skipped(tree: Path) -> None:
    r = ordering(Context(Root(tree)))
    assert r.status is Status.SKIPPED


def test_a_unit_not_on_the_unit_path_is_missing_even_with_a_dropin(tree: Path) -> None:
    """LoadState=not-found, as systemd reports a unit with drop-ins but no fragment."""
    add_units(tree)
    (tree / "usr/lib/systemd/system/systemd-sysctl.service").unlink()
    p = prove(FileGraph(UnitTree(Root(tree))))
    assert (p.cause, p.source) == (Cause.UNIT_MISSING, None)
    write(tree, "/etc/systemd/system/systemd-sysctl.service.d/x.conf", "[Unit]\n")
    assert prove(FileGraph(UnitTree(Root(tree)))).cause is Cause.UNIT_MISSING
    r = ordering(Context(Root(tree)))
    assert (r.status, r.cause) == (Status.FAILED, Cause.UNIT_MISSING)
    assert r.hint == "install systemd's unit (the systemd package)"
